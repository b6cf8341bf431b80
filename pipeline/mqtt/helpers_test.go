package mqtt

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/testpeer"
	"github.com/facgw/facgw/pipeline/outbox"
)

// Nothing in these tests asserts on time. waitFor polls a condition and
// fails only if it never holds within a bound generous enough for a loaded
// CI machine; how fast it holds is never checked.
const waitBound = 90 * time.Second

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var testInfo = StatusInfo{Site: "pangyo-b3", Gateway: "gw-1", Version: "test", Started: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}

// syncBuffer is a log sink tests can read while publishers write to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// brokerConfig is a fast-retrying config for tests, its outbox in dir.
func brokerConfig(name, url, dir string) BrokerConfig {
	return BrokerConfig{
		Name:           name,
		URL:            url,
		KeepAlive:      5 * time.Second,
		ConnectTimeout: 5 * time.Second,
		Backoff:        10 * time.Millisecond,
		MaxBackoff:     100 * time.Millisecond,
		Outbox:         outbox.Options{Dir: dir},
	}
}

// runPublisher starts p.Run on its own goroutine; the cleanup closes p and
// waits for Run to return.
func runPublisher(t testing.TB, p *Publisher) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Run(t.Context()) }()
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close %s: %v", p.Name(), err)
		}
		if err := <-done; err != nil {
			t.Errorf("run %s: %v", p.Name(), err)
		}
	})
}

func newPublisher(t testing.TB, cfg BrokerConfig, log *slog.Logger) *Publisher {
	t.Helper()
	p, err := New(cfg, testInfo, log)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testPoints returns a poll's worth of points, different for each i.
func testPoints(device string, i int) []point.Point {
	ts := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	return []point.Point{
		{Device: device, Name: "battery.temperature", Num: 25 + float64(i%10)/10, Unit: point.Celsius, Time: ts},
		{Device: device, Name: "battery.charge", Num: float64(i % 100), Unit: point.Percent, Time: ts},
		{Device: device, Name: "ups.status.on_battery", Kind: point.Bool, Num: float64(i % 2), Time: ts},
	}
}

// outboxMessage is a telemetry message for device with the given seq, as
// Fanout would make it.
func outboxMessage(device string, seq int) outbox.Message {
	var pts [][]byte
	for _, p := range testPoints(device, seq) {
		b, err := encodePoint(p)
		if err != nil {
			panic(err)
		}
		pts = append(pts, b)
	}
	b := appendEnvelope(nil, jsonString(testInfo.Gateway), jsonString(device), uint64(seq), time.Now(), false, 0, pts)
	return outbox.Message{Class: outbox.Telemetry, Key: device, Topic: testInfo.Topics().Telemetry(device), Payload: b}
}

// logf logs with the wall clock, to read a slow run's phases.
func logf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Logf("%s "+format, append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// waitTick paces a test's publishing loop; it is never a condition.
func waitTick() { time.Sleep(time.Millisecond) }

// --- mosquitto -------------------------------------------------------------

// mosquitto is a broker process started for a test.
type mosquitto = testpeer.Mosquitto

func startMosquitto(t testing.TB, extra string, readyAddrs ...string) *mosquitto {
	t.Helper()
	return testpeer.StartMosquitto(t, extra, readyAddrs...)
}

// --- TCP proxy ---------------------------------------------------------------

// proxy forwards loopback TCP connections to upstream while passing; when
// blocked it closes every connection it carries and every new one at once,
// so the test decides exactly when a publisher can reach its broker.
type proxy struct {
	ln       net.Listener
	upstream string

	mu    sync.Mutex
	pass  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(t testing.TB, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream, pass: true, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Block()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) URL() string { return "tcp://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if !p.pass {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	// Either side ending ends both: a killed broker is a lost connection.
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
	dst.Close()
	src.Close()
}

// Block closes all carried connections and refuses new ones.
func (p *proxy) Block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pass = false
	for c := range p.conns {
		c.Close()
	}
}

// Pass lets new connections through.
func (p *proxy) Pass() {
	p.mu.Lock()
	p.pass = true
	p.mu.Unlock()
}

// --- subscriber --------------------------------------------------------------

// collector records what one broker delivered, across subscriber
// reconnects: telemetry (device, seq) in arrival order, status payloads,
// the latest state per device and markers.
type collector struct {
	mu       sync.Mutex
	seqs     map[string][]uint64
	msgs     map[string][]Telemetry
	status   []Status // live, in order
	retained *Status  // the last retained status replayed
	state    map[string]State
	markers  map[string]bool
	bad      []string
}

func newCollector() *collector {
	return &collector{seqs: map[string][]uint64{}, msgs: map[string][]Telemetry{}, state: map[string]State{}, markers: map[string]bool{}}
}

func (c *collector) handle(topics Topics) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		c.mu.Lock()
		defer c.mu.Unlock()
		topic := m.Topic()
		rest, ok := strings.CutPrefix(topic, topics.Base()+"/")
		if !ok {
			c.bad = append(c.bad, "foreign topic "+topic)
			return
		}
		kind, dev, _ := strings.Cut(rest, "/")
		switch kind {
		case "telemetry":
			var tm Telemetry
			if err := json.Unmarshal(m.Payload(), &tm); err != nil || tm.Device != dev {
				c.bad = append(c.bad, fmt.Sprintf("%s: %v: %s", topic, err, m.Payload()))
				return
			}
			c.seqs[dev] = append(c.seqs[dev], tm.Seq)
			c.msgs[dev] = append(c.msgs[dev], tm)
		case "state":
			var st State
			if err := json.Unmarshal(m.Payload(), &st); err != nil {
				c.bad = append(c.bad, fmt.Sprintf("%s: %v", topic, err))
				return
			}
			c.state[dev] = st
		case "status":
			var st Status
			if err := json.Unmarshal(m.Payload(), &st); err != nil {
				c.bad = append(c.bad, fmt.Sprintf("%s: %v", topic, err))
				return
			}
			if m.Retained() {
				// Replayed on subscribe; a broker may also replay one
				// it is delivering live at that moment (mochi does).
				c.retained = &st
				return
			}
			c.status = append(c.status, st)
		case "marker":
			c.markers[dev] = true
		default:
			c.bad = append(c.bad, "unexpected topic "+topic)
		}
	}
}

// max returns the highest seq received for device.
func (c *collector) max(device string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var m uint64
	for _, s := range c.seqs[device] {
		m = max(m, s)
	}
	return m
}

func (c *collector) hasMarker(m string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.markers[m]
}

func (c *collector) lastStatus() (Status, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.status) == 0 {
		return Status{}, false
	}
	return c.status[len(c.status)-1], true
}

// complete reports whether every device reached its wanted last seq.
func (c *collector) complete(want map[string]uint64) bool {
	for d, w := range want {
		if c.max(d) < w {
			return false
		}
	}
	return true
}

// check verifies, per device, that seqs arrived in order with no gap up to
// want[device]: a seq is either the next one or a duplicate of one already
// received. It returns the number of duplicates.
func (c *collector) check(t testing.TB, name string, want map[string]uint64) (dups int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.bad {
		t.Errorf("%s: %s", name, b)
	}
	for dev, w := range want {
		seen := map[uint64]bool{}
		var top uint64
		errs := 0
		for i, s := range c.seqs[dev] {
			switch {
			case seen[s]:
				dups++
			case s == top+1:
				seen[s], top = true, s
			default:
				if errs++; errs <= 5 {
					t.Errorf("%s: device %s: message %d has seq %d after %d (gap or reordering)", name, dev, i, s, top)
				}
				seen[s], top = true, max(top, s)
			}
		}
		if top != w {
			t.Errorf("%s: device %s: last seq %d, want %d", name, dev, top, w)
		}
	}
	return dups
}

// subscribe connects a paho subscriber to addr (no proxy) and records into
// c everything below the test gateway's topics, QoS 1. It returns the
// client, disconnected at cleanup.
func subscribe(t testing.TB, addr string, c *collector, user, pass string) paho.Client {
	t.Helper()
	topics := testInfo.Topics()
	opts := paho.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(fmt.Sprintf("sub-%d", time.Now().UnixNano())).
		SetUsername(user).SetPassword(pass).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetProtocolVersion(4).
		SetConnectTimeout(5 * time.Second)
	cl := paho.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(waitBound) || tok.Error() != nil {
		t.Fatalf("subscriber connect %s: %v", addr, tok.Error())
	}
	if tok := cl.Subscribe(topics.Base()+"/#", QoS, c.handle(topics)); !tok.WaitTimeout(waitBound) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(100) })
	return cl
}

// marker publishes a marker through addr and waits until c received it.
// mosquitto delivers a subscriber's messages in the order it processed
// them, so afterwards c holds everything the broker had accepted before.
func marker(t testing.TB, addr string, c *collector, name string) {
	t.Helper()
	cl := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID("marker-" + name).SetAutoReconnect(false).SetProtocolVersion(4))
	if tok := cl.Connect(); !tok.WaitTimeout(waitBound) || tok.Error() != nil {
		t.Fatalf("marker connect %s: %v", addr, tok.Error())
	}
	defer cl.Disconnect(100)
	if tok := cl.Publish(testInfo.Topics().Base()+"/marker/"+name, QoS, false, "m"); !tok.WaitTimeout(waitBound) || tok.Error() != nil {
		t.Fatalf("marker publish: %v", tok.Error())
	}
	waitFor(t, "marker "+name, func() bool { return c.hasMarker(name) })
}

// --- certificates ------------------------------------------------------------

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// serverCert issues a certificate for 127.0.0.1 and localhost and returns
// it and its key as PEM.
func (ca *testCA) serverCert(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

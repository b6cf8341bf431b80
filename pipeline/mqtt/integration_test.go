package mqtt

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/facgw/facgw/internal/testpeer"
)

var testDevices = []string{"ups-a", "bms-rack1", "crac-1"}

// streamer publishes through a Fanout on its own goroutine, round-robin
// over testDevices, until stopped; it counts what it published per device
// (seqs start at 1 in a fresh sequencer, so the count is the last seq).
type streamer struct {
	f     *Fanout
	stop  chan struct{}
	done  chan struct{}
	total atomic.Int64

	mu    sync.Mutex
	count map[string]uint64
	err   error
}

func startStreamer(f *Fanout) *streamer {
	s := &streamer{f: f, stop: make(chan struct{}), done: make(chan struct{}), count: map[string]uint64{}}
	go func() {
		defer close(s.done)
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			default:
			}
			dev := testDevices[i%len(testDevices)]
			if err := f.Publish(dev, testPoints(dev, i)); err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			s.count[dev]++
			s.mu.Unlock()
			s.total.Add(1)
			if i%len(testDevices) == 0 {
				// Pace the stream a little so the test's phases see
				// it move, without flooding the outboxes.
				waitTick()
			}
		}
	}()
	return s
}

// halt stops the stream and returns the last seq per device.
func (s *streamer) halt(t testing.TB) map[string]uint64 {
	t.Helper()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		t.Fatalf("publish: %v", s.err)
	}
	want := map[string]uint64{}
	for d, n := range s.count {
		want[d] = n
	}
	return want
}

// waitFurther waits until the stream has published n more messages.
func (s *streamer) waitFurther(t testing.TB, n int64) {
	t.Helper()
	from := s.total.Load()
	waitFor(t, fmt.Sprintf("%d more messages published", n), func() bool { return s.total.Load() >= from+n })
}

// redundantRig is two mosquitto brokers, each behind a proxy, a publisher
// per broker, one Fanout over both and a subscriber per broker.
type redundantRig struct {
	brokers [2]*mosquitto
	proxies [2]*proxy
	pubs    [2]*Publisher
	cols    [2]*collector
	fanout  *Fanout
}

func newRedundantRig(t *testing.T) *redundantRig {
	r := &redundantRig{}
	seq, err := OpenSequencer(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seq.Close() })
	var sinks []Enqueuer
	for i, name := range []string{"a", "b"} {
		r.brokers[i] = startMosquitto(t, "")
		r.proxies[i] = newProxy(t, r.brokers[i].Addr)
		r.cols[i] = newCollector()
		subscribe(t, r.brokers[i].Addr, r.cols[i], "", "")
		r.pubs[i] = newPublisher(t, brokerConfig(name, r.proxies[i].URL(), t.TempDir()), testLogger(t.Output()))
		runPublisher(t, r.pubs[i])
		sinks = append(sinks, r.pubs[i])
	}
	if r.fanout, err = NewFanout(testInfo, seq, sinks...); err != nil {
		t.Fatal(err)
	}
	return r
}

// takeDown cuts publisher i off its broker, makes sure the subscriber has
// everything the broker accepted until then, and kills the broker.
func (r *redundantRig) takeDown(t *testing.T, i int) {
	t.Helper()
	logf(t, "take down %s: block", r.pubs[i].Name())
	r.proxies[i].Block()
	// Anything the broker acknowledged was processed before the marker,
	// so the subscriber has it once the marker is in: what is lost with
	// the broker was never acknowledged and is still in the outbox.
	marker(t, r.brokers[i].Addr, r.cols[i], fmt.Sprintf("down-%d-%d", i, r.pubs[i].Stats().Epoch))
	logf(t, "take down %s: marker received, kill", r.pubs[i].Name())
	r.brokers[i].Kill()
	logf(t, "take down %s: killed", r.pubs[i].Name())
	waitFor(t, "publisher "+r.pubs[i].Name()+" to notice", func() bool { return !r.pubs[i].Stats().Connected })
	logf(t, "take down %s: done", r.pubs[i].Name())
}

// bringUp restarts broker i, resubscribes and lets the publisher through.
func (r *redundantRig) bringUp(t *testing.T, i int) {
	t.Helper()
	logf(t, "bring up %s: restart", r.pubs[i].Name())
	r.brokers[i].Restart() // same port; persistence false: no sessions
	logf(t, "bring up %s: subscribe", r.pubs[i].Name())
	subscribe(t, r.brokers[i].Addr, r.cols[i], "", "")
	r.proxies[i].Pass()
	logf(t, "bring up %s: passing", r.pubs[i].Name())
}

func (r *redundantRig) finish(t *testing.T, s *streamer) {
	t.Helper()
	want := s.halt(t)
	logf(t, "stream halted")
	for i := range r.cols {
		waitFor(t, fmt.Sprintf("broker %s to receive everything", r.pubs[i].Name()), func() bool { return r.cols[i].complete(want) })
		waitFor(t, fmt.Sprintf("outbox %s to drain", r.pubs[i].Name()), func() bool { return r.pubs[i].Stats().Outbox.Depth == 0 })
	}
	for i, c := range r.cols {
		dups := c.check(t, "broker "+r.pubs[i].Name(), want)
		st := r.pubs[i].Stats()
		t.Logf("broker %s: want %v, duplicates %d; connects %d, disconnects %d, sent %d, acked %d, untrusted %d, latency p50 %v p99 %v",
			st.Name, want, dups, st.Connects, st.Disconnects, st.Sent, st.Acked, st.Untrusted, st.Latency.P50, st.Latency.P99)
		if s, ok := c.lastStatus(); !ok || s.State != StateOnline {
			t.Errorf("broker %s: last status %+v, want online", st.Name, s)
		}
	}
}

func TestRedundantBrokersIntegration(t *testing.T) {
	t.Run("one broker down", func(t *testing.T) {
		r := newRedundantRig(t)
		s := startStreamer(r.fanout)
		waitFor(t, "both subscribers to receive the stream", func() bool {
			return r.cols[0].max("crac-1") >= 30 && r.cols[1].max("crac-1") >= 30
		})
		logf(t, "stream flowing")

		r.takeDown(t, 0)
		// B keeps receiving while A is dead; A's outbox fills.
		before := r.cols[1].max("ups-a")
		s.waitFurther(t, 600)
		waitFor(t, "broker b to keep receiving", func() bool { return r.cols[1].max("ups-a") >= before+100 })
		if d := r.pubs[0].Stats().Outbox.Depth; d < 600 {
			t.Errorf("outbox a holds %d messages while its broker is down, want at least 600", d)
		}
		if r.pubs[1].Stats().Disconnects != 0 {
			t.Errorf("broker b was disconnected while only a was down")
		}

		r.bringUp(t, 0)
		s.waitFurther(t, 300) // new messages while A catches up
		r.finish(t, s)
	})

	t.Run("both brokers down", func(t *testing.T) {
		r := newRedundantRig(t)
		s := startStreamer(r.fanout)
		waitFor(t, "both subscribers to receive the stream", func() bool {
			return r.cols[0].max("crac-1") >= 30 && r.cols[1].max("crac-1") >= 30
		})
		logf(t, "stream flowing")

		r.takeDown(t, 0)
		r.takeDown(t, 1)
		s.waitFurther(t, 600)
		for _, p := range r.pubs {
			if d := p.Stats().Outbox.Depth; d < 600 {
				t.Errorf("outbox %s holds %d messages while its broker is down, want at least 600", p.Name(), d)
			}
		}

		r.bringUp(t, 0)
		r.bringUp(t, 1)
		s.waitFurther(t, 300)
		r.finish(t, s)
	})
}

// TestAuthTLSIntegration runs mosquitto with a password file, a plain and
// a TLS listener. Refused credentials and an untrusted certificate must be
// clear errors in Stats and the log, retried with backoff, with the
// messages kept; the right ones deliver them.
func TestAuthTLSIntegration(t *testing.T) {
	testpeer.Require(t, "mosquitto", "/usr/sbin/mosquitto", "/usr/bin/mosquitto_passwd")
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	if out, err := exec.Command("/usr/bin/mosquitto_passwd", "-b", "-c", pwFile, "facgw", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	ca := newCA(t, "facgw test CA")
	certPEM, keyPEM := ca.serverCert(t)
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	otherCA := writeFile(t, dir, "other-ca.pem", newCA(t, "someone else's CA").pem)
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	_, tlsPort, _ := strings.Cut(tlsAddr, ":")
	b := startMosquitto(t, fmt.Sprintf(`allow_anonymous false
password_file %s
listener %s 127.0.0.1
cafile %s
certfile %s
keyfile %s
`, pwFile, tlsPort, caFile, writeFile(t, dir, "server.pem", certPEM), writeFile(t, dir, "server.key", keyPEM)), tlsAddr)

	col := newCollector()
	subscribe(t, b.Addr, col, "facgw", "s3cret")

	// try runs a publisher with cfg over the same outbox; with wantErr it
	// waits for two failed attempts (a retry) and checks the error, else
	// for the outbox to drain.
	outDir := t.TempDir()
	next := 0
	try := func(t *testing.T, cfg BrokerConfig, wantErr []string) {
		logs := &syncBuffer{}
		cfg.Outbox.Dir = outDir
		p := newPublisher(t, cfg, testLogger(logs))
		defer p.Close()
		for range 5 {
			next++
			dev := testDevices[0]
			if _, err := p.Enqueue(outboxMessage(dev, next)); err != nil {
				t.Fatal(err)
			}
		}
		depth := p.Stats().Outbox.Depth
		done := make(chan error, 1)
		go func() { done <- p.Run(t.Context()) }()
		defer func() {
			p.Close()
			<-done
		}()
		if wantErr == nil {
			waitFor(t, "outbox to drain", func() bool { return p.Stats().Outbox.Depth == 0 })
			waitFor(t, "subscriber to receive", func() bool { return col.max(testDevices[0]) >= uint64(next) })
			return
		}
		waitFor(t, "two failed connects", func() bool { return p.Stats().ConnectFailures >= 2 })
		st := p.Stats()
		lower := strings.ToLower(st.LastError)
		found := false
		for _, w := range wantErr {
			found = found || strings.Contains(lower, w)
		}
		if !found {
			t.Errorf("LastError %q, want one of %q", st.LastError, wantErr)
		}
		if !strings.Contains(strings.ToLower(logs.String()), wantErr[0]) && !strings.Contains(strings.ToLower(logs.String()), wantErr[len(wantErr)-1]) {
			t.Errorf("log lacks the error:\n%s", logs)
		}
		if st.Connected || st.Connects != 0 {
			t.Errorf("connected (%d connects) with bad credentials", st.Connects)
		}
		if st.Outbox.Depth != depth {
			t.Errorf("outbox depth %d after failed connects, want %d (messages kept)", st.Outbox.Depth, depth)
		}
		t.Logf("LastError: %s", st.LastError)
	}

	t.Run("wrong password", func(t *testing.T) {
		cfg := brokerConfig("auth", "tcp://"+b.Addr, "")
		cfg.Username, cfg.Password = "facgw", "wrong"
		try(t, cfg, []string{"not authorized", "bad user name or password"})
	})
	t.Run("right password", func(t *testing.T) {
		cfg := brokerConfig("auth", "tcp://"+b.Addr, "")
		cfg.Username, cfg.Password = "facgw", "s3cret"
		try(t, cfg, nil)
	})
	t.Run("untrusted CA", func(t *testing.T) {
		cfg := brokerConfig("tls", "ssl://"+tlsAddr, "")
		cfg.Username, cfg.Password = "facgw", "s3cret"
		cfg.TLS = &TLSConfig{CAFile: otherCA}
		try(t, cfg, []string{"certificate not trusted", "unknown authority"})
	})
	t.Run("trusted CA", func(t *testing.T) {
		cfg := brokerConfig("tls", "ssl://"+tlsAddr, "")
		cfg.Username, cfg.Password = "facgw", "s3cret"
		cfg.TLS = &TLSConfig{CAFile: caFile}
		try(t, cfg, nil)
	})
	if !t.Failed() {
		col.check(t, "auth broker", map[string]uint64{testDevices[0]: uint64(next)})
	}
}

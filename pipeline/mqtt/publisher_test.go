package mqtt

import (
	"errors"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func startEmbedded(t *testing.T) *EmbeddedBroker {
	t.Helper()
	b, err := StartEmbeddedBroker("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestPublisherRestartKeepsOutbox closes a publisher that could not reach
// its broker, with messages in its outbox, and opens it again: the
// messages are delivered, in order.
func TestPublisherRestartKeepsOutbox(t *testing.T) {
	b := startEmbedded(t)
	px := newProxy(t, b.Addr())
	px.Block()
	dir := t.TempDir()
	cfg := brokerConfig("embedded", px.URL(), dir)

	p := newPublisher(t, cfg, testLogger(t.Output()))
	done := make(chan error, 1)
	go func() { done <- p.Run(t.Context()) }()
	t.Cleanup(func() { p.Close() }) // on a failure; Close is idempotent
	const n = 200
	want := map[string]uint64{}
	for i := 1; i <= n; i++ {
		dev := testDevices[i%len(testDevices)]
		want[dev]++
		if _, err := p.Enqueue(outboxMessage(dev, int(want[dev]))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a failed connect", func() bool { return p.Stats().ConnectFailures >= 1 })
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := p.Enqueue(outboxMessage("ups-a", 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Close: got %v, want ErrClosed", err)
	}
	if err := p.Run(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: got %v, want ErrClosed", err)
	}

	col := newCollector()
	subscribe(t, b.Addr(), col, "", "")
	px.Pass()
	p = newPublisher(t, cfg, testLogger(t.Output()))
	if d := p.Stats().Outbox.Depth; d != n {
		t.Fatalf("reopened outbox holds %d messages, want %d", d, n)
	}
	runPublisher(t, p)
	waitFor(t, "delivery after reopening", func() bool { return col.complete(want) })
	col.check(t, "embedded", want)
	waitFor(t, "outbox to drain", func() bool { return p.Stats().Outbox.Depth == 0 })
}

// TestPublisherStatusAndWill checks the status contract: online on
// connect, the retained offline will when the connection dies, online
// again on reconnect, offline on a clean Close.
func TestPublisherStatusAndWill(t *testing.T) {
	b := startEmbedded(t)
	px := newProxy(t, b.Addr())
	col := newCollector()
	subscribe(t, b.Addr(), col, "", "")
	p := newPublisher(t, brokerConfig("embedded", px.URL(), t.TempDir()), testLogger(t.Output()))
	done := make(chan error, 1)
	go func() { done <- p.Run(t.Context()) }()
	t.Cleanup(func() {
		p.Close()
		<-done
	})

	states := func() string {
		col.mu.Lock()
		defer col.mu.Unlock()
		var s []string
		for _, st := range col.status {
			s = append(s, st.State)
		}
		return strings.Join(s, ",")
	}
	want := func(w string) func() bool {
		return func() bool {
			got := states()
			if len(got) > len(w) || !strings.HasPrefix(w, got) {
				t.Fatalf("status messages %q, want %q", got, w)
			}
			return got == w
		}
	}
	waitFor(t, "online", want("online"))
	px.Block()
	waitFor(t, "the will", want("online,offline"))
	px.Pass()
	waitFor(t, "online again", want("online,offline,online"))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "offline on close", want("online,offline,online,offline"))
	st, _ := col.lastStatus()
	if st.Gateway != "gw-1" || st.Site != "pangyo-b3" || st.Version != "test" || !st.Started.Equal(testInfo.Started) {
		t.Errorf("status %+v", st)
	}

	// A late subscriber gets the retained offline status.
	late := newCollector()
	subscribe(t, b.Addr(), late, "", "")
	waitFor(t, "retained status", func() bool {
		late.mu.Lock()
		defer late.mu.Unlock()
		return late.retained != nil
	})
	late.mu.Lock()
	defer late.mu.Unlock()
	if late.retained.State != StateOffline {
		t.Errorf("retained status %q, want offline", late.retained.State)
	}
}

// fakeToken and fakeClient let settle be tested against the completions
// paho produces around a connection loss (#563).
type fakeToken struct {
	done chan struct{}
	err  error
}

func (f *fakeToken) Wait() bool                     { <-f.done; return true }
func (f *fakeToken) WaitTimeout(time.Duration) bool { return true }
func (f *fakeToken) Done() <-chan struct{}          { return f.done }
func (f *fakeToken) Error() error                   { return f.err }
func completed(err error) *fakeToken {
	d := make(chan struct{})
	close(d)
	return &fakeToken{done: d, err: err}
}

type fakeClient struct {
	paho.Client
	open bool
}

func (f *fakeClient) IsConnectionOpen() bool { return f.open }

func TestSettleTrustsOnlyLiveCompletions(t *testing.T) {
	p := newPublisher(t, brokerConfig("fake", "tcp://127.0.0.1:1", t.TempDir()), nil)
	defer p.Close()
	for i := 1; i <= 5; i++ {
		if _, err := p.Enqueue(outboxMessage("ups-a", i)); err != nil {
			t.Fatal(err)
		}
	}
	epoch := p.epoch.Add(1)
	live := &conn{epoch: epoch, client: &fakeClient{open: true}, lost: make(chan struct{})}
	lost := &conn{epoch: epoch, client: &fakeClient{open: true}, lost: make(chan struct{})}
	lost.lose(errors.New("EOF"))
	closed := &conn{epoch: epoch, client: &fakeClient{open: false}, lost: make(chan struct{})}
	old := &conn{epoch: epoch - 1, client: &fakeClient{open: true}, lost: make(chan struct{})}

	tests := []struct {
		name    string
		c       *conn
		tok     *fakeToken
		seq     uint64
		trusted bool
	}{
		{"puback on live connection", live, completed(nil), 1, true},
		{"error completion", live, completed(errors.New("connection lost before Publish completed")), 2, false},
		{"nil-error completion after loss", lost, completed(nil), 3, false},
		{"nil-error completion, connection closed", closed, completed(nil), 4, false},
		{"completion from an old epoch", old, completed(nil), 5, false},
	}
	for _, tt := range tests {
		before := p.Stats().Outbox.Depth
		err := p.settle(tt.c, &flight{seq: tt.seq, tok: tt.tok, sent: time.Now(), ready: tt.tok.done})
		after := p.Stats().Outbox.Depth
		if tt.trusted && (err != nil || after != before-1) {
			t.Errorf("%s: err %v, depth %d -> %d; want the message acknowledged", tt.name, err, before, after)
		}
		if !tt.trusted && (err == nil || after != before) {
			t.Errorf("%s: err %v, depth %d -> %d; want an error and the message kept", tt.name, err, before, after)
		}
	}
	if u := p.Stats().Untrusted; u != 3 {
		t.Errorf("untrusted %d, want 3", u)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		mod  func(*BrokerConfig)
		want string
	}{
		{"bad scheme", func(c *BrokerConfig) { c.URL = "http://127.0.0.1:1883" }, "scheme"},
		{"no port", func(c *BrokerConfig) { c.URL = "tcp://127.0.0.1" }, "host:port"},
		{"tls on tcp", func(c *BrokerConfig) { c.TLS = &TLSConfig{} }, "tls settings"},
		{"missing CA file", func(c *BrokerConfig) { c.URL = "ssl://127.0.0.1:8883"; c.TLS = &TLSConfig{CAFile: dir + "/nope.pem"} }, "ca_file"},
		{"cert without key", func(c *BrokerConfig) { c.URL = "ssl://127.0.0.1:8883"; c.TLS = &TLSConfig{CertFile: "x"} }, "go together"},
		{"no outbox dir", func(c *BrokerConfig) { c.Outbox.Dir = "" }, "outbox dir"},
		{"window too large", func(c *BrokerConfig) { c.InFlight = MaxInFlight + 1 }, "in_flight"},
	}
	for _, tt := range tests {
		cfg := brokerConfig("x", "tcp://127.0.0.1:1883", dir)
		tt.mod(&cfg)
		_, err := New(cfg, testInfo, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error about %q", tt.name, err, tt.want)
		}
	}
	if _, err := New(brokerConfig("x", "tcp://127.0.0.1:1883", dir), StatusInfo{Site: "a/b", Gateway: "g"}, nil); err == nil {
		t.Error("site with '/' accepted")
	}
}

func TestEmbeddedBrokerLoopbackOnly(t *testing.T) {
	if _, err := StartEmbeddedBroker("0.0.0.0:0", nil); err == nil {
		t.Error("embedded broker accepted a non-loopback address")
	}
	b := startEmbedded(t)
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") || strings.HasSuffix(b.Addr(), ":0") {
		t.Errorf("Addr %q, want the actual loopback port", b.Addr())
	}
}

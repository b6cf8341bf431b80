package mqtt

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facgw/facgw/internal/alert"
)

func testEvent(id string, kind alert.Kind, state alert.State, seq uint64) alert.Event {
	at := time.Date(2026, 11, 26, 19, 0, 0, 0, time.UTC)
	return alert.Event{ID: id, Seq: seq, Kind: kind, State: state, Rule: "fire/liion-offgas", Class: "fire",
		Severity: alert.Critical, Device: "bms-1", Site: testInfo.Site, Gateway: testInfo.Gateway,
		Summary: "off-gas on bms-1", ActiveAt: at, FiredAt: at, At: at.Add(time.Duration(seq) * time.Second)}
}

func TestAlertMessages(t *testing.T) {
	tp := testInfo.Topics()
	firing := alertMessages(tp, testEvent("e1", alert.KindFiring, alert.Firing, 1))
	resolved := alertMessages(tp, testEvent("e1", alert.KindResolved, alert.Resolved, 2))
	tests := []struct {
		name      string
		got, want any
	}{
		{"stream topic", firing[0].Topic, "facgw/pangyo-b3/gw-1/alerts/events"},
		{"stream not retained", firing[0].Retain, false},
		{"active topic", firing[1].Topic, "facgw/pangyo-b3/gw-1/alerts/active/e1"},
		{"active retained", firing[1].Retain, true},
		{"active carries the event", string(firing[1].Payload), string(firing[0].Payload)},
		{"resolved clears the retained message", len(resolved[1].Payload), 0},
		{"resolved still retained (that is how a retained message is deleted)", resolved[1].Retain, true},
		{"resolved on the stream", strings.Contains(string(resolved[0].Payload), `"kind":"resolved"`), true},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestAlertPathIntegration sends a firing and a resolved event through two
// real brokers, one of them down while the events are queued.
func TestAlertPathIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	a := startMosquitto(t, "")
	b := startMosquitto(t, "")
	log := testLogger(&syncBuffer{})
	dir := t.TempDir()
	pa := newPublisher(t, brokerConfig("a", a.URL(), filepath.Join(dir, "a")), log)
	// b is reached through a proxy, so the test lets it reconnect only once
	// its own subscriber is in place (the event stream is not retained).
	px := newProxy(t, b.Addr)
	pb := newPublisher(t, brokerConfig("b", px.URL(), filepath.Join(dir, "b")), log)
	runPublisher(t, pa)
	runPublisher(t, pb)
	path, err := NewAlertPath(testInfo, pa, pb)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both brokers connected", func() bool { return pa.Stats().Connected && pb.Stats().Connected })
	if h := path.Health(); !h.Up {
		t.Fatalf("got health %+v, want up", h)
	}

	ca := watchAlerts(t, a.Addr)
	b.Kill()
	waitFor(t, "broker b seen down", func() bool { return !pb.Stats().Connected })
	if err := path.Enqueue(testEvent("e1", alert.KindFiring, alert.Firing, 1)); err != nil {
		t.Fatal(err)
	}
	if h := path.Health(); !h.Up || h.Brokers["b"] == "connected" || h.Depth == 0 {
		t.Errorf("got health %+v, want up (a), b not connected, b's outbox holding the alert", h)
	}
	waitFor(t, "firing event on broker a", func() bool { return ca.has("events", `"kind":"firing"`) && ca.has("active/e1", `"state":"firing"`) })

	px.Block()
	b.Restart()
	cb := watchAlerts(t, b.Addr)
	px.Pass()
	waitFor(t, "firing event on broker b after its restart", func() bool { return cb.has("events", `"kind":"firing"`) })
	waitFor(t, "retained active alert on broker b", func() bool { return cb.has("active/e1", `"id":"e1"`) })

	if err := path.Enqueue(testEvent("e1", alert.KindResolved, alert.Resolved, 2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "resolved event on both", func() bool {
		return ca.has("events", `"kind":"resolved"`) && cb.has("events", `"kind":"resolved"`)
	})
	// A late subscriber finds no retained active alert once it resolved.
	waitFor(t, "broker a acknowledged the clear", func() bool { return pa.Stats().Outbox.Depth == 0 })
	late := watchAlerts(t, a.Addr)
	late.settle()
	if late.has("active/e1", "") {
		t.Errorf("got a retained active alert after it resolved: %v", late.msgs)
	}
}

// alertWatch records alert messages from one broker.
type alertWatch struct {
	mu   sync.Mutex
	msgs []string // "suffix|payload"
	c    paho.Client
}

func watchAlerts(t *testing.T, addr string) *alertWatch {
	t.Helper()
	w := &alertWatch{}
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("watch-" + t.Name() + time.Now().Format("150405.000000"))
	w.c = paho.NewClient(opts)
	if tok := w.c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", addr, tok.Error())
	}
	base := testInfo.Topics().Alerts() + "/"
	tok := w.c.Subscribe(base+"#", 1, func(_ paho.Client, m paho.Message) {
		if len(m.Payload()) == 0 {
			return // a clear of a retained message
		}
		w.mu.Lock()
		w.msgs = append(w.msgs, strings.TrimPrefix(m.Topic(), base)+"|"+string(m.Payload()))
		w.mu.Unlock()
	})
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { w.c.Disconnect(0) })
	return w
}

func (w *alertWatch) has(topic, substr string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.msgs {
		if strings.HasPrefix(m, topic+"|") && strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

// settle waits for a round trip through the broker, so retained messages
// delivered on subscribe have arrived.
func (w *alertWatch) settle() {
	tok := w.c.Publish(testInfo.Topics().Alerts()+"/settle", 1, false, "x")
	tok.WaitTimeout(20 * time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for !w.has("settle", "x") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

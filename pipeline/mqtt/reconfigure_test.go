package mqtt

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facgw/facgw/internal/alert"
)

// TestReconfigureMovesOutboxToNewBroker: a publisher whose broker is gone
// is pointed at another broker while it runs; what waited in its outbox
// reaches the new broker, in order, and later messages follow it.
func TestReconfigureMovesOutboxToNewBroker(t *testing.T) {
	a := startMosquitto(t, "")
	b := startMosquitto(t, "")
	ca, cb := newCollector(), newCollector()
	subscribe(t, a.Addr, ca, "", "")
	subscribe(t, b.Addr, cb, "", "")
	dir := filepath.Join(t.TempDir(), "ob")
	p := newPublisher(t, brokerConfig("main", a.URL(), dir), nil)
	runPublisher(t, p)
	for i := 1; i <= 5; i++ {
		if _, err := p.Enqueue(outboxMessage("ups-1", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "seq 1..5 on broker a", func() bool { return ca.complete(map[string]uint64{"ups-1": 5}) })
	a.Kill()
	for i := 6; i <= 20; i++ {
		if _, err := p.Enqueue(outboxMessage("ups-1", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Reconfigure(brokerConfig("main", b.URL(), dir)); err != nil {
		t.Fatalf("reconfigure: %v", err)
	}
	for i := 21; i <= 30; i++ {
		if _, err := p.Enqueue(outboxMessage("ups-1", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "seq 6..30 on broker b", func() bool { return cb.max("ups-1") == 30 })
	cb.mu.Lock()
	got := append([]uint64(nil), cb.seqs["ups-1"]...)
	cb.mu.Unlock()
	if got[0] != 6 {
		t.Errorf("broker b's first seq: got %d, want 6 (the first one broker a never acknowledged)", got[0])
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Errorf("broker b: seq %d after %d: want in order, no gap", got[i], got[i-1])
			break
		}
	}
	if s := p.Stats(); s.URL != b.URL() || s.Outbox.Depth != 0 {
		t.Errorf("stats after moving: url %s depth %d; want %s and an empty outbox", s.URL, s.Outbox.Depth, b.URL())
	}
}

// TestReconfigureRefusesBadSettings: invalid settings and a rename change
// nothing; the publisher keeps delivering where it did.
func TestReconfigureRefusesBadSettings(t *testing.T) {
	a := startMosquitto(t, "")
	ca := newCollector()
	subscribe(t, a.Addr, ca, "", "")
	dir := filepath.Join(t.TempDir(), "ob")
	p := newPublisher(t, brokerConfig("main", a.URL(), dir), nil)
	runPublisher(t, p)
	for _, tc := range []struct {
		cfg  BrokerConfig
		want string
	}{
		{brokerConfig("main", "http://127.0.0.1:1883", dir), "scheme"},
		{brokerConfig("main", "tcp://127.0.0.1", dir), "host:port"},
		{brokerConfig("other", a.URL(), dir), "rename"},
	} {
		if err := p.Reconfigure(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("reconfigure %s %s: got %v, want an error about %s", tc.cfg.Name, tc.cfg.URL, err, tc.want)
		}
	}
	if _, err := p.Enqueue(outboxMessage("ups-1", 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "seq 1 on the unchanged broker", func() bool { return ca.complete(map[string]uint64{"ups-1": 1}) })
}

// TestFanoutSetSinks: after SetSinks, a removed sink gets nothing more
// and an added one gets the next polls, numbered on from the others.
func TestFanoutSetSinks(t *testing.T) {
	a, b := &sink{}, &sink{}
	f := newFanout(t, a)
	for i := range 3 {
		if err := f.Publish("ups-1", testPoints("ups-1", i)); err != nil {
			t.Fatal(err)
		}
	}
	f.SetSinks(b)
	for i := 3; i < 5; i++ {
		if err := f.Publish("ups-1", testPoints("ups-1", i)); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(s *sink) []uint64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		var out []uint64
		for _, m := range s.msgs {
			var tm Telemetry
			if m.Retain {
				continue
			}
			if err := json.Unmarshal(m.Payload, &tm); err != nil {
				t.Fatal(err)
			}
			out = append(out, tm.Seq)
		}
		return out
	}
	gotA, gotB := seqs(a), seqs(b)
	if len(gotA) != 3 {
		t.Errorf("removed sink: got seqs %v, want the 3 polls before SetSinks only", gotA)
	}
	if len(gotB) != 2 || len(gotA) == 3 && gotB[0] != gotA[2]+1 {
		t.Errorf("added sink: got seqs %v, want the 2 polls after SetSinks, numbered on from %v", gotB, gotA)
	}
}

// TestAlertPathSetPublishersAnnounces: a broker added to the alert path
// first gets the alerts firing now, then new events; a broker already in
// it gets nothing twice.
func TestAlertPathSetPublishersAnnounces(t *testing.T) {
	pa := newPublisher(t, brokerConfig("a", "tcp://127.0.0.1:1", filepath.Join(t.TempDir(), "a")), nil)
	pb := newPublisher(t, brokerConfig("b", "tcp://127.0.0.1:1", filepath.Join(t.TempDir(), "b")), nil)
	t.Cleanup(func() { _ = pa.Close(); _ = pb.Close() })
	ap, err := NewAlertPath(testInfo, pa)
	if err != nil {
		t.Fatal(err)
	}
	firing := alert.Event{ID: "ep1", Seq: 1, Rule: "fire/x", State: alert.Firing, Kind: alert.KindFiring, Severity: alert.Critical}
	if err := ap.Enqueue(firing); err != nil {
		t.Fatal(err)
	}
	if err := ap.SetPublishers(func() Snapshot { return Snapshot{Active: []alert.Event{firing}, Resolved: []string{"ep0"}} }, pa, pb); err != nil {
		t.Fatal(err)
	}
	if d := pa.Stats().Outbox.Depth; d != 2 {
		t.Errorf("broker already on the path: %d messages queued, want 2 (the event once)", d)
	}
	if d := pb.Stats().Outbox.Depth; d != 3 {
		t.Errorf("added broker: %d messages queued, want 3 (ep0's retained message cleared, the firing alert's stream and retained messages)", d)
	}
	msgs, err := pb.ob.Peek(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || !msgs[0].Retain || len(msgs[0].Payload) != 0 || msgs[0].Topic != testInfo.Topics().AlertActive("ep0") ||
		!msgs[2].Retain || msgs[2].Topic != testInfo.Topics().AlertActive("ep1") {
		t.Errorf("added broker's messages: got %+v, want alerts/active/ep0 cleared, then ep1's event and its retained alerts/active/ep1", msgs)
	}
}

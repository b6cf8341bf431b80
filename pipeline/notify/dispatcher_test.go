package notify

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

func newTestDispatcher(t *testing.T, l *Ledger, c *clock, targets ...Target) *Dispatcher {
	t.Helper()
	return NewDispatcher(l, targets, DispatcherOptions{Site: "pangyo-b3", Gateway: "gw-1", Log: testLog(t), Now: c.now})
}

func TestDispatcherDegradedPath(t *testing.T) {
	c := newClock()
	l := openLedger(t, t.TempDir(), c)
	a, b := newFakeTarget("mqtt"), newFakeTarget("alertmanager")
	d := newTestDispatcher(t, l, c, a, b)

	// Down for less than DegradedAfter: nothing, also after a flap.
	b.setUp(false, "dial tcp 127.0.0.1:9093: connection refused")
	d.tick()
	c.advance(59 * time.Second)
	d.tick()
	b.setUp(true, "")
	d.tick()
	b.setUp(false, "dial tcp 127.0.0.1:9093: connection refused")
	c.advance(time.Second)
	d.tick()
	c.advance(59 * time.Second)
	d.tick()
	if got := a.received(); len(got) != 0 {
		t.Fatalf("events before DegradedAfter of continuous downtime: got %d, want none", len(got))
	}
	since := c.now().Add(-59 * time.Second)

	c.advance(time.Second)
	d.tick()
	got := a.received()
	if len(got) != 1 {
		t.Fatalf("events after DegradedAfter: got %d, want the degraded alert", len(got))
	}
	ev := got[0]
	want := alert.Event{
		ID: alert.EpisodeID(DegradedRule, "alertmanager", since), Seq: 1, Kind: alert.KindFiring, State: alert.Firing,
		Rule: DegradedRule, Class: "gateway", Severity: alert.Major, Group: "alertmanager", Site: "pangyo-b3", Gateway: "gw-1",
		ActiveAt: since, FiredAt: c.now(), At: c.now(),
	}
	if ev.ID != want.ID || ev.Seq != want.Seq || ev.Kind != want.Kind || ev.Rule != want.Rule || ev.Class != want.Class ||
		ev.Severity != want.Severity || ev.Group != want.Group || ev.Site != want.Site || ev.Gateway != want.Gateway ||
		!ev.ActiveAt.Equal(want.ActiveAt) || !ev.FiredAt.Equal(want.FiredAt) {
		t.Errorf("degraded alert: got %+v, want %+v", ev, want)
	}
	if !strings.Contains(ev.Summary, "alertmanager") || !strings.Contains(ev.Summary, "connection refused") {
		t.Errorf("summary: got %q, want the path's name and last error", ev.Summary)
	}
	if got := b.received(); len(got) != 1 || got[0].ID != ev.ID {
		t.Errorf("degraded path's own queue: got %+v, want the alert too (delivered when back)", got)
	}
	if st := d.Stats(); !st.Targets[1].Degraded || !st.Targets[1].Down || st.Targets[0].Degraded {
		t.Errorf("stats: got %+v, want alertmanager down and degraded, mqtt not", st.Targets)
	}

	c.advance(10 * time.Second)
	d.tick()
	if n := len(a.received()); n != 1 {
		t.Errorf("events while still degraded: got %d, want still 1 (no repeat)", n)
	}

	b.setUp(true, "")
	c.advance(time.Second)
	d.tick()
	got = a.received()
	if len(got) != 2 {
		t.Fatalf("events after recovery: got %d, want 2", len(got))
	}
	if r := got[1]; r.ID != ev.ID || r.Kind != alert.KindResolved || r.State != alert.Resolved || !r.ResolvedAt.Equal(c.now()) {
		t.Errorf("resolved: got %+v, want the same episode resolved now", r)
	}
	if len(l.Active()) != 0 {
		t.Errorf("active after recovery: got %+v, want none", l.Active())
	}
}

func TestDispatcherOldBacklogIsDown(t *testing.T) {
	c := newClock()
	l := openLedger(t, t.TempDir(), c)
	a := newFakeTarget("webhook")
	d := newTestDispatcher(t, l, c, a)
	tests := []struct {
		name string
		h    Health
		want bool
	}{
		{"up and empty", Health{Up: true}, false},
		{"up, young backlog", Health{Up: true, Depth: 3, Oldest: t0.Add(-59 * time.Second)}, false},
		{"up, old backlog", Health{Up: true, Depth: 3, Oldest: t0.Add(-61 * time.Second)}, true},
		{"down", Health{Up: false}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.mu.Lock()
			a.h = tt.h
			a.mu.Unlock()
			if got := d.AllDown(); got != tt.want {
				t.Errorf("all down: got %v, want %v", got, tt.want)
			}
		})
	}
	if NewDispatcher(l, nil, DispatcherOptions{}).AllDown() {
		t.Errorf("all down without targets: got true, want false")
	}
}

func TestDispatcherRefusingTargetGetsEventsLaterInOrder(t *testing.T) {
	c := newClock()
	l := openLedger(t, t.TempDir(), c)
	a, b := newFakeTarget("mqtt"), newFakeTarget("webhook")
	d := newTestDispatcher(t, l, c, a, b)
	b.refuse(errors.New("outbox: disk full"))

	e1 := firing("power/ups-on-battery", "ups-1", alert.Major, t0)
	e2 := firing("fire/smoke", "vesda-1", alert.Critical, t0)
	e1.Site, e1.Gateway = "", ""
	r1, err := d.Submit([]alert.Event{e1})
	if err != nil {
		t.Fatal(err)
	}
	if r1[0].Site != "pangyo-b3" || r1[0].Gateway != "gw-1" {
		t.Errorf("stamped site and gateway: got %q %q, want pangyo-b3 gw-1", r1[0].Site, r1[0].Gateway)
	}
	if _, err := d.Submit([]alert.Event{e2}); err != nil {
		t.Fatal(err)
	}
	if got := seqs(a.received()); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Errorf("healthy target: got %v, want 1, 2", got)
	}
	if got := seqs(l.Undispatched()); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Errorf("undispatched while one target refuses: got %v, want 1, 2", got)
	}
	st := d.Stats()
	if st.Targets[1].EnqueueErrors != 2 || st.Targets[0].Enqueued != 2 || st.Undispatched != 2 {
		t.Errorf("stats: got %+v, want 2 refusals on webhook, 2 enqueued on mqtt, 2 undispatched", st)
	}
	// Down while it refuses, even though its destination is fine.
	if down, why := d.isDownLocked(d.targets[1], b.Health(), c.now()); !down || !strings.Contains(why, "disk full") {
		t.Errorf("refusing target: got down %v (%q), want down with the refusal", down, why)
	}

	b.refuse(nil)
	d.tick()
	if got := seqs(b.received()); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Errorf("recovered target: got %v, want 1, 2 in order", got)
	}
	if got := seqs(a.received()); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Errorf("healthy target after the retry: got %v, want 1, 2 (no duplicates)", got)
	}
	if n := len(l.Undispatched()); n != 0 {
		t.Errorf("undispatched: got %d, want 0", n)
	}
}

// TestDispatcherKeepsOrderPerTarget: a target that refuses one event of a
// batch gets neither it nor the later ones until the retry, then all in
// Seq order.
func TestDispatcherKeepsOrderPerTarget(t *testing.T) {
	c := newClock()
	l := openLedger(t, t.TempDir(), c)
	a := newFakeTarget("webhook")
	a.refuseN = 1
	d := newTestDispatcher(t, l, c, a)
	if _, err := d.Submit([]alert.Event{
		firing("power/ups-on-battery", "ups-1", alert.Major, t0),
		firing("power/ups-on-battery", "ups-2", alert.Major, t0),
	}); err != nil {
		t.Fatal(err)
	}
	if got := seqs(a.received()); len(got) != 0 {
		t.Fatalf("after a refusal of seq 1: got %v, want nothing (seq 2 must wait)", got)
	}
	d.tick()
	if got, want := seqs(a.received()), []uint64{1, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("after the retry: got %v, want %v", got, want)
	}
}

// TestDispatcherRedispatchesAfterCrash records events and "crashes" before
// any target got them; after the restart Run hands them to every path, with
// the same IDs and Seqs, and the paths deliver them.
func TestDispatcherRedispatchesAfterCrash(t *testing.T) {
	ledgerDir, amDir, whDir := t.TempDir(), t.TempDir(), t.TempDir()
	c := newClock()
	l := openLedger(t, ledgerDir, c)
	recorded := record(t, l,
		firing("power/ups-on-battery", "ups-1", alert.Major, t0),
		firing("fire/smoke", "vesda-1", alert.Critical, t0))
	l.crash()

	l = openLedger(t, ledgerDir, c)
	am, wh := &fakeSender{}, &fakeSender{}
	pa := newTestPath(t, amDir, am, func(o *PathOptions) { o.Name = "alertmanager" })
	pw := newTestPath(t, whDir, wh, func(o *PathOptions) { o.Name = "webhook" })
	d := NewDispatcher(l, []Target{pa, pw}, DispatcherOptions{Log: testLog(t)})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for _, r := range []interface{ Run(context.Context) error }{pa, pw, d} {
		go r.Run(ctx)
	}
	for _, s := range []*fakeSender{am, wh} {
		waitFor(t, "re-dispatched events delivered", func() bool { return len(s.received()) >= 2 })
		got := s.received()
		for i := range recorded {
			if got[i].ID != recorded[i].ID || got[i].Seq != recorded[i].Seq {
				t.Errorf("delivered %d: got %s seq %d, want %s seq %d", i, got[i].ID, got[i].Seq, recorded[i].ID, recorded[i].Seq)
			}
		}
	}
	waitFor(t, "events marked dispatched", func() bool { return len(l.Undispatched()) == 0 })
}

func TestDispatcherAckAndSilences(t *testing.T) {
	c := newClock()
	l := openLedger(t, t.TempDir(), c)
	a := newFakeTarget("mqtt")
	d := newTestDispatcher(t, l, c, a)
	ev := firing("power/ups-on-battery", "ups-1", alert.Major, t0)
	if _, err := d.Submit([]alert.Event{ev}); err != nil {
		t.Fatal(err)
	}
	c.advance(time.Minute)
	ack, err := d.Ack(ev.ID, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if !ack.Ack.At.Equal(c.now()) {
		t.Errorf("ack time: got %s, want the dispatcher's clock %s", ack.Ack.At, c.now())
	}
	if _, err := d.Ack(ev.ID, "alice", ""); err != nil {
		t.Fatal(err)
	}
	s, _, err := d.AddSilence(Silence{Matchers: Matchers{Device: "ups-1"}, Until: c.now().Add(time.Hour), Reason: "swap", By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.RemoveSilence(s.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	var kinds []alert.Kind
	for _, e := range a.received() {
		kinds = append(kinds, e.Kind)
	}
	want := []alert.Kind{alert.KindFiring, alert.KindAcknowledged, alert.KindSilenced, alert.KindUnsilenced}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("delivered kinds: got %v, want %v (a repeated ack adds nothing)", kinds, want)
	}

	// An expired silence is pruned on a tick.
	if _, _, err := d.AddSilence(Silence{Matchers: Matchers{Device: "ups-1"}, Until: c.now().Add(time.Minute), Reason: "swap", By: "bob"}); err != nil {
		t.Fatal(err)
	}
	c.advance(time.Minute)
	d.tick()
	got := a.received()
	if last := got[len(got)-1]; last.Kind != alert.KindUnsilenced {
		t.Errorf("after expiry: got %s, want unsilenced", last.Kind)
	}
}

func TestDispatcherHoldsEventsWhileLedgerFails(t *testing.T) {
	c := newClock()
	l := openLedger(t, t.TempDir(), c)
	a := newFakeTarget("mqtt")
	d := newTestDispatcher(t, l, c, a)
	l.mu.Lock()
	l.opts.beforeRename = func() error { return errors.New("simulated EIO") }
	l.mu.Unlock()
	e1 := firing("fire/smoke", "vesda-1", alert.Critical, t0)
	if _, err := d.Submit([]alert.Event{e1}); !errors.Is(err, ErrNotPersisted) {
		t.Fatalf("submit while the ledger fails: got %v, want ErrNotPersisted", err)
	}
	d.tick()
	if n := len(a.received()); n != 0 {
		t.Fatalf("delivered while not recorded: got %d, want 0", n)
	}
	if st := d.Stats(); st.Deferred != 1 || st.RecordErrors != 2 {
		t.Errorf("stats: got deferred %d record errors %d, want 1 and 2", st.Deferred, st.RecordErrors)
	}
	l.mu.Lock()
	l.opts.beforeRename = nil
	l.mu.Unlock()
	e2 := firing("power/ups-on-battery", "ups-1", alert.Major, t0)
	rec, err := d.Submit([]alert.Event{e2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) != 2 || rec[0].ID != e1.ID || rec[1].ID != e2.ID {
		t.Errorf("recorded: got %+v, want the held event first, then the new one", rec)
	}
	if got := seqs(a.received()); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Errorf("delivered: got %v, want 1, 2", got)
	}
	if st := d.Stats(); st.Deferred != 0 {
		t.Errorf("deferred: got %d, want 0", st.Deferred)
	}
}

func TestDispatcherResolvesDegradedAlertOfRemovedPath(t *testing.T) {
	c := newClock()
	dir := t.TempDir()
	l := openLedger(t, dir, c)
	old := newFakeTarget("old-webhook")
	kept := newFakeTarget("mqtt")
	d := newTestDispatcher(t, l, c, old, kept)
	old.setUp(false, "timeout")
	kept.setUp(false, "timeout")
	d.tick()
	c.advance(time.Minute)
	d.tick()
	if n := len(l.Active()); n != 2 {
		t.Fatalf("active degraded alerts: got %d, want 2", n)
	}
	l.Close()

	// Restart without old-webhook; mqtt is still down.
	l = openLedger(t, dir, c)
	kept2 := newFakeTarget("mqtt")
	kept2.setUp(false, "timeout")
	d = newTestDispatcher(t, l, c, kept2)
	d.start()
	act := l.Active()
	if len(act) != 1 || act[0].Group != "mqtt" {
		t.Fatalf("active after restart: got %+v, want only mqtt's degraded alert", act)
	}
	got := kept2.received()
	if len(got) != 1 || got[0].Group != "old-webhook" || got[0].Kind != alert.KindResolved {
		t.Errorf("delivered: got %+v, want old-webhook's degraded alert resolved", got)
	}
	// mqtt's episode is taken over: no second firing alert while it stays down.
	c.advance(2 * time.Minute)
	d.tick()
	d.tick()
	if n := len(kept2.received()); n != 1 {
		t.Errorf("events while mqtt stays down: got %d, want still 1", n)
	}
	kept2.setUp(true, "")
	d.tick()
	got = kept2.received()
	if last := got[len(got)-1]; last.Group != "mqtt" || last.Kind != alert.KindResolved || last.ID != act[0].ID {
		t.Errorf("after recovery: got %+v, want mqtt's episode %s resolved", last, act[0].ID)
	}
}

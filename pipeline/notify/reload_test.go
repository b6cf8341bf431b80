package notify

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

// Tests of what a configuration reload does to alert delivery: targets
// added, removed and replaced while the Dispatcher runs, and a Path's
// sender swapped under its outbox.

// TestDispatcherRemoveTargetCompletesEvents: an event only a removed
// target still owed is dispatched at once.
func TestDispatcherRemoveTargetCompletesEvents(t *testing.T) {
	c := newClock()
	l := openLedger(t, t.TempDir(), c)
	a, b := newFakeTarget("mqtt"), newFakeTarget("webhook")
	d := newTestDispatcher(t, l, c, a, b)
	b.refuse(errors.New("disk full"))
	if _, err := d.Submit([]alert.Event{firing("power/ups-on-battery", "ups-1", alert.Major, t0)}); err != nil {
		t.Fatal(err)
	}
	if got := seqs(l.Undispatched()); !reflect.DeepEqual(got, []uint64{1}) {
		t.Fatalf("undispatched while webhook refuses: got %v, want 1", got)
	}
	d.RemoveTarget("webhook")
	if got := seqs(l.Undispatched()); len(got) != 0 {
		t.Errorf("undispatched after removing the only target that owed it: got %v, want none", got)
	}
}

// TestDispatcherRemoveDegradedTarget: removing a degraded target resolves
// its degraded-path alert on the others; it gets nothing more.
func TestDispatcherRemoveDegradedTarget(t *testing.T) {
	c := newClock()
	l := openLedger(t, t.TempDir(), c)
	a, b := newFakeTarget("mqtt"), newFakeTarget("webhook")
	d := newTestDispatcher(t, l, c, a, b)

	b.setUp(false, "dial tcp 127.0.0.1:9: connection refused")
	b.refuse(errors.New("disk full"))
	d.tick()
	c.advance(DefaultDegradedAfter)
	d.tick() // the degraded alert of webhook fires (seq 1), held by mqtt only
	if _, err := d.Submit([]alert.Event{firing("power/ups-on-battery", "ups-1", alert.Major, t0)}); err != nil {
		t.Fatal(err)
	}
	if got := seqs(l.Undispatched()); !reflect.DeepEqual(got, []uint64{1, 2}) {
		t.Fatalf("undispatched while webhook refuses: got %v, want 1, 2", got)
	}

	if !d.RemoveTarget("webhook") {
		t.Fatal("remove webhook: got false, want true")
	}
	if got := seqs(l.Undispatched()); len(got) != 0 {
		t.Errorf("undispatched after removing the only target that owed them: got %v, want none", got)
	}
	got := a.received()
	if len(got) != 3 || got[2].Rule != DegradedRule || got[2].Kind != alert.KindResolved || got[2].Group != "webhook" {
		t.Fatalf("mqtt after the removal: got %+v, want degraded, ups alert, then the degraded alert resolved", got)
	}
	for _, ev := range l.Active() {
		if ev.Rule == DegradedRule {
			t.Errorf("active after the removal: got the degraded alert %s, want it resolved", ev.ID)
		}
	}

	b.refuse(nil)
	if _, err := d.Submit([]alert.Event{firing("power/ups-overload", "ups-1", alert.Major, t0)}); err != nil {
		t.Fatal(err)
	}
	d.tick()
	if n := len(b.received()); n != 0 {
		t.Errorf("removed target: got %d events, want none", n)
	}
	if n := len(a.received()); n != 4 {
		t.Errorf("remaining target: got %d events, want 4", n)
	}
	if h := d.Health(); len(h) != 1 || h[0].Name != "mqtt" {
		t.Errorf("health: got %+v, want mqtt only", h)
	}
	if st := d.Stats(); len(st.Targets) != 1 || st.Targets[0].Name != "mqtt" {
		t.Errorf("stats: got %+v, want mqtt only", st.Targets)
	}
	if d.RemoveTarget("webhook") {
		t.Errorf("remove webhook twice: got true, want false")
	}
	// The last target gone: nothing is owed to anyone.
	d.RemoveTarget("mqtt")
	if _, err := d.Submit([]alert.Event{firing("power/ups-overload", "ups-2", alert.Major, t0)}); err != nil {
		t.Fatal(err)
	}
	if got := seqs(l.Undispatched()); len(got) != 0 {
		t.Errorf("undispatched without targets: got %v, want none", got)
	}
	if d.AllDown() {
		t.Errorf("all down without targets: got true, want false")
	}
}

// TestDispatcherAddTargetGetsActiveThenNew: an added target first gets
// the episodes firing now (in Seq order), then every new event; events
// recorded before it are not owed to it, but none is marked dispatched
// before it holds the firing episodes.
func TestDispatcherAddTargetGetsActiveThenNew(t *testing.T) {
	c := newClock()
	l := openLedger(t, t.TempDir(), c)
	a := newFakeTarget("mqtt")
	d := newTestDispatcher(t, l, c, a)

	x := firing("power/ups-on-battery", "ups-1", alert.Major, t0)
	y := firing("cooling/crac-high-supply", "crac-1", alert.Critical, t0)
	z := firing("fire/liion-offgas-alarm", "bms-rack1", alert.Critical, t0)
	if _, err := d.Submit([]alert.Event{x, y}); err != nil { // seqs 1, 2
		t.Fatal(err)
	}
	a.refuse(errors.New("disk full"))
	if _, err := d.Submit([]alert.Event{resolved(y, t0.Add(time.Minute)), z}); err != nil { // seqs 3, 4
		t.Fatal(err)
	}

	n := newFakeTarget("webhook")
	n.refuse(errors.New("disk full"))
	if err := d.AddTarget(n); err != nil {
		t.Fatal(err)
	}
	if err := d.AddTarget(newFakeTarget("webhook")); err == nil {
		t.Errorf("add a second target named webhook: got nil, want an error")
	}
	a.refuse(nil)
	d.tick()
	if got := seqs(a.received()); !reflect.DeepEqual(got, []uint64{1, 2, 3, 4}) {
		t.Fatalf("mqtt: got %v, want 1..4", got)
	}
	// mqtt has 3 and 4; the new target has not the firing episodes yet.
	if got := seqs(l.Undispatched()); !reflect.DeepEqual(got, []uint64{3, 4}) {
		t.Errorf("undispatched before the new target holds the active episodes: got %v, want 3, 4", got)
	}

	n.refuse(nil)
	d.tick()
	if got := seqs(l.Undispatched()); len(got) != 0 {
		t.Errorf("undispatched once the new target holds the active episodes: got %v, want none", got)
	}
	if _, err := d.Submit([]alert.Event{resolved(x, t0.Add(2*time.Minute))}); err != nil { // seq 5
		t.Fatal(err)
	}
	got := n.received()
	want := []struct {
		seq  uint64
		id   string
		kind alert.Kind
	}{{1, x.ID, alert.KindFiring}, {4, z.ID, alert.KindFiring}, {5, x.ID, alert.KindResolved}}
	if len(got) != len(want) {
		t.Fatalf("new target: got seqs %v, want 1 (x), 4 (z), 5 (x resolved)", seqs(got))
	}
	for i, w := range want {
		if got[i].Seq != w.seq || got[i].ID != w.id || got[i].Kind != w.kind {
			t.Errorf("new target event %d: got seq %d %s %s, want seq %d %s %s", i, got[i].Seq, got[i].ID, got[i].Kind, w.seq, w.id, w.kind)
		}
	}
	if h := d.Health(); len(h) != 2 || h[1].Name != "webhook" {
		t.Errorf("health: got %+v, want mqtt then webhook", h)
	}
}

// TestDispatcherTargetsChangeWhileRunning adds, removes and replaces
// targets while Run ticks, events are submitted and health is read (run
// with -race). A target present throughout gets every event once, in
// order; an added one gets strictly increasing seqs; nothing stays
// undispatched.
func TestDispatcherTargetsChangeWhileRunning(t *testing.T) {
	l, err := OpenLedgerWith(LedgerOptions{Dir: t.TempDir(), Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	keep := newFakeTarget("mqtt")
	d := NewDispatcher(l, []Target{keep}, DispatcherOptions{Site: "pangyo-b3", Gateway: "gw-1", Log: testLog(t)})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.Run(ctx) })
	stopReaders := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stopReaders:
				return
			default:
			}
			_ = d.Health()
			_ = d.AllDown()
			_ = d.Stats()
		}
	})

	const events = 200
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		for i := range events {
			ev := firing("power/ups-on-battery", fmt.Sprintf("ups-%d", i), alert.Major, t0)
			if _, err := d.Submit([]alert.Event{ev}); err != nil {
				t.Errorf("submit %d: %v", i, err)
				return
			}
		}
	}()
	var added []*fakeTarget
	for i := 0; ; i++ {
		select {
		case <-submitted:
		default:
			name := fmt.Sprintf("path-%d", i%4)
			if d.RemoveTarget(name) {
				continue
			}
			f := newFakeTarget(name)
			if err := d.AddTarget(f); err != nil {
				t.Fatal(err)
			}
			added = append(added, f)
			if i%3 == 0 {
				// Replaced by a target over the same queue: it takes
				// over what the first took.
				if err := d.ReplaceTarget(sameQueue{f}); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		break
	}
	waitFor(t, "every event dispatched", func() bool { return len(l.Undispatched()) == 0 })
	close(stopReaders)
	cancel()
	wg.Wait()

	got := seqs(keep.received())
	if len(got) != events {
		t.Fatalf("target present throughout: got %d events, want %d", len(got), events)
	}
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("target present throughout: event %d has seq %d, want %d", i, s, i+1)
		}
	}
	for _, f := range added {
		if got := seqs(f.received()); !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Errorf("added target %s: got seqs %v, want strictly increasing", f.name, got)
		}
	}
}

// sameQueue is another Target over a fakeTarget's queue, as a rebuilt
// target over the same outboxes would be.
type sameQueue struct{ *fakeTarget }

// TestPathSetSenderDeliversQueued: the destination is down, alerts wait
// in the outbox; SetSender sends them, in order, to the new destination
// at once, without waiting out the old one's backoff or a call hanging on
// it.
func TestPathSetSenderDeliversQueued(t *testing.T) {
	tests := []struct {
		name string
		old  Sender
	}{
		{"old destination refuses", &fakeSender{failN: 1 << 30, retryable: true}},
		{"old destination hangs", &hangingSender{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPath(t, t.TempDir(), tt.old, func(o *PathOptions) {
				// Long enough that only SetSender can explain a
				// delivery within waitFor's bound.
				o.BaseBackoff, o.MaxBackoff, o.SendTimeout = time.Hour, time.Hour, time.Hour
			})
			want := numbered(6)
			for _, ev := range want[:4] {
				if err := p.Enqueue(ev); err != nil {
					t.Fatal(err)
				}
			}
			stop := run(t, p)
			defer stop()
			switch old := tt.old.(type) {
			case *fakeSender:
				waitFor(t, "a failed attempt on the old sender", func() bool { return old.callCount() > 0 })
				waitFor(t, "the path down", func() bool { return !p.Health().Up })
			case *hangingSender:
				waitFor(t, "a call hanging on the old sender", func() bool { return old.called.Load() })
			}
			next := &fakeSender{}
			if err := p.SetSender("webhook", next); err != nil {
				t.Fatal(err)
			}
			if h := p.Health(); h.Kind != "webhook" || p.Kind() != "webhook" {
				t.Errorf("kind after SetSender: got %q (health %q), want webhook", p.Kind(), h.Kind)
			}
			for _, ev := range want[4:] {
				if err := p.Enqueue(ev); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the queued alerts at the new sender", func() bool { return len(next.received()) >= len(want) })
			if got := seqs(next.received()); !reflect.DeepEqual(got, seqs(want)) {
				t.Errorf("new sender: got %v, want %v in order", got, seqs(want))
			}
			if f, ok := tt.old.(*fakeSender); ok && len(f.received()) != 0 {
				t.Errorf("old sender: got %v, want nothing", seqs(f.received()))
			}
			waitFor(t, "the path empty and up", func() bool { h := p.Health(); return h.Depth == 0 && h.Up })
		})
	}
}

// hangingSender never answers: its calls end with their context.
type hangingSender struct{ called atomic.Bool }

func (h *hangingSender) Send(ctx context.Context, _ []alert.Event) (bool, error) {
	h.called.Store(true)
	<-ctx.Done()
	return true, ctx.Err()
}

// TestPathSetSenderResendsActive: a new Resender gets the active alerts at
// once, not after the previous one's ResendEvery.
func TestPathSetSenderResendsActive(t *testing.T) {
	active := numbered(2)
	old := &resendingSender{fakeSender: fakeSender{every: time.Hour}}
	p := newTestPath(t, t.TempDir(), old, func(o *PathOptions) {
		o.Active = func() []alert.Event { return active }
		o.ProbeEvery = time.Hour
	})
	stop := run(t, p)
	defer stop()
	waitFor(t, "the first re-send", func() bool { old.mu.Lock(); defer old.mu.Unlock(); return len(old.resent) == 1 })
	next := &resendingSender{fakeSender: fakeSender{every: time.Hour}}
	if err := p.SetSender("", next); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the re-send to the new sender", func() bool {
		next.mu.Lock()
		defer next.mu.Unlock()
		return len(next.resent) == 1 && len(next.resent[0]) == len(active)
	})
	if p.Kind() != "fake" {
		t.Errorf("kind after SetSender with no kind: got %q, want fake (unchanged)", p.Kind())
	}
	if err := p.SetSender("x", nil); err == nil {
		t.Errorf("SetSender(nil): got nil, want an error")
	}
}

// TestPathSetSenderWhileRunning swaps senders while events flow (run with
// -race): every event reaches one of them, each sees increasing seqs.
func TestPathSetSenderWhileRunning(t *testing.T) {
	s := []*fakeSender{{}, {}}
	p := newTestPath(t, t.TempDir(), s[0], nil)
	stop := run(t, p)
	defer stop()
	const n = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, ev := range numbered(n) {
			if err := p.Enqueue(ev); err != nil {
				t.Errorf("enqueue: %v", err)
				return
			}
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			_ = p.SetSender("", s[i%2])
			_ = p.Health()
			continue
		}
		break
	}
	waitFor(t, "the outbox drained", func() bool { return p.Health().Depth == 0 })
	all := map[uint64]bool{}
	for i, f := range s {
		got := seqs(f.received())
		if !slices.IsSorted(got) {
			t.Errorf("sender %d: got seqs out of order: %v", i, got)
		}
		for _, q := range got {
			all[q] = true
		}
	}
	if len(all) != n {
		t.Errorf("delivered: got %d distinct events, want %d", len(all), n)
	}
}

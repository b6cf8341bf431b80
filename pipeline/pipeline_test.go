package pipeline

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
)

func TestStateSweepMarksStale(t *testing.T) {
	s := NewState(3)
	t0 := time.Now()
	s.Update([]point.Point{{Device: "d", Name: "a", Num: 1, Quality: point.Good}, {Device: "d", Name: "b", Num: 2, Quality: point.Bad, Reason: "timeout"}}, time.Second)
	if got := s.Sweep(t0.Add(2 * time.Second)); len(got) != 0 {
		t.Fatalf("after 2 of 3 intervals: got %d stale points, want 0", len(got))
	}
	got := s.Sweep(t0.Add(3*time.Second + time.Millisecond))
	if len(got) != 2 || got[0].Name != "a" || got[0].Quality != point.Stale || got[0].Num != 1 {
		t.Fatalf("after 3 intervals: got %+v, want both points stale, a keeping value 1", got)
	}
	if got := s.Sweep(t0.Add(10 * time.Second)); len(got) != 0 {
		t.Fatalf("a second sweep reported %d points again, want 0", len(got))
	}
	if p, _ := s.Get("d", "a"); p.Quality != point.Stale || p.Reason[:5] != "stale" {
		t.Fatalf("got %v %q, want stale with reason", p.Quality, p.Reason)
	}
	s.Update([]point.Point{{Device: "d", Name: "a", Num: 5, Quality: point.Good}}, time.Second)
	if p, _ := s.Get("d", "a"); p.Quality != point.Good || p.Num != 5 {
		t.Fatalf("refresh: got %v %v, want good 5", p.Quality, p.Num)
	}
}

func TestStateMinimumStaleAfter(t *testing.T) {
	s := NewState(1) // raised to 2: one missed poll is not an alarm
	t0 := time.Now()
	s.Update([]point.Point{{Device: "d", Name: "a"}}, time.Second)
	if got := s.Sweep(t0.Add(1500 * time.Millisecond)); len(got) != 0 {
		t.Fatalf("got %d stale after 1.5 intervals, want 0", len(got))
	}
}

func TestHubFanoutNeverBlocks(t *testing.T) {
	h := NewHub(NewState(3))
	slow := h.Subscribe("slow", 1)
	fast := h.Subscribe("fast", 10)
	for i := 0; i < 5; i++ {
		h.Publish([]point.Point{{Device: "d", Name: "a", Num: float64(i)}}, time.Second)
	}
	if slow.Dropped() != 4 {
		t.Errorf("slow subscriber: got %d dropped, want 4", slow.Dropped())
	}
	if len(fast.C) != 5 || fast.Dropped() != 0 {
		t.Errorf("fast subscriber: got %d queued %d dropped, want 5 and 0", len(fast.C), fast.Dropped())
	}
	if p, _ := h.State.Get("d", "a"); p.Num != 4 {
		t.Errorf("state: got %v, want the latest value 4", p.Num)
	}
}

// slowSource takes longer than its interval for the first polls.
type slowSource struct {
	polls atomic.Int64
	delay time.Duration
}

func (s *slowSource) ID() string { return "slow" }
func (s *slowSource) Poll(ctx context.Context, group string) []point.Point {
	n := s.polls.Add(1)
	if n <= 2 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
		}
	}
	return []point.Point{{Device: "slow", Name: "x", Num: float64(n)}}
}

func TestPollerCountsOverruns(t *testing.T) {
	src := &slowSource{delay: 60 * time.Millisecond}
	var got atomic.Int64
	p := NewPoller(func(pts []point.Point, iv time.Duration) { got.Add(int64(len(pts))) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.Run(ctx, []Schedule{{Source: src, Group: "g", Interval: 10 * time.Millisecond, Deadline: time.Second}})
		close(done)
	}()
	for src.polls.Load() < 5 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	st := p.Stats()
	if len(st) != 1 {
		t.Fatalf("got %d stats, want 1", len(st))
	}
	// Two polls of 60 ms at a 10 ms interval skip at least 5 ticks each.
	if st[0].Overruns < 8 {
		t.Errorf("got %d overruns, want at least 8", st[0].Overruns)
	}
	if st[0].Cycles < 4 || got.Load() < 4 {
		t.Errorf("got %d cycles and %d points delivered, want at least 4", st[0].Cycles, got.Load())
	}
}

func TestPollerDeadlineBoundsPoll(t *testing.T) {
	src := &slowSource{delay: time.Hour}
	p := NewPoller(func([]point.Point, time.Duration) {})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.Run(ctx, []Schedule{{Source: src, Group: "g", Interval: 5 * time.Millisecond, Deadline: 20 * time.Millisecond}})
		close(done)
	}()
	// Only the deadline lets the two hour-long polls end; a third poll
	// proves it did.
	for src.polls.Load() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestHubSinksAreSynchronous(t *testing.T) {
	h := NewHub(NewState(3))
	var got [][]point.Point
	var failed []string
	h.AddSink("ok", func(pts []point.Point) error { got = append(got, pts); return nil }, nil)
	h.AddSink("broken", func([]point.Point) error { return context.DeadlineExceeded }, func(name string, err error) { failed = append(failed, name) })
	for i := 0; i < 3; i++ {
		h.Publish([]point.Point{{Device: "d", Name: "a", Num: float64(i)}}, time.Second)
	}
	if len(got) != 3 || got[2][0].Num != 2 {
		t.Fatalf("sink got %v, want 3 batches in order", got)
	}
	if e := h.SinkErrors(); e["broken"] != 3 || e["ok"] != 0 || len(failed) != 3 {
		t.Errorf("got errors %v and %d callbacks, want broken=3", e, len(failed))
	}
}

// countSource counts polls.
type countSource struct{ polls atomic.Int64 }

func (c *countSource) ID() string { return "c" }
func (c *countSource) Poll(ctx context.Context, group string) []point.Point {
	c.polls.Add(1)
	return []point.Point{{Device: "c", Name: "x"}}
}

func TestPollerTrigger(t *testing.T) {
	src := &countSource{}
	p := NewPoller(func([]point.Point, time.Duration) {})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// An hour-long interval: every poll after the first tick is a trigger.
	go func() { p.Run(ctx, []Schedule{{Source: src, Group: "g", Interval: time.Hour}}); close(done) }()
	for !p.Trigger("c") {
		time.Sleep(time.Millisecond)
	}
	for src.polls.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	p.Trigger("c")
	for src.polls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	st := p.Stats()[0]
	if st.Triggered < 2 || st.Overruns != 0 {
		t.Errorf("got %d triggered polls and %d overruns, want at least 2 and 0", st.Triggered, st.Overruns)
	}
	if p.Trigger("nobody") {
		t.Error("Trigger of an unknown device reported schedules")
	}
}

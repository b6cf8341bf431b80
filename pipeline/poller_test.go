package pipeline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
)

// idSource counts its polls; with block set, a poll waits for its
// context to end (a device that hangs until cancelled).
type idSource struct {
	id    string
	block bool

	mu     sync.Mutex
	polls  int
	inPoll chan struct{} // closed at the first poll that blocks
}

func (s *idSource) ID() string { return s.id }

func (s *idSource) Poll(ctx context.Context, group string) []point.Point {
	s.mu.Lock()
	s.polls++
	n := s.polls
	s.mu.Unlock()
	if s.block {
		if n == 1 {
			close(s.inPoll)
		}
		<-ctx.Done()
	}
	return []point.Point{{Device: s.id, Name: "n", Num: float64(n), Quality: point.Good}}
}

func (s *idSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls
}

// sinkLog records which devices' points reached the sink.
type sinkLog struct {
	mu  sync.Mutex
	got map[string]int
}

func (l *sinkLog) sink(pts []point.Point, _ time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range pts {
		l.got[p.Device]++
	}
}

func (l *sinkLog) n(dev string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got[dev]
}

// until polls cond; the bound only turns a hang into a failure.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func statsOf(p *Poller, dev string) (Stats, bool) {
	for _, s := range p.Stats() {
		if s.Device == dev {
			return s, true
		}
	}
	return Stats{}, false
}

func TestPollerAddRemoveWhileRunning(t *testing.T) {
	log := &sinkLog{got: map[string]int{}}
	p := NewPoller(log.sink)
	a, b, c := &idSource{id: "a"}, &idSource{id: "b"}, &idSource{id: "c"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.Run(ctx, []Schedule{{Source: a, Group: "g", Interval: 5 * time.Millisecond}, {Source: b, Group: "g", Interval: 5 * time.Millisecond}})
		close(done)
	}()
	defer func() { cancel(); <-done }()
	until(t, "a and b polled", func() bool { return a.count() > 2 && b.count() > 2 })

	if err := p.Add(Schedule{Source: c, Group: "g", Interval: 5 * time.Millisecond}, Schedule{Source: c, Group: "h", Interval: 5 * time.Millisecond}); err != nil {
		t.Fatalf("Add while running: %v", err)
	}
	until(t, "c polled in both groups", func() bool {
		n := 0
		for _, s := range p.Stats() {
			if s.Device == "c" && s.Cycles > 0 {
				n++
			}
		}
		return n == 2
	})

	bBefore, _ := statsOf(p, "b")
	if n := p.Remove("a"); n != 1 {
		t.Errorf("Remove(a): got %d schedules stopped, want 1", n)
	}
	aPolls, aSunk := a.count(), log.n("a")
	// b goes on in the same goroutine: its cycle count keeps growing from
	// where it was rather than starting over.
	until(t, "b keeps polling", func() bool { s, _ := statsOf(p, "b"); return s.Cycles >= bBefore.Cycles+5 })
	if got := a.count(); got != aPolls {
		t.Errorf("a polled after Remove returned: got %d polls, want %d", got, aPolls)
	}
	if got := log.n("a"); got != aSunk {
		t.Errorf("a's points reached the sink after Remove returned: got %d, want %d", got, aSunk)
	}
	if _, ok := statsOf(p, "a"); ok {
		t.Error("a's statistics are still listed after Remove")
	}
	if p.Trigger("a") {
		t.Error("Trigger(a) reported schedules after Remove")
	}
	if n := p.Remove("nobody"); n != 0 {
		t.Errorf("Remove(nobody): got %d, want 0", n)
	}

	// Removed and added again (a changed device): polled anew.
	a2 := &idSource{id: "a"}
	if err := p.Add(Schedule{Source: a2, Group: "g", Interval: 5 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	until(t, "the new a polled", func() bool { return a2.count() > 0 })
}

func TestPollerRemoveCancelsAHungPoll(t *testing.T) {
	log := &sinkLog{got: map[string]int{}}
	p := NewPoller(log.sink)
	hung := &idSource{id: "hung", block: true, inPoll: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, nil); close(done) }()
	defer func() { cancel(); <-done }()
	// Added after Run started, with a deadline far beyond the test: only
	// Remove's cancellation can end the poll.
	until(t, "Run started", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.ctx != nil })
	if err := p.Add(Schedule{Source: hung, Group: "g", Interval: time.Millisecond, Deadline: time.Hour}); err != nil {
		t.Fatal(err)
	}
	<-hung.inPoll
	if n := p.Remove("hung"); n != 1 {
		t.Errorf("Remove: got %d, want 1", n)
	}
	if got := log.n("hung"); got != 0 {
		t.Errorf("the cancelled poll's points reached the sink: got %d, want 0", got)
	}
}

func TestPollerAddBeforeRunAndAfterStop(t *testing.T) {
	log := &sinkLog{got: map[string]int{}}
	p := NewPoller(log.sink)
	early, dropped := &idSource{id: "early"}, &idSource{id: "dropped"}
	if err := p.Add(Schedule{Source: early, Group: "g", Interval: 5 * time.Millisecond}, Schedule{Source: dropped, Group: "g", Interval: 5 * time.Millisecond}); err != nil {
		t.Fatalf("Add before Run: %v", err)
	}
	if n := p.Remove("dropped"); n != 1 {
		t.Errorf("Remove before Run: got %d, want 1", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, nil); close(done) }()
	until(t, "the schedule added before Run polled", func() bool { return log.n("early") > 0 })
	cancel()
	<-done
	if got := dropped.count(); got != 0 {
		t.Errorf("a schedule removed before Run was polled %d times, want 0", got)
	}
	if err := p.Add(Schedule{Source: &idSource{id: "late"}, Group: "g", Interval: time.Millisecond}); !errors.Is(err, ErrPollerStopped) {
		t.Errorf("Add after Run returned: got %v, want ErrPollerStopped", err)
	}
}

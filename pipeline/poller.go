// Package pipeline moves readings from drivers to everything downstream.
// The Poller runs every device's poll groups on their intervals; each
// batch of points goes to a Hub, which keeps the latest state per point
// (State) and fans batches out to subscribers without letting a slow one
// block polling. Later stages (MQTT outboxes, the time-series sink, rules)
// subscribe to the Hub.
package pipeline

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/facgw/facgw/internal/point"
)

// Source is a device that can be polled. Poll must return within ctx's
// deadline (drivers bound each request by their own timeouts too) and
// report failures as bad points, never by blocking. It is called from one
// goroutine per poll group, so a Source with several groups must be safe
// for concurrent use.
type Source interface {
	ID() string
	Poll(ctx context.Context, group string) []point.Point
}

// Schedule is one poll group of one device.
type Schedule struct {
	Source   Source
	Group    string
	Interval time.Duration
	// Deadline bounds one poll; 0 means Interval. A poll that takes longer
	// than Interval makes the following ticks overruns, counted and skipped.
	Deadline time.Duration
}

// Stats describes one schedule's recent behaviour.
type Stats struct {
	Device       string        `json:"device"`
	Group        string        `json:"group"`
	Interval     time.Duration `json:"interval_ns"`
	Cycles       uint64        `json:"cycles"`
	Overruns     uint64        `json:"overruns"`
	LastStart    time.Time     `json:"last_start"`
	LastDuration time.Duration `json:"last_duration_ns"`
	LastBad      int           `json:"last_bad_points"`
	LastPoints   int           `json:"last_points"`
	// Triggered counts polls made at once on Trigger (an SNMP trap).
	Triggered uint64 `json:"triggered"`
}

// Poller runs schedules, one goroutine each, and hands every poll's points
// to a sink. A hung device occupies only its own goroutines: the others
// keep their cadence. Schedules can be added and removed while it runs (a
// configuration reload); the goroutines of the schedules left alone are
// never touched, so their cadence has no gap.
type Poller struct {
	sink func([]point.Point, time.Duration)

	mu      sync.Mutex
	stats   map[string]*Stats
	kicks   map[string][]chan struct{} // device -> one per schedule
	running map[string][]*running      // device -> its running schedules
	// ctx and wg are those of Run, set while it runs; pending holds the
	// schedules added before Run started. stopped is set once Run's ctx has
	// ended, after which nothing more is started.
	ctx     context.Context
	wg      sync.WaitGroup
	pending []Schedule
	stopped bool
}

// running is one started schedule: cancelling it ends its goroutine,
// which closes done once its last poll has returned.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// ErrPollerStopped is returned by Add once Run has returned.
var ErrPollerStopped = errors.New("pipeline: poller stopped")

// NewPoller returns a poller that calls sink with each poll's points and
// the schedule's interval. sink is called from the polling goroutines,
// concurrently, and must not block for long (Hub.Publish does not).
func NewPoller(sink func(pts []point.Point, interval time.Duration)) *Poller {
	return &Poller{sink: sink, stats: map[string]*Stats{}, kicks: map[string][]chan struct{}{}, running: map[string][]*running{}}
}

// Trigger asks every schedule of device to poll now instead of at its next
// tick (an SNMP trap said something changed). It never blocks: a schedule
// that is polling or already triggered polls once more when done. It
// reports whether the device has schedules.
func (p *Poller) Trigger(device string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range p.kicks[device] {
		select {
		case k <- struct{}{}:
		default:
		}
	}
	return len(p.kicks[device]) > 0
}

// Run polls until ctx ends, then waits for in-flight polls to return.
// Each schedule starts at an offset within its interval derived from its
// device and group, so many devices do not all poll at the same instant.
// Schedules given to Add before Run start with scheds. Run is called once.
func (p *Poller) Run(ctx context.Context, scheds []Schedule) {
	p.mu.Lock()
	p.ctx = ctx
	for _, s := range append(p.pending, scheds...) {
		p.startLocked(s)
	}
	p.pending = nil
	p.mu.Unlock()
	<-ctx.Done()
	// Under the lock so that no Add can call wg.Add once Wait has begun.
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.wg.Wait()
}

// Add starts schedules. Before Run they wait for it; while it runs they
// start at once (at their spread offset, like the others). Adding a
// device's schedules while it still has some is allowed (a device whose
// groups grew); the caller removes first to replace them. It returns
// ErrPollerStopped once Run's context has ended.
func (p *Poller) Add(scheds ...Schedule) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return ErrPollerStopped
	}
	if p.ctx == nil {
		p.pending = append(p.pending, scheds...)
		return nil
	}
	for _, s := range scheds {
		p.startLocked(s)
	}
	return nil
}

// Remove stops every schedule of device and waits until their goroutines
// have returned: an in-flight poll is cancelled and its points are
// dropped, so once Remove returns nothing polls the device's source any
// more and it may be closed. Its statistics go too. It returns how many
// schedules were stopped.
func (p *Poller) Remove(device string) int {
	p.mu.Lock()
	rs := p.running[device]
	delete(p.running, device)
	delete(p.kicks, device)
	for k, st := range p.stats {
		if st.Device == device {
			delete(p.stats, k)
		}
	}
	n := 0
	if p.ctx == nil {
		// Not started yet: drop the pending ones.
		kept := p.pending[:0]
		for _, s := range p.pending {
			if s.Source.ID() == device {
				n++
				continue
			}
			kept = append(kept, s)
		}
		p.pending = kept
	}
	p.mu.Unlock()
	for _, r := range rs {
		r.cancel()
		<-r.done
	}
	return n + len(rs)
}

// startLocked starts one schedule's goroutine; p.mu is held and Run's ctx
// is set.
func (p *Poller) startLocked(s Schedule) {
	st := &Stats{Device: s.Source.ID(), Group: s.Group, Interval: s.Interval}
	kick := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(p.ctx)
	r := &running{cancel: cancel, done: make(chan struct{})}
	p.stats[st.Device+"/"+st.Group] = st
	p.kicks[st.Device] = append(p.kicks[st.Device], kick)
	p.running[st.Device] = append(p.running[st.Device], r)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(r.done)
		defer cancel()
		p.loop(ctx, s, st, kick)
	}()
}

// spreadSlots is how many start slots an interval is divided into.
// Schedules start in one of them, chosen by a hash of device and group, so
// polls are spread over the interval in a few waves rather than all at
// once (one burst on the network and shared gateways) or each at its own
// instant (one runtime wake-up per poll: with hundreds of devices the
// idle-to-busy transitions cost more CPU than the polls; measured in
// docs/benchmarks.md).
const spreadSlots = 8

func spread(key string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(key))
	return time.Duration(h.Sum64()%spreadSlots) * (interval / spreadSlots)
}

func (p *Poller) loop(ctx context.Context, s Schedule, st *Stats, kick <-chan struct{}) {
	deadline := s.Deadline
	if deadline <= 0 {
		deadline = s.Interval
	}
	// Ticks fall on the grid first+k*interval. A triggered poll happens
	// between ticks and leaves the grid where it was.
	next := time.Now().Add(spread(st.Device+"/"+s.Group, s.Interval))
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		triggered := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
			triggered = true
		}
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, deadline)
		pts := s.Source.Poll(pctx, s.Group)
		cancel()
		if ctx.Err() != nil {
			return
		}
		dur := time.Since(start)
		bad := 0
		for i := range pts {
			if pts[i].Quality != point.Good {
				bad++
			}
		}
		p.sink(pts, s.Interval)
		// Ticks that passed while the poll ran are overruns, skipped
		// rather than run late in a burst.
		if !triggered {
			next = next.Add(s.Interval)
		}
		var missed uint64
		now := time.Now()
		for !next.After(now) {
			next = next.Add(s.Interval)
			missed++
		}
		p.mu.Lock()
		st.Cycles++
		if triggered {
			st.Triggered++
		}
		st.Overruns += missed
		st.LastStart, st.LastDuration, st.LastBad, st.LastPoints = start.UTC(), dur, bad, len(pts)
		p.mu.Unlock()
		t.Reset(time.Until(next))
	}
}

// Stats returns a copy of every schedule's statistics.
func (p *Poller) Stats() []Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Stats, 0, len(p.stats))
	for _, s := range p.stats {
		out = append(out, *s)
	}
	return out
}

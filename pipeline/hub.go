package pipeline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facgw/facgw/internal/point"
)

// Hub receives every batch of points, keeps State current and hands
// batches on. Durable sinks (the MQTT fan-out, the history sink) are called
// synchronously, so a reading that was taken is in their outboxes on disk
// before Publish returns and cannot be lost to a full queue; they must be
// fast (an append, no network). Subscribers get batches through bounded
// queues: Publish never blocks on them, a full queue loses the batch and
// the loss is counted; they are for consumers that only need the latest
// state (the live page, later rules fed from State).
type Hub struct {
	State *State

	mu    sync.RWMutex
	subs  []*Subscription
	sinks []*sink

	beats atomic.Uint64 // sweeper cycles: the gateway's heartbeat
}

// Heartbeat counts the sweeper's cycles. It stops moving when the sweeper
// (and with it the State it locks) hangs; the systemd watchdog pings only
// while it moves.
func (h *Hub) Heartbeat() uint64 { return h.beats.Load() }

type sink struct {
	name   string
	write  func([]point.Point) error
	errors atomic.Uint64
	onErr  func(name string, err error)
}

// AddSink adds a durable consumer, called synchronously for every batch
// from the polling goroutines (concurrently for different schedules, so it
// must be safe for concurrent use). onErr, if not nil, is told of each
// failed write; failures are also counted (SinkErrors).
func (h *Hub) AddSink(name string, write func([]point.Point) error, onErr func(name string, err error)) {
	h.mu.Lock()
	h.sinks = append(h.sinks, &sink{name: name, write: write, onErr: onErr})
	h.mu.Unlock()
}

// SinkErrors returns failed writes per sink name.
func (h *Hub) SinkErrors() map[string]uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := map[string]uint64{}
	for _, s := range h.sinks {
		out[s.name] = s.errors.Load()
	}
	return out
}

// Subscription is one consumer's bounded queue of batches.
type Subscription struct {
	Name    string
	C       chan []point.Point
	dropped atomic.Uint64
}

// Dropped returns how many batches this subscriber lost to a full queue.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// NewHub returns a hub over state.
func NewHub(state *State) *Hub { return &Hub{State: state} }

// Subscribe adds a consumer with a queue of size batches.
func (h *Hub) Subscribe(name string, size int) *Subscription {
	s := &Subscription{Name: name, C: make(chan []point.Point, size)}
	h.mu.Lock()
	h.subs = append(h.subs, s)
	h.mu.Unlock()
	return s
}

// Publish records a poll's points (with the poll interval, for staleness)
// and offers them to every subscriber.
func (h *Hub) Publish(pts []point.Point, interval time.Duration) {
	if len(pts) == 0 {
		return
	}
	h.State.Update(pts, interval)
	h.fanout(pts)
}

func (h *Hub) fanout(pts []point.Point) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, s := range h.sinks {
		if err := s.write(pts); err != nil {
			s.errors.Add(1)
			if s.onErr != nil {
				s.onErr(s.name, err)
			}
		}
	}
	for _, s := range h.subs {
		select {
		case s.C <- pts:
		default:
			s.dropped.Add(1)
		}
	}
}

// RunSweeper marks unrefreshed points stale every period until ctx ends,
// and fans the newly stale points out like any other batch.
func (h *Hub) RunSweeper(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if stale := h.State.Sweep(now); len(stale) > 0 {
				h.fanout(stale)
			}
			h.beats.Add(1)
		}
	}
}

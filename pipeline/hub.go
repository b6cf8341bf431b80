package pipeline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facgw/facgw/internal/point"
)

// Hub receives every batch of points, keeps State current and fans batches
// out to subscribers. Publish never blocks: a subscriber whose queue is
// full loses the batch and the loss is counted (durable consumers keep
// their own outbox on disk and so must drain promptly into it).
type Hub struct {
	State *State

	mu   sync.RWMutex
	subs []*Subscription
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
		}
	}
}

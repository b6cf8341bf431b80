package pipeline

import (
	"sort"
	"sync"
	"time"

	"github.com/facgw/facgw/internal/point"
)

// State holds the latest point per device and name, with when it was last
// refreshed. It marks points stale when no poll refreshed them within
// staleAfter intervals. Safe for concurrent use.
type State struct {
	staleAfter int

	mu      sync.RWMutex
	devices map[string]map[string]*entry
}

type entry struct {
	p        point.Point
	interval time.Duration
	seen     time.Time // monotonic arrival time, for staleness
}

// NewState returns an empty state; staleAfter is the number of intervals
// after which an unrefreshed point becomes stale (at least 2).
func NewState(staleAfter int) *State {
	if staleAfter < 2 {
		staleAfter = 2
	}
	return &State{staleAfter: staleAfter, devices: map[string]map[string]*entry{}}
}

// Update records points from a poll with the given interval.
func (s *State) Update(pts []point.Point, interval time.Duration) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range pts {
		p := &pts[i]
		dev := s.devices[p.Device]
		if dev == nil {
			dev = map[string]*entry{}
			s.devices[p.Device] = dev
		}
		e := dev[p.Name]
		if e == nil {
			e = &entry{}
			dev[p.Name] = e
		}
		e.p, e.interval, e.seen = *p, interval, now
	}
}

// Sweep marks points stale that were not refreshed within staleAfter of
// their intervals, as of now, and returns the points that just became
// stale so consumers (rules, publishers) learn of it. A stale point keeps
// its last value and time, for display only.
func (s *State) Sweep(now time.Time) []point.Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []point.Point
	for _, dev := range s.devices {
		for _, e := range dev {
			if e.p.Quality == point.Stale {
				continue
			}
			limit := time.Duration(s.staleAfter) * e.interval
			if age := now.Sub(e.seen); age > limit {
				e.p.Quality = point.Stale
				e.p.Reason = point.ReasonStale + ": not refreshed for " + age.Round(time.Millisecond).String()
				out = append(out, e.p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Device != out[j].Device {
			return out[i].Device < out[j].Device
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Devices returns the ids of all devices with points, sorted.
func (s *State) Devices() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.devices))
	for d := range s.devices {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// Points returns a device's latest points sorted by name.
func (s *State) Points(device string) []point.Point {
	s.mu.RLock()
	defer s.mu.RUnlock()
	dev := s.devices[device]
	out := make([]point.Point, 0, len(dev))
	for _, e := range dev {
		out = append(out, e.p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns the latest value of one point.
func (s *State) Get(device, name string) (point.Point, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.devices[device][name]
	if !ok {
		return point.Point{}, false
	}
	return e.p, true
}

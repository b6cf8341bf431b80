package pipeline

import (
	"sort"
	"sync"
	"time"

	"github.com/facgw/facgw/internal/point"
)

// State holds the latest point per device and name, with when it was last
// refreshed. It marks points stale when no poll refreshed them within
// staleAfter intervals. Optionally (SetHistory) it keeps a bounded ring of
// recent values per point, for the dashboard's charts. Safe for concurrent
// use.
type State struct {
	staleAfter int

	mu      sync.RWMutex
	devices map[string]map[string]*entry
	// gen counts Update and Sweep calls that changed something; each entry
	// remembers the gen of its last change, so Changed can hand a reader
	// what moved since it last looked without a subscription per reader.
	gen uint64
	// history is the ring size per point; 0 keeps none.
	history int
}

type entry struct {
	p        point.Point
	interval time.Duration
	seen     time.Time // monotonic arrival time, for staleness
	gen      uint64
	ring
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
	s.gen++
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
		e.p, e.interval, e.seen, e.gen = *p, interval, now, s.gen
		if s.history > 0 && p.Kind != point.String {
			e.add(s.history, sampleOf(p.Time, p.Num, p.Quality))
		}
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
	gen := s.gen + 1
	for _, dev := range s.devices {
		for _, e := range dev {
			if e.p.Quality == point.Stale {
				continue
			}
			limit := time.Duration(s.staleAfter) * e.interval
			if age := now.Sub(e.seen); age > limit {
				e.p.Quality = point.Stale
				e.p.Reason = point.ReasonStale + ": not refreshed for " + age.Round(time.Millisecond).String()
				e.gen = gen
				if s.history > 0 && e.p.Kind != point.String {
					// The chart shows a gap from here on, not a flat
					// line through the silence.
					e.add(s.history, sampleOf(now, e.p.Num, point.Stale))
				}
				out = append(out, e.p)
			}
		}
	}
	if len(out) > 0 {
		s.gen = gen
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

// Sample is one recorded value of a point, for charts of recent history.
// Num is the value as a float (a bool is 0 or 1, an enum its code); it
// means nothing unless Quality is Good.
type Sample struct {
	Time    time.Time
	Num     float64
	Quality point.Quality
}

// sample is how a ring stores a Sample: 16 bytes instead of 40, because a
// site of 12 000 points with 600 samples each keeps 7.2 million of them.
// The value is a float32 (7 significant digits: plenty for a chart; the
// exact values are in the State and in the time-series database).
type sample struct {
	ms int64 // Unix milliseconds
	v  float32
	q  point.Quality
}

func sampleOf(t time.Time, v float64, q point.Quality) sample {
	return sample{ms: t.UnixMilli(), v: float32(v), q: q}
}

// ring is a point's bounded history, oldest first from head once full. It
// grows by doubling up to its size, so a point seen a few times costs a
// few samples, not the whole ring.
type ring struct {
	buf  []sample
	head int // index of the oldest sample once len(buf) == size
}

func (r *ring) add(size int, s sample) {
	if len(r.buf) < size {
		if len(r.buf) == cap(r.buf) {
			nb := make([]sample, len(r.buf), min(max(2*cap(r.buf), 8), size))
			copy(nb, r.buf)
			r.buf = nb
		}
		r.buf = append(r.buf, s)
		return
	}
	r.buf[r.head] = s
	r.head++
	if r.head == len(r.buf) {
		r.head = 0
	}
}

// samples returns the ring's contents, oldest first.
func (r *ring) samples() []Sample {
	out := make([]Sample, 0, len(r.buf))
	for i := range r.buf {
		s := r.buf[(r.head+i)%len(r.buf)]
		out = append(out, Sample{Time: time.UnixMilli(s.ms).UTC(), Num: float64(s.v), Quality: s.q})
	}
	return out
}

// resize keeps the newest size samples (none when size is 0).
func (r *ring) resize(size int) {
	if size <= 0 {
		r.buf, r.head = nil, 0
		return
	}
	ordered := make([]sample, 0, len(r.buf))
	for i := range r.buf {
		ordered = append(ordered, r.buf[(r.head+i)%len(r.buf)])
	}
	if len(ordered) > size {
		ordered = ordered[len(ordered)-size:]
	}
	r.buf, r.head = ordered, 0
}

// SetHistory sets how many samples each point keeps (0: none, the
// default). Existing histories keep their newest samples. Strings are
// never recorded: there is nothing to chart.
func (s *State) SetHistory(n int) {
	n = max(n, 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n == s.history {
		return
	}
	s.history = n
	for _, dev := range s.devices {
		for _, e := range dev {
			e.resize(n)
		}
	}
}

// HistorySize returns the samples kept per point.
func (s *State) HistorySize() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.history
}

// History returns a point's recorded samples, oldest first, and whether the
// point is known.
func (s *State) History(device, name string) ([]Sample, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.devices[device][name]
	if !ok {
		return nil, false
	}
	return e.samples(), true
}

// Gen returns the state's change counter; pass it to Changed later to learn
// what moved in between.
func (s *State) Gen() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gen
}

// Changed returns the points updated (by a poll or by Sweep marking them
// stale) after gen since, sorted by device and name, and the gen to pass
// next time. It walks every point: call it a few times a second, not per
// poll.
func (s *State) Changed(since uint64) ([]point.Point, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if since >= s.gen {
		return nil, s.gen
	}
	var out []point.Point
	for _, dev := range s.devices {
		for _, e := range dev {
			if e.gen > since {
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
	return out, s.gen
}

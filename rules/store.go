package rules

import (
	"math"
	"strings"
	"sync"

	"github.com/facgw/facgw/internal/point"
)

// pstate is what the engine keeps of one point of one device: the latest
// point of any quality, when it was last good, and for points some rule
// windows over, a ring of recent good samples.
type pstate struct {
	seen     bool
	p        point.Point
	val      any   // p.Value(), boxed once per update rather than per read
	lastGood int64 // unix nanoseconds of the latest good sample; 0: never
	ring     *ring // nil unless a rule windows over this point
}

// devState is one device's part of the engine. Its mutex guards the
// points and the device's per-device instances; group instances have their
// own mutex and take the member devices' mutexes to read points.
type devState struct {
	mu  sync.Mutex
	idx int // lock order for group evaluation
	dev Device

	points map[string]*pstate
	// all is set when a rule calls a device-level function on this
	// device: then every point is kept, so the counts below cover the
	// whole device. Otherwise only points some rule reads are kept.
	all bool
	// Counts over the points kept: good, stale, bad, and bad for a
	// reason that means the device did not answer (for unreachable()).
	nSeen, nGood, nStale, nBad, nComm int

	inst    []*instance            // per-device instances, in rule order
	deps    map[string][]*instance // point name -> instances that read it
	anyDeps []*instance            // instances that read device-level functions
	mark    uint64                 // Feed counter, to queue an instance once per batch
}

// pstate returns the state of a point, creating it.
func (d *devState) pstate(name string) *pstate {
	ps := d.points[name]
	if ps == nil {
		ps = &pstate{}
		d.points[name] = ps
	}
	return ps
}

// update stores a new reading of a point.
func (d *devState) update(ps *pstate, p *point.Point) {
	if ps.seen {
		d.count(&ps.p, -1)
	} else {
		ps.seen = true
		d.nSeen++
	}
	d.count(p, +1)
	ps.p = *p
	ps.val = p.Value()
	if p.Quality == point.Good {
		t := p.Time.UnixNano()
		ps.lastGood = max(ps.lastGood, t)
		if ps.ring != nil {
			if v, ok := numeric(p); ok {
				ps.ring.push(t, v)
			}
		}
	}
}

func (d *devState) count(p *point.Point, delta int) {
	switch p.Quality {
	case point.Good:
		d.nGood += delta
	case point.Stale:
		d.nStale += delta
		d.nComm += delta
	default:
		d.nBad += delta
		if commFailure(p.Reason) {
			d.nComm += delta
		}
	}
}

// commFailure reports whether a bad point's reason means the device did
// not answer (as opposed to answering with an exception, an absent-sensor
// sentinel or an implausible value, which proves it is reachable). A
// Modbus gateway's exceptions 0A and 0B say the device behind it is
// silent.
func commFailure(reason string) bool {
	switch {
	case strings.HasPrefix(reason, point.ReasonTimeout),
		strings.HasPrefix(reason, point.ReasonConnection),
		strings.HasPrefix(reason, point.ReasonProtocol),
		strings.HasPrefix(reason, point.ReasonStale),
		strings.HasPrefix(reason, point.ReasonNotPolled):
		return true
	case strings.HasPrefix(reason, point.ReasonException):
		r := strings.ToLower(reason)
		return strings.Contains(r, "(0a)") || strings.Contains(r, "(0b)")
	}
	return false
}

// unreachable: the device has points and none is good, and every bad one
// failed for want of an answer.
func (d *devState) unreachable() bool {
	return d.nSeen > 0 && d.nGood == 0 && d.nComm == d.nSeen
}

// numeric is the value windows work on: numbers, bools as 0 and 1, enum
// codes. Strings have none.
func numeric(p *point.Point) (float64, bool) {
	switch p.Kind {
	case point.Number, point.Bool, point.Enum:
		if math.IsNaN(p.Num) {
			return 0, false
		}
		return p.Num, true
	}
	return 0, false
}

// ringCap bounds a window's samples: a 1 h window of a point polled every
// second needs 3600. Past the cap the oldest samples go, so a longer
// window only sees the newest ringCap samples.
const ringCap = 4096

// ring holds good samples of one point in time order, pruned to the
// longest window any rule uses on it.
type ring struct {
	t       []int64
	v       []float64
	head, n int
	horizon int64 // nanoseconds
}

func newRing(horizon int64) *ring {
	return &ring{t: make([]int64, 16), v: make([]float64, 16), horizon: horizon}
}

func (r *ring) at(i int) (int64, float64) {
	j := (r.head + i) % len(r.t)
	return r.t[j], r.v[j]
}

// push appends a sample. A sample not newer than the last one (a repeated
// or reordered reading) is ignored: windows need increasing times.
func (r *ring) push(t int64, v float64) {
	if r.n > 0 {
		if last, _ := r.at(r.n - 1); t <= last {
			return
		}
	}
	// Samples older than the horizon before the newest one can never be
	// inside a window again: evaluations run at or after the newest
	// sample's time.
	for r.n > 0 {
		if first, _ := r.at(0); first > t-r.horizon {
			break
		}
		r.head = (r.head + 1) % len(r.t)
		r.n--
	}
	if r.n == len(r.t) {
		if len(r.t) < ringCap {
			r.grow()
		} else {
			r.head = (r.head + 1) % len(r.t)
			r.n--
		}
	}
	j := (r.head + r.n) % len(r.t)
	r.t[j], r.v[j] = t, v
	r.n++
}

func (r *ring) grow() {
	n := min(2*len(r.t), ringCap)
	t, v := make([]int64, n), make([]float64, n)
	for i := 0; i < r.n; i++ {
		t[i], v[i] = r.at(i)
	}
	r.t, r.v, r.head = t, v, 0
}

// windowOp is what a window function computes.
type windowOp int

const (
	opRate windowOp = iota
	opDelta
	opMin
	opMax
	opAvg
)

// window computes op over the samples with time in (now-d, now]. ok is
// false without enough samples: two for rate and delta, one otherwise.
func (r *ring) window(op windowOp, now, d int64) (float64, bool) {
	from := now - d
	var (
		n                   int
		t0, tn              int64
		v0, vn, lo, hi, sum float64
		st, stt, stv        float64 // for the least-squares slope (t in s from the window start)
	)
	for i := 0; i < r.n; i++ {
		t, v := r.at(i)
		if t <= from {
			continue
		}
		if t > now {
			break
		}
		if n == 0 {
			t0, v0, lo, hi = t, v, v, v
		}
		tn, vn = t, v
		lo, hi = min(lo, v), max(hi, v)
		sum += v
		x := float64(t-from) / 1e9
		st, stt, stv = st+x, stt+x*x, stv+x*v
		n++
	}
	switch op {
	case opRate:
		// The least-squares slope over every good sample, not last minus
		// first: one noisy reading at either end of the window would
		// otherwise swing the rate by its whole error divided by the
		// window (a 2 degC glitch reads as 2 degC/min over 60 s). The
		// samples must cover at least half the window, or the first polls
		// after a start would extrapolate a rate from a second of noise.
		if n < 2 || tn == t0 || tn-t0 < d/2 {
			return math.NaN(), false
		}
		fn := float64(n)
		den := fn*stt - st*st
		if den <= 0 {
			return math.NaN(), false
		}
		return (fn*stv - st*sum) / den * 60, true
	case opDelta:
		if n < 2 {
			return math.NaN(), false
		}
		return vn - v0, true
	}
	if n == 0 {
		return math.NaN(), false
	}
	switch op {
	case opMin:
		return lo, true
	case opMax:
		return hi, true
	default:
		return sum / float64(n), true
	}
}

package mqtt

import (
	"slices"
	"time"
)

// latencyWindow is how many recent samples the quantiles are taken over.
const latencyWindow = 1024

// latency tracks publish-to-PUBACK times: an EWMA over all samples and
// quantiles over the last latencyWindow. Not safe for concurrent use (the
// Publisher guards it).
type latency struct {
	ring [latencyWindow]time.Duration
	n    int // samples in ring
	next int
	ewma float64
	max  time.Duration
}

// LatencyStats summarises publish-to-PUBACK latency. P50, P90 and P99 are
// over the last 1024 acknowledged messages; EWMA weighs each new sample by
// 1/20; Max is since start.
type LatencyStats struct {
	Samples             int
	EWMA, P50, P90, P99 time.Duration
	Max                 time.Duration
}

func (l *latency) observe(d time.Duration) {
	l.ring[l.next] = d
	l.next = (l.next + 1) % latencyWindow
	if l.n < latencyWindow {
		l.n++
	}
	if l.ewma == 0 {
		l.ewma = float64(d)
	} else {
		l.ewma += (float64(d) - l.ewma) / 20
	}
	l.max = max(l.max, d)
}

func (l *latency) stats() LatencyStats {
	s := LatencyStats{Samples: l.n, EWMA: time.Duration(l.ewma), Max: l.max}
	if l.n == 0 {
		return s
	}
	d := slices.Clone(l.ring[:l.n])
	slices.Sort(d)
	q := func(f float64) time.Duration { return d[int(f*float64(len(d)-1))] }
	s.P50, s.P90, s.P99 = q(0.50), q(0.90), q(0.99)
	return s
}

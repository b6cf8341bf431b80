package snmp

import (
	"time"

	"github.com/facgw/facgw/internal/point"
)

// rateState is the previous reading of one counter series.
type rateState struct {
	raw    uint64
	t      time.Time
	uptime uint32 // sysUpTime at the reading, when known
	hasUp  bool
}

// counterDelta returns cur - prev for a counter of the given width in
// bits: a counter that passed its maximum wrapped (Counter32 at 2^32,
// Counter64 at 2^64), so the difference is taken modulo 2^bits.
func counterDelta(prev, cur uint64, bits uint) uint64 {
	if bits == 32 {
		return uint64(uint32(cur) - uint32(prev))
	}
	return cur - prev
}

// rate updates the series name with a new reading and returns the rate
// per second since the previous one, or the reason there is none: no
// previous reading, the agent restarted (its sysUpTime went backwards, so
// its counters started again from zero and the difference means nothing),
// or no time passed. Called with d.mu held.
func (d *Device) rate(name string, raw uint64, bits uint, t time.Time, uptime uint32, hasUp bool) (float64, string) {
	prev := d.rates[name]
	d.rates[name] = &rateState{raw: raw, t: t, uptime: uptime, hasUp: hasUp}
	switch {
	case prev == nil:
		return 0, point.ReasonNotPolled + ": a rate needs a second reading"
	case hasUp && prev.hasUp && uptime < prev.uptime:
		return 0, point.ReasonNotPolled + ": the agent restarted (sysUpTime went backwards), rate baseline reset"
	}
	dt := t.Sub(prev.t).Seconds()
	if dt <= 0 {
		return 0, point.ReasonNotPolled + ": no time passed since the previous reading"
	}
	return float64(counterDelta(prev.raw, raw, bits)) / dt, ""
}

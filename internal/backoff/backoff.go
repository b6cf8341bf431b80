// Package backoff holds the retry arithmetic every driver and sender
// shares: exponential delays with a cap, optional jitter, and the
// bookkeeping of a peer that stopped answering.
package backoff

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Delay returns the wait after n failures in a row (n >= 1): base doubled
// n-1 times, capped at limit. A zero or negative n gives base.
func Delay(base, limit time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Jittered is Delay less a random part of up to a quarter, so peers that
// failed together (every device behind a dead switch) do not retry in
// lockstep.
func Jittered(base, limit time.Duration, n int) time.Duration {
	d := Delay(base, limit, n)
	if q := int64(d / 4); q > 0 {
		d -= time.Duration(rand.Int64N(q + 1))
	}
	return d
}

// Tracker follows one peer (a device) across polls: after the second
// failed poll in a row it is left alone for Delay(base, limit, failures+1),
// so a dead device costs a shared bus or gateway one timeout per backoff
// period instead of one per poll. The zero value is ready; it is not safe
// for concurrent use (drivers hold it under their own lock).
type Tracker struct {
	failures int
	nextTry  time.Time
	last     string
}

// Succeeded forgets past failures.
func (t *Tracker) Succeeded() { *t = Tracker{} }

// Failed records a failed poll at now with its reason.
func (t *Tracker) Failed(now time.Time, reason string, base, limit time.Duration) {
	t.failures++
	t.last = reason
	if t.failures > 1 {
		t.nextTry = now.Add(Delay(base, limit, t.failures+1))
	}
}

// Waiting reports whether the peer is being left alone at now, and if so
// a reason for its points: the last failure, the count and the time to
// the next try.
func (t *Tracker) Waiting(now time.Time) (string, bool) {
	wait := t.nextTry.Sub(now)
	if wait <= 0 {
		return "", false
	}
	return fmt.Sprintf("%s (%d failed polls, next try in %s)", t.last, t.failures, wait.Round(time.Millisecond)), true
}

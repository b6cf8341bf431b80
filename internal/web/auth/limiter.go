package auth

import (
	"sync"
	"time"
)

// maxTracked bounds the limiter's memory: someone trying random names from
// many addresses must not grow it without end. At the bound the entry
// quiet the longest is dropped.
const maxTracked = 10000

// limiter counts failed attempts per key (a client address or a user name)
// and locks a key out after MaxFailures of them, for LockoutBase doubling
// per further failure up to LockoutMax. It is safe for concurrent use.
type limiter struct {
	now func() time.Time

	mu   sync.Mutex
	keys map[string]*attempts
}

type attempts struct {
	failures int
	last     time.Time // of the last failure
	until    time.Time // end of the lockout; zero when none began
	// refusalLogged is set once an attempt during the current lockout was
	// logged, so the rest are not.
	refusalLogged bool
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, keys: map[string]*attempts{}}
}

// get returns key's entry, forgetting it first if it has been quiet for
// ForgetAfter; nil when there is none. Callers hold l.mu.
func (l *limiter) get(key string, now time.Time) *attempts {
	a := l.keys[key]
	if a != nil && a.quiet(now) {
		delete(l.keys, key)
		return nil
	}
	return a
}

// quiet reports whether the entry may be forgotten: no lockout running and
// no failure for ForgetAfter after the later of the two.
func (a *attempts) quiet(now time.Time) bool {
	ref := a.last
	if a.until.After(ref) {
		ref = a.until
	}
	return now.Sub(ref) >= ForgetAfter
}

// lockedFor returns how long the longest lockout of keys still runs, or 0.
func (l *limiter) lockedFor(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var wait time.Duration
	for _, k := range keys {
		if a := l.get(k, now); a != nil && a.until.After(now) {
			wait = max(wait, a.until.Sub(now))
		}
	}
	return wait
}

// fail records a failure of key. It returns the failures counted and, when
// this failure began a lockout, its length.
func (l *limiter) fail(key string) (failures int, lock time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	a := l.get(key, now)
	if a == nil {
		l.makeRoom(now)
		a = &attempts{}
		l.keys[key] = a
	}
	a.failures++
	a.last = now
	if a.failures < MaxFailures {
		return a.failures, 0
	}
	lock = LockoutMax
	if shift := a.failures - MaxFailures; shift < 16 {
		lock = min(LockoutMax, LockoutBase<<shift)
	}
	a.until = now.Add(lock)
	a.refusalLogged = false
	return a.failures, lock
}

// reset forgets key's failures, after a success.
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}

// firstRefusal reports whether an attempt refused by key's lockout is the
// first one of that lockout.
func (l *limiter) firstRefusal(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.keys[key]
	if a == nil || a.refusalLogged {
		return false
	}
	a.refusalLogged = true
	return true
}

// makeRoom drops quiet entries once the map is full and, if it is still
// full, the entry whose last failure is the oldest. Callers hold l.mu.
func (l *limiter) makeRoom(now time.Time) {
	if len(l.keys) < maxTracked {
		return
	}
	oldest, oldestKey := now, ""
	for k, a := range l.keys {
		if a.quiet(now) {
			delete(l.keys, k)
			continue
		}
		if !a.last.After(oldest) {
			oldest, oldestKey = a.last, k
		}
	}
	if len(l.keys) >= maxTracked {
		delete(l.keys, oldestKey)
	}
}

// size returns the number of keys tracked, for tests.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

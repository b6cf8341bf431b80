package auth

import (
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// attempt logs in from remote and returns the answer.
func (e *env) attempt(t *testing.T, remote, name, pw string) *httptest.ResponseRecorder {
	t.Helper()
	return e.do(t, req{method: "POST", path: LoginPath, body: loginBody(name, pw), remote: remote})
}

// TestLockout follows one name from one address through the lockout: five
// failures, a refused right password with Retry-After, release, and the
// lockout doubling up to its cap.
func TestLockout(t *testing.T) {
	e := newEnv(t, testConfig(t))
	const from = "203.0.113.5:5000"
	for i := 1; i <= MaxFailures; i++ {
		if rec := e.attempt(t, from, "kim", "wrong-"+strconv.Itoa(i)); rec.Code != 401 {
			t.Fatalf("failure %d: got %d, want 401", i, rec.Code)
		}
	}
	failuresLogged := len(e.log.lines("authentication failed", "user=kim"))
	if failuresLogged != MaxFailures {
		t.Errorf("got %d failure log lines, want %d", failuresLogged, MaxFailures)
	}

	// Locked: even the right password is refused, and not checked (no
	// new failure is logged, nor a login).
	for i := 0; i < 3; i++ {
		rec := e.attempt(t, from, "kim", kimPassword)
		if rec.Code != 429 {
			t.Fatalf("locked attempt %d: got %d %s, want 429", i, rec.Code, rec.Body)
		}
		if got := rec.Header().Get("Retry-After"); got != "30" {
			t.Errorf("locked attempt %d: got Retry-After %q, want 30", i, got)
		}
		errorBody(t, rec)
	}
	if got := len(e.log.lines("authentication failed", "user=kim")); got != failuresLogged {
		t.Errorf("locked attempts were checked: got %d failure lines, want %d", got, failuresLogged)
	}
	if got := e.log.lines("auth: login"); len(got) != 0 {
		t.Errorf("a locked attempt logged in: %v", got)
	}
	// One line says a lockout began (per key) and one that attempts are
	// refused (per key), however many are refused.
	if got := e.log.lines("locked out after failed attempts", "failures=5", "for=30s"); len(got) != 2 {
		t.Errorf("got %d lockout lines, want 2 (address and name):\n%s", len(got), e.log)
	}
	if got := e.log.lines("refused while locked out"); len(got) != 2 {
		t.Errorf("got %d refusal lines, want 2 (address and name, once each):\n%s", len(got), e.log)
	}

	// Retry-After counts down with the clock.
	e.clock.advance(20 * time.Second)
	if got := e.attempt(t, from, "kim", kimPassword).Header().Get("Retry-After"); got != "10" {
		t.Errorf("10s before release: got Retry-After %q, want 10", got)
	}

	// Released: a success resets the count, so the next lockout starts
	// at the base again.
	e.clock.advance(10 * time.Second)
	if rec := e.attempt(t, from, "kim", kimPassword); rec.Code != 200 {
		t.Fatalf("after the lockout: got %d %s, want 200", rec.Code, rec.Body)
	}

	// Without a success in between, each further failure doubles the
	// lockout, up to LockoutMax.
	for i := 0; i < MaxFailures-1; i++ {
		e.attempt(t, from, "kim", "wrong")
	}
	for i, want := range []int{30, 60, 120, 240, 480, 900, 900} {
		if rec := e.attempt(t, from, "kim", "wrong"); rec.Code != 401 {
			t.Fatalf("failure %d: got %d, want 401", MaxFailures+i, rec.Code)
		}
		rec := e.attempt(t, from, "kim", kimPassword)
		if got := rec.Header().Get("Retry-After"); rec.Code != 429 || got != strconv.Itoa(want) {
			t.Errorf("after failure %d: got %d Retry-After %q, want 429 %d", MaxFailures+i, rec.Code, got, want)
		}
		e.clock.advance(time.Duration(want) * time.Second)
	}
	e.log.assertNoSecrets(t)
}

// TestLockoutKeys checks that the address and the name are limited apart.
func TestLockoutKeys(t *testing.T) {
	t.Run("one name from many addresses", func(t *testing.T) {
		e := newEnv(t, testConfig(t))
		for i := 1; i <= MaxFailures; i++ {
			e.attempt(t, fmt.Sprintf("203.0.113.%d:5000", i), "kim", "wrong")
		}
		if rec := e.attempt(t, "203.0.113.99:5000", "kim", kimPassword); rec.Code != 429 {
			t.Errorf("kim from a fresh address: got %d, want 429", rec.Code)
		}
		if rec := e.attempt(t, "203.0.113.1:5000", "lee", leePassword); rec.Code != 200 {
			t.Errorf("another name from a failing address: got %d, want 200", rec.Code)
		}
	})
	t.Run("many names from one address", func(t *testing.T) {
		e := newEnv(t, testConfig(t))
		for i := 1; i <= MaxFailures; i++ {
			e.attempt(t, "203.0.113.7:5000", fmt.Sprintf("guess%d", i), "wrong")
		}
		if rec := e.attempt(t, "203.0.113.7:6000", "kim", kimPassword); rec.Code != 429 {
			t.Errorf("right password from the locked address (other port): got %d, want 429", rec.Code)
		}
		if rec := e.attempt(t, "203.0.113.8:5000", "kim", kimPassword); rec.Code != 200 {
			t.Errorf("from another address: got %d, want 200", rec.Code)
		}
		if got := e.log.lines("authentication failed", `reason="unknown user"`); len(got) != MaxFailures {
			t.Errorf("got %d unknown-user lines, want %d", len(got), MaxFailures)
		}
	})
	t.Run("an IPv6 /64 is one client", func(t *testing.T) {
		e := newEnv(t, testConfig(t))
		for i := 1; i <= MaxFailures; i++ {
			e.attempt(t, fmt.Sprintf("[2001:db8:1:2::%x]:5000", i), fmt.Sprintf("guess%d", i), "wrong")
		}
		if rec := e.attempt(t, "[2001:db8:1:2:ffff::1]:5000", "kim", kimPassword); rec.Code != 429 {
			t.Errorf("same /64: got %d, want 429", rec.Code)
		}
		if rec := e.attempt(t, "[2001:db8:1:3::1]:5000", "kim", kimPassword); rec.Code != 200 {
			t.Errorf("another /64: got %d, want 200", rec.Code)
		}
	})
	t.Run("failures are forgotten after a quiet time", func(t *testing.T) {
		e := newEnv(t, testConfig(t))
		for i := 1; i < MaxFailures; i++ {
			e.attempt(t, "203.0.113.9:5000", "kim", "wrong")
		}
		e.clock.advance(ForgetAfter)
		if rec := e.attempt(t, "203.0.113.9:5000", "kim", "wrong"); rec.Code != 401 {
			t.Fatalf("got %d, want 401", rec.Code)
		}
		if rec := e.attempt(t, "203.0.113.9:5000", "kim", kimPassword); rec.Code != 200 {
			t.Errorf("one failure after a quiet time: got %d, want 200 (the old failures forgotten)", rec.Code)
		}
	})
	t.Run("wrong bearer tokens lock the address", func(t *testing.T) {
		e := newEnv(t, testConfig(t))
		for i := 1; i <= MaxFailures; i++ {
			rec := e.do(t, req{method: "GET", path: readPath, token: wrongToken, remote: "203.0.113.10:5000"})
			if rec.Code != 401 {
				t.Fatalf("wrong token %d: got %d, want 401", i, rec.Code)
			}
		}
		rec := e.do(t, req{method: "GET", path: readPath, token: viewerToken, remote: "203.0.113.10:5000"})
		if rec.Code != 429 || rec.Header().Get("Retry-After") != "30" {
			t.Errorf("right token from the locked address: got %d Retry-After %q, want 429 30", rec.Code, rec.Header().Get("Retry-After"))
		}
		if rec := e.do(t, req{method: "GET", path: readPath, token: viewerToken, remote: "203.0.113.11:5000"}); rec.Code != 200 {
			t.Errorf("right token from another address: got %d, want 200", rec.Code)
		}
		if rec := e.attempt(t, "203.0.113.10:5000", "kim", kimPassword); rec.Code != 429 {
			t.Errorf("login from the address locked by tokens: got %d, want 429", rec.Code)
		}
		e.log.assertNoSecrets(t)
	})
}

// TestLockoutConcurrent fires many wrong attempts at once: however they
// interleave, no more than the bcrypt slots get past the check, so the
// failures logged stay within MaxFailures plus the slots.
func TestLockoutConcurrent(t *testing.T) {
	e := newEnv(t, testConfig(t))
	const n = 40
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("POST", LoginPath, strings.NewReader(loginBody("kim", "wrong")))
			r.Header.Set("Content-Type", "application/json")
			e.h.ServeHTTP(rec, r)
			codes <- rec.Code
		}()
	}
	count := map[int]int{}
	for i := 0; i < n; i++ {
		count[<-codes]++
	}
	if count[401]+count[429] != n {
		t.Errorf("got answers %v, want only 401 and 429", count)
	}
	if limit := MaxFailures + cap(e.a.bcryptSlots); count[401] > limit {
		t.Errorf("got %d checked attempts, want at most %d", count[401], limit)
	}
}

// TestLimiterBound checks that the limiter forgets the quietest entries
// rather than grow past maxTracked.
func TestLimiterBound(t *testing.T) {
	c := newClock()
	l := newLimiter(c.now)
	for i := 0; i < maxTracked+50; i++ {
		l.fail(fmt.Sprintf("user u%d", i))
		if i == 0 {
			c.advance(time.Second) // u0 is the oldest
		}
	}
	if got := l.size(); got != maxTracked {
		t.Errorf("got %d entries, want %d", got, maxTracked)
	}
	l.mu.Lock()
	_, kept := l.keys["user u0"]
	l.mu.Unlock()
	if kept {
		t.Errorf("the oldest entry was kept")
	}
	c.advance(ForgetAfter + time.Second)
	l.fail("user new")
	if got := l.size(); got != 1 {
		t.Errorf("after a quiet time: got %d entries, want 1", got)
	}
}

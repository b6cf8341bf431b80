package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// firing returns the firing event of a test episode of rule on device at
// activeAt.
func firing(rule, device string, sev alert.Severity, activeAt time.Time) alert.Event {
	return alert.Event{
		ID:       alert.EpisodeID(rule, device, activeAt),
		Kind:     alert.KindFiring,
		State:    alert.Firing,
		Rule:     rule,
		Class:    "power",
		Severity: sev,
		Device:   device,
		Site:     "pangyo-b3",
		Gateway:  "gw-1",
		Summary:  rule + " on " + device,
		Labels:   map[string]string{"room": "b3-battery"},
		ActiveAt: activeAt,
		FiredAt:  activeAt.Add(30 * time.Second),
		At:       activeAt.Add(30 * time.Second),
		Values:   map[string]alert.Value{"soc": {Value: "41", Unit: "%", Quality: "good"}},
	}
}

// resolved returns the resolved event of the episode of ev.
func resolved(ev alert.Event, at time.Time) alert.Event {
	ev.Kind, ev.State, ev.ResolvedAt, ev.At = alert.KindResolved, alert.Resolved, at, at
	return ev
}

func openLedger(t *testing.T, dir string, c *clock) *Ledger {
	t.Helper()
	l, err := OpenLedgerWith(LedgerOptions{Dir: dir, Log: testLog(t), Now: c.now})
	if err != nil {
		t.Fatalf("open ledger: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// crash releases the ledger's lock without writing anything, as the death
// of the process would.
func (l *Ledger) crash() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.lock.Close()
}

func record(t *testing.T, l *Ledger, evs ...alert.Event) []alert.Event {
	t.Helper()
	out, err := l.Record(evs)
	if err != nil {
		t.Fatalf("record: %v", err)
	}
	return out
}

// testLog logs to the test's output at debug level.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// logRecorder is a slog handler that keeps the messages, for tests that
// check what was logged.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) has(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

// fakeSender fails its first failN calls (with retryable as given) and then
// records what it is sent.
type fakeSender struct {
	mu        sync.Mutex
	failN     int
	retryable bool
	calls     int
	got       []alert.Event
	resent    [][]alert.Event
	every     time.Duration
}

func (f *fakeSender) Send(_ context.Context, evs []alert.Event) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failN > 0 {
		f.failN--
		return f.retryable, fmt.Errorf("fake: refused (call %d)", f.calls)
	}
	f.got = append(f.got, evs...)
	return false, nil
}

func (f *fakeSender) setFail(n int, retryable bool) {
	f.mu.Lock()
	f.failN, f.retryable = n, retryable
	f.mu.Unlock()
}

func (f *fakeSender) received() []alert.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]alert.Event(nil), f.got...)
}

func (f *fakeSender) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// resendingSender is a fakeSender that is also a Resender and a Prober.
type resendingSender struct {
	fakeSender
	probeErr error
	probes   int
}

func (f *resendingSender) ResendEvery() time.Duration { return f.every }
func (f *resendingSender) Resend(_ context.Context, active []alert.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failN > 0 {
		f.failN--
		return errors.New("fake: resend refused")
	}
	f.resent = append(f.resent, active)
	return nil
}
func (f *resendingSender) Probe(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probes++
	return f.probeErr
}

// fakeTarget is a Target whose health and refusals the test sets.
type fakeTarget struct {
	name string
	mu   sync.Mutex
	h    Health
	err  error
	// refuseN refuses the next refuseN events, then takes them again.
	refuseN int
	got     []alert.Event
}

func newFakeTarget(name string) *fakeTarget {
	return &fakeTarget{name: name, h: Health{Name: name, Kind: "fake", Up: true}}
}

func (f *fakeTarget) Name() string { return f.name }
func (f *fakeTarget) Kind() string { return "fake" }
func (f *fakeTarget) Enqueue(ev alert.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if f.refuseN > 0 {
		f.refuseN--
		return errors.New("fake: refused once")
	}
	f.got = append(f.got, ev)
	return nil
}
func (f *fakeTarget) Health() Health {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.h
}
func (f *fakeTarget) setUp(up bool, lastErr string) {
	f.mu.Lock()
	f.h.Up, f.h.LastError = up, lastErr
	f.mu.Unlock()
}
func (f *fakeTarget) refuse(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}
func (f *fakeTarget) received() []alert.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]alert.Event(nil), f.got...)
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// seqs lists the Seqs of evs.
func seqs(evs []alert.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

package outbox

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var discard = slog.New(slog.DiscardHandler)

// open opens an outbox that the test closes (if it did not) at its end.
func open(t testing.TB, opts Options) *Outbox {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = discard
	}
	o, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func mustClose(t testing.TB, o *Outbox) {
	t.Helper()
	if err := o.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// testMsg is message i of a test stream: its payload names i, so a test
// can check that what comes back is what went in.
func testMsg(c Class, i int) Message {
	return Message{
		Class:   c,
		Key:     fmt.Sprintf("dev-%d", i%7),
		Topic:   fmt.Sprintf("facgw/site/dev-%d/%s", i%7, c),
		Payload: fmt.Appendf(nil, "payload %d %s", i, strings.Repeat("x", i%13)),
		Retain:  i%3 == 0,
	}
}

func mustAppend(t testing.TB, o *Outbox, m Message) Message {
	t.Helper()
	got, err := o.Append(m)
	if err != nil {
		t.Fatalf("Append(%s): %v", m.Class, err)
	}
	return got
}

func peekAll(t testing.TB, o *Outbox) []Message {
	t.Helper()
	ms, err := o.Peek(1 << 30)
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	return ms
}

func seqsOf(ms []Message) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// sameMessage reports how got differs from want, ignoring Time's location.
func sameMessage(got, want Message) string {
	switch {
	case got.Seq != want.Seq:
		return fmt.Sprintf("seq %d, want %d", got.Seq, want.Seq)
	case got.Class != want.Class || got.Key != want.Key || got.Topic != want.Topic || got.Retain != want.Retain:
		return fmt.Sprintf("got %s %q %q retain=%v, want %s %q %q retain=%v",
			got.Class, got.Key, got.Topic, got.Retain, want.Class, want.Key, want.Topic, want.Retain)
	case !bytes.Equal(got.Payload, want.Payload):
		return fmt.Sprintf("payload %q, want %q", got.Payload, want.Payload)
	case !got.Time.Equal(want.Time):
		return fmt.Sprintf("time %v, want %v", got.Time, want.Time)
	}
	return ""
}

func checkIncreasing(t testing.TB, ms []Message) {
	t.Helper()
	for i := 1; i < len(ms); i++ {
		if ms[i].Seq <= ms[i-1].Seq {
			t.Fatalf("message %d has seq %d after %d: not in order", i, ms[i].Seq, ms[i-1].Seq)
		}
	}
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+segExt))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func asideFiles(t testing.TB, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.unreadable-*"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// logRecorder is a slog handler that keeps the records, for tests that
// check what was logged.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// count returns how many records at level have a message containing s.
func (l *logRecorder) count(level slog.Level, s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level == level && strings.Contains(r.Message, s) {
			n++
		}
	}
	return n
}

// buildSegment returns the bytes of a segment file with base seq base
// holding ms (whose Seq and Time must be set).
func buildSegment(base uint64, ms ...Message) []byte {
	b := encodeHeader(base)
	for i := range ms {
		b = append(b, appendRecord(nil, &ms[i])...)
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

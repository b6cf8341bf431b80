package outbox

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestAppendPeekAck(t *testing.T) {
	clk := newClock()
	o := open(t, Options{Dir: t.TempDir(), SyncEvery: DefaultSyncEvery, now: clk.now})
	var want []Message
	for i := range 20 {
		c := []Class{Telemetry, Alert, Control}[i%3]
		m := testMsg(c, i)
		got := mustAppend(t, o, m)
		if got.Seq != uint64(i+1) {
			t.Fatalf("Append %d: seq %d, want %d", i, got.Seq, i+1)
		}
		if !got.Time.Equal(clk.now()) || got.Time.Location() != time.UTC {
			t.Fatalf("Append %d: time %v, want %v in UTC", i, got.Time, clk.now())
		}
		want = append(want, got)
		clk.advance(time.Millisecond)
	}

	first, err := o.Peek(5)
	if err != nil {
		t.Fatal(err)
	}
	again, err := o.Peek(5)
	if err != nil {
		t.Fatal(err)
	}
	if got, w := seqsOf(first), seqRange(1, 5); !slices.Equal(got, w) {
		t.Fatalf("Peek(5): got seqs %v, want %v", got, w)
	}
	if got := seqsOf(again); !slices.Equal(got, seqsOf(first)) {
		t.Fatalf("Peek again before Ack: got %v, want %v", got, seqsOf(first))
	}
	for i, m := range peekAll(t, o) {
		if d := sameMessage(m, want[i]); d != "" {
			t.Fatalf("message %d: %s", i, d)
		}
	}

	// Acks out of order: the head moves over the acknowledged prefix only.
	for _, seq := range []uint64{3, 1, 2, 5, 5, 999, 0} {
		if err := o.Ack(seq); err != nil {
			t.Fatalf("Ack(%d): %v", seq, err)
		}
	}
	got := seqsOf(peekAll(t, o))
	if w := append([]uint64{4}, seqRange(6, 20)...); !slices.Equal(got, w) {
		t.Fatalf("after acking 1,2,3,5: got %v, want %v", got, w)
	}
	checkInvariants(t, o)
	st := o.Stats()
	if st.Depth != 16 || st.Acked != 4 || st.Appended != 20 || st.NextSeq != 21 {
		t.Fatalf("stats: got depth %d acked %d appended %d next %d, want 16 4 20 21", st.Depth, st.Acked, st.Appended, st.NextSeq)
	}
	if !st.Oldest.Equal(want[3].Time) {
		t.Fatalf("oldest: got %v, want %v (seq 4)", st.Oldest, want[3].Time)
	}

	from, err := o.PeekFrom(10, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(from); !slices.Equal(got, []uint64{10, 11, 12}) {
		t.Fatalf("PeekFrom(10, 3): got %v, want [10 11 12]", got)
	}
}

func TestReopenKeepsOrderAndRedelivers(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentBytes: 2048, SyncEvery: DefaultSyncEvery}
	o := open(t, opts)
	var want []Message
	for i := range 60 {
		want = append(want, mustAppend(t, o, testMsg(Class(i%3), i)))
	}
	for seq := uint64(1); seq <= 20; seq++ {
		o.Ack(seq)
	}
	o.Ack(30) // beyond the head: may come again after a restart
	mustClose(t, o)
	if n := len(segFiles(t, dir)); n < 3 {
		t.Fatalf("got %d segment files, want several (segment size 2048)", n)
	}

	o = open(t, opts)
	got := peekAll(t, o)
	checkIncreasing(t, got)
	var gotSeqs []uint64
	for _, m := range got {
		if m.Seq != 30 {
			gotSeqs = append(gotSeqs, m.Seq)
		}
		if d := sameMessage(m, want[m.Seq-1]); d != "" {
			t.Fatalf("seq %d after reopen: %s", m.Seq, d)
		}
	}
	if w := slices.DeleteFunc(seqRange(21, 60), func(s uint64) bool { return s == 30 }); !slices.Equal(gotSeqs, w) {
		t.Fatalf("after reopen: got %v (apart from 30), want %v", gotSeqs, w)
	}
	checkInvariants(t, o)
	st := o.Stats()
	if st.NextSeq != 61 || st.Appended != 0 || st.Acked != 0 {
		t.Fatalf("stats after reopen: next %d appended %d acked %d, want 61 0 0", st.NextSeq, st.Appended, st.Acked)
	}
	if m := mustAppend(t, o, testMsg(Telemetry, 1)); m.Seq != 61 {
		t.Fatalf("first Append after reopen: seq %d, want 61", m.Seq)
	}
}

func TestAckedSegmentsDeleted(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentBytes: 2048, SyncEvery: DefaultSyncEvery}
	o := open(t, opts)
	for i := range 300 {
		mustAppend(t, o, testMsg(Class(i%2), i))
	}
	before := o.Stats()
	// Ack in a scrambled order; the head only moves at the end.
	for seq := uint64(300); seq >= 1; seq -= 2 {
		o.Ack(seq)
	}
	for seq := uint64(1); seq < 300; seq += 2 {
		o.Ack(seq)
	}
	if err := o.Sync(); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, o)
	st := o.Stats()
	if st.Depth != 0 || st.Segments != 1 || len(segFiles(t, dir)) != 1 {
		t.Fatalf("all acked: depth %d, %d segments (%d files), want 0 and only the active one", st.Depth, st.Segments, len(segFiles(t, dir)))
	}
	if st.Bytes >= before.Bytes/10 {
		t.Fatalf("all acked: %d bytes on disk, was %d", st.Bytes, before.Bytes)
	}
	mustClose(t, o)

	o = open(t, opts)
	if st := o.Stats(); st.Depth != 0 || st.NextSeq != 301 {
		t.Fatalf("reopened: depth %d, next seq %d, want 0 and 301", st.Depth, st.NextSeq)
	}
}

// TestConcurrentAppendAndDrain runs the intended pattern under -race: one
// appender, one sender peeking and acking (out of order within a batch), and
// Stats from a third goroutine, while segments roll, get deleted and the
// background goroutine syncs.
func TestConcurrentAppendAndDrain(t *testing.T) {
	const n = 20000
	o := open(t, Options{Dir: t.TempDir(), SegmentBytes: 16 << 10, SyncEvery: time.Millisecond})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range n {
			if _, err := o.Append(testMsg(Class(i%3), i)); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = o.Stats()
			}
		}
	}()

	next := uint64(1)
	for next <= n {
		ms, err := o.Peek(100)
		if err != nil {
			t.Fatalf("Peek: %v", err)
		}
		if len(ms) == 0 {
			select {
			case <-o.Ready():
			case <-time.After(100 * time.Millisecond): // a hint, not an assertion
			}
			continue
		}
		for _, m := range ms {
			if m.Seq != next {
				t.Fatalf("received seq %d, want %d", m.Seq, next)
			}
			want := testMsg(Class((next-1)%3), int(next-1))
			want.Seq, want.Time = next, m.Time
			if d := sameMessage(m, want); d != "" {
				t.Fatalf("seq %d: %s", m.Seq, d)
			}
			next++
		}
		for i := len(ms) - 1; i >= 0; i-- {
			if err := o.Ack(ms[i].Seq); err != nil {
				t.Fatalf("Ack: %v", err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if err := o.Sync(); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, o)
	if st := o.Stats(); st.Depth != 0 || st.Appended != n || st.Acked != n || st.Dropped != 0 {
		t.Fatalf("stats: %+v, want depth 0, %d appended and acked, none dropped", st, n)
	}
}

func TestSyncEveryZero(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentBytes: 1024}
	o := open(t, opts)
	for i := range 30 {
		mustAppend(t, o, testMsg(Alert, i))
	}
	mustClose(t, o)
	o = open(t, opts)
	if got := seqsOf(peekAll(t, o)); !slices.Equal(got, seqRange(1, 30)) {
		t.Fatalf("got %v, want 1..30", got)
	}
}

func TestClosed(t *testing.T) {
	o := open(t, Options{Dir: t.TempDir(), SyncEvery: DefaultSyncEvery})
	mustAppend(t, o, testMsg(Telemetry, 1))
	mustClose(t, o)
	if _, err := o.Append(testMsg(Telemetry, 2)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: got %v, want ErrClosed", err)
	}
	if _, err := o.Peek(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Peek after Close: got %v, want ErrClosed", err)
	}
	if err := o.Ack(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack after Close: got %v, want ErrClosed", err)
	}
	if err := o.Sync(); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync after Close: got %v, want ErrClosed", err)
	}
	if err := o.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: got %v, want ErrClosed", err)
	}
	if st := o.Stats(); st.Depth != 1 {
		t.Errorf("Stats after Close: depth %d, want 1", st.Depth)
	}
}

func TestDirectoryLocked(t *testing.T) {
	dir := t.TempDir()
	o := open(t, Options{Dir: dir})
	if o2, err := Open(Options{Dir: dir, Logger: discard}); err == nil {
		o2.Close()
		t.Fatal("second Open of the same directory succeeded, want an error")
	}
	mustClose(t, o)
	o = open(t, Options{Dir: dir})
	mustClose(t, o)
}

func TestAppendRejects(t *testing.T) {
	o := open(t, Options{Dir: t.TempDir()})
	tests := []struct {
		name string
		m    Message
	}{
		{"unknown class", Message{Class: 7}},
		{"key too long", Message{Key: string(make([]byte, 70000))}},
		{"payload too large", Message{Payload: make([]byte, MaxMessageBytes+1)}},
	}
	for _, tt := range tests {
		if _, err := o.Append(tt.m); err == nil {
			t.Errorf("%s: Append succeeded, want an error", tt.name)
		}
	}
	if st := o.Stats(); st.Depth != 0 || st.NextSeq != 1 {
		t.Errorf("after rejected appends: depth %d next %d, want 0 and 1", st.Depth, st.NextSeq)
	}
}

func TestOptionsValidated(t *testing.T) {
	for _, opts := range []Options{
		{},
		{Dir: t.TempDir(), MaxBytes: -1},
		{Dir: t.TempDir(), SegmentBytes: MaxSegmentBytes + 1},
	} {
		if o, err := Open(opts); err == nil {
			o.Close()
			t.Errorf("Open(%+v) succeeded, want an error", opts)
		}
	}
}

func TestClassString(t *testing.T) {
	for c, want := range map[Class]string{Telemetry: "telemetry", Alert: "alert", Control: "control", 9: "class(9)"} {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", c, got, want)
		}
	}
}

// A fresh directory gets created, nested.
func TestOpenCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	o := open(t, Options{Dir: dir})
	mustAppend(t, o, testMsg(Alert, 1))
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

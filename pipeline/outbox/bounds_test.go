package outbox

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func bigMsg(c Class, i int) Message {
	m := testMsg(c, i)
	m.Payload = fmt.Appendf(nil, "%-200d", i)
	return m
}

// checkDropPattern checks that every alert and control message appended is
// there and that the telemetry left is the newest: no telemetry is missing
// after the oldest one present.
func checkDropPattern(t *testing.T, got []Message, appended []Message) (tele int) {
	t.Helper()
	checkIncreasing(t, got)
	present := map[uint64]bool{}
	for _, m := range got {
		present[m.Seq] = true
	}
	oldestTele := uint64(0)
	for _, m := range got {
		if m.Class == Telemetry {
			oldestTele = m.Seq
			break
		}
	}
	for _, m := range appended {
		switch {
		case m.Class != Telemetry && !present[m.Seq]:
			t.Fatalf("%s seq %d was dropped", m.Class, m.Seq)
		case m.Class == Telemetry && present[m.Seq]:
			tele++
		case m.Class == Telemetry && oldestTele != 0 && m.Seq > oldestTele:
			t.Fatalf("telemetry seq %d dropped while the older %d was kept", m.Seq, oldestTele)
		}
	}
	return tele
}

func TestMaxBytesDropsOldestTelemetry(t *testing.T) {
	dir := t.TempDir()
	rec := &logRecorder{}
	opts := Options{Dir: dir, MaxBytes: 64 << 10, SyncEvery: DefaultSyncEvery, Logger: slog.New(rec)}
	o := open(t, opts)
	if o.opts.SegmentBytes != 16<<10 {
		t.Fatalf("segment size %d, want MaxBytes/4", o.opts.SegmentBytes)
	}
	var appended []Message
	// The first message is an alert, so the oldest segment mixes classes
	// when telemetry has to go.
	for i := range 2000 {
		c := Telemetry
		if i%50 == 0 {
			c = Alert
		} else if i%77 == 0 {
			c = Control
		}
		appended = append(appended, mustAppend(t, o, bigMsg(c, i)))
	}
	checkInvariants(t, o)
	st := o.Stats()
	if st.Dropped == 0 || st.DroppedTotal != st.Dropped || st.OverBound {
		t.Fatalf("stats: %+v, want drops counted and not over bound", st)
	}
	got := peekAll(t, o)
	tele := checkDropPattern(t, got, appended)
	if uint64(tele)+st.Dropped != 2000-40-25 {
		t.Fatalf("%d telemetry kept + %d dropped, want all %d telemetry accounted for", tele, st.Dropped, 2000-40-25)
	}
	if err := o.Sync(); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, o)
	t.Logf("before compaction: %+v", st)
	t.Logf("after compaction:  %+v", o.Stats())
	if st := o.Stats(); st.Bytes > opts.MaxBytes+o.opts.SegmentBytes {
		t.Fatalf("%d bytes on disk after compaction, want at most MaxBytes+SegmentBytes = %d", st.Bytes, opts.MaxBytes+o.opts.SegmentBytes)
	}
	if n := rec.count(slog.LevelWarn, "dropping the oldest telemetry"); n != 1 {
		t.Errorf("drop warning logged %d times, want once per episode", n)
	}
	mustClose(t, o)

	// Compacted segments hold what was kept, not what was dropped.
	o = open(t, opts)
	checkMessages(t, peekAll(t, o), got)
	checkInvariants(t, o)
	if st := o.Stats(); st.Dropped != 0 || st.DroppedTotal == 0 {
		t.Errorf("reopened: dropped %d since Open, %d in total; want 0 and the persisted total", st.Dropped, st.DroppedTotal)
	}
}

func TestAlertsKeptAboveMaxBytes(t *testing.T) {
	rec := &logRecorder{}
	o := open(t, Options{Dir: t.TempDir(), MaxBytes: 16 << 10, SyncEvery: DefaultSyncEvery, Logger: slog.New(rec)})
	var alerts []Message
	for i := range 300 { // about 70 KiB
		alerts = append(alerts, mustAppend(t, o, bigMsg(Alert+Class(i%2), i)))
	}
	st := o.Stats()
	if !st.OverBound || st.Dropped != 0 || st.Depth != 300 {
		t.Fatalf("stats: %+v, want over bound, nothing dropped, all 300 queued", st)
	}
	if n := rec.count(slog.LevelWarn, "over its size bound"); n != 1 {
		t.Errorf("over-bound warning logged %d times, want once", n)
	}
	// Telemetry has no room: it goes at once, alerts stay.
	tm := mustAppend(t, o, bigMsg(Telemetry, 1))
	if st := o.Stats(); st.Dropped != 1 {
		t.Fatalf("dropped %d, want the 1 telemetry message", st.Dropped)
	}
	got := peekAll(t, o)
	if slices.Contains(seqsOf(got), tm.Seq) {
		t.Fatalf("telemetry seq %d kept above the bound", tm.Seq)
	}
	checkMessages(t, got, alerts)

	for _, m := range alerts {
		o.Ack(m.Seq)
	}
	if err := o.Sync(); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, o)
	if st := o.Stats(); st.OverBound {
		t.Fatalf("still over bound after everything was acknowledged: %+v", st)
	}
	if n := rec.count(slog.LevelInfo, "back within its size bound"); n != 1 {
		t.Errorf("end of the over-bound episode logged %d times, want once", n)
	}
}

func TestMaxAgeDropsOldTelemetry(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	opts := Options{Dir: dir, MaxAge: time.Minute, SegmentBytes: 1024, SyncEvery: DefaultSyncEvery, now: clk.now}
	o := open(t, opts)
	var old, kept []Message
	for i := range 20 {
		old = append(old, mustAppend(t, o, testMsg(Telemetry, i)))
	}
	kept = append(kept, mustAppend(t, o, testMsg(Alert, 20)))
	clk.advance(30 * time.Second)
	for i := range 5 {
		kept = append(kept, mustAppend(t, o, testMsg(Telemetry, 21+i)))
	}
	if st := o.Stats(); st.Dropped != 0 {
		t.Fatalf("dropped %d before anything is a minute old", st.Dropped)
	}

	// A minute after the first batch; no Append needed for the bound to apply.
	clk.advance(31 * time.Second)
	if err := o.Sync(); err != nil {
		t.Fatal(err)
	}
	checkMessages(t, peekAll(t, o), kept)
	checkInvariants(t, o)
	st := o.Stats()
	if st.Dropped != uint64(len(old)) {
		t.Fatalf("dropped %d, want the %d old telemetry messages", st.Dropped, len(old))
	}
	if !st.Oldest.Equal(kept[0].Time) {
		t.Fatalf("oldest %v, want the alert's %v", st.Oldest, kept[0].Time)
	}

	// The alert never ages out; the younger telemetry does, on Append too.
	clk.advance(time.Hour)
	last := mustAppend(t, o, testMsg(Telemetry, 99))
	checkMessages(t, peekAll(t, o), []Message{kept[0], last})
	mustClose(t, o)
	o = open(t, opts)
	checkMessages(t, peekAll(t, o), []Message{kept[0], last})
}

// fullDisk is a write hook that fails with ENOSPC while full is set, after
// writing half of what it was given (a partial write, as a real full disk
// does).
type fullDisk struct{ full atomic.Bool }

func (d *fullDisk) writeAt(f *os.File, p []byte, off int64) (int, error) {
	if !d.full.Load() {
		return f.WriteAt(p, off)
	}
	n, _ := f.WriteAt(p[:len(p)/2], off)
	return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	disk := &fullDisk{}
	opts := Options{Dir: dir, SyncEvery: DefaultSyncEvery, writeAt: disk.writeAt}
	o := open(t, opts)
	t1 := mustAppend(t, o, testMsg(Telemetry, 1))

	disk.full.Store(true)
	t2, err := o.Append(testMsg(Telemetry, 2))
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) || t2.Seq != 0 {
		t.Fatalf("telemetry on a full disk: seq %d, err %v; want seq 0 and ErrDiskFull", t2.Seq, err)
	}
	a1, err := o.Append(testMsg(Alert, 3))
	if !errors.Is(err, ErrDiskFull) || a1.Seq != 2 {
		t.Fatalf("alert on a full disk: seq %d, err %v; want seq 2 and ErrDiskFull", a1.Seq, err)
	}
	c1, err := o.Append(testMsg(Control, 4))
	if !errors.Is(err, ErrDiskFull) || c1.Seq != 3 {
		t.Fatalf("control on a full disk: seq %d, err %v; want seq 3 and ErrDiskFull", c1.Seq, err)
	}
	// Telemetry may not overtake the held messages.
	if _, err := o.Append(testMsg(Telemetry, 5)); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("telemetry behind held alerts: err %v, want ErrDiskFull", err)
	}
	st := o.Stats()
	if st.Dropped != 2 || st.Pending != 2 || st.Depth != 3 || st.NextSeq != 4 {
		t.Fatalf("stats: %+v, want 2 dropped, 2 pending, depth 3, next seq 4", st)
	}
	// Held messages are delivered from memory, after the ones on disk.
	checkMessages(t, peekAll(t, o), []Message{t1, a1, c1})
	checkInvariants(t, o)
	if err := o.Sync(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Sync with held messages: %v, want ErrDiskFull", err)
	}
	if err := o.Ack(c1.Seq); err != nil { // acked from memory: never written
		t.Fatal(err)
	}

	disk.full.Store(false)
	t3 := mustAppend(t, o, testMsg(Telemetry, 6))
	if t3.Seq != 4 {
		t.Fatalf("first append with room: seq %d, want 4", t3.Seq)
	}
	if st := o.Stats(); st.Pending != 0 || st.Depth != 3 {
		t.Fatalf("stats after the disk has room: %+v, want nothing pending, depth 3", st)
	}
	checkMessages(t, peekAll(t, o), []Message{t1, a1, t3})
	checkInvariants(t, o)
	mustClose(t, o)

	// The partial writes left nothing behind.
	o = open(t, Options{Dir: dir})
	checkMessages(t, peekAll(t, o), []Message{t1, a1, t3})
}

// A disk full from the start: even the first segment cannot be created.
func TestDiskFullAtFirstSegment(t *testing.T) {
	dir := t.TempDir()
	disk := &fullDisk{}
	disk.full.Store(true)
	o := open(t, Options{Dir: dir, SyncEvery: DefaultSyncEvery, writeAt: disk.writeAt})
	a, err := o.Append(testMsg(Alert, 1))
	if !errors.Is(err, ErrDiskFull) || a.Seq != 1 {
		t.Fatalf("alert: seq %d, err %v; want 1 and ErrDiskFull", a.Seq, err)
	}
	if n := len(segFiles(t, dir)); n != 0 {
		t.Fatalf("%d segment files after a failed start, want 0", n)
	}
	disk.full.Store(false)
	if err := o.Sync(); err != nil {
		t.Fatalf("Sync with room again: %v", err)
	}
	mustClose(t, o)
	o = open(t, Options{Dir: dir})
	checkMessages(t, peekAll(t, o), []Message{a})
}

// Other write errors: telemetry is lost (counted), alerts are held.
func TestWriteError(t *testing.T) {
	var failing atomic.Bool
	hook := func(f *os.File, p []byte, off int64) (int, error) {
		if failing.Load() {
			return 0, io.ErrClosedPipe
		}
		return f.WriteAt(p, off)
	}
	o := open(t, Options{Dir: t.TempDir(), SyncEvery: DefaultSyncEvery, writeAt: hook})
	mustAppend(t, o, testMsg(Telemetry, 1))
	failing.Store(true)
	if _, err := o.Append(testMsg(Telemetry, 2)); err == nil || errors.Is(err, ErrDiskFull) {
		t.Fatalf("telemetry: err %v, want the write error", err)
	}
	if _, err := o.Append(testMsg(Alert, 3)); err == nil {
		t.Fatal("alert: no error, want the write error")
	}
	if st := o.Stats(); st.Dropped != 1 || st.Pending != 1 {
		t.Fatalf("stats: %+v, want 1 dropped and 1 held", st)
	}
	failing.Store(false)
	if err := o.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(peekAll(t, o)); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("got %v, want [1 2]", got)
	}
}

// On a full disk, the background cycle gives the oldest telemetry's room to
// the alerts held in memory.
func TestDiskFullMakesRoom(t *testing.T) {
	dir := t.TempDir()
	disk := &fullDisk{}
	o := open(t, Options{Dir: dir, SegmentBytes: 1024, SyncEvery: DefaultSyncEvery, writeAt: disk.writeAt})
	var appended []Message
	for i := range 40 {
		appended = append(appended, mustAppend(t, o, testMsg(Telemetry, i)))
	}
	files := segFiles(t, dir)
	disk.full.Store(true)
	a, err := o.Append(testMsg(Alert, 40))
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("alert on a full disk: %v, want ErrDiskFull", err)
	}
	appended = append(appended, a)
	if err := o.Sync(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Sync: %v, want ErrDiskFull", err)
	}
	st := o.Stats()
	if st.Dropped == 0 || st.Pending != 1 {
		t.Fatalf("stats: %+v, want telemetry dropped to make room and the alert held", st)
	}
	if _, err := os.Stat(files[0]); !os.IsNotExist(err) {
		t.Fatalf("oldest segment %s still there (err %v), want it deleted for room", files[0], err)
	}
	disk.full.Store(false)
	if err := o.Sync(); err != nil {
		t.Fatalf("Sync with room: %v", err)
	}
	checkDropPattern(t, peekAll(t, o), appended)
	checkInvariants(t, o)
	if st := o.Stats(); st.Pending != 0 {
		t.Fatalf("stats: %+v, want the alert written", st)
	}
}

// TestConcurrentWithDrops appends faster than the bound allows while a
// sender drains and the background goroutine compacts, under -race: the
// sender sees messages in order and every alert and control message.
func TestConcurrentWithDrops(t *testing.T) {
	const n = 20000
	o := open(t, Options{Dir: t.TempDir(), MaxBytes: 32 << 10, SyncEvery: time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			c := Telemetry
			if i%20 == 0 {
				c = Alert + Class(i/20%2)
			}
			if _, err := o.Append(bigMsg(c, i)); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
		}
	}()
	var last uint64
	alerts, tele := 0, 0
drain:
	for {
		ms, err := o.Peek(50)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			select {
			case <-done:
				if st := o.Stats(); st.Depth == 0 {
					break drain
				}
			case <-o.Ready():
			}
			continue
		}
		for _, m := range ms {
			if m.Seq <= last {
				t.Fatalf("seq %d after %d", m.Seq, last)
			}
			last = m.Seq
			if m.Class == Telemetry {
				tele++
			} else {
				alerts++
			}
			o.Ack(m.Seq)
		}
	}
	if err := o.Sync(); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, o)
	st := o.Stats()
	if alerts != n/20 {
		t.Fatalf("received %d alerts and control messages, want %d", alerts, n/20)
	}
	if uint64(tele)+st.Dropped < n-n/20 || st.Corrupt != 0 {
		t.Fatalf("received %d telemetry, %d dropped (stats %+v), want all %d accounted for", tele, st.Dropped, st, n-n/20)
	}
	t.Logf("received %d telemetry, dropped %d", tele, st.Dropped)
}

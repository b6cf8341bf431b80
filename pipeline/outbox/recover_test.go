package outbox

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// fill appends n messages (classes cycling) to a fresh outbox in dir, closes
// it and returns what was appended.
func fill(t *testing.T, dir string, segBytes int64, n int) []Message {
	t.Helper()
	o := open(t, Options{Dir: dir, SegmentBytes: segBytes, SyncEvery: DefaultSyncEvery})
	var ms []Message
	for i := range n {
		ms = append(ms, mustAppend(t, o, testMsg(Class(i%3), i)))
	}
	mustClose(t, o)
	return ms
}

func checkMessages(t *testing.T, got, want []Message) {
	t.Helper()
	if gs, ws := seqsOf(got), seqsOf(want); !slices.Equal(gs, ws) {
		t.Fatalf("got seqs %v, want %v", gs, ws)
	}
	for i := range got {
		if d := sameMessage(got[i], want[i]); d != "" {
			t.Fatalf("seq %d: %s", got[i].Seq, d)
		}
	}
}

func TestTornRecordTruncated(t *testing.T) {
	tests := []struct {
		name   string
		damage func(b []byte) []byte
		keep   int // messages of 10 that survive
	}{
		{"cut by 3 bytes", func(b []byte) []byte { return b[:len(b)-3] }, 9},
		{"cut inside the record header", func(b []byte) []byte { return b[:len(b)-recordLenOfLast(b)+5] }, 9},
		{"zeros after the last record", func(b []byte) []byte { return append(b, make([]byte, 100)...) }, 10},
		{"garbage after the last record", func(b []byte) []byte { return append(b, "\xff\xff\x00\x00garbage"...) }, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			want := fill(t, dir, 0, 10)
			segs := segFiles(t, dir)
			if len(segs) != 1 {
				t.Fatalf("got %d segments, want 1", len(segs))
			}
			b, err := os.ReadFile(segs[0])
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, segs[0], tt.damage(b))

			rec := &logRecorder{}
			o := open(t, Options{Dir: dir, SyncEvery: DefaultSyncEvery, Logger: slog.New(rec)})
			checkMessages(t, peekAll(t, o), want[:tt.keep])
			checkInvariants(t, o)
			if st := o.Stats(); st.NextSeq != 11 {
				t.Fatalf("NextSeq %d, want 11 (persisted by Close)", st.NextSeq)
			}
			if rec.count(slog.LevelWarn, "torn record") != 1 {
				t.Errorf("the truncation was not logged as a warning")
			}
			if fi, err := os.Stat(segs[0]); err != nil || fi.Size() != int64(len(b))-int64(10-tt.keep)*int64(recordLenOfLast(b)) {
				t.Errorf("segment after Open: %v bytes (err %v), want the torn part truncated", fi.Size(), err)
			}
			m := mustAppend(t, o, testMsg(Alert, 99))
			if m.Seq != 11 {
				t.Fatalf("Append after recovery: seq %d, want 11", m.Seq)
			}
			mustClose(t, o)
			o = open(t, Options{Dir: dir})
			checkMessages(t, peekAll(t, o), append(want[:tt.keep:tt.keep], m))
		})
	}
}

// recordLenOfLast returns the length of the last record of an undamaged
// segment holding testMsg records (all of one length here: the last).
func recordLenOfLast(b []byte) int {
	off := segHeaderLen
	last := 0
	for off+recPrefixLen <= len(b) {
		n := recPrefixLen + int(le.Uint32(b[off:]))
		if off+n > len(b) {
			break
		}
		last = n
		off += n
	}
	return last
}

func TestCorruptRecordInOlderSegmentSetAside(t *testing.T) {
	dir := t.TempDir()
	want := fill(t, dir, 1024, 40)
	segs := segFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("got %d segments, want at least 3", len(segs))
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	// Damage the payload of the third record of the oldest segment.
	off := segHeaderLen
	for range 2 {
		off += recPrefixLen + int(le.Uint32(b[off:]))
	}
	b[off+recPrefixLen+recFixedLen+3] ^= 0xff
	writeFile(t, segs[0], b)
	inFirst := 0
	for o := segHeaderLen; o < len(b); o += recPrefixLen + int(le.Uint32(b[o:])) {
		inFirst++
	}

	rec := &logRecorder{}
	o := open(t, Options{Dir: dir, SegmentBytes: 1024, SyncEvery: DefaultSyncEvery, Logger: slog.New(rec)})
	lost := want[2:inFirst]
	checkMessages(t, peekAll(t, o), append(want[:2:2], want[inFirst:]...))
	checkInvariants(t, o)
	aside := asideFiles(t, dir)
	if len(aside) != 1 {
		t.Fatalf("got %d files set aside, want 1", len(aside))
	}
	tail, err := os.ReadFile(aside[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tail, b[off:]) {
		t.Errorf("set-aside tail: %d bytes, want the %d bytes from the damaged record on", len(tail), len(b)-off)
	}
	if rec.count(slog.LevelError, "unreadable records") != 1 {
		t.Errorf("the damaged segment was not logged as an error")
	}
	t.Logf("%d records set aside", len(lost))
}

func TestUnreadableSegmentMovedAside(t *testing.T) {
	tests := []struct {
		name   string
		damage func(b []byte)
	}{
		{"unknown version", func(b []byte) {
			le.PutUint16(b[4:], 99)
			le.PutUint32(b[20:], checksum(b[:20]))
		}},
		{"header checksum", func(b []byte) { b[10] ^= 1 }},
		{"magic", func(b []byte) { copy(b, "JUNK") }},
		{"base seq not the name's", func(b []byte) {
			le.PutUint64(b[8:], 12345)
			le.PutUint32(b[20:], checksum(b[:20]))
		}},
		{"short header", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			want := fill(t, dir, 1024, 40)
			segs := segFiles(t, dir)
			b, err := os.ReadFile(segs[0])
			if err != nil {
				t.Fatal(err)
			}
			if tt.damage != nil {
				tt.damage(b)
			} else {
				b = b[:segHeaderLen-4]
			}
			writeFile(t, segs[0], b)
			// The unreadable file held the seqs below the next one's base.
			base, _ := parseSegName(filepath.Base(segs[1]))
			n0 := int(base - 1)

			rec := &logRecorder{}
			o := open(t, Options{Dir: dir, SegmentBytes: 1024, SyncEvery: DefaultSyncEvery, Logger: slog.New(rec)})
			checkMessages(t, peekAll(t, o), want[n0:])
			checkInvariants(t, o)
			aside := asideFiles(t, dir)
			if len(aside) != 1 || filepath.Dir(aside[0]) != dir {
				t.Fatalf("files set aside: %v, want one", aside)
			}
			if kept, err := os.ReadFile(aside[0]); err != nil || !bytes.Equal(kept, b) {
				t.Fatalf("the file set aside differs from the unreadable segment (err %v)", err)
			}
			if rec.count(slog.LevelError, "moved aside") != 1 {
				t.Errorf("moving the file aside was not logged as an error")
			}
			if st := o.Stats(); st.NextSeq != 41 {
				t.Errorf("NextSeq %d, want 41", st.NextSeq)
			}
			mustAppend(t, o, testMsg(Alert, 1))
		})
	}
}

func TestCorruptStateMovedAside(t *testing.T) {
	dir := t.TempDir()
	o := open(t, Options{Dir: dir, SyncEvery: DefaultSyncEvery})
	var want []Message
	for i := range 10 {
		want = append(want, mustAppend(t, o, testMsg(Telemetry, i)))
	}
	for seq := uint64(1); seq <= 5; seq++ {
		o.Ack(seq)
	}
	mustClose(t, o)
	state := filepath.Join(dir, stateName)
	b, _ := os.ReadFile(state)
	b[9] ^= 1
	writeFile(t, state, b)

	o = open(t, Options{Dir: dir})
	// Without the head, everything still on disk is delivered again.
	if got := seqsOf(peekAll(t, o)); len(got) < 5 || !slices.Equal(got[len(got)-5:], seqRange(6, 10)) {
		t.Fatalf("after losing the state: got %v, want at least 6..10", got)
	}
	if st := o.Stats(); st.NextSeq != 11 {
		t.Fatalf("NextSeq %d, want 11 (from the segments)", st.NextSeq)
	}
	if aside := asideFiles(t, dir); len(aside) != 1 {
		t.Fatalf("files set aside: %v, want the state file", aside)
	}
}

// NextSeq never goes back, even when every segment is gone (acknowledged
// and deleted) and only the state file knows it.
func TestNextSeqPersisted(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentBytes: 1024, SyncEvery: DefaultSyncEvery}
	o := open(t, opts)
	for i := range 50 {
		mustAppend(t, o, testMsg(Telemetry, i))
	}
	for seq := uint64(1); seq <= 50; seq++ {
		o.Ack(seq)
	}
	mustClose(t, o)
	o = open(t, opts)
	if err := o.Sync(); err != nil { // deletes the last, fully acknowledged segment
		t.Fatal(err)
	}
	if n := len(segFiles(t, dir)); n != 0 {
		t.Fatalf("%d segment files left, want 0", n)
	}
	mustClose(t, o)
	o = open(t, opts)
	if m := mustAppend(t, o, testMsg(Alert, 1)); m.Seq != 51 {
		t.Fatalf("seq %d after all segments were deleted, want 51", m.Seq)
	}
}

// Temporaries of a crash during a state write or compaction are removed; an
// empty segment file (a crash between creating it and writing its header)
// too.
func TestLeftoversRemoved(t *testing.T) {
	dir := t.TempDir()
	want := fill(t, dir, 0, 5)
	writeFile(t, filepath.Join(dir, stateName+tmpExt), []byte("half a state"))
	writeFile(t, filepath.Join(dir, segName(1)+".compact"+tmpExt), []byte("half a segment"))
	writeFile(t, filepath.Join(dir, segName(6)), nil)
	o := open(t, Options{Dir: dir, SyncEvery: time.Second})
	checkMessages(t, peekAll(t, o), want)
	if n := len(segFiles(t, dir)); n != 1 {
		t.Errorf("%d segment files, want 1", n)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*"+tmpExt)); len(tmps) != 0 {
		t.Errorf("temporaries left: %v", tmps)
	}
	// Seq 6 was never assigned, but the file name claims it; skipping it
	// costs nothing.
	if m := mustAppend(t, o, testMsg(Alert, 1)); m.Seq < 6 {
		t.Errorf("seq %d, want at least 6", m.Seq)
	}
}

package outbox

import (
	"path/filepath"
	"testing"
	"time"
)

// fuzzPrefix is a valid run of records for FuzzOpenSegment.
func fuzzPrefix() []Message {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var ms []Message
	for i := range 3 {
		m := testMsg(Class(i), i)
		m.Seq, m.Time = uint64(i+1), t0.Add(time.Duration(i)*time.Second)
		ms = append(ms, m)
	}
	return ms
}

// FuzzOpenSegment writes arbitrary bytes as a segment file and opens the
// outbox: it must not panic or fail, must deliver what it found in order,
// and must keep appending after it. The same bytes after a valid prefix of
// records must not cost that prefix.
func FuzzOpenSegment(f *testing.F) {
	prefix := fuzzPrefix()
	valid := buildSegment(1, prefix...)
	f.Add(valid)
	f.Add(valid[:len(valid)-5])
	f.Add(valid[segHeaderLen:])
	f.Add(encodeHeader(1))
	f.Add(encodeHeader(7))
	f.Add([]byte("FGOB\x02\x00garbage"))
	f.Add([]byte{})
	later := prefix[2]
	later.Seq = 1000
	f.Add(appendRecord(nil, &later))

	f.Fuzz(func(t *testing.T, data []byte) {
		// The bytes as a whole segment file.
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, segName(1)), data)
		o, err := Open(Options{Dir: dir, Logger: discard})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		got := peekAll(t, o)
		checkIncreasing(t, got)
		checkInvariants(t, o)
		next := o.Stats().NextSeq
		if len(got) > 0 && next <= got[len(got)-1].Seq {
			t.Fatalf("NextSeq %d not above the last seq found, %d", next, got[len(got)-1].Seq)
		}
		if m := mustAppend(t, o, testMsg(Alert, 1)); m.Seq != next {
			t.Fatalf("Append: seq %d, want %d", m.Seq, next)
		}
		mustClose(t, o)

		// The bytes after a valid prefix of records.
		dir = t.TempDir()
		writeFile(t, filepath.Join(dir, segName(1)), append(buildSegment(1, prefix...), data...))
		o, err = Open(Options{Dir: dir, Logger: discard})
		if err != nil {
			t.Fatalf("Open with a valid prefix: %v", err)
		}
		got = peekAll(t, o)
		checkIncreasing(t, got)
		if len(got) < len(prefix) {
			t.Fatalf("got %d messages, want at least the %d of the valid prefix", len(got), len(prefix))
		}
		for i := range prefix {
			if d := sameMessage(got[i], prefix[i]); d != "" {
				t.Fatalf("prefix message %d: %s", i, d)
			}
		}
		mustClose(t, o)
	})
}

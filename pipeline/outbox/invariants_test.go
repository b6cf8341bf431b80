package outbox

import (
	"os"
	"testing"
)

// checkInvariants recomputes the outbox's account from its index and files
// and compares it with the running totals.
func checkInvariants(t testing.TB, o *Outbox) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	var live int
	var retained, disk int64
	var prev uint64
	firstLive := uint64(0)
	for k, s := range o.segs {
		sl, st := 0, 0
		var drop int64
		for i := range s.n() {
			seq := s.seqAt(i)
			if seq <= prev {
				t.Fatalf("segment %d record %d: seq %d after %d", k, i, seq, prev)
			}
			prev = seq
			if s.meta[i]&flagDone == 0 {
				sl++
				if s.class(i) == Telemetry {
					st++
				}
				if firstLive == 0 {
					firstLive = seq
				}
			}
			if s.meta[i]&flagDropped != 0 {
				drop += s.recLen(i)
			}
		}
		if sl != s.live || st != s.liveTele || drop != s.dropBytes {
			t.Fatalf("segment %s: live %d tele %d dropBytes %d, counted %d %d %d", s.path, s.live, s.liveTele, s.dropBytes, sl, st, drop)
		}
		if fi, err := os.Stat(s.path); err != nil || fi.Size() != s.size {
			t.Fatalf("segment %s: size %d in the index, file: %v (err %v)", s.path, s.size, fi.Size(), err)
		}
		live += sl
		retained += s.retained()
		disk += s.size
	}
	if live != o.live || retained != o.retained || disk != o.diskBytes {
		t.Fatalf("totals: live %d retained %d disk %d, recomputed %d %d %d", o.live, o.retained, o.diskBytes, live, retained, disk)
	}
	want := o.nextSeq
	if firstLive != 0 {
		want = firstLive
	} else if len(o.pending) > 0 {
		want = o.pending[0].Seq
	}
	if o.head != want {
		t.Fatalf("head %d, want %d (the first live message)", o.head, want)
	}
}

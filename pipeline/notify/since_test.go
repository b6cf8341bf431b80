package notify

import (
	"fmt"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

// TestLedgerSince: the events after a seq, oldest first, in batches of at
// most max; nothing after the latest.
func TestLedgerSince(t *testing.T) {
	l := openLedger(t, t.TempDir(), newClock())
	if l.LastSeq() != 0 || len(l.Since(0, 10)) != 0 {
		t.Fatalf("empty ledger: last seq %d, since 0 %v; want nothing", l.LastSeq(), l.Since(0, 10))
	}
	var evs []alert.Event
	for i := range 7 {
		evs = append(evs, firing("power/ups-on-battery", fmt.Sprintf("ups-%d", i), alert.Critical, t0.Add(time.Duration(i)*time.Minute)))
	}
	got := record(t, l, evs...)
	last := got[len(got)-1].Seq
	if l.LastSeq() != last {
		t.Errorf("last seq: got %d, want %d", l.LastSeq(), last)
	}
	var seqs []uint64
	for after := got[0].Seq - 1; ; {
		batch := l.Since(after, 3)
		if len(batch) == 0 {
			break
		}
		if len(batch) > 3 {
			t.Fatalf("batch of %d, want at most 3", len(batch))
		}
		for _, e := range batch {
			seqs = append(seqs, e.Seq)
		}
		after = batch[len(batch)-1].Seq
	}
	if len(seqs) != 7 {
		t.Fatalf("since, in batches: got seqs %v, want all 7", seqs)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Errorf("since: seq %d after %d, want in order", seqs[i], seqs[i-1])
		}
	}
	if rest := l.Since(last, 0); len(rest) != 0 {
		t.Errorf("since the latest: got %v, want nothing", rest)
	}
}

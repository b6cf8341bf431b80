package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

// historyLines returns the decoded lines of the history file.
func historyLines(t *testing.T, dir string) []alert.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []alert.Event
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		var ev alert.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("history line %q: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

// TestLedgerKeepsHistoryOutOfItsFile: the ledger file holds no history;
// each change appends to the history file, which a reopen reads back.
func TestLedgerKeepsHistoryOutOfItsFile(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	l := openLedger(t, dir, c)
	a := firing("power/ups-on-battery", "ups-1", alert.Major, t0)
	record(t, l, a, firing("fire/smoke", "vesda-1", alert.Critical, t0))
	record(t, l, resolved(a, t0.Add(time.Minute)))
	b, err := os.ReadFile(filepath.Join(dir, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(`"recent"`)) || !bytes.Contains(b, []byte(`"version":2`)) {
		t.Errorf("ledger file: got %s, want version 2 without the history", b)
	}
	if got := seqs(historyLines(t, dir)); fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("history file: got seqs %v, want [1 2 3]", got)
	}
	l.Close()
	l2 := openLedger(t, dir, c)
	if got := seqs(l2.Recent(0)); fmt.Sprint(got) != "[3 2 1]" {
		t.Errorf("recent after reopen: got %v, want [3 2 1]", got)
	}
}

// TestLedgerHistoryAfterCrashes: a torn last line (a crash mid-append) and
// a line of a write whose ledger file never made it (its seq was never
// issued) are left out and the file rewritten; the seq is issued again to
// the next event, once.
func TestLedgerHistoryAfterCrashes(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	l := openLedger(t, dir, c)
	record(t, l, firing("power/ups-on-battery", "ups-1", alert.Major, t0), firing("power/ups-on-battery", "ups-2", alert.Major, t0))
	l.crash()
	ghost := firing("fire/smoke", "vesda-9", alert.Critical, t0)
	ghost.Seq = 3
	f, err := os.OpenFile(filepath.Join(dir, HistoryFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(append(ghost.Marshal(), '\n'))
	f.Write([]byte(`{"id":"torn","seq":4,"ki`))
	f.Close()
	rec := &logRecorder{}
	l2, err := OpenLedgerWith(LedgerOptions{Dir: dir, Log: slog.New(rec), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if !rec.has("history lines left out") {
		t.Errorf("log: got %v, want a warning about the lines left out", rec.msgs)
	}
	if got := seqs(historyLines(t, dir)); fmt.Sprint(got) != "[1 2]" {
		t.Errorf("history file after reopen: got seqs %v, want [1 2] (rewritten)", got)
	}
	got := record(t, l2, firing("cooling/supply-air-high", "crac-1", alert.Warning, t0))
	if got[0].Seq != 3 {
		t.Errorf("next seq: got %d, want 3 (the ghost's seq was never issued)", got[0].Seq)
	}
	if got := seqs(l2.Recent(0)); fmt.Sprint(got) != "[3 2 1]" {
		t.Errorf("recent: got %v, want [3 2 1] with seq 3 the new event", got)
	}
}

// TestLedgerHistoryCutOnFailedWrite: a ledger write that fails takes its
// history lines back.
func TestLedgerHistoryCutOnFailedWrite(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	l := openLedger(t, dir, c)
	record(t, l, firing("power/ups-on-battery", "ups-1", alert.Major, t0))
	l.mu.Lock()
	l.opts.beforeRename = func() error { return errors.New("disk full") }
	l.mu.Unlock()
	if _, err := l.Record([]alert.Event{firing("fire/smoke", "vesda-1", alert.Critical, t0)}); !errors.Is(err, ErrNotPersisted) {
		t.Fatalf("record: got %v, want ErrNotPersisted", err)
	}
	if got := seqs(historyLines(t, dir)); fmt.Sprint(got) != "[1]" {
		t.Errorf("history after the failed write: got seqs %v, want [1]", got)
	}
}

// TestLedgerHistoryCompacts: the history file is rewritten to the latest
// Recent events once it holds twice that, so it never grows without
// bound; what Recent returns is unchanged.
func TestLedgerHistoryCompacts(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	l, err := OpenLedgerWith(LedgerOptions{Dir: dir, Now: c.now, Recent: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 23 {
		record(t, l, firing("power/ups-on-battery", fmt.Sprintf("ups-%d", i), alert.Major, t0))
		if n := len(historyLines(t, dir)); n > 10 {
			t.Fatalf("after %d events: %d history lines, want at most 10", i+1, n)
		}
	}
	if got := seqs(l.Recent(0)); fmt.Sprint(got) != "[23 22 21 20 19]" {
		t.Errorf("recent: got %v, want the latest 5", got)
	}
}

// TestLedgerV1HistoryMoves: a version 1 ledger (history inside) keeps
// its history: written to the history file at open, and the next write
// is version 2.
func TestLedgerV1HistoryMoves(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(ledgerFixture, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, LedgerFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLedgerWith(LedgerOptions{Dir: dir, Now: func() time.Time { return t0.Add(7 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	want := len(fixtureEvents())
	if n := len(historyLines(t, dir)); n != want {
		t.Errorf("history file after opening v1: %d lines, want %d", n, want)
	}
	record(t, l, firing("cooling/supply-air-high", "crac-9", alert.Warning, t0.Add(7*time.Minute)))
	b, _ = os.ReadFile(filepath.Join(dir, LedgerFile))
	if !strings.Contains(string(b), `"version":2`) || strings.Contains(string(b), `"recent"`) {
		t.Errorf("ledger file after a write: got %s, want version 2 without the history", b)
	}
	if n := len(l.Recent(0)); n != want+1 {
		t.Errorf("recent: got %d events, want %d", n, want+1)
	}
}

// TestLedgerOrphanHistoryMovedAside: a history file without its ledger
// file (removed by hand) is moved aside, so the new ledger's events,
// numbered from 1 again, are not mixed with it.
func TestLedgerOrphanHistoryMovedAside(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	l := openLedger(t, dir, c)
	record(t, l, firing("power/ups-on-battery", "ups-1", alert.Major, t0), firing("power/ups-on-battery", "ups-2", alert.Major, t0))
	l.Close()
	if err := os.Remove(filepath.Join(dir, LedgerFile)); err != nil {
		t.Fatal(err)
	}
	l2 := openLedger(t, dir, c)
	record(t, l2, firing("fire/smoke", "vesda-1", alert.Critical, t0))
	if got := seqs(historyLines(t, dir)); fmt.Sprint(got) != "[1]" {
		t.Errorf("history of the new ledger: got seqs %v, want [1]", got)
	}
	if aside, _ := filepath.Glob(filepath.Join(dir, HistoryFile+".orphan-*")); len(aside) != 1 {
		t.Errorf("orphan history moved aside: got %v, want one file", aside)
	}
}

package notify

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

func TestLedgerPersistsAcrossReopen(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	l := openLedger(t, dir, c)
	a := firing("power/ups-on-battery", "ups-1", alert.Major, t0)
	b := firing("fire/smoke", "vesda-1", alert.Critical, t0.Add(time.Minute))
	recs := record(t, l, a, b)
	if got, want := seqs(recs), []uint64{1, 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("seqs: got %v, want %v", got, want)
	}
	record(t, l, resolved(a, t0.Add(2*time.Minute)))
	ack, err := l.Ack(b.ID, "alice", "on it", t0.Add(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.MarkDispatched(1); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l2 := openLedger(t, dir, c)
	active := l2.Active()
	if len(active) != 1 || active[0].ID != b.ID || active[0].Ack == nil || active[0].Ack.By != "alice" {
		t.Fatalf("active after reopen: got %+v, want episode %s acknowledged by alice", active, b.ID)
	}
	if !reflect.DeepEqual(active[0], ack) {
		t.Errorf("active event after reopen: got %+v, want the ack event %+v", active[0], ack)
	}
	if got, want := seqs(l2.Undispatched()), []uint64{2, 3, 4}; !reflect.DeepEqual(got, want) {
		t.Errorf("undispatched after reopen: got %v, want %v", got, want)
	}
	if got, want := seqs(l2.Recent(0)), []uint64{4, 3, 2, 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("recent after reopen: got %v, want %v", got, want)
	}
	if ev, ok := l2.Get(a.ID); !ok || ev.State != alert.Resolved {
		t.Errorf("get resolved episode: got %+v, %v, want its resolved event", ev, ok)
	}
	next := record(t, l2, firing("cooling/supply-hot", "crac-1", alert.Warning, t0.Add(4*time.Minute)))
	if next[0].Seq != 5 {
		t.Errorf("first seq after reopen: got %d, want 5", next[0].Seq)
	}
}

func TestLedgerWriteIsAtomic(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	l := openLedger(t, dir, c)
	a := firing("power/ups-on-battery", "ups-1", alert.Major, t0)
	record(t, l, a)
	before, err := os.ReadFile(filepath.Join(dir, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}

	crashed := errors.New("simulated crash before rename")
	l.mu.Lock()
	l.opts.beforeRename = func() error { return crashed }
	l.mu.Unlock()
	b := firing("fire/smoke", "vesda-1", alert.Critical, t0)
	if _, err := l.Record([]alert.Event{b}); !errors.Is(err, ErrNotPersisted) || !errors.Is(err, crashed) {
		t.Fatalf("record during a crash: got %v, want ErrNotPersisted wrapping the crash", err)
	}
	// Nothing was announced, so the ledger in memory must not hold it
	// either (its Seq would be handed out twice).
	if got := len(l.Active()); got != 1 {
		t.Errorf("active after a failed write: got %d episodes, want 1", got)
	}
	if _, err := os.Stat(filepath.Join(dir, LedgerFile+tmpSuffix)); err != nil {
		t.Fatalf("the simulated crash should leave the temp file: %v", err)
	}
	l.crash()

	after, err := os.ReadFile(filepath.Join(dir, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("ledger file changed by a write that crashed before its rename")
	}
	l2 := openLedger(t, dir, c)
	if _, err := os.Stat(filepath.Join(dir, LedgerFile+tmpSuffix)); !os.IsNotExist(err) {
		t.Errorf("temp file after reopen: got %v, want it removed", err)
	}
	if got := l2.Active(); len(got) != 1 || got[0].ID != a.ID {
		t.Errorf("active after reopen: got %+v, want only %s", got, a.ID)
	}
	if got := record(t, l2, b); got[0].Seq != 2 {
		t.Errorf("seq after reopen: got %d, want 2 (the crashed write assigned nothing)", got[0].Seq)
	}
}

func TestLedgerUnreadableFileMovedAside(t *testing.T) {
	valid := func(version int) string {
		b, _ := json.Marshal(map[string]any{"version": version, "next_seq": 42})
		return string(b)
	}
	resolvedActive := firing("fire/smoke", "vesda-1", alert.Critical, t0)
	resolvedActive.Seq = 3
	resolvedActive = resolved(resolvedActive, t0)
	inconsistent, _ := json.Marshal(map[string]any{"version": 1, "next_seq": 7, "active": []alert.Event{resolvedActive}})
	tests := []struct {
		name, content string
		wantNext      uint64
		wantReason    string
	}{
		{"garbage", "\x00\x01 not json", 1, "not a ledger file"},
		{"other version", valid(3), 42, "format version 3"},
		{"no version", `{"next_seq": 9}`, 9, "no version field"},
		{"inconsistent", string(inconsistent), 7, "active[0]"},
		{"seq beyond next", `{"version":1,"next_seq":2,"recent":[` + string(resolvedActive.Marshal()) + `]}`, 4, "not below next_seq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, c := t.TempDir(), newClock()
			path := filepath.Join(dir, LedgerFile)
			if err := os.WriteFile(path, []byte(tt.content), 0o640); err != nil {
				t.Fatal(err)
			}
			rec := &logRecorder{}
			l, err := OpenLedgerWith(LedgerOptions{Dir: dir, Log: slog.New(rec), Now: c.now})
			if err != nil {
				t.Fatalf("open: got %v, want an empty ledger", err)
			}
			defer l.Close()
			aside, _ := filepath.Glob(path + ".unreadable-*")
			if len(aside) != 1 {
				t.Fatalf("files moved aside: got %v, want one", aside)
			}
			if b, _ := os.ReadFile(aside[0]); string(b) != tt.content {
				t.Errorf("moved-aside file: got %q, want the original content", b)
			}
			if !rec.has("ERROR notify: ledger file unreadable") {
				t.Errorf("log: got %v, want an error about the unreadable file", rec.msgs)
			}
			if len(l.Active()) != 0 {
				t.Errorf("active: got %d, want an empty ledger", len(l.Active()))
			}
			got := record(t, l, firing("power/ups-on-battery", "ups-1", alert.Major, t0))
			if got[0].Seq != tt.wantNext {
				t.Errorf("first seq: got %d, want %d (salvaged from the old file)", got[0].Seq, tt.wantNext)
			}
			_, _, reason := decodeLedger([]byte(tt.content), DefaultRecent)
			if !strings.Contains(reason, tt.wantReason) {
				t.Errorf("reason: got %q, want it to contain %q", reason, tt.wantReason)
			}
		})
	}
}

func TestLedgerLocksItsDirectory(t *testing.T) {
	dir := t.TempDir()
	openLedger(t, dir, newClock())
	if l, err := OpenLedger(dir, nil); err == nil {
		l.Close()
		t.Fatal("second open of the same directory: got nil error, want it locked")
	} else if !strings.Contains(err.Error(), "locked") {
		t.Errorf("second open: got %v, want an error saying it is locked", err)
	}
}

func TestLedgerAck(t *testing.T) {
	c := newClock()
	l := openLedger(t, t.TempDir(), c)
	a := firing("power/ups-on-battery", "ups-1", alert.Major, t0)
	gone := firing("fire/smoke", "vesda-1", alert.Critical, t0)
	record(t, l, a, gone, resolved(gone, t0.Add(time.Minute)))

	ack, err := l.Ack(a.ID, "alice", "generator starting", t0.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := &alert.Ack{By: "alice", At: t0.Add(2 * time.Minute), Comment: "generator starting"}
	if ack.Kind != alert.KindAcknowledged || ack.State != alert.Firing || !reflect.DeepEqual(ack.Ack, want) || ack.Seq != 4 {
		t.Errorf("ack event: got kind %s state %s ack %+v seq %d, want acknowledged, firing, %+v, seq 4", ack.Kind, ack.State, ack.Ack, ack.Seq, want)
	}
	again, err := l.Ack(a.ID, "bob", "me too", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Seq != ack.Seq || again.Ack.By != "alice" {
		t.Errorf("second ack: got seq %d by %s, want the first ack (seq %d by alice) unchanged", again.Seq, again.Ack.By, ack.Seq)
	}
	if n := len(l.Undispatched()); n != 4 {
		t.Errorf("undispatched after a repeated ack: got %d, want 4 (no new event)", n)
	}

	// Later events of the episode carry the ack.
	upd := a
	upd.Summary = "still on battery"
	got := record(t, l, upd, resolved(a, t0.Add(5*time.Minute)))
	for _, ev := range got {
		if !reflect.DeepEqual(ev.Ack, want) {
			t.Errorf("%s event after the ack: got ack %+v, want %+v", ev.Kind, ev.Ack, want)
		}
	}

	errTests := []struct {
		name, id, by string
		wantIs       error
		wantMsg      string
	}{
		{"unknown", "nope", "alice", ErrUnknownEpisode, `"nope"`},
		{"resolved", gone.ID, "alice", nil, "already resolved"},
		{"no by", a.ID, " ", nil, "by is required"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Ack(tt.id, tt.by, "", time.Time{})
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
				t.Errorf("ack: got %v, want an error containing %q", err, tt.wantMsg)
			}
		})
	}
}

func TestLedgerResolvedEvents(t *testing.T) {
	l := openLedger(t, t.TempDir(), newClock())
	a := firing("power/ups-on-battery", "ups-1", alert.Major, t0)
	record(t, l, a, resolved(a, t0.Add(time.Minute)))

	if got := record(t, l, resolved(a, t0.Add(2*time.Minute))); len(got) != 0 {
		t.Errorf("duplicate resolved event: got %d recorded, want it dropped", len(got))
	}
	stranger := firing("power/ups-overload", "ups-2", alert.Major, t0)
	got := record(t, l, resolved(stranger, t0.Add(time.Minute)))
	if len(got) != 1 || got[0].Seq != 3 {
		t.Errorf("resolved event of an unknown episode: got %+v, want it recorded with seq 3", got)
	}
}

func TestLedgerRecentIsBounded(t *testing.T) {
	c := newClock()
	l, err := OpenLedgerWith(LedgerOptions{Dir: t.TempDir(), Recent: 5, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 12 {
		record(t, l, firing("power/ups-on-battery", "ups-1", alert.Major, t0.Add(time.Duration(i)*time.Hour)))
	}
	if got, want := seqs(l.Recent(0)), []uint64{12, 11, 10, 9, 8}; !reflect.DeepEqual(got, want) {
		t.Errorf("recent: got %v, want %v", got, want)
	}
	if got, want := seqs(l.Recent(2)), []uint64{12, 11}; !reflect.DeepEqual(got, want) {
		t.Errorf("recent(2): got %v, want %v", got, want)
	}
	if got := len(l.Active()); got != 12 {
		t.Errorf("active: got %d, want 12 (the bound is on history only)", got)
	}
}

func TestLedgerRejectsInvalidEvents(t *testing.T) {
	good := firing("power/ups-on-battery", "ups-1", alert.Major, t0)
	tests := []struct {
		name string
		edit func(*alert.Event)
		want string
	}{
		{"no id", func(e *alert.Event) { e.ID = "" }, "no episode id"},
		{"no rule", func(e *alert.Event) { e.Rule = "" }, "no rule"},
		{"pending", func(e *alert.Event) { e.State = alert.Pending }, `state "pending" is never delivered`},
		{"kind and state", func(e *alert.Event) { e.Kind = alert.KindResolved }, "kind resolved with state firing"},
		{"unknown kind", func(e *alert.Event) { e.Kind = "exploded" }, `unknown kind "exploded"`},
		{"severity", func(e *alert.Event) { e.Severity = 0 }, "severity severity(0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openLedger(t, t.TempDir(), newClock())
			bad := good
			tt.edit(&bad)
			_, err := l.Record([]alert.Event{good, bad})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "event 2 of 2") {
				t.Fatalf("record: got %v, want an error naming event 2 and %q", err, tt.want)
			}
			if n := len(l.Undispatched()); n != 0 {
				t.Errorf("undispatched: got %d, want 0 (the call records all or nothing)", n)
			}
		})
	}
}

func TestLedgerMarkDispatchedIsLazy(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	l := openLedger(t, dir, c)
	record(t, l,
		firing("power/ups-on-battery", "ups-1", alert.Major, t0),
		firing("power/ups-on-battery", "ups-2", alert.Major, t0),
		firing("power/ups-on-battery", "ups-3", alert.Major, t0))
	for _, s := range []uint64{1, 3, 3, 99} { // repeats and unknowns are no-ops
		if err := l.MarkDispatched(s); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := seqs(l.Undispatched()), []uint64{2}; !reflect.DeepEqual(got, want) {
		t.Errorf("undispatched: got %v, want %v", got, want)
	}
	l.crash()
	l = openLedger(t, dir, c)
	if got, want := seqs(l.Undispatched()), []uint64{1, 2, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("undispatched after a crash before Flush: got %v, want %v (re-dispatched, a tolerated duplicate)", got, want)
	}
	l.MarkDispatched(1)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	l.crash()
	l = openLedger(t, dir, c)
	if got, want := seqs(l.Undispatched()), []uint64{2, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("undispatched after Flush and a crash: got %v, want %v", got, want)
	}
}

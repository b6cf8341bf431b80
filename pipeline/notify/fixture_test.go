package notify

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

// updateFixtures rewrites the fixture of this build's format version
// (testdata/ledger-v<LedgerVersion>). The fixtures of earlier versions
// stay as they are: every later facgw is tested on reading them.
var updateFixtures = flag.Bool("update-fixtures", false, "rewrite the on-disk format fixtures in testdata/")

const (
	ledgerFixture   = "testdata/ledger-v1"
	ledgerFixtureV2 = "testdata/ledger-v2"
)

// fixtureEvents are what the fixture recorded: three episodes firing, one
// of them resolved; fixtureDispatched of them were handed to every path
// before the writer stopped.
func fixtureEvents() []alert.Event {
	a := firing("power/ups-on-battery", "ups-a", alert.Critical, t0)
	b := firing("fire/liion-offgas-alarm", "bms-rack1", alert.Critical, t0.Add(time.Minute))
	c := firing("cooling/supply-air-high", "crac-1", alert.Warning, t0.Add(2*time.Minute))
	return []alert.Event{a, b, c, resolved(a, t0.Add(5*time.Minute))}
}

const fixtureDispatched = 2

func TestWriteLedgerV1Fixture(t *testing.T) {
	writeLedgerFixture(t, 1, ledgerFixture)
}

func TestWriteLedgerV2Fixture(t *testing.T) {
	writeLedgerFixture(t, 2, ledgerFixtureV2)
}

// writeLedgerFixture records fixtureEvents into dir with this build, which
// must write format version.
func writeLedgerFixture(t *testing.T, version int, dir string) {
	if !*updateFixtures {
		t.Skip("rewrites " + dir + " only with -update-fixtures")
	}
	if LedgerVersion != version {
		t.Skipf("this build writes ledger version %d: %s must keep version %d's files", LedgerVersion, dir, version)
	}
	os.RemoveAll(dir)
	l, err := OpenLedgerWith(LedgerOptions{Dir: dir, Now: func() time.Time { return t0.Add(6 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	got := record(t, l, fixtureEvents()...)
	for _, ev := range got[:fixtureDispatched] {
		if err := l.MarkDispatched(ev.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The lock file is this process's, not part of the format.
	os.Remove(filepath.Join(dir, ledgerLock))
}

// recordingTarget is a path that takes every event at once.
type recordingTarget struct {
	mu  sync.Mutex
	evs []alert.Event
}

func (r *recordingTarget) Name() string { return "rec" }
func (r *recordingTarget) Kind() string { return "webhook" }
func (r *recordingTarget) Enqueue(ev alert.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	return nil
}
func (r *recordingTarget) Health() Health { return Health{Name: "rec", Kind: "webhook", Up: true} }

func (r *recordingTarget) got() []alert.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// TestDrainLedgerV1Fixture opens the version 1 ledger of testdata with
// this build: the open episodes come back, and the events recorded but
// not dispatched before the stop are handed to the paths again, in order,
// after which none is left undispatched.
func TestDrainLedgerV1Fixture(t *testing.T) { drainLedgerFixture(t, ledgerFixture) }

// TestDrainLedgerV2Fixture is the same for version 2 (the history in its
// own file).
func TestDrainLedgerV2Fixture(t *testing.T) { drainLedgerFixture(t, ledgerFixtureV2) }

func drainLedgerFixture(t *testing.T, fixture string) {
	dir := filepath.Join(t.TempDir(), "ledger")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(fixture)
	if err != nil || len(files) == 0 {
		t.Fatalf("fixture %s: %v; make it with go test -run 'TestWriteLedgerV.Fixture' -update-fixtures", fixture, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(fixture, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rec := &logRecorder{}
	l, err := OpenLedgerWith(LedgerOptions{Dir: dir, Log: slog.New(rec), Now: func() time.Time { return t0.Add(7 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if rec.has("moved aside") || rec.has("left out") {
		t.Fatalf("the %s ledger was moved aside or its history cut: %v", fixture, rec.msgs)
	}
	if n := len(l.Recent(0)); n != len(fixtureEvents()) {
		t.Errorf("history: got %d events, want the fixture's %d", n, len(fixtureEvents()))
	}
	want := fixtureEvents()
	var active []string
	for _, e := range l.Active() {
		active = append(active, e.ID)
	}
	slices.Sort(active)
	wantActive := []string{want[1].ID, want[2].ID}
	slices.Sort(wantActive)
	if !slices.Equal(active, wantActive) {
		t.Errorf("active episodes: got %v, want %v", active, wantActive)
	}
	und := l.Undispatched()
	if len(und) != len(want)-fixtureDispatched {
		t.Fatalf("undispatched: got %d events, want %d", len(und), len(want)-fixtureDispatched)
	}
	target := &recordingTarget{}
	d := NewDispatcher(l, []Target{target}, DispatcherOptions{Site: "pangyo-b3", Gateway: "gw-1", DegradedAfter: time.Hour,
		Now: func() time.Time { return t0.Add(7 * time.Minute) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for len(target.got()) < len(und) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	got := target.got()
	if len(got) < len(und) {
		t.Fatalf("re-dispatched: got %d events, want %d", len(got), len(und))
	}
	for i, w := range want[fixtureDispatched:] {
		if got[i].ID != w.ID || got[i].Kind != w.Kind || got[i].Seq != und[i].Seq {
			t.Errorf("re-dispatched event %d: got %s %s seq %d, want %s %s seq %d", i, got[i].ID, got[i].Kind, got[i].Seq, w.ID, w.Kind, und[i].Seq)
		}
	}
	if n := len(l.Undispatched()); n != 0 {
		t.Errorf("after the dispatcher ran: got %d undispatched events, want 0", n)
	}
}

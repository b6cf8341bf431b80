package notify

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

// numbered returns n firing events with Seqs 1..n, as the ledger would
// number them.
func numbered(n int) []alert.Event {
	evs := make([]alert.Event, n)
	for i := range evs {
		evs[i] = firing("power/ups-on-battery", "ups-1", alert.Major, t0.Add(time.Duration(i)*time.Minute))
		evs[i].Seq = uint64(i + 1)
	}
	return evs
}

func newTestPath(t *testing.T, dir string, s Sender, edit func(*PathOptions)) *Path {
	t.Helper()
	opts := PathOptions{Name: "test", Kind: "fake", Dir: dir, Sender: s, Log: testLog(t),
		BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Batch: 4}
	if edit != nil {
		edit(&opts)
	}
	p, err := NewPath(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// run starts p.Run and returns a function that stops it and checks it
// returned nil.
func run(t *testing.T, p *Path) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: got %v, want nil", err)
		}
	}
}

func TestPathRetriesAndKeepsOrder(t *testing.T) {
	tests := []struct {
		name      string
		failN     int
		retryable bool
	}{
		{"no failure", 0, true},
		{"three retryable failures", 3, true},
		{"one refusal", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeSender{failN: tt.failN, retryable: tt.retryable}
			rec := &logRecorder{}
			p := newTestPath(t, t.TempDir(), s, func(o *PathOptions) {
				o.SlowRetry = 20 * time.Millisecond
				o.Log = slog.New(rec)
			})
			want := numbered(10)
			for _, ev := range want {
				if err := p.Enqueue(ev); err != nil {
					t.Fatal(err)
				}
			}
			if h := p.Health(); h.Depth != 10 || h.Oldest.IsZero() {
				t.Errorf("health before run: got depth %d oldest %v, want 10 and a time", h.Depth, h.Oldest)
			}
			stop := run(t, p)
			waitFor(t, "10 events delivered", func() bool { return len(s.received()) >= 10 })
			stop()
			got := s.received()
			if !reflect.DeepEqual(seqs(got), seqs(want)) {
				t.Errorf("delivered seqs: got %v, want %v (in order, each once)", seqs(got), seqs(want))
			}
			if !reflect.DeepEqual(got[3], want[3]) {
				t.Errorf("delivered event: got %+v, want %+v", got[3], want[3])
			}
			h := p.Health()
			if !h.Up || h.Depth != 0 || h.Delivered != 10 || h.Failures != uint64(tt.failN) || h.LastOK.IsZero() {
				t.Errorf("health: got %+v, want up, depth 0, delivered 10, failures %d", h, tt.failN)
			}
			if tt.failN > 0 && h.LastError == "" {
				t.Errorf("health: got no last error, want the failure kept")
			}
			if !tt.retryable && !rec.has("ERROR notify: destination refused alerts") {
				t.Errorf("log: got %v, want an error about the refusal", rec.msgs)
			}
		})
	}
}

func TestPathHealthWhileDown(t *testing.T) {
	s := &fakeSender{failN: 1 << 30, retryable: true}
	p := newTestPath(t, t.TempDir(), s, nil)
	for _, ev := range numbered(3) {
		if err := p.Enqueue(ev); err != nil {
			t.Fatal(err)
		}
	}
	stop := run(t, p)
	defer stop()
	waitFor(t, "a failed attempt", func() bool { return !p.Health().Up })
	h := p.Health()
	if h.Depth != 3 || h.DownSince.IsZero() || h.LastError == "" || h.Delivered != 0 {
		t.Errorf("health while down: got %+v, want depth 3, down since, an error, nothing delivered", h)
	}
	s.setFail(0, true)
	waitFor(t, "recovery", func() bool { h := p.Health(); return h.Up && h.Depth == 0 })
	if h := p.Health(); !h.DownSince.IsZero() || h.Delivered != 3 {
		t.Errorf("health after recovery: got %+v, want no down-since, 3 delivered", h)
	}
}

func TestPathRestartDeliversQueuedEvents(t *testing.T) {
	dir := t.TempDir()
	first := &fakeSender{failN: 1 << 30, retryable: true}
	p := newTestPath(t, dir, first, nil)
	want := numbered(6)
	for _, ev := range want {
		if err := p.Enqueue(ev); err != nil {
			t.Fatal(err)
		}
	}
	stop := run(t, p)
	waitFor(t, "a failed attempt", func() bool { return first.callCount() > 0 })
	stop()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Enqueue(want[0]); !errors.Is(err, ErrPathClosed) {
		t.Errorf("enqueue after close: got %v, want ErrPathClosed", err)
	}
	if err := p.Run(t.Context()); !errors.Is(err, ErrPathClosed) {
		t.Errorf("run after close: got %v, want ErrPathClosed", err)
	}

	second := &fakeSender{}
	p2 := newTestPath(t, dir, second, nil)
	if d := p2.Health().Depth; d != 6 {
		t.Errorf("depth after reopen: got %d, want 6", d)
	}
	stop = run(t, p2)
	waitFor(t, "queued events delivered after the restart", func() bool { return len(second.received()) >= 6 })
	stop()
	if got := seqs(second.received()); !reflect.DeepEqual(got, seqs(want)) {
		t.Errorf("delivered after restart: got %v, want %v", got, seqs(want))
	}
}

func TestPathResendsAndProbesWhenIdle(t *testing.T) {
	s := &resendingSender{}
	s.every = 10 * time.Millisecond
	active := numbered(2)
	p := newTestPath(t, t.TempDir(), s, func(o *PathOptions) {
		o.Active = func() []alert.Event { return active }
		o.ProbeEvery = 10 * time.Millisecond
	})
	stop := run(t, p)
	defer stop()
	waitFor(t, "three re-sends", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.resent) >= 3
	})
	s.mu.Lock()
	if !reflect.DeepEqual(seqs(s.resent[0]), []uint64{1, 2}) {
		t.Errorf("re-sent: got %v, want the active alerts 1, 2", seqs(s.resent[0]))
	}
	s.probeErr = errors.New("fake: no route to host")
	s.mu.Unlock()
	waitFor(t, "a failed probe to mark the idle path down", func() bool { return !p.Health().Up })
	if h := p.Health(); h.LastError != "fake: no route to host" {
		t.Errorf("last error: got %q, want the probe's", h.LastError)
	}
	s.mu.Lock()
	s.probeErr = nil
	s.mu.Unlock()
	waitFor(t, "a good probe to mark it up", func() bool { return p.Health().Up })
}

func TestNewPathChecksOptions(t *testing.T) {
	tests := []struct {
		name string
		opts PathOptions
		want string
	}{
		{"no name", PathOptions{Kind: "x", Dir: "d", Sender: &fakeSender{}}, "notify: path: no name"},
		{"no sender", PathOptions{Name: "am", Kind: "x", Dir: "d"}, `notify: path "am": kind, dir and sender are required`},
		{"no dir", PathOptions{Name: "am", Kind: "x", Sender: &fakeSender{}}, `notify: path "am": kind, dir and sender are required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewPath(tt.opts); err == nil || err.Error() != tt.want {
				t.Errorf("new path: got %v, want %q", err, tt.want)
			}
		})
	}
}

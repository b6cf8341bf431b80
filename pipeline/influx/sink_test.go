package influx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/pipeline/outbox"
)

// fakeDB is an InfluxDB v2 write endpoint whose answers a test chooses.
type fakeDB struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []fakeRequest
	answer   func(body string) int // status for a write; nil: 204
}

type fakeRequest struct {
	path, org, bucket, precision, auth, body string
}

func newFakeDB(t *testing.T) *fakeDB {
	f := &fakeDB{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDB) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ping" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	b, _ := io.ReadAll(r.Body)
	q := r.URL.Query()
	req := fakeRequest{r.URL.Path, q.Get("org"), q.Get("bucket"), q.Get("precision"), r.Header.Get("Authorization"), string(b)}
	f.mu.Lock()
	answer := f.answer
	f.mu.Unlock()
	status := http.StatusNoContent
	if answer != nil {
		status = answer(req.body)
	}
	switch status {
	case -1: // drop the connection without an answer
		hj, _ := w.(http.Hijacker)
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
		}
		return
	case http.StatusNoContent:
		f.mu.Lock()
		f.requests = append(f.requests, req)
		f.mu.Unlock()
		w.WriteHeader(status)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"code":"invalid","message":"status %d"}`, status)
	}
}

func (f *fakeDB) setAnswer(a func(body string) int) {
	f.mu.Lock()
	f.answer = a
	f.mu.Unlock()
}

// accepted returns the requests answered 204.
func (f *fakeDB) accepted() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

// acceptedLines returns every line accepted, in order.
func (f *fakeDB) acceptedLines() []string {
	var lines []string
	for _, r := range f.accepted() {
		lines = append(lines, strings.Split(r.body, "\n")...)
	}
	return lines
}

func testConfig(url, dir string) Config {
	return Config{
		URL: url, Org: "facility", Bucket: "history", Token: "tok",
		Site: "pangyo-b3", Gateway: "gw-1",
		FlushInterval: 5 * time.Millisecond, Timeout: 2 * time.Second,
		Backoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Outbox: outbox.Options{Dir: dir, SyncEvery: outbox.DefaultSyncEvery},
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// startSink opens a sink and runs it until the test ends.
func startSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	runSink(t, s)
	return s
}

// runSink runs s in a goroutine; the test's cleanup stops it and closes s.
func runSink(t *testing.T, s *Sink) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// waitFor polls cond until it holds, failing the test after a generous
// bound. Only the outcome is checked, never how long it took.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// poll returns a UPS poll's points at time at.
func poll(device string, at time.Time, charge float64) []point.Point {
	return []point.Point{
		{Device: device, Name: "battery.charge", Kind: point.Number, Num: charge, Unit: "%", Time: at},
		{Device: device, Name: "output.on", Kind: point.Bool, Num: 1, Time: at},
		{Device: device, Name: "ups.status", Kind: point.Enum, Num: 2, Str: "online", Time: at},
		{Device: device, Name: "input.voltage", Kind: point.Number, Num: 0, Time: at, Quality: point.Bad, Reason: point.ReasonTimeout},
	}
}

func TestSinkWrites(t *testing.T) {
	db := newFakeDB(t)
	s := startSink(t, testConfig(db.srv.URL, t.TempDir()))
	for i := range 3 {
		if err := s.Write("ups", poll("ups-1", t0.Add(time.Duration(i)*time.Second), float64(90+i))); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	waitFor(t, "3 lines written", func() bool { return s.Stats().Lines == 3 })

	want := []string{
		`ups,device=ups-1,gateway=gw-1,site=pangyo-b3 battery_charge=90,input_voltage_quality="bad",output_on=true,ups_status=2 1728973800123456789`,
		`ups,device=ups-1,gateway=gw-1,site=pangyo-b3 battery_charge=91,input_voltage_quality="bad",output_on=true,ups_status=2 1728973801123456789`,
		`ups,device=ups-1,gateway=gw-1,site=pangyo-b3 battery_charge=92,input_voltage_quality="bad",output_on=true,ups_status=2 1728973802123456789`,
	}
	if got := db.acceptedLines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines written:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range db.accepted() {
		if r.path != "/api/v2/write" || r.org != "facility" || r.bucket != "history" || r.precision != "ns" || r.auth != "Token tok" {
			t.Errorf("request %+v: want POST /api/v2/write?org=facility&bucket=history&precision=ns with Token auth", r)
		}
	}
	st := s.Stats()
	if !st.Connected || !st.Healthy || st.LastError != "" {
		t.Errorf("stats %+v: want connected, healthy, no error", st)
	}
	if st.Points != 12 || st.Rejected != 0 || st.Latency <= 0 {
		t.Errorf("stats: %d points, %d rejected, latency %v; want 12, 0, > 0", st.Points, st.Rejected, st.Latency)
	}
	waitFor(t, "outbox empty", func() bool { return s.Stats().Outbox.Depth == 0 })
}

// TestSinkBatches checks that messages waiting together are joined into
// writes of at most BatchSize lines, without splitting a message.
func TestSinkBatches(t *testing.T) {
	db := newFakeDB(t)
	cfg := testConfig(db.srv.URL, t.TempDir())
	cfg.BatchSize = 4
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// Queued before Run starts, as after an outage: 5 polls of 1 line and
	// one poll of 2 devices (2 lines).
	for i := range 5 {
		if err := s.Write("ups", poll("ups-1", t0.Add(time.Duration(i)*time.Second), 50)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Write("ups", append(poll("ups-1", t1, 1), poll("ups-2", t1, 2)...)); err != nil {
		t.Fatal(err)
	}
	runSink(t, s)
	waitFor(t, "7 lines written", func() bool { return s.Stats().Lines == 7 })
	var sizes []int
	for _, r := range db.accepted() {
		sizes = append(sizes, strings.Count(r.body, "\n")+1)
	}
	if fmt.Sprint(sizes) != "[4 3]" {
		t.Errorf("write sizes %v lines, want [4 3]", sizes)
	}
}

// TestSinkRetries checks that connection errors, 5xx, 429 and auth errors
// are retried until they succeed, in order and without loss.
func TestSinkRetries(t *testing.T) {
	for _, status := range []int{-1, 500, 503, 429, 401, 404} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			db := newFakeDB(t)
			var fails atomic.Int32
			db.setAnswer(func(string) int {
				if fails.Add(1) <= 3 {
					return status
				}
				return http.StatusNoContent
			})
			s := startSink(t, testConfig(db.srv.URL, t.TempDir()))
			for i := range 5 {
				if err := s.Write("ups", poll("ups-1", t0.Add(time.Duration(i)*time.Second), float64(i))); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "5 lines written", func() bool { return s.Stats().Lines == 5 })
			lines := db.acceptedLines()
			for i, l := range lines {
				if want := fmt.Sprintf("battery_charge=%d,", i); !strings.Contains(l, want) {
					t.Errorf("line %d = %q, want %s (in order)", i, l, want)
				}
			}
			st := s.Stats()
			if st.Failures < 3 || st.Rejected != 0 {
				t.Errorf("stats: %d failures, %d rejected; want >= 3, 0", st.Failures, st.Rejected)
			}
		})
	}
}

// TestSinkRejectsBadData checks that a batch the database refuses as bad
// data does not block the queue: the batch is split until the refused polls
// are found, those are dropped and counted, the others are written.
func TestSinkRejectsBadData(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			db := newFakeDB(t)
			db.setAnswer(func(body string) int {
				if strings.Contains(body, "device=broken") {
					return status
				}
				return http.StatusNoContent
			})
			s, err := New(testConfig(db.srv.URL, t.TempDir()), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			// Queued together, so the first write carries them all.
			for _, dev := range []string{"ups-1", "broken", "ups-2", "ups-3", "broken"} {
				if err := s.Write("ups", poll(dev, t0, 1)); err != nil {
					t.Fatal(err)
				}
			}
			runSink(t, s)
			waitFor(t, "3 lines written and 2 rejected", func() bool {
				st := s.Stats()
				return st.Lines == 3 && st.Rejected == 2
			})
			// The queue still moves.
			if err := s.Write("ups", poll("ups-4", t0, 1)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the next poll written", func() bool { return s.Stats().Lines == 4 })
			var devices []string
			for _, l := range db.acceptedLines() {
				devices = append(devices, strings.Split(strings.Split(l, ",")[1], "=")[1])
			}
			if fmt.Sprint(devices) != "[ups-1 ups-2 ups-3 ups-4]" {
				t.Errorf("devices written %v, want [ups-1 ups-2 ups-3 ups-4]", devices)
			}
			if st := s.Stats(); st.RejectedPoints != 8 {
				t.Errorf("rejected points %d, want 8", st.RejectedPoints)
			}
			waitFor(t, "outbox empty", func() bool { return s.Stats().Outbox.Depth == 0 })
		})
	}
}

// TestSinkFlushInterval checks a partial batch waits for more lines: with
// a flush interval that never ends, the write goes when BatchSize lines are
// waiting, as one request.
func TestSinkFlushInterval(t *testing.T) {
	db := newFakeDB(t)
	cfg := testConfig(db.srv.URL, t.TempDir())
	cfg.BatchSize, cfg.FlushInterval = 3, time.Hour
	s := startSink(t, cfg)
	for i := range 3 {
		if err := s.Write("ups", poll("ups-1", t0.Add(time.Duration(i)*time.Second), 1)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "3 lines written", func() bool { return s.Stats().Lines == 3 })
	if n := len(db.accepted()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestSinkOutage checks the sink's state while the database is away and
// that nothing written meanwhile is lost.
func TestSinkOutage(t *testing.T) {
	db := newFakeDB(t)
	var down atomic.Bool
	down.Store(true)
	db.setAnswer(func(string) int {
		if down.Load() {
			return -1
		}
		return http.StatusNoContent
	})
	s := startSink(t, testConfig(db.srv.URL, t.TempDir()))
	for i := range 10 {
		if err := s.Write("ups", poll("ups-1", t0.Add(time.Duration(i)*time.Second), float64(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a failed write", func() bool { return s.Stats().Failures > 0 })
	st := s.Stats()
	if st.Connected || st.Healthy || st.LastError == "" || st.Outbox.Depth == 0 {
		t.Errorf("during outage: connected %v, healthy %v, last error %q, outbox depth %v; want false, false, an error, > 0",
			st.Connected, st.Healthy, st.LastError, st.Outbox.Depth)
	}
	down.Store(false)
	waitFor(t, "10 lines written", func() bool { return s.Stats().Lines == 10 })
	if st := s.Stats(); !st.Connected || !st.Healthy || st.LastError != "" {
		t.Errorf("after outage: %+v; want connected, healthy", st)
	}
}

// TestSinkUnreachable checks a database that refuses connections is a
// runtime state (Stats), not an error of New, Write or Run.
func TestSinkUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	s := startSink(t, testConfig("http://"+addr, t.TempDir()))
	if err := s.Write("ups", poll("ups-1", t0, 1)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	waitFor(t, "a failed write", func() bool { return s.Stats().Failures > 0 })
	st := s.Stats()
	if st.Connected || !strings.Contains(st.LastError, "refused") {
		t.Errorf("connected %v, last error %q; want false, connection refused", st.Connected, st.LastError)
	}
}

// TestSinkPersists checks points written while no Run drains them survive
// a restart of the sink (the outbox is on disk).
func TestSinkPersists(t *testing.T) {
	db := newFakeDB(t)
	cfg := testConfig(db.srv.URL, t.TempDir())
	s1, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := s1.Write("battery", poll("bms-1", t0.Add(time.Duration(i)*time.Second), 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := startSink(t, cfg)
	waitFor(t, "4 lines written", func() bool { return s2.Stats().Lines == 4 })
}

// TestSinkTimeout checks a database that does not answer in time is
// retried.
func TestSinkTimeout(t *testing.T) {
	db := newFakeDB(t)
	var slow atomic.Int32
	release := make(chan struct{})
	db.setAnswer(func(string) int {
		if slow.Add(1) == 1 {
			<-release
		}
		return http.StatusNoContent
	})
	cfg := testConfig(db.srv.URL, t.TempDir())
	cfg.Timeout = 100 * time.Millisecond
	s := startSink(t, cfg)
	defer close(release)
	if err := s.Write("ups", poll("ups-1", t0, 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "1 line written", func() bool { return s.Stats().Lines == 1 })
	if st := s.Stats(); st.Failures == 0 {
		t.Errorf("failures %d, want the timed-out write counted", st.Failures)
	}
}

func TestNewConfigErrors(t *testing.T) {
	for _, u := range []string{"", "localhost:8086", "ftp://host", "http://", "http://h\x7f"} {
		if _, err := New(Config{URL: u, Outbox: outbox.Options{Dir: t.TempDir()}}, nil); err == nil {
			t.Errorf("New with url %q: no error", u)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	db := newFakeDB(t)
	s, err := New(testConfig(db.srv.URL, t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write("", poll("ups-1", t0, 1)); !errors.Is(err, ErrMeasurement) {
		t.Errorf("Write with empty class: %v, want ErrMeasurement", err)
	}
	if err := s.Write("ups", nil); err != nil {
		t.Errorf("Write of no points: %v", err)
	}
	if d := s.Stats().Outbox.Depth; d != 0 {
		t.Errorf("outbox depth %v, want 0", d)
	}
}

func TestConfigLogValue(t *testing.T) {
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "cfg", Config{URL: "http://writer:pa55word@db:8086", Token: "s3cret"})
	if strings.Contains(b.String(), "s3cret") || !strings.Contains(b.String(), "<secret>") {
		t.Errorf("log %q shows the token", b.String())
	}
	if strings.Contains(b.String(), "pa55word") || !strings.Contains(b.String(), "writer") {
		t.Errorf("log %q shows the password in the url (or not the url)", b.String())
	}
}

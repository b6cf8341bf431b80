package influx

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/testpeer"
)

// victoria is a VictoriaMetrics started for one test.
type victoria struct {
	proc *testpeer.Process
	url  string
}

func startVictoria(t testing.TB) *victoria {
	t.Helper()
	url, p := testpeer.StartVictoriaMetrics(t)
	return &victoria{proc: p, url: url}
}

// series is one object of /api/v1/export.
type series struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"` // ms
}

// export flushes VictoriaMetrics' buffers and returns every series of
// device, by metric name.
func (v *victoria) export(t testing.TB, device string) map[string]series {
	t.Helper()
	resp, err := http.Post(v.url+"/internal/force_flush", "", nil)
	if err != nil {
		t.Fatalf("force_flush: %v", err)
	}
	resp.Body.Close()
	q := url.Values{
		"match[]": {fmt.Sprintf(`{device=%q}`, device)},
		"end":     {strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)},
	}
	resp, err = http.Get(v.url + "/api/v1/export?" + q.Encode())
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: status %d", resp.StatusCode)
	}
	out := map[string]series{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var s series
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		out[s.Metric["__name__"]] = s
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("export: %v", err)
	}
	return out
}

// valuesAt returns a series' values by timestamp (ms).
func (s series) valuesAt() map[int64]float64 {
	m := make(map[int64]float64, len(s.Timestamps))
	for i, ts := range s.Timestamps {
		m[ts] = s.Values[i]
	}
	return m
}

func TestSinkIntegration(t *testing.T) {
	vm := startVictoria(t)
	cfg := testConfig(vm.url, t.TempDir())
	cfg.Token = "any"
	s := startSink(t, cfg)
	const dev = "ups it,1" // exercises tag escaping end to end

	// VictoriaMetrics keeps milliseconds; poll times are whole ms, recent
	// (so inside any retention).
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	write := func(i int) {
		t.Helper()
		pts := []point.Point{
			{Device: dev, Name: "battery.charge", Kind: point.Number, Num: 50 + float64(i)/4, Time: at(i)},
			{Device: dev, Name: "output.on", Kind: point.Bool, Num: float64(i % 2), Time: at(i)},
			{Device: dev, Name: "ups.status", Kind: point.Enum, Num: 3, Str: "on battery", Time: at(i)},
			{Device: dev, Name: "input.voltage", Kind: point.Number, Num: 231, Time: at(i), Quality: point.Bad, Reason: point.ReasonTimeout},
			{Device: dev, Name: "battery.temp", Kind: point.Number, Num: math.NaN(), Time: at(i)},
		}
		if err := s.Write("ups", pts); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
	}

	// Phase 1: the database is up.
	for i := range 10 {
		write(i)
	}
	waitFor(t, "phase 1 written", func() bool { return s.Stats().Lines == 10 })
	got := vm.export(t, dev)
	charge, ok := got["ups_battery_charge"]
	if !ok {
		t.Fatalf("no series ups_battery_charge; got %v", keys(got))
	}
	for k, want := range map[string]string{"device": dev, "gateway": "gw-1", "site": "pangyo-b3"} {
		if charge.Metric[k] != want {
			t.Errorf("label %s = %q, want %q", k, charge.Metric[k], want)
		}
	}
	for i := range 10 {
		ms := at(i).UnixMilli()
		if v, ok := charge.valuesAt()[ms]; !ok || v != 50+float64(i)/4 {
			t.Errorf("battery_charge at poll %d: %v (present %v), want %v", i, v, ok, 50+float64(i)/4)
		}
		if v := got["ups_output_on"].valuesAt()[ms]; v != float64(i%2) {
			t.Errorf("output_on at poll %d: %v, want %v", i, v, i%2)
		}
		if v := got["ups_ups_status"].valuesAt()[ms]; v != 3 {
			t.Errorf("ups_status at poll %d: %v, want 3", i, v)
		}
	}
	// A bad point's value and a NaN never become samples.
	for _, name := range []string{"ups_input_voltage", "ups_battery_temp"} {
		if s, ok := got[name]; ok {
			t.Errorf("series %s exists (%v): a value that is not a reading was written", name, s.Values)
		}
	}

	// missing returns the polls of from..to-1 that VictoriaMetrics does not
	// hold with the value written.
	missing := func(from, to int) []int {
		t.Helper()
		vals := vm.export(t, dev)["ups_battery_charge"].valuesAt()
		var out []int
		for i := from; i < to; i++ {
			if v, ok := vals[at(i).UnixMilli()]; !ok || v != 50+float64(i)/4 {
				out = append(out, i)
			}
		}
		return out
	}
	// outage takes the database away with stop, writes polls from..to-1
	// meanwhile, restarts it, writes five more and waits until the sink has
	// delivered everything.
	outage := func(stop func(), from, to int) {
		t.Helper()
		stop()
		for i := from; i < to; i++ {
			write(i)
		}
		waitFor(t, "a failed write", func() bool { return !s.Stats().Connected })
		if d := s.Stats().Outbox.Depth; d == 0 {
			t.Errorf("outbox depth %v during the outage, want > 0", d)
		}
		vm.proc.Restart()
		for i := to; i < to+5; i++ {
			write(i)
		}
		waitFor(t, "everything written", func() bool {
			st := s.Stats()
			return st.Lines == uint64(to+5) && st.Outbox.Depth == 0
		})
	}

	// Phase 2: the database shuts down, polls go on, it comes back:
	// nothing is lost.
	outage(vm.proc.Stop, 10, 20)
	if m := missing(0, 25); len(m) > 0 {
		t.Errorf("after a shutdown of the database, polls %v are missing or wrong", m)
	}

	// Phase 3: the database crashes (SIGKILL). Everything written from the
	// crash on must arrive. What the database had acknowledged just before
	// is its own business: VictoriaMetrics 1.79 loses the last seconds of
	// accepted samples on SIGKILL, even after /internal/force_flush.
	outage(vm.proc.Kill, 25, 40)
	if m := missing(25, 45); len(m) > 0 {
		t.Errorf("after a crash of the database, polls %v are missing or wrong", m)
	}
	if m := missing(0, 25); len(m) > 0 {
		t.Logf("VictoriaMetrics lost polls %v it had accepted before it was killed", m)
	}
	if st := s.Stats(); !st.Connected || !st.Healthy || st.Rejected != 0 {
		t.Errorf("after the outages: %+v; want connected, healthy, nothing rejected", st)
	}
}

// TestPingIntegration checks Stats reports a reachable database before any
// write (the client's Health fails against VictoriaMetrics; Ping works).
func TestPingIntegration(t *testing.T) {
	vm := startVictoria(t)
	s := startSink(t, testConfig(vm.url, t.TempDir()))
	waitFor(t, "connected", func() bool { return s.Stats().Connected })
}

func keys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

// BenchmarkSinkIntegration measures points per second from Write to
// VictoriaMetrics' acceptance, through the outbox on disk.
func BenchmarkSinkIntegration(b *testing.B) {
	vm := startVictoria(b)
	cfg := testConfig(vm.url, b.TempDir())
	cfg.FlushInterval = 100 * time.Millisecond
	s, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		s.Close()
	}()

	const perPoll = 40
	const devices = 10
	pts := make([]point.Point, perPoll)
	for i := range pts {
		pts[i] = point.Point{Name: fmt.Sprintf("cell.group%02d.voltage", i), Kind: point.Number, Num: 3.3}
	}
	base := time.Now().Add(-time.Hour)
	b.ResetTimer()
	start := time.Now()
	for n := range b.N {
		for i := range pts {
			pts[i].Device = fmt.Sprintf("bench-%d", n%devices)
			pts[i].Time = base.Add(time.Duration(n) * time.Millisecond)
			pts[i].Num += 0.001
		}
		if err := s.Write("battery", pts); err != nil {
			b.Fatal(err)
		}
	}
	// Until VictoriaMetrics has accepted everything.
	for s.Stats().Lines < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*perPoll)/time.Since(start).Seconds(), "points/s")
}

package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/testpeer"
	"github.com/facgw/facgw/pipeline/notify"
	"github.com/facgw/facgw/pipeline/notify/webhook"
)

func msList(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func seqMs(from, to int) []time.Duration {
	var ms []int
	for i := to; i >= from; i-- { // reversed: summarize sorts
		ms = append(ms, i)
	}
	return msList(ms...)
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want summary
	}{
		{"none", nil, summary{}},
		{"one", msList(7), summary{N: 1, Median: 7 * ms, P90: 7 * ms, P99: 7 * ms, Max: 7 * ms}},
		{"1..100", seqMs(1, 100), summary{N: 100, Median: 50 * ms, P90: 90 * ms, P99: 99 * ms, Max: 100 * ms}},
		// Nearest rank: the p99 of 200 samples is the third largest.
		{"1..200", seqMs(1, 200), summary{N: 200, Median: 100 * ms, P90: 180 * ms, P99: 198 * ms, Max: 200 * ms}},
		{"outlier", msList(5, 5, 5, 900), summary{N: 4, Median: 5 * ms, P90: 900 * ms, P99: 900 * ms, Max: 900 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := summarize(tc.in); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAlarmSeqs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		want    []uint64
		wantErr string
	}{
		{"alarm events only", `[{"labels":{"rule":"bench/alarm"},"annotations":{"seq":"501"}},
			{"labels":{"rule":"gateway/delivery-path-degraded"},"annotations":{"seq":"502"}},
			{"labels":{"rule":"bench/alarm"},"annotations":{"seq":"503"}}]`, []uint64{501, 503}, ""},
		{"none", `[]`, nil, ""},
		{"bad seq", `[{"labels":{"rule":"bench/alarm"},"annotations":{"seq":"x"}}]`, nil, `alert 0: seq annotation "x"`},
		{"not an array", `{}`, nil, "alertmanager body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := alarmSeqs([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestWebhookReceiverVerifiesSignatures(t *testing.T) {
	at := time.Now().Add(-time.Second)
	ev := alert.Event{ID: "e1", Seq: 9, Kind: alert.KindFiring, State: alert.Firing, Rule: alarmRule, Severity: alert.Critical, At: at}
	body, err := json.Marshal(webhook.Body{Version: 1, Events: []alert.Event{ev}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		secret     string
		body       []byte
		wantStatus int
		wantGot    bool
	}{
		{"signed with the secret", "s3cret", body, http.StatusNoContent, true},
		{"another secret", "other", body, http.StatusUnauthorized, false},
		{"body changed after signing", "s3cret", append(bytes.Clone(body[:len(body)-1]), ' ', '}'), http.StatusUnauthorized, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeliveries(pathWebhook)
			r := &webhookReceiver{secret: []byte("s3cret"), d: d}
			req := httptest.NewRequest(http.MethodPost, "/facgw", bytes.NewReader(tc.body))
			req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(tc.secret), body, time.Now()))
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.wantStatus {
				t.Errorf("got status %d, want %d", w.Code, tc.wantStatus)
			}
			_, got := d.paths[pathWebhook].first[9]
			if got != tc.wantGot {
				t.Errorf("got event recorded %v, want %v", got, tc.wantGot)
			}
			if wantRefused := map[bool]int{true: 0, false: 1}[tc.wantGot]; d.refused[pathWebhook] != wantRefused {
				t.Errorf("got %d refused, want %d", d.refused[pathWebhook], wantRefused)
			}
		})
	}
}

func TestReplyLogPollEnd(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	r := &replyLog{}
	// Two polls a second apart, three replies each; the second starts a
	// little early (its tick jittered).
	for _, ms := range []int{1, 2, 4, 999, 1001, 1003} {
		r.add(at(ms))
	}
	for _, tc := range []struct {
		name   string
		start  int
		want   int
		wantOK bool
	}{
		{"first poll", 0, 4, true},
		{"second poll", 998, 1003, true},
		{"no poll", 2000, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := r.pollEnd(at(tc.start), 500*time.Millisecond)
			if ok != tc.wantOK || (ok && !got.Equal(at(tc.want))) {
				t.Errorf("got %v %v, want %v %v", got.Sub(base), ok, time.Duration(tc.want)*time.Millisecond, tc.wantOK)
			}
		})
	}
}

func TestDeliveriesResult(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	ev := func(seq uint64, ms int) alert.Event {
		return alert.Event{Seq: seq, Rule: alarmRule, At: at(ms)}
	}
	d := newDeliveries("mqtt b0", pathWebhook, pathAlertmanager)
	d.got("mqtt b0", at(-500), ev(1, -1000)) // before the run
	d.got("mqtt b0", at(1010), ev(2, 1000))
	d.got("mqtt b0", at(2020), ev(3, 2000))
	d.got("mqtt b0", at(2030), ev(3, 2000)) // a duplicate keeps the first time
	d.got(pathWebhook, at(1050), ev(2, 1000))
	d.gotSeq(pathAlertmanager, at(1100), 2)
	d.gotSeq(pathAlertmanager, at(2200), 3)
	d.got("mqtt b0", at(2500), alert.Event{Seq: 4, Rule: "gateway/delivery-path-degraded", At: at(2400)}) // not the alarm
	pollEnd := func(start time.Time) (time.Time, bool) { return start.Add(4 * time.Millisecond), true }
	r := d.result(at(0), pollEnd)

	if r.Events != 2 || r.Earlier != 1 {
		t.Errorf("got %d events and %d earlier, want 2 and 1", r.Events, r.Earlier)
	}
	if want := (summary{N: 2, Median: 4 * time.Millisecond, P90: 4 * time.Millisecond, P99: 4 * time.Millisecond, Max: 4 * time.Millisecond}); r.Poll != want {
		t.Errorf("got poll %+v, want %+v", r.Poll, want)
	}
	want := map[string]struct {
		median, max, beyondMax time.Duration
		missing, dups          int
	}{
		"mqtt b0":        {10 * time.Millisecond, 20 * time.Millisecond, 16 * time.Millisecond, 0, 1},
		pathWebhook:      {50 * time.Millisecond, 50 * time.Millisecond, 46 * time.Millisecond, 1, 0},
		pathAlertmanager: {100 * time.Millisecond, 200 * time.Millisecond, 196 * time.Millisecond, 0, 0},
	}
	if len(r.Paths) != len(want) {
		t.Fatalf("got %d paths, want %d", len(r.Paths), len(want))
	}
	for _, p := range r.Paths {
		w := want[p.Path]
		if p.Latency.Median != w.median || p.Latency.Max != w.max || p.Beyond.Max != w.beyondMax || p.Missing != w.missing || p.Dups != w.dups {
			t.Errorf("path %s: got median %v max %v beyond max %v missing %d dups %d, want %v %v %v %d %d",
				p.Path, p.Latency.Median, p.Latency.Max, p.Beyond.Max, p.Missing, p.Dups, w.median, w.max, w.beyondMax, w.missing, w.dups)
		}
	}
}

// TestAlarmProfile loads the alarm device's profile as the gateway does
// and checks the alarm is a bool at the register facbench toggles.
func TestAlarmProfile(t *testing.T) {
	text, addr := alarmProfileYAML(60)
	file := filepath.Join(t.TempDir(), "bench-alarm.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	p, err := reg.AddFile(file)
	if err != nil {
		t.Fatalf("the alarm profile does not load: %v", err)
	}
	var found bool
	for i := range p.Points {
		pd := &p.Points[i]
		if pd.Name != alarmPoint {
			continue
		}
		found = true
		if pd.Kind() != point.Bool || pd.Table != "holding" || pd.Address != addr {
			t.Errorf("got %s kind %s table %s address %d, want bool holding %d", pd.Name, pd.Kind(), pd.Table, pd.Address, addr)
		}
	}
	if !found {
		t.Errorf("got no point %s in the profile", alarmPoint)
	}
	if n := len(p.Points); n != 61 {
		t.Errorf("got %d points, want 61 (60 synthetic and the alarm)", n)
	}
}

// TestPrefillLedger checks the prefilled history is what the gateway
// will find: full, dispatched, nothing firing.
func TestPrefillLedger(t *testing.T) {
	dir := t.TempDir()
	if err := prefillLedger(dir, notify.DefaultRecent); err != nil {
		t.Fatal(err)
	}
	l, err := notify.OpenLedger(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := len(l.Recent(notify.DefaultRecent + 10)); got != notify.DefaultRecent {
		t.Errorf("got %d events of history, want %d", got, notify.DefaultRecent)
	}
	if got := len(l.Undispatched()); got != 0 {
		t.Errorf("got %d undispatched events, want 0 (the gateway would deliver them again)", got)
	}
	if got := len(l.Active()); got != 0 {
		t.Errorf("got %d active episodes, want 0", got)
	}
}

// TestAlertsIntegration runs facbench -alerts on a small load against a
// freshly built facgw: one embedded broker, the webhook receiver and, when
// installed, a real Alertmanager. Every toggle must be one event, on every
// path, once, after its poll started.
func TestAlertsIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds and runs facgw")
	}
	am := testpeer.AlertmanagerPath
	if _, err := os.Stat(am); err != nil {
		testpeer.Require(t, "prometheus-alertmanager", am) // skips, or fails with CI=true
	}
	bin := filepath.Join(t.TempDir(), "facgw")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "github.com/facgw/facgw/cmd/facgw")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build facgw: %v\n%s", err, out)
	}
	var out bytes.Buffer
	s := settings{
		ctx:    t.Context(),
		load:   load{devices: 10, points: 20, interval: 200 * time.Millisecond, snmpPoints: 40, snmpInterval: 5 * time.Second, brokers: 1, history: -1},
		warmup: 3 * time.Second, duration: 6 * time.Second, bin: bin, out: &out,
		facgwLog: filepath.Join(t.TempDir(), "facgw.log"),
		alerts:   &alertOptions{every: 500 * time.Millisecond, alertmanager: am, history: 100, grace: 20 * time.Second},
	}
	res, err := run(s)
	if err != nil {
		log, _ := os.ReadFile(s.facgwLog)
		t.Fatalf("run: %v\n%s\nfacgw log:\n%s", err, out.String(), log)
	}
	t.Log("\n" + out.String())
	a := res.Alerts
	if a.Toggles < 8 {
		t.Fatalf("got %d toggles in 6 s, want about 12", a.Toggles)
	}
	if a.Events != a.Toggles {
		t.Errorf("got %d events, want one per toggle (%d)", a.Events, a.Toggles)
	}
	if a.Earlier != 0 {
		t.Errorf("got %d events from before the run, want 0 (the prefilled history must not be delivered again)", a.Earlier)
	}
	if a.Poll.N != a.Events {
		t.Errorf("got the poll of %d events, want all %d", a.Poll.N, a.Events)
	}
	if len(a.Paths) != 3 {
		t.Fatalf("got paths %v, want mqtt b0, webhook, alertmanager", a.Paths)
	}
	for _, p := range a.Paths {
		if p.Missing != 0 || p.Dups != 0 || p.Refused != 0 || p.Latency.N != a.Events {
			t.Errorf("path %s: got %d delivered, %d missing, %d duplicates, %d refused; want all %d once", p.Path, p.Latency.N, p.Missing, p.Dups, p.Refused, a.Events)
		}
		// Delivery comes after the poll that saw the change began and
		// after it ended: a negative figure would mean the events' times
		// or the receivers' are wrong.
		if p.Latency.N > 0 && (p.Latency.Median <= 0 || p.Beyond.Median <= 0) {
			t.Errorf("path %s: got median %v, beyond the poll %v; want both positive", p.Path, p.Latency.Median, p.Beyond.Median)
		}
	}
}

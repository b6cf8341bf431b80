package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/web/auth"
	"github.com/facgw/facgw/pipeline"
)

// overviewSource is a Source with classes and rooms, as the gateway gives
// them once devices are identified.
type overviewSource struct {
	fakeSource
	devices []DeviceInfo
}

func (o *overviewSource) Devices() []DeviceInfo { return o.devices }

func newOverviewSource() *overviewSource {
	return &overviewSource{fakeSource: fakeSource{state: pipeline.NewState(3)}, devices: []DeviceInfo{
		{ID: "ups-a", Profile: "apc-smart-ups-modbus", Class: "ups", Labels: map[string]string{"room": "ups-room"}},
		{ID: "bms-1", Profile: "generic-liion-bms", Class: "battery", Labels: map[string]string{"room": "battery-room"}},
		{ID: "crac-1", Profile: "liebert-icom-crac", Class: "cooling"},
		{ID: "new", Profile: "auto"},
	}}
}

func TestGroupOf(t *testing.T) {
	tests := []struct{ class, want string }{
		{"ups", "power"}, {"pdu", "power"}, {"battery", "battery"}, {"cooling", "cooling"},
		{"switch", "network"}, {"fire", "fire"}, {"", "other"}, {"elevator", "other"},
	}
	for _, tt := range tests {
		if got := GroupOf(tt.class); got != tt.want {
			t.Errorf("GroupOf(%q): got %q, want %q", tt.class, got, tt.want)
		}
	}
}

func TestDevicesEndpoint(t *testing.T) {
	src := newOverviewSource()
	now := time.Now().UTC()
	src.state.Update([]point.Point{
		{Device: "ups-a", Name: "battery.charge", Num: 97.5, Unit: point.Percent, Time: now.Add(-2 * time.Second)},
		{Device: "ups-a", Name: "ups.status.on_battery", Kind: point.Bool, Num: 1, Time: now},
		{Device: "bms-1", Name: "bms.cell_temp_max", Num: 25, Unit: point.Celsius, Time: now},
		{Device: "bms-1", Name: "bms.offgas_ppm", Num: 1234, Time: now, Quality: point.Bad, Reason: "timeout"},
		{Device: "crac-1", Name: "crac.supply_temp", Num: 18, Time: now, Quality: point.Bad, Reason: "connection: refused"},
	}, time.Second)
	h := Handler(src, Options{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/devices", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q, want 200 application/json", rec.Code, rec.Header().Get("Content-Type"))
	}
	var doc struct {
		Site    string   `json:"site"`
		Now     string   `json:"now"`
		Groups  []string `json:"groups"`
		Devices []struct {
			ID, Group, Room, Health string
			Good, Stale, Bad        int
			Points                  []map[string]any
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("decode: %v\n%s", err, rec.Body)
	}
	if doc.Site != "site" || doc.Now == "" || len(doc.Groups) != len(Groups) {
		t.Errorf("head: got site %q now %q groups %v", doc.Site, doc.Now, doc.Groups)
	}
	want := []struct {
		id, group, room, health string
		good, bad, points       int
	}{
		{"ups-a", "power", "ups-room", "good", 2, 0, 2},
		{"bms-1", "battery", "battery-room", "degraded", 1, 1, 2},
		{"crac-1", "cooling", "", "bad", 0, 1, 1},
		{"new", "other", "", "unknown", 0, 0, 0},
	}
	if len(doc.Devices) != len(want) {
		t.Fatalf("got %d devices, want %d", len(doc.Devices), len(want))
	}
	for i, w := range want {
		d := doc.Devices[i]
		if d.ID != w.id || d.Group != w.group || d.Room != w.room || d.Health != w.health || d.Good != w.good || d.Bad != w.bad || len(d.Points) != w.points {
			t.Errorf("device %d: got %s %s room %q %s good %d bad %d points %d, want %s %s room %q %s good %d bad %d points %d",
				i, d.ID, d.Group, d.Room, d.Health, d.Good, d.Bad, len(d.Points), w.id, w.group, w.room, w.health, w.good, w.bad, w.points)
		}
	}
	charge := doc.Devices[0].Points[0]
	if charge["name"] != "battery.charge" || charge["value"] != 97.5 || charge["unit"] != "%" || charge["device"] != nil {
		t.Errorf("ups-a battery.charge: got %v, want value 97.5 %%, no device field", charge)
	}
	if age, _ := charge["age_s"].(float64); age < 2 {
		t.Errorf("ups-a battery.charge age: got %v, want at least 2 s", charge["age_s"])
	}
	if onb := doc.Devices[0].Points[1]; onb["value"] != true {
		t.Errorf("ups-a on battery: got %v, want true", onb["value"])
	}
	if bad := doc.Devices[1].Points[1]; bad["quality"] != "bad" || bad["reason"] != "timeout" {
		t.Errorf("bms-1 off-gas: got %v, want bad with reason timeout", bad)
	}
}

func TestHistoryEndpoint(t *testing.T) {
	src := newOverviewSource()
	h := Handler(src, Options{History: 4})
	if got := src.state.HistorySize(); got != 4 {
		t.Fatalf("history size after Handler: got %d, want 4", got)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 6 {
		q, reason := point.Good, ""
		if i == 4 {
			q, reason = point.Bad, "timeout"
		}
		src.state.Update([]point.Point{
			{Device: "bms-1", Name: "bms.offgas_ppm", Num: float64(i * 10), Time: t0.Add(time.Duration(i) * time.Second), Quality: q, Reason: reason},
			{Device: "bms-1", Name: "ident.model", Kind: point.String, Str: "BMS", Time: t0},
		}, time.Second)
	}
	tests := []struct {
		name, path string
		want       int
		check      func(t *testing.T, doc HistoryDoc)
	}{
		{"every numeric point", "/api/v1/devices/bms-1/history", 200, func(t *testing.T, doc HistoryDoc) {
			if _, ok := doc.Points["ident.model"]; ok || len(doc.Points) != 1 || doc.Size != 4 {
				t.Errorf("got points %v size %d, want only bms.offgas_ppm, size 4", sortedKeys(doc.Points), doc.Size)
			}
		}},
		{"one point, bad sample is null", "/api/v1/devices/bms-1/history?points=bms.offgas_ppm", 200, func(t *testing.T, doc HistoryDoc) {
			s := doc.Points["bms.offgas_ppm"].Samples
			got := fmt.Sprint(s)
			want := fmt.Sprintf("[[%d 20] [%d 30] [%d <nil>] [%d 50]]", t0.Add(2*time.Second).UnixMilli(), t0.Add(3*time.Second).UnixMilli(),
				t0.Add(4*time.Second).UnixMilli(), t0.Add(5*time.Second).UnixMilli())
			if got != want {
				t.Errorf("got samples %s, want %s", got, want)
			}
		}},
		{"unknown point", "/api/v1/devices/bms-1/history?points=nope", 404, nil},
		{"string point has no history", "/api/v1/devices/bms-1/history?points=ident.model", 404, nil},
		{"unknown device", "/api/v1/devices/nope/history", 404, nil},
		{"known device without points", "/api/v1/devices/new/history", 200, func(t *testing.T, doc HistoryDoc) {
			if len(doc.Points) != 0 {
				t.Errorf("got %d points, want none", len(doc.Points))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != tt.want {
				t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, tt.want)
			}
			if tt.check == nil {
				return
			}
			// Decode numbers as they arrive (unix ms would lose nothing
			// as float64, but int64 prints plainly).
			var doc HistoryDoc
			dec := json.NewDecoder(rec.Body)
			dec.UseNumber()
			if err := dec.Decode(&doc); err != nil {
				t.Fatal(err)
			}
			tt.check(t, doc)
		})
	}
}

// fakeDemo records the scenarios triggered.
type fakeDemo struct {
	mu        sync.Mutex
	triggered []string
}

func (f *fakeDemo) DemoScenarios() []DemoScenario {
	return []DemoScenario{{Name: "thermal-runaway", Description: "a cell vents", Devices: []string{"bms-1"}}}
}

func (f *fakeDemo) TriggerScenario(device, scenario string) ([]string, error) {
	if scenario != "thermal-runaway" || (device != "" && device != "bms-1") {
		return nil, fmt.Errorf("demo: %w: scenario %q does not apply to %q", ErrInvalid, scenario, device)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.triggered = append(f.triggered, device+"/"+scenario)
	return []string{"bms-1"}, nil
}

func TestDemoEndpoints(t *testing.T) {
	fd := &fakeDemo{}
	opts := roleHeader()
	opts.Demo = fd
	h := Handler(newOverviewSource(), opts)
	tests := []struct {
		name, method, path, role, body string
		want                           int
		contains                       string
	}{
		{"list as viewer", "GET", "/api/v1/demo/scenarios", RoleViewer, "", 200, `"devices": [`},
		{"trigger needs login", "POST", "/api/v1/demo/scenario", "", `{"device":"bms-1","scenario":"thermal-runaway"}`, 401, ""},
		{"viewer cannot trigger", "POST", "/api/v1/demo/scenario", RoleViewer, `{"device":"bms-1","scenario":"thermal-runaway"}`, 403, ""},
		{"operator triggers", "POST", "/api/v1/demo/scenario", RoleOperator, `{"device":"bms-1","scenario":"thermal-runaway"}`, 200, `"scenario": "thermal-runaway"`},
		{"scenario required", "POST", "/api/v1/demo/scenario", RoleOperator, `{"device":"bms-1"}`, 400, "scenario"},
		{"wrong device", "POST", "/api/v1/demo/scenario", RoleOperator, `{"device":"ups-a","scenario":"thermal-runaway"}`, 400, "does not apply"},
		{"unknown field", "POST", "/api/v1/demo/scenario", RoleOperator, `{"dev":"bms-1","scenario":"thermal-runaway"}`, 400, "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.role != "" {
				req.Header.Set("X-Test-Role", tt.role)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.contains) {
				t.Errorf("got %d %s, want %d containing %q", rec.Code, rec.Body, tt.want, tt.contains)
			}
		})
	}
	if got := strings.Join(fd.triggered, ","); got != "bms-1/thermal-runaway" {
		t.Errorf("triggered: got %q, want only the operator's bms-1/thermal-runaway", got)
	}

	// Without a demo the endpoints do not exist: production has no
	// simulator to drive.
	rec := httptest.NewRecorder()
	Handler(newOverviewSource(), roleHeader()).ServeHTTP(rec, withRole(httptest.NewRequest("POST", "/api/v1/demo/scenario", strings.NewReader(`{}`)), RoleEngineer))
	if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("demo endpoint outside demo mode: got %d, want 404 or 405", rec.Code)
	}
}

func withRole(r *http.Request, role string) *http.Request {
	r.Header.Set("X-Test-Role", role)
	return r
}

// streamEvent is one server-sent event as a client reads it.
type streamEvent struct{ name, data string }

// readEvents reads server-sent events from a live response into a channel.
func readEvents(t *testing.T, body io.Reader) <-chan streamEvent {
	ch := make(chan streamEvent, 256)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev streamEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case line == "" && ev.name != "":
				ch <- ev
				ev = streamEvent{}
			}
		}
	}()
	return ch
}

// openStream serves h and reads its /api/v1/stream until the test ends.
func openStream(t *testing.T, h http.Handler) <-chan streamEvent {
	t.Helper()
	srv := httptest.NewServer(h)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		srv.Close()
	})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("got %d %q, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return readEvents(t, resp.Body)
}

// next waits for the first event named name for which match holds.
func next(t *testing.T, ch <-chan streamEvent, name string, match func(data string) bool) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended waiting for %q", name)
			}
			if ev.name == name && match(ev.data) {
				return ev.data
			}
		case <-deadline:
			t.Fatalf("timed out waiting for a %q event", name)
		}
	}
}

func TestStreamEvents(t *testing.T) {
	src := newOverviewSource()
	old := alert.Event{ID: "old", Seq: 1, Kind: alert.KindFiring, State: alert.Firing, Rule: "power/on-battery", Severity: alert.Major}
	fa := &fakeAlerting{doc: AlertsDoc{Recent: []alert.Event{old}, Paths: []PathDoc{{Name: "mqtt", Kind: "mqtt", Up: true}}}}
	events := openStream(t, Handler(src, Options{Alerting: fa, StreamTick: 10 * time.Millisecond, PathsEvery: 30 * time.Millisecond}))

	// Paths come periodically, with the telemetry destinations.
	data := next(t, events, "paths", func(string) bool { return true })
	var pe PathsEvent
	if err := json.Unmarshal([]byte(data), &pe); err != nil || len(pe.AlertPaths) != 1 || len(pe.Destinations) != 1 {
		t.Errorf("paths event: got %s (%v), want one alert path and one destination", data, err)
	}

	// Changed points, grouped by device with the device's health.
	src.state.Update([]point.Point{
		{Device: "bms-1", Name: "bms.offgas_ppm", Num: 120, Time: time.Now()},
		{Device: "bms-1", Name: "bms.cell_temp_max", Time: time.Now(), Quality: point.Bad, Reason: "timeout"},
	}, time.Second)
	data = next(t, events, "points", func(d string) bool { return strings.Contains(d, "bms.offgas_ppm") })
	var pts struct {
		Devices []struct {
			ID, Health string
			Points     []map[string]any
		}
	}
	if err := json.Unmarshal([]byte(data), &pts); err != nil {
		t.Fatalf("points event: %v: %s", err, data)
	}
	if len(pts.Devices) != 1 || pts.Devices[0].ID != "bms-1" || pts.Devices[0].Health != "degraded" || len(pts.Devices[0].Points) != 2 {
		t.Errorf("points event: got %s, want bms-1 degraded with its 2 points", data)
	}

	// A new alert event is sent; the one from before the stream began is not.
	fa.mu.Lock()
	fa.doc.Recent = append([]alert.Event{{ID: "new", Seq: 2, Kind: alert.KindFiring, State: alert.Firing, Rule: "fire/liion-offgas-alarm", Severity: alert.Critical}}, fa.doc.Recent...)
	fa.mu.Unlock()
	data = next(t, events, "alert", func(string) bool { return true })
	if !strings.Contains(data, `"id":"new"`) || !strings.Contains(data, `"severity":"critical"`) {
		t.Errorf("alert event: got %s, want the new critical event (not the old one)", data)
	}
}

// feedAlerting is an Alerting with the AlertFeed the gateway's has.
type feedAlerting struct {
	fakeAlerting
	events []alert.Event // in seq order
}

func (f *feedAlerting) EventsSince(seq uint64, max int) []alert.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []alert.Event
	for _, e := range f.events {
		if e.Seq > seq && len(out) < max {
			out = append(out, e)
		}
	}
	return out
}

func (f *feedAlerting) LastSeq() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 {
		return 0
	}
	return f.events[len(f.events)-1].Seq
}

// TestStreamTellsEveryAlertEvent: a burst of alert events larger than the
// alert list's recent history (50), all between two ticks, reaches the
// client complete and in order; the events from before it connected do
// not. (A burst beyond the client's buffer drops the client, which
// reconnects and reloads, as for points.)
func TestStreamTellsEveryAlertEvent(t *testing.T) {
	fa := &feedAlerting{events: []alert.Event{{ID: "before", Seq: 1, Kind: alert.KindFiring}}}
	events := openStream(t, Handler(newOverviewSource(), Options{Alerting: fa, StreamTick: 50 * time.Millisecond, PathsEvery: time.Hour}))
	next(t, events, "paths", func(string) bool { return true }) // the stream is running
	fa.mu.Lock()
	for i := 2; i <= 61; i++ {
		fa.events = append(fa.events, alert.Event{ID: fmt.Sprintf("ep-%d", i), Seq: uint64(i), Kind: alert.KindFiring, State: alert.Firing, Severity: alert.Major})
	}
	fa.mu.Unlock()
	for want := 2; want <= 61; want++ {
		data := next(t, events, "alert", func(string) bool { return true })
		var e alert.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatalf("alert event: %v: %s", err, data)
		}
		if e.Seq != uint64(want) {
			t.Fatalf("alert event: got seq %d, want %d (every event once, in order)", e.Seq, want)
		}
	}
}

func TestStreamDropsSlowClient(t *testing.T) {
	h := newStreamHub(newOverviewSource(), Options{ClientBuffer: 2, StreamTick: time.Hour, Log: slog.New(slog.DiscardHandler)})
	slow, fast := h.join(), h.join()
	for i := range 3 {
		h.broadcast([]byte(fmt.Sprint(i)))
		<-fast.ch // the fast client keeps up
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("slow client: got still connected, want dropped after its buffer of 2 filled")
	}
	if n, dropped := h.stats(); n != 1 || dropped != 1 {
		t.Errorf("got %d clients, %d dropped; want 1 and 1", n, dropped)
	}
	select {
	case <-fast.gone:
		t.Error("fast client: got dropped, want connected")
	default:
	}
	h.leave(slow)
	h.leave(fast)
	h.mu.Lock()
	running := h.stop != nil
	h.mu.Unlock()
	if running {
		t.Error("after the last client left: got the producer running, want stopped")
	}
}

// TestRolesWithAuth runs every endpoint through the real authenticator:
// no credentials (anonymous none), a wrong token, and a token per role.
func TestRolesWithAuth(t *testing.T) {
	tok := func(role string) string { return strings.Repeat(role[:1], 40) }
	a, err := auth.New(auth.Config{Anonymous: auth.None, Tokens: []auth.Token{
		{Name: "v", Role: auth.Viewer, Token: tok("viewer")},
		{Name: "o", Role: auth.Operator, Token: tok("operator")},
		{Name: "e", Role: auth.Engineer, Token: tok("engineer")},
	}}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	fa := &fakeAlerting{doc: AlertsDoc{
		Active:   []alert.Event{{ID: "e1", Kind: alert.KindFiring, State: alert.Firing, Rule: "fire/x", Severity: alert.Critical, ActiveAt: at}},
		Recent:   []alert.Event{},
		Silences: []SilenceDoc{}, Paths: []PathDoc{},
	}}
	src := newOverviewSource()
	src.stats = []pipeline.Stats{{Device: "ups-a", Group: "default", Cycles: 1}}
	src.state.Update([]point.Point{{Device: "ups-a", Name: "battery.charge", Num: 1, Time: at}}, time.Second)
	mux := http.NewServeMux()
	mux.Handle("/", Handler(src, Options{
		Alerting: fa,
		Demo:     &fakeDemo{},
		History:  10,
		Require: func(role string, h http.Handler) http.Handler {
			r, _ := auth.ParseRole(role)
			return a.Require(r, h)
		},
		Who: func(r *http.Request) string { p, _ := auth.PrincipalFrom(r.Context()); return p.Name },
		Log: slog.New(slog.DiscardHandler),
	}))
	// Each request comes from its own client address: wrong tokens count
	// against the address, and five in a row would lock the test's one
	// address out (429), which the auth package tests on its own.
	var clients atomic.Uint32
	authed := a.Middleware(mux)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := clients.Add(1)
		r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:40000", n>>16&255, n>>8&255, n&255)
		authed.ServeHTTP(w, r)
	}))
	defer srv.Close()

	type ep struct {
		method, path, body string
		role               string // the least role that may
		ok                 int
	}
	endpoints := []ep{
		{"GET", "/api/v1/state", "", "viewer", 200},
		{"GET", "/api/v1/devices", "", "viewer", 200},
		{"GET", "/api/v1/devices/ups-a", "", "viewer", 200},
		{"GET", "/api/v1/devices/ups-a/history", "", "viewer", 200},
		{"GET", "/api/v1/events", "", "viewer", 200},
		{"GET", "/api/v1/stream", "", "viewer", 200},
		{"GET", "/api/v1/alerts", "", "viewer", 200},
		{"GET", "/api/v1/alerts/e1", "", "viewer", 200},
		{"GET", "/api/v1/paths", "", "viewer", 200},
		{"GET", "/api/v1/silences", "", "viewer", 200},
		{"GET", "/api/v1/demo/scenarios", "", "viewer", 200},
		{"POST", "/api/v1/alerts/e1/ack", `{"comment":"on it"}`, "operator", 200},
		{"POST", "/api/v1/silences", `{"rule":"fire/x","duration":"1h","reason":"test"}`, "operator", 201},
		{"DELETE", "/api/v1/silences/s1", "", "operator", 204},
		{"POST", "/api/v1/demo/scenario", `{"device":"bms-1","scenario":"thermal-runaway"}`, "operator", 200},
	}
	rank := map[string]int{"viewer": 1, "operator": 2, "engineer": 3}
	for _, e := range endpoints {
		for _, who := range []string{"anonymous", "bad-token", "viewer", "operator", "engineer"} {
			want := e.ok
			switch {
			case who == "anonymous" || who == "bad-token":
				want = http.StatusUnauthorized
			case rank[who] < rank[e.role]:
				want = http.StatusForbidden
			}
			t.Run(e.method+" "+e.path+" as "+who, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, e.method, srv.URL+e.path, strings.NewReader(e.body))
				req.Header.Set("Content-Type", "application/json")
				switch who {
				case "anonymous":
				case "bad-token":
					req.Header.Set("Authorization", "Bearer "+strings.Repeat("x", 40))
				default:
					req.Header.Set("Authorization", "Bearer "+tok(who))
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				// The stream answers its headers and stays open: the
				// status is all this test reads.
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("got %d, want %d", resp.StatusCode, want)
				}
			})
		}
	}
	// Health checks need no credentials.
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s without credentials: got %d, want 200", path, resp.StatusCode)
		}
	}
}

func TestDashboardAssets(t *testing.T) {
	h := Handler(newOverviewSource(), Options{})
	tests := []struct {
		path, ctype string
		contains    []string
	}{
		{"/", "text/html", []string{`<script type="module" src="app.js"></script>`, `id="alert-list"`, `id="loadshed"`}},
		{"/app.js", "javascript", []string{`new EventSource("api/v1/stream")`}},
		{"/api.js", "javascript", []string{"export async function api", `"X-CSRF-Token"`}},
		{"/chart.js", "javascript", []string{"export function chart"}},
		{"/style.css", "text/css", []string{"--critical"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			body := rec.Body.String()
			if rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Type"), tt.ctype) {
				t.Fatalf("got %d %q, want 200 %s", rec.Code, rec.Header().Get("Content-Type"), tt.ctype)
			}
			if csp := rec.Header().Get("Content-Security-Policy"); csp != "default-src 'self'" {
				t.Errorf("CSP: got %q, want default-src 'self'", csp)
			}
			for _, c := range tt.contains {
				if !strings.Contains(body, c) {
					t.Errorf("got no %q in %s", c, tt.path)
				}
			}
		})
	}
	// The CSP forbids inline scripts and styles: the page must have none.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	page := rec.Body.String()
	for _, bad := range []string{"<script>", " style=", "<style", "onclick=", "onload=", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("index.html: got %q, want none (CSP default-src 'self', no CDN)", bad)
		}
	}
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/pipeline"
)

type fakeSource struct {
	state *pipeline.State
	stats []pipeline.Stats
}

func (f *fakeSource) Devices() []DeviceInfo {
	return []DeviceInfo{{ID: "ups-a", Profile: "apc-smart-ups-modbus"}, {ID: "bms-1", Profile: "generic-liion-bms"}, {ID: "new", Profile: "auto"}}
}
func (f *fakeSource) Events() []Event { return nil }
func (f *fakeSource) Destinations() []Destination {
	return []Destination{{Kind: "mqtt", Name: "a", Connected: true}}
}
func (f *fakeSource) State() *pipeline.State      { return f.state }
func (f *fakeSource) PollStats() []pipeline.Stats { return f.stats }
func (f *fakeSource) Started() time.Time          { return time.Unix(0, 0) }
func (f *fakeSource) Site() (string, string)      { return "site", "gw" }

func TestStateEndpoint(t *testing.T) {
	st := pipeline.NewState(3)
	now := time.Now().UTC()
	st.Update([]point.Point{
		{Device: "ups-a", Name: "battery.charge", Num: 100, Unit: point.Percent, Time: now},
		{Device: "bms-1", Name: "bms.cell_temp_max", Num: 25, Unit: point.Celsius, Time: now},
		{Device: "bms-1", Name: "bms.offgas_ppm", Time: now, Quality: point.Bad, Reason: "timeout"},
	}, time.Second)
	src := &fakeSource{state: st}
	h := Handler(src, Options{})

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/state", nil))
	if rec.Code != 200 {
		t.Fatalf("got %d", rec.Code)
	}
	var doc struct {
		Devices []struct {
			ID     string `json:"id"`
			Health string `json:"health"`
			Points []map[string]any
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	health := map[string]string{}
	for _, d := range doc.Devices {
		health[d.ID] = d.Health
	}
	if health["ups-a"] != "good" || health["bms-1"] != "degraded" || health["new"] != "unknown" {
		t.Errorf("got health %v, want ups-a good, bms-1 degraded, new unknown", health)
	}
	if p := doc.Devices[1].Points[1]; p["reason"] != "timeout" || p["quality"] != "bad" || p["age_s"] == nil {
		t.Errorf("bad point: got %v", p)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz before any poll: got %d, want 503", rec.Code)
	}
	src.stats = []pipeline.Stats{{Device: "ups-a", Group: "default", Cycles: 1}}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 {
		t.Errorf("readyz after a poll: got %d, want 200", rec.Code)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/devices/nope", nil))
	if rec.Code != 404 {
		t.Errorf("unknown device: got %d, want 404", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "<title>facgw</title>") || rec.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("live page: got %d, CSP %q", rec.Code, rec.Header().Get("Content-Security-Policy"))
	}
}

package facsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/drivers/snmp/trap"
)

func TestHTTPAPI(t *testing.T) {
	s := startTest(t, testFacility, Options{})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("POST %s %s: decode: %v", path, body, err)
		}
		return resp.StatusCode, out
	}
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	device := func(id string) DeviceStatus {
		t.Helper()
		var devs []DeviceStatus
		get("/api/devices", &devs)
		for _, d := range devs {
			if d.ID == id {
				return d
			}
		}
		t.Fatalf("no device %q in /api/devices", id)
		return DeviceStatus{}
	}

	var devs []DeviceStatus
	get("/api/devices", &devs)
	if len(devs) != 7 {
		t.Fatalf("%d devices, want 7", len(devs))
	}
	d := device("bms-2")
	if d.Profile != "generic-liion-bms" || d.Unit != 2 || d.Address != s.Addr("bms-2") || d.Scenario != "normal" || d.Fault != "none" || d.Variant != ">=2.0" {
		t.Errorf("bms-2 status %+v", d)
	}
	if _, ok := d.Values["bms.h2_ppm"].(float64); !ok {
		t.Errorf("bms-2 values lack a number for bms.h2_ppm: %v", d.Values["bms.h2_ppm"])
	}
	var scs []Scenario
	get("/api/scenarios", &scs)
	if len(scs) != len(Scenarios) || scs[0].Name != ScenarioNormal || scs[0].Description == "" {
		t.Errorf("scenarios %+v", scs)
	}
	var kinds []FaultKind
	get("/api/faults", &kinds)
	if len(kinds) != len(FaultKinds) {
		t.Errorf("faults %+v", kinds)
	}

	code, out := post("/api/scenario", `{"device":"bms-1","scenario":"thermal-runaway"}`)
	if code != http.StatusOK {
		t.Fatalf("POST scenario: %d %v", code, out)
	}
	s.Step(2 * time.Minute)
	d = device("bms-1")
	if d.Scenario != ScenarioThermalRunaway || d.Values["bms.alarm.offgas"] != true || d.ScenarioSeconds != 120 {
		t.Errorf("after the runaway switch: scenario %q t %g offgas alarm %v", d.Scenario, d.ScenarioSeconds, d.Values["bms.alarm.offgas"])
	}
	code, out = post("/api/scenario", `{"scenario":"crac-failure"}`)
	if code != http.StatusOK || len(out["devices"].([]any)) != 1 {
		t.Errorf("class-wide crac-failure: %d %v", code, out)
	}

	code, out = post("/api/fault", `{"device":"crac-1","fault":"late","delay":"2s"}`)
	if code != http.StatusOK || device("crac-1").Fault != "late:2s" {
		t.Errorf("late fault: %d %v, device fault %q", code, out, device("crac-1").Fault)
	}
	code, _ = post("/api/fault", `{"device":"crac-1","fault":"exception","code":11}`)
	if code != http.StatusOK || device("crac-1").Fault != "exception:11" {
		t.Errorf("exception fault: %d, device fault %q", code, device("crac-1").Fault)
	}
	if _, err := dial(t, s, "crac-1").tryRead("crac.supply_temp"); wantException(11)(err) != "" {
		t.Errorf("after the API set exception 11: %v", err)
	}
	code, out = post("/api/fault", `{"fault":"none"}`)
	if code != http.StatusOK || len(out["devices"].([]any)) != 7 {
		t.Errorf("clear all faults: %d %v", code, out)
	}

	for _, tc := range []struct{ path, body, want string }{
		{"/api/scenario", `{"device":"nope","scenario":"normal"}`, "unknown device"},
		{"/api/scenario", `{"device":"ups-a","scenario":"meltdown"}`, "unknown scenario"},
		{"/api/scenario", `{"device":"ups-a","scenario":"fire-alarm"}`, "does not apply"},
		{"/api/scenario", `{"device":"ups-a"}`, "required"},
		{"/api/scenario", `{"device":"ups-a","scenario":"normal","speed":2}`, "unknown field"},
		{"/api/scenario", `not json`, "bad request body"},
		{"/api/fault", `{"device":"nope","fault":"silent"}`, "unknown device"},
		{"/api/fault", `{"device":"ups-a","fault":"explode"}`, "unknown fault"},
		{"/api/fault", `{"device":"ups-a","fault":"silent","delay":"2s"}`, "takes no"},
		{"/api/fault", `{"device":"ups-a","fault":"late","delay":"soon"}`, "delay"},
		{"/api/fault", `{"device":"ups-a","fault":"exception","code":0}`, "code"},
		{"/api/fault", `{"device":"ups-a","fault":"garbage","garbage":"noise"}`, "garbage mode"},
	} {
		code, out := post(tc.path, tc.body)
		msg, _ := out["error"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, "facsim: ") {
			t.Errorf("POST %s %s: %d %q, want 400 mentioning %q", tc.path, tc.body, code, msg, tc.want)
		}
	}
	resp, err := http.Get(srv.URL + "/api/scenario")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/scenario: %s, want 405", resp.Status)
	}
}

// TestHTTPAPISNMP drives SNMP devices over the control API: their status,
// faults, trap receivers and scenarios.
func TestHTTPAPISNMP(t *testing.T) {
	s := startTest(t, snmpFacility, Options{})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("POST %s %s: decode: %v", path, body, err)
		}
		return resp.StatusCode, out
	}
	devices := func() (map[string]DeviceStatus, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/api/devices")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		var list []DeviceStatus
		if err := json.Unmarshal(raw, &list); err != nil {
			t.Fatal(err)
		}
		out := map[string]DeviceStatus{}
		for _, d := range list {
			out[d.ID] = d
		}
		return out, string(raw)
	}

	devs, raw := devices()
	ups, sw, pdu, mb := devs["ups-c"], devs["sw-core1"], devs["pdu-a1"], devs["ups-a"]
	if ups.Protocol != "snmp" || ups.Address != s.Addr("ups-c") || ups.Unit != 0 || ups.SNMP == nil || !slices.Equal(ups.SNMP.Versions, []string{"1", "2c"}) {
		t.Errorf("ups-c status %+v snmp %+v", ups, ups.SNMP)
	}
	if sw.SNMP == nil || !slices.Equal(sw.SNMP.Versions, []string{"3"}) || len(sw.SNMP.Users) != 1 || sw.SNMP.Users[0].AuthProtocol != "SHA-256" || sw.SNMP.EngineID == "" {
		t.Errorf("sw-core1 snmp %+v", sw.SNMP)
	}
	if mb.Protocol != "modbus" || mb.SNMP != nil || mb.Unit != 1 {
		t.Errorf("ups-a status %+v", mb)
	}
	for _, secret := range []string{"facgw-auth-pass", "facgw-priv-pass", "private"} {
		if strings.Contains(raw, secret) {
			t.Errorf("/api/devices shows the secret %q", secret)
		}
	}
	if pdu.Values["pdu.outlet.state.web_01"] != "on" || pdu.Values["pdu.outlet.current.lab_01"] == nil || ups.Values["ups.output.source"] != "normal" {
		t.Errorf("values pdu %v ups %v", pdu.Values["pdu.outlet.state.web_01"], ups.Values["ups.output.source"])
	}

	var kinds []FaultKind
	resp, err := http.Get(srv.URL + "/api/faults")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&kinds)
	resp.Body.Close()
	if i := slices.IndexFunc(kinds, func(k FaultKind) bool { return k.Name == FaultError }); i < 0 || !slices.Equal(kinds[i].Protocols, []string{"snmp"}) {
		t.Errorf("fault kinds %+v", kinds)
	}

	code, out := post("/api/fault", `{"device":"ups-c","fault":"error","status":"tooBig"}`)
	if code != http.StatusOK || out["fault"] != "error:tooBig" {
		t.Fatalf("error fault: %d %v", code, out)
	}
	p := snmpPoller(t, s, "ups-c", nil).Poll(t.Context(), "default")
	if len(p) == 0 || !strings.Contains(p[0].Reason, "tooBig") {
		t.Errorf("after error:tooBig the driver reads %v", p[0])
	}
	code, out = post("/api/fault", `{"fault":"none"}`)
	if code != http.StatusOK || len(out["devices"].([]any)) != 5 {
		t.Errorf("clear all: %d %v", code, out)
	}

	traps := listenTraps(t, trap.Config{Communities: []string{"public"}, Sources: map[string]string{"127.0.0.1": "ups-c"}})
	code, out = post("/api/traps", `{"device":"ups-c","receivers":[{"addr":"`+traps.addr+`"}]}`)
	if code != http.StatusOK {
		t.Fatalf("POST /api/traps: %d %v", code, out)
	}
	devs, _ = devices()
	if r := devs["ups-c"].SNMP.Traps; len(r) != 1 || r[0].Addr != traps.addr {
		t.Errorf("receivers %+v", r)
	}
	if code, out = post("/api/scenario", `{"device":"ups-c","scenario":"utility-failure"}`); code != http.StatusOK {
		t.Fatalf("utility failure: %d %v", code, out)
	}
	traps.wait(t, "upsTrapOnBattery", 1, named(trap.NameUPSOnBattery))
	if code, out = post("/api/scenario", `{"scenario":"link-down"}`); code != http.StatusOK || len(out["devices"].([]any)) != 1 {
		t.Errorf("class-wide link-down: %d %v", code, out)
	}
	s.Step(time.Second)
	devs, _ = devices()
	if devs["sw-core1"].Values["if.oper_status.te1_1_1"] != "down" {
		t.Errorf("link-down: Te1/1/1 %v", devs["sw-core1"].Values["if.oper_status.te1_1_1"])
	}
	if code, out = post("/api/traps", `{"receivers":[]}`); code != http.StatusOK || len(out["devices"].([]any)) != 4 {
		t.Errorf("stop every device's traps: %d %v", code, out)
	}

	for _, tc := range []struct{ path, body, want string }{
		{"/api/fault", `{"device":"ups-c","fault":"exception","code":4}`, "does not apply"},
		{"/api/fault", `{"device":"ups-c","fault":"drop"}`, "does not apply"},
		{"/api/fault", `{"device":"ups-a","fault":"error"}`, "does not apply"},
		{"/api/fault", `{"device":"ups-c","fault":"error","status":"meh"}`, "error status"},
		{"/api/fault", `{"device":"ups-c","fault":"silent","status":"genErr"}`, "takes no"},
		{"/api/scenario", `{"device":"ups-c","scenario":"link-down"}`, "does not apply"},
		{"/api/traps", `{"device":"ups-c"}`, `"receivers" is required`},
		{"/api/traps", `{"device":"ups-a","receivers":[]}`, "Modbus device"},
		{"/api/traps", `{"device":"ups-c","receivers":[{"addr":"127.0.0.1:162","version":"3","user":"x"}]}`, "unknown user"},
		{"/api/traps", `{"device":"ups-c","receivers":[{"addr":"127.0.0.1:162","port":1}]}`, "unknown field"},
	} {
		code, out := post(tc.path, tc.body)
		msg, _ := out["error"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, "facsim: ") {
			t.Errorf("POST %s %s: %d %q, want 400 mentioning %q", tc.path, tc.body, code, msg, tc.want)
		}
	}
}

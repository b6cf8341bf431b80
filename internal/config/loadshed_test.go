package config

import (
	"fmt"
	"os"
	"strings"
	"testing"

	profiles "github.com/facgw/facgw/firmware-profiles"
)

func shippedRegistry(t *testing.T) *profiles.Registry {
	t.Helper()
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestLoadshedGood(t *testing.T) {
	cfg, err := Load("testdata/loadshed/good.yaml", shippedRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	ls := cfg.Loadshed
	if ls == nil {
		t.Fatal("got no loadshed section")
	}
	if got, want := ls.VerifyTimeout, DefaultVerifyTimeout; got != want {
		t.Errorf("verify_timeout: got %s, want default %s", got, want)
	}
	pol := ls.Policies[0]
	if pol.Rule == nil || pol.Rule.ID != "loadshed/utility-failure" {
		t.Fatalf("trigger rule: got %v, want loadshed/utility-failure", pol.Rule)
	}
	if got, want := pol.Restore, RestoreManual; got != want {
		t.Errorf("restore: got %q, want %q", got, want)
	}
	if got, want := strings.Join(pol.Stages[0].Targets, ","), "lab-1,lab-2"; got != want {
		t.Errorf("stage 1 targets: got %s, want %s", got, want)
	}
	tests := []struct {
		load       string
		off, want  float64
		on, wantOn float64
		onSet      string
	}{
		// A relay (coil false, feedback false): on is the other state.
		{"lab-1", 0, 0, 1, 1, "true"},
		// rPDU2: immediateOff 2, state off 1 (not the rPDU's 2); an enum
		// has no implied on state.
		{"app-01", 2, 1, 0, 0, ""},
	}
	for _, tt := range tests {
		l, _ := ls.Load(tt.load)
		if l.OffValue != tt.off || l.Verify.Want != tt.want {
			t.Errorf("%s: got off %g verify %g, want off %g verify %g", tt.load, l.OffValue, l.Verify.Want, tt.off, tt.want)
		}
		if l.OnValue != tt.on || l.Verify.WantOn != tt.wantOn || l.On != tt.onSet || l.Verify.On != tt.onSet {
			t.Errorf("%s: got on %q=%g verify.on %q=%g, want %q=%g and %g", tt.load, l.On, l.OnValue, l.Verify.On, l.Verify.WantOn, tt.onSet, tt.on, tt.wantOn)
		}
	}
}

// TestLoadshedBad changes the good file one way at a time: each mistake
// must come back located at the field, with a message naming it.
func TestLoadshedBad(t *testing.T) {
	good, err := os.ReadFile("testdata/loadshed/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"critical tier targeted", "- {after: 5s, loads: [app-01]}", "- {after: 5s, tiers: [critical]}",
			`good.yaml:31:31: loadshed.policies[0].stages[1].tiers[0]: tier "critical" is critical and is never shed`},
		{"critical load targeted", "loads: [app-01]", "loads: [web-01]",
			`loadshed.policies[0].stages[1].loads[0]: load "web-01" is in critical tier "critical", which is never shed`},
		{"point not writable", "point: pdu.outlet.command.1,", "point: pdu.outlet.state.1,",
			`loadshed.loads[0].point: point "pdu.outlet.state.1" of profile generic-modbus-outlet-bank is not writable`},
		{"unknown device", "device: outlets-lab, point: pdu.outlet.command.1", "device: outlets-lob, point: pdu.outlet.command.1",
			`loadshed.loads[0].device: unknown device "outlets-lob" (did you mean "outlets-lab"?)`},
		{"column without index", `index: "5", `, ``,
			`loadshed.loads[2].point: point "pdu.outlet.command" is a table column: give the row`},
		{"unknown enum value", "off: immediate_off, verify: {point: pdu.outlet.state, value: \"off\"}}\n    - {name: web-01",
			"off: immediate_of, verify: {point: pdu.outlet.state, value: \"off\"}}\n    - {name: web-01",
			`loadshed.loads[2].off: point "pdu.outlet.command" has no value "immediate_of"`},
		{"no write community", "write_credentials:\n    - {device: pdu-a1, community: private}", "",
			`SNMP device "pdu-a1" needs a write community`},
		{"unknown tier", "tier: essential", "tier: esential",
			`loadshed.loads[2].tier: unknown tier "esential" (did you mean "essential"?)`},
		{"bad trigger", "battery.runtime < 10", "battery.runtime <",
			`loadshed.policies[0].trigger.when:`},
		{"load twice", "- {after: 5s, loads: [app-01]}", "- {after: 5s, loads: [app-01, lab-1]}",
			`load "lab-1" is already shed by policies[0].stages[0]`},
		{"restore unknown", "      stages:", "      restore: sometimes\n      stages:",
			`loadshed.policies[0].restore: want manual or auto, got "sometimes"`},
		{"restore auto without restore_when", "      stages:", "      restore: auto\n      stages:",
			`loadshed.policies[0].restore: restore: auto needs restore_when`},
		{"restore auto without for", "      stages:", "      restore: auto\n      restore_when: {select: {devices: [ups-c]}, when: '!ups.status.on_battery'}\n      stages:",
			`loadshed.policies[0].restore_when.for: restore_when needs for:`},
		{"restore auto, load without on", "      stages:", "      restore: auto\n      restore_when: {select: {devices: [ups-c]}, when: '!ups.status.on_battery', for: 10m}\n      stages:",
			// lab-1 is a relay (bool written, bool read back): its on
			// state is the other one; app-01's enum needs naming.
			`loadshed.policies[0].stages[1]: load "app-01" has no on: and verify.on: values`},
		{"restore_when with manual", "      stages:", "      restore_when: {select: {devices: [ups-c]}, when: '!ups.status.on_battery', for: 10m}\n      stages:",
			`loadshed.policies[0].restore_when: restore_when applies only to restore: auto`},
		{"bad restore_when", "      stages:", "      restore: auto\n      restore_when: {select: {devices: [ups-c]}, when: '!ups.status.on_battery &&', for: 10m}\n      stages:",
			`loadshed.policies[0].restore_when.when:`},
		{"on without verify.on", `off: "false", verify: {point: pdu.outlet.state.1`, `off: "false", on: "true", verify: {point: pdu.outlet.state.1`,
			`loadshed.loads[0].on: give both on: and verify.on:`},
		{"bad on value", `off: "false", verify: {point: pdu.outlet.state.1, value: "false"}`, `off: "false", on: "maybe", verify: {point: pdu.outlet.state.1, value: "false", on: "true"}`,
			`loadshed.loads[0].on: point "pdu.outlet.command.1" is a bool: want true or false, got "maybe"`},
		{"drain without mqtt", "- {after: 5s, loads: [app-01]}", "- {after: 5s, drain: {scope: hall-1}, loads: [app-01]}",
			`loadshed.policies[0].stages[1].drain: a drain stage publishes its command on MQTT: configure the mqtt section`},
		{"empty stage", "- {after: 5s, loads: [app-01]}", "- {after: 5s}",
			`loadshed.policies[0].stages[1]: a stage needs tiers:, loads: or drain:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(good), tt.old) {
				t.Fatalf("the good file has no %q", tt.old)
			}
			data := strings.Replace(string(good), tt.old, tt.new, 1)
			_, err := Parse("testdata/loadshed/good.yaml", []byte(data), shippedRegistry(t))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadshedRestoreAutoAndDrain(t *testing.T) {
	good, err := os.ReadFile("testdata/loadshed/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data := string(good)
	for _, r := range [][2]string{
		{"devices:\n", "mqtt: {brokers: [{name: a, url: \"tcp://127.0.0.1:1883\"}]}\ndevices:\n"},
		{`off: "false", verify: {point: pdu.outlet.state.1, value: "false"}`, `off: "false", on: "true", verify: {point: pdu.outlet.state.1, value: "false", on: "true"}`},
		{`off: "false", verify: {point: pdu.outlet.state.2, value: "false"}`, `off: "false", on: "true", verify: {point: pdu.outlet.state.2, value: "false", on: "true"}`},
		{`off: immediate_off, verify: {point: pdu.outlet.state, value: "off"}}` + "\n    - {name: web-01", `off: immediate_off, on: immediate_on, verify: {point: pdu.outlet.state, value: "off", on: "on"}}` + "\n    - {name: web-01"},
		{"      stages:", "      restore: auto\n      restore_when: {select: {devices: [ups-c]}, when: '!ups.status.on_battery', for: 10m}\n      stages:"},
		{"- {after: 5s, loads: [app-01]}", "- {after: 5s, drain: {scope: hall-1}, loads: [app-01]}\n        - {drain: {timeout: 5s}}"},
	} {
		if !strings.Contains(data, r[0]) {
			t.Fatalf("the good file has no %q", r[0])
		}
		data = strings.Replace(data, r[0], r[1], 1)
	}
	cfg, err := Parse("testdata/loadshed/good.yaml", []byte(data), shippedRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	pol := cfg.Loadshed.Policies[0]
	app, _ := cfg.Loadshed.Load("app-01")
	tests := []struct{ name, got, want string }{
		{"restore", pol.Restore, RestoreAuto},
		{"restore rule", fmt.Sprint(pol.RestoreRule != nil && pol.RestoreRule.ID == "loadshed-restore/utility-failure"), "true"},
		{"app-01 on", fmt.Sprint(app.OnValue), "1"},              // rPDU2 immediateOn
		{"app-01 verify on", fmt.Sprint(app.Verify.WantOn), "2"}, // rPDU2 state on
		{"drain scope", pol.Stages[1].Drain.Scope, "hall-1"},
		{"drain timeout", pol.Stages[1].Drain.Timeout.String(), DefaultDrainTimeout.String()},
		{"default scope", pol.Stages[2].Drain.Scope, "utility-failure"},
		{"own timeout", pol.Stages[2].Drain.Timeout.String(), "5s"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, tt.got, tt.want)
		}
	}
}

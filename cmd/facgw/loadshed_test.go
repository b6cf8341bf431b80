package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lsCheckConfig is a config with a load-shed section; stage is the YAML of
// the policy's second stage.
func lsCheckConfig(t *testing.T, stage string) string {
	t.Helper()
	cfg := `site: s
gateway: gw-1
state_dir: /tmp/facgw-ls-check
mqtt: {brokers: [{name: a, url: "tcp://127.0.0.1:1883"}]}
devices:
  - {id: ups-c, profile: rfc1628-ups-snmp, transport: snmp, address: 127.0.0.1:16161, snmp: {version: 2c, community: public}}
  - {id: pdu-a1, profile: apc-rpdu2-snmp, transport: snmp, address: 127.0.0.1:16162, snmp: {version: 2c, community: public}}
  - {id: outlets-lab, profile: generic-modbus-outlet-bank, transport: modbus-tcp, address: 127.0.0.1:15027, unit: 1}
loadshed:
  tiers:
    - {name: critical, critical: true}
    - {name: non-critical}
  loads:
    - {name: lab-1, tier: non-critical, device: outlets-lab, point: pdu.outlet.command.1, off: "false", verify: {point: pdu.outlet.state.1, value: "false"}}
    - {name: web-01, tier: critical, device: pdu-a1, point: pdu.outlet.command, index: "1", off: immediate_off, verify: {point: pdu.outlet.state, value: "off"}}
  write_credentials:
    - {device: pdu-a1, community: private}
  policies:
    - name: utility-failure
      trigger: {select: {devices: [ups-c]}, when: ups.status.on_battery && battery.runtime < 10, for: 30s}
      stages:
        - {tiers: [non-critical]}
        - ` + stage + "\n"
	f := filepath.Join(t.TempDir(), "facgw.yaml")
	if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCheckRefusesCriticalLoadshedTarget(t *testing.T) {
	tests := []struct {
		name, stage, want string
	}{
		{"critical tier", "{after: 60s, tiers: [critical]}", `:23:32: loadshed.policies[0].stages[1].tiers[0]: tier "critical" is critical and is never shed`},
		{"load in a critical tier", "{after: 60s, loads: [web-01]}", `:23:32: loadshed.policies[0].stages[1].loads[0]: load "web-01" is in critical tier "critical", which is never shed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := runCmd("check", "-config", lsCheckConfig(t, tt.stage))
			if code != 1 {
				t.Fatalf("got exit code %d, want 1 (stderr %q)", code, errs)
			}
			if !strings.Contains(errs, tt.want) {
				t.Errorf("got %q, want it to contain %q", errs, tt.want)
			}
		})
	}
}

func TestLoadshedPlanPrintsStagesInOrder(t *testing.T) {
	out, errs, code := runCmd("loadshed", "plan", "-config", lsCheckConfig(t, "{after: 60s, drain: {scope: hall-1}}"))
	if code != 0 {
		t.Fatalf("got exit code %d, stderr %q; want 0", code, errs)
	}
	for _, want := range []string{"tiers never shed: [critical]", "policy utility-failure: disarmed (dry run only) at start", "stage 1, after 0s:", "lab-1", "stage 2, after 1m0s:", "drain hall-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan: got\n%s\nwant it to contain %q", out, want)
		}
	}
}

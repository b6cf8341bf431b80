package facsim

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"

	profiles "github.com/facgw/facgw/firmware-profiles"
)

func TestParseFacilityErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // substrings of the error, located as file:line:col: path
	}{
		{"unknown field", `
devices:
  - id: a
    profile: x
    listen: 127.0.0.1:0
    prot: 3
`, []string{`f.yaml:6:5: devices[0].prot: unknown field "prot"`}},
		{"missing fields", `
devices:
  - id: a
`, []string{`devices[0].profile: missing required field`, `devices[0].listen: missing required field`}},
		{"no devices", "devices: []\n", []string{"at least one device"}},
		{"duplicate id and bad unit", `
devices:
  - {id: a, profile: x, listen: "127.0.0.1:0"}
  - {id: a, profile: x, listen: "127.0.0.1:0", unit: 0}
`, []string{`f.yaml:4:6: devices[1].id: duplicate device id "a"`, "devices[1].unit: unit id must be 1..255"}},
		{"not loopback", `
devices:
  - {id: a, profile: x, listen: "0.0.0.0:502"}
  - {id: b, profile: x, listen: "10.1.2.3:502"}
  - {id: c, profile: x, listen: "502"}
`, []string{"devices[0].listen: listen address \"0.0.0.0:502\" must be on loopback", "devices[1].listen", "devices[2].listen: want host:port"}},
		{"shared unit", `
devices:
  - {id: a, profile: x, listen: "127.0.0.1:15023", unit: 1}
  - {id: b, profile: x, listen: "127.0.0.1:15023", unit: 1}
  - {id: c, profile: x, gateway: g, listen: "127.0.0.1:0"}
  - {id: d, profile: x, gateway: g, listen: "127.0.0.1:0"}
`, []string{`devices[1].unit: unit id 1 on 127.0.0.1:15023 is also used by device "a"`, `devices[3].unit: unit id 1 on 127.0.0.1:0 is also used by device "c"`}},
		{"gateway listens twice", `
devices:
  - {id: a, profile: x, gateway: g, listen: "127.0.0.1:15023", unit: 1}
  - {id: b, profile: x, gateway: g, listen: "127.0.0.1:15024", unit: 2}
  - {id: c, profile: x, gateway: h, listen: "127.0.0.1:15023", unit: 3}
`, []string{`devices[1].listen: gateway "g" listens on 127.0.0.1:15023`, `devices[2].listen: 127.0.0.1:15023 is also the listen address of gateway g`}},
		{"bad scenario and fault", `
devices:
  - {id: a, profile: x, listen: "127.0.0.1:0", scenario: meltdown, fault: "late:soon"}
`, []string{`devices[0].scenario: unknown scenario "meltdown"`, "devices[0].fault: fault late wants a positive delay"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFacility("f.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "facsim: ") {
				t.Errorf("error %q lacks the facsim: prefix", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateAgainstProfiles(t *testing.T) {
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFacility("f.yaml", []byte(`
devices:
  - {id: a, profile: apc-smart-ups, listen: "127.0.0.1:0"}
  - {id: b, profile: liebert-icom-crac, listen: "127.0.0.1:0", scenario: thermal-runaway}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = f.Validate(reg)
	for _, w := range []string{`f.yaml:3:13: devices[0].profile: unknown profile "apc-smart-ups"`, `devices[1].scenario: scenario "thermal-runaway" does not apply to a cooling device`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %q", err, w)
		}
	}
	if _, err := Start(context.Background(), f, Options{Registry: reg, Manual: true}); err == nil {
		t.Error("Start accepted the facility")
	}
}

// TestDeployFacility checks deploy/facility.yaml: the embedded copy is the
// same file, the ids and ports are the ones the gateway's demo config
// expects, and it starts (on free ports) with the shared listeners intact.
func TestDeployFacility(t *testing.T) {
	deployed, err := os.ReadFile("../../deploy/facility.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(deployed, defaultFacility) {
		t.Fatal("internal/facsim/facility.yaml differs from deploy/facility.yaml: copy it over")
	}
	f, err := DefaultFacility()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id, profile, port string
		unit              uint8
	}{
		{"ups-a", "apc-smart-ups-modbus", "15021", 1},
		{"ups-b", "socomec-delphys-jbus", "15022", 1},
		{"bms-rack1", "generic-liion-bms", "15023", 1},
		{"bms-rack2", "generic-liion-bms", "15023", 2},
		{"crac-1", "liebert-icom-crac", "15024", 1},
		{"crac-2", "liebert-icom-crac", "15025", 1},
		{"firepanel", "generic-fire-panel", "15026", 1},
		{"vesda-1", "generic-vesda", "15026", 2},
	}
	if len(f.Devices) != len(want) {
		t.Fatalf("%d devices, want %d", len(f.Devices), len(want))
	}
	for i, w := range want {
		d := f.Devices[i]
		_, port, _ := net.SplitHostPort(d.Listen)
		if d.ID != w.id || d.Profile != w.profile || port != w.port || d.UnitID() != w.unit {
			t.Errorf("device %d: %s %s port %s unit %d, want %s %s port %s unit %d", i, d.ID, d.Profile, port, d.UnitID(), w.id, w.profile, w.port, w.unit)
		}
	}
	s, err := Start(context.Background(), f, Options{FreePorts: true, Manual: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := s.Addrs()
	if a["bms-rack1"] != a["bms-rack2"] || a["firepanel"] != a["vesda-1"] {
		t.Errorf("shared listeners split: %v", a)
	}
	seen := map[string]bool{}
	for _, id := range []string{"ups-a", "ups-b", "bms-rack1", "crac-1", "crac-2", "firepanel"} {
		if seen[a[id]] || strings.HasSuffix(a[id], ":15021") {
			t.Errorf("%s on %s: want a free port of its own", id, a[id])
		}
		seen[a[id]] = true
	}
}

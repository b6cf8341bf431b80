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
		{"outlets-lab", "generic-modbus-outlet-bank", "15027", 1},
		{"ups-c", "rfc1628-ups-snmp", "16161", 0},
		{"pdu-a1", "apc-rpdu2-snmp", "16162", 0},
		{"sw-core1", "generic-switch-snmp", "16163", 0},
	}
	if len(f.Devices) != len(want) {
		t.Fatalf("%d devices, want %d", len(f.Devices), len(want))
	}
	for i, w := range want {
		d := f.Devices[i]
		if d.IsSNMP() {
			_, port, _ := net.SplitHostPort(d.SNMP.Listen)
			if d.ID != w.id || d.Profile != w.profile || port != w.port || w.unit != 0 {
				t.Errorf("device %d: %s %s snmp port %s, want %s %s port %s", i, d.ID, d.Profile, port, w.id, w.profile, w.port)
			}
			continue
		}
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
	for _, id := range []string{"ups-a", "ups-b", "bms-rack1", "crac-1", "crac-2", "firepanel", "ups-c", "pdu-a1", "sw-core1"} {
		_, port, _ := net.SplitHostPort(a[id])
		if seen[a[id]] || port == "" || strings.HasPrefix(port, "1502") || strings.HasPrefix(port, "1616") {
			t.Errorf("%s on %s: want a free port of its own", id, a[id])
		}
		seen[a[id]] = true
	}
	// The v3 switch's credentials are the ones the gateway's config uses.
	sw := f.Devices[len(f.Devices)-1].SNMP
	if len(sw.Users) != 1 || sw.Community != "" {
		t.Fatalf("sw-core1 snmp %+v: want one v3 user and no community", sw)
	}
	if u := sw.Users[0]; u.Name != "facgw" || u.AuthProtocol != "SHA-256" || u.AuthPassword != "facgw-auth-pass" || u.PrivProtocol != "AES-256" || u.PrivPassword != "facgw-priv-pass" {
		t.Errorf("sw-core1 user %+v", u)
	}
	if pdu := f.Devices[len(f.Devices)-2].SNMP; pdu.Community == "" || pdu.WriteCommunity == "" {
		t.Errorf("pdu-a1 snmp %+v: want read and write communities", pdu)
	}
}

func TestParseFacilitySNMPErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"modbus fields on an snmp device", `
devices:
  - id: a
    profile: x
    listen: 127.0.0.1:0
    unit: 2
    gateway: g
    snmp: {listen: "127.0.0.1:0", community: public}
`, []string{`f.yaml:5:5: devices[0].listen: listen applies only to Modbus devices`, `devices[0].unit: unit applies only`, `devices[0].gateway: gateway applies only`}},
		{"snmp section", `
devices:
  - id: a
    profile: x
    snmp: {community: public, comunity: x}
  - id: b
    profile: x
    snmp: {listen: "0.0.0.0:161"}
  - id: c
    profile: x
    snmp: {listen: "127.0.0.1:16161", community: "", engine_id: "zz"}
  - id: d
    profile: x
    snmp: {listen: "127.0.0.1:16161", write_community: private}
`, []string{
			`f.yaml:5:11: devices[0].snmp.listen: missing required field "listen"`,
			`devices[0].snmp.comunity: unknown field "comunity" (did you mean "community"?)`,
			`devices[1].snmp.listen: listen address "0.0.0.0:161" must be on loopback`,
			`devices[1].snmp: snmp needs community, write_community or users`,
			`devices[2].snmp.community: community must have 1 to 127 characters`,
			`devices[2].snmp.engine_id: engine id "zz"`,
			`devices[3].snmp.listen: 127.0.0.1:16161 is also the snmp listen address of device "c"`,
		}},
		{"users", `
devices:
  - id: a
    profile: x
    snmp:
      listen: 127.0.0.1:0
      users:
        - {name: u1, auth_protocol: SHA-257, auth_password: long-enough}
        - {name: u2, auth_protocol: SHA, auth_password: short}
        - {name: u3, priv_protocol: AES, priv_password: long-enough}
        - {name: u3, auth_protocol: MD5, auth_password: long-enough, priv_protocol: AES, priv_password: short}
        - {auth_protocol: MD5}
`, []string{
			`f.yaml:8:22: devices[0].snmp.users[0].auth_protocol: unknown authentication protocol "SHA-257"`,
			`devices[0].snmp.users[1].auth_password: auth_password must have at least 8 characters`,
			`devices[0].snmp.users[2].priv_protocol: privacy needs authentication`,
			`devices[0].snmp.users[3].name: duplicate user "u3"`,
			`devices[0].snmp.users[3].priv_password: priv_password must have at least 8 characters`,
			`devices[0].snmp.users[4].name: missing required field "name"`,
		}},
		{"traps", `
devices:
  - id: a
    profile: x
    snmp:
      listen: 127.0.0.1:0
      users: [{name: mon}]
      traps:
        - {addr: "10.0.0.1:162", community: public}
        - {addr: "127.0.0.1:10162", version: 2, community: public}
        - {addr: "127.0.0.1:10162"}
        - {addr: "127.0.0.1:10162", version: "3", user: nobody, community: public}
        - {addr: "127.0.0.1:10162", version: "1", community: public, inform: true}
        - {version: "3", user: mon}
        - {addr: "127.0.0.1:10162", version: "2c", community: public, user: mon}
`, []string{
			`devices[0].snmp.traps[0].addr: address "10.0.0.1:162" must be on loopback`,
			`f.yaml:10:37: devices[0].snmp.traps[1].version: unknown SNMP version "2"`,
			`devices[0].snmp.traps[2].community: a v2c receiver needs a community`,
			`devices[0].snmp.traps[3].user: unknown user "nobody"`,
			`devices[0].snmp.traps[3].community: version 3 sends as a user`,
			`devices[0].snmp.traps[4].inform: SNMPv1 has no inform`,
			`devices[0].snmp.traps[5].addr: missing required field "addr"`,
			`devices[0].snmp.traps[6].user: user applies only to version 3`,
		}},
		{"outlets and ports", `
devices:
  - id: a
    profile: x
    outlets: [web-01, "Web 01", "--"]
    ports: []
    uplink: Te9/9/9
    snmp: {listen: "127.0.0.1:0", community: public}
`, []string{
			`f.yaml:5:23: devices[0].outlets[1]: name "Web 01" gives the same point name (web_01) as "web-01"`,
			`devices[0].outlets[2]: name "--" has no letter or digit`,
			`devices[0].ports: ports must not be empty`,
			`devices[0].uplink: uplink "Te9/9/9" is not one of the ports`,
		}},
		{"modbus device without listen", `
devices:
  - {id: a, profile: x}
`, []string{`devices[0].listen: missing required field "listen" (or snmp: for an SNMP device)`}},
		{"snmp fault", `
devices:
  - {id: a, profile: x, fault: "error:noSuchThing", snmp: {listen: "127.0.0.1:0", community: public}}
`, []string{`devices[0].fault: fault error wants an SNMP error status`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFacility("f.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateSNMPAgainstProfiles(t *testing.T) {
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFacility("f.yaml", []byte(`
devices:
  - {id: a, profile: rfc1628-ups-snmp, listen: "127.0.0.1:0"}
  - {id: b, profile: liebert-icom-crac, snmp: {listen: "127.0.0.1:0", community: public}}
  - {id: c, profile: rfc1628-ups-snmp, outlets: [x], ports: [y], snmp: {listen: "127.0.0.1:0", community: public}}
  - {id: d, profile: apc-rpdu2-snmp, scenario: link-down, fault: exception, snmp: {listen: "127.0.0.1:0", community: public}}
  - {id: e, profile: generic-switch-snmp, uplink: Gi1/0/3, snmp: {listen: "127.0.0.1:0", community: public}}
  - {id: f, profile: liebert-icom-crac, listen: "127.0.0.1:0", fault: error}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = f.Validate(reg)
	for _, w := range []string{
		`f.yaml:3:13: devices[0].profile: profile "rfc1628-ups-snmp" speaks snmp: give the device snmp:`,
		`devices[1].snmp: profile "liebert-icom-crac" speaks modbus: snmp applies only to SNMP profiles`,
		`devices[2].outlets: outlets apply only to pdu devices`,
		`devices[2].ports: ports applies only to switch devices`,
		`devices[3].scenario: scenario "link-down" does not apply to a pdu device`,
		`devices[3].fault: fault "exception" does not apply to a snmp device (known for snmp: none, silent, late, garbage, error, truncated)`,
		`devices[5].fault: fault "error" does not apply to a modbus device`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "devices[4]") {
		t.Errorf("error about a valid switch: %v", err)
	}
}

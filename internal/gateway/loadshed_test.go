package gateway

import (
	"fmt"
	"strings"
	"testing"

	snmpdrv "github.com/facgw/facgw/drivers/snmp"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/facsim"
	"github.com/facgw/facgw/internal/point"
)

// v3Facility is an rPDU2 whose SNMPv3 agent has a read-only polling user
// (its SETs are refused, noAccess) and a write user.
const v3Facility = `description: rPDU2 with a read-only v3 polling user and a v3 write user
devices:
  - id: pdu-a1
    profile: apc-rpdu2-snmp
    outlets: [web-01, web-02, db-01, db-02, app-01, lab-01, lab-02, "Outlet 8"]
    snmp:
      listen: 127.0.0.1:0
      users:
        - {name: poller, auth_protocol: SHA-256, auth_password: poll-auth-pass, priv_protocol: AES, priv_password: poll-priv-pass, read_only: true}
        - {name: shedder, auth_protocol: SHA-512, auth_password: shed-auth-pass, priv_protocol: AES-256, priv_password: shed-priv-pass}
`

// v3Gateway is the gateway config for it: polled as poller, shed as
// shedder (the passphrases from the environment, as in production).
const v3Gateway = `site: s
gateway: g
state_dir: %s
devices:
  - {id: ups-c, profile: rfc1628-ups-snmp, transport: snmp, address: 127.0.0.1:9, snmp: {version: 2c, community: public}}
  - {id: pdu-a1, profile: apc-rpdu2-snmp, transport: snmp, address: %q, timeout: 2s, retries: 1,
     snmp: {version: "3", user: poller, auth_protocol: SHA-256, auth_password: {env: T_POLL_AUTH}, priv_protocol: AES, priv_password: {env: T_POLL_PRIV}}}
loadshed:
  tiers: [{name: essential}]
  loads:
    - {name: app-01, tier: essential, device: pdu-a1, point: pdu.outlet.command, index: "5", off: immediate_off, verify: {point: pdu.outlet.state, value: "off"}}
  write_credentials:
    - device: pdu-a1
      v3: {user: shedder, auth_protocol: SHA-512, auth_password: {env: T_SHED_AUTH}, priv_protocol: AES-256, priv_password: {env: T_SHED_PRIV}}
  policies:
    - name: utility-failure
      trigger: {select: {devices: [ups-c]}, when: ups.status.on_battery, for: 1s}
      stages: [{loads: [app-01]}]
`

// TestLoadshedSNMPv3WriteUser sets an rPDU2 outlet off through the
// session the gateway builds for the load shed, against facsim's SNMPv3
// agent: the write user's SET is accepted and the outlet reads back off;
// the polling session, whose user is read-only, is refused; a wrong
// write passphrase is refused and changes nothing.
func TestLoadshedSNMPv3WriteUser(t *testing.T) {
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	f, err := facsim.ParseFacility("v3.yaml", []byte(v3Facility))
	if err != nil {
		t.Fatal(err)
	}
	sim, err := facsim.Start(t.Context(), f, facsim.Options{Registry: reg, Manual: true, FreePorts: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	for k, v := range map[string]string{"T_POLL_AUTH": "poll-auth-pass", "T_POLL_PRIV": "poll-priv-pass", "T_SHED_AUTH": "shed-auth-pass", "T_SHED_PRIV": "shed-priv-pass"} {
		t.Setenv(k, v)
	}
	cfg, err := config.Parse("gw.yaml", fmt.Appendf(nil, v3Gateway, t.TempDir(), sim.Addr("pdu-a1")), reg)
	if err != nil {
		t.Fatal(err)
	}
	dc, _ := cfg.Device("pdu-a1")
	poll, err := (&Gateway{}).snmpDevice(dc, dc.ProfileDef(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { poll.Close() })

	wc := snmpWriteConfig(poll.Config(), cfg.Loadshed)
	if err := wc.Validate(); err != nil {
		t.Fatalf("write session config: %v", err)
	}
	if got, want := fmt.Sprintf("%s %s %s %s %s", wc.Version, wc.V3.User, wc.V3.SecurityLevel, wc.V3.AuthProto, wc.V3.PrivProto), "3 shedder authPriv SHA-512 AES-256"; got != want {
		t.Errorf("write session: got %s, want %s", got, want)
	}
	if pc := poll.Config(); pc.V3.User != "poller" {
		t.Errorf("polling session user: got %q, want poller (unchanged)", pc.V3.User)
	}

	ctx := t.Context()
	state := func(d *snmpdrv.Device) point.Point {
		t.Helper()
		p := d.ReadPoint(ctx, "pdu.outlet.state", "5")
		if p.Quality != point.Good {
			t.Fatalf("read outlet 5 state: got %s (%s), want good", p.Quality, p.Reason)
		}
		return p
	}
	if got := state(poll).Num; got != 2 {
		t.Fatalf("outlet 5 at start: got %g, want 2 (on)", got)
	}

	// The polling user may not SET.
	if err := poll.WritePoint(ctx, "pdu.outlet.command", "5", 2); err == nil {
		t.Fatal("SET as the read-only polling user: got nil, want refused")
	}
	// A wrong write passphrase: refused, nothing changes.
	bad := wc
	bad.V3.AuthPass = "not-the-pass"
	bd := snmpdrv.NewDevice(bad)
	t.Cleanup(func() { bd.Close() })
	if err := bd.WritePoint(ctx, "pdu.outlet.command", "5", 2); err == nil {
		t.Error("SET with a wrong write passphrase: got nil, want refused")
	}
	if got := state(poll).Num; got != 2 {
		t.Fatalf("outlet 5 after refused SETs: got %g, want 2 (on)", got)
	}

	// The write user may.
	w := snmpdrv.NewDevice(wc)
	t.Cleanup(func() { w.Close() })
	if err := w.WritePoint(ctx, "pdu.outlet.command", "5", 2); err != nil {
		t.Fatalf("SET as the write user: %v", err)
	}
	if got := state(w).Num; got != 1 {
		t.Errorf("outlet 5 read back by the write session: got %g, want 1 (off)", got)
	}
	if got := state(poll).Num; got != 1 {
		t.Errorf("outlet 5 read back by the polling session: got %g, want 1 (off)", got)
	}
}

// TestSNMPWriteConfig: the SET session takes the write community or the
// v3 write user, and keeps everything else of the polling session.
func TestSNMPWriteConfig(t *testing.T) {
	ls := &config.Loadshed{WriteCredentials: []config.WriteCredential{
		{Device: "pdu-v2", Community: config.NewSecret("private")},
		{Device: "pdu-v3", V3: &config.WriteUser{User: "shedder", SecurityLevel: "authNoPriv", AuthProtocol: "SHA", AuthPassword: config.NewSecret("shed-auth-pass")}},
		{Device: "pdu-ctx", V3: &config.WriteUser{User: "shedder", SecurityLevel: "noAuthNoPriv", Context: "write-ctx"}},
	}}
	pollV3 := snmpdrv.V3Config{User: "poller", AuthProto: "SHA-256", AuthPass: "poll-auth-pass", PrivProto: "AES", PrivPass: "poll-priv-pass", SecurityLevel: "authPriv", ContextName: "poll-ctx"}
	tests := []struct {
		name string
		poll snmpdrv.DeviceConfig
		want string
	}{
		{"v2c community", snmpdrv.DeviceConfig{ID: "pdu-v2", Version: "2c", Community: "public", Target: "h", Port: 161},
			"2c private {      }"},
		{"v3 write user, polling context", snmpdrv.DeviceConfig{ID: "pdu-v3", Version: "3", V3: pollV3, Target: "h", Port: 161},
			"3  {shedder SHA shed-auth-pass   authNoPriv poll-ctx}"},
		{"v3 write user, own context", snmpdrv.DeviceConfig{ID: "pdu-ctx", Version: "3", V3: pollV3, Target: "h", Port: 161},
			"3  {shedder     noAuthNoPriv write-ctx}"},
		{"v3 without a write user", snmpdrv.DeviceConfig{ID: "pdu-other", Version: "3", V3: pollV3, Target: "h", Port: 161},
			"3  {poller SHA-256 poll-auth-pass AES poll-priv-pass authPriv poll-ctx}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wc := snmpWriteConfig(tt.poll, ls)
			v := wc.V3
			if got := fmt.Sprintf("%s %s {%s %s %s %s %s %s %s}", wc.Version, wc.Community, v.User, v.AuthProto, v.AuthPass, v.PrivProto, v.PrivPass, v.SecurityLevel, v.ContextName); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if wc.Target != tt.poll.Target || wc.Port != tt.poll.Port || wc.ID != tt.poll.ID {
				t.Errorf("target: got %s %s:%d, want the polling session's", wc.ID, wc.Target, wc.Port)
			}
		})
	}
	// The write user's secret is not in the polling config it came from.
	if strings.Contains(fmt.Sprint(ls.WriteCredentials), "shed-auth-pass") {
		t.Error("write credentials print their passphrase")
	}
}

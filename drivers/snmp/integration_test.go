package snmp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/testpeer"
)

// snmprec BER type tags (snmpsim's data file format: OID|TAG|VALUE).
const (
	tagInteger   = 2
	tagString    = 4
	tagOID       = 6
	tagCounter32 = 65
	tagGauge32   = 66
	tagTimeTicks = 67
	tagCounter64 = 70
)

// record is one snmprec line.
type record struct {
	oid string
	tag int
	val string
}

// sentinelOID sorts after every OID the tests walk, so no walk of the data
// runs into the end of the simulated MIB.
const sentinelOID = "1.3.6.2.0"

// writeSnmprec writes community.snmprec into dir: records sorted by OID
// (snmpsim needs them sorted), ending with the sentinel.
func writeSnmprec(t *testing.T, dir, community string, recs []record) {
	t.Helper()
	recs = append(append([]record(nil), recs...), record{sentinelOID, tagString, "end of data"})
	sort.Slice(recs, func(i, j int) bool { return compareOID(recs[i].oid, recs[j].oid) < 0 })
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "%s|%d|%s\n", r.oid, r.tag, r.val)
	}
	if err := os.WriteFile(filepath.Join(dir, community+".snmprec"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startSnmpsim runs Debian's snmpsim (snmpsimd) on a free 127.0.0.1 port
// serving one data file per community, with extra arguments, and returns
// the port once the first community answers a GETNEXT.
func startSnmpsim(t *testing.T, data map[string][]record, extra ...string) uint16 {
	t.Helper()
	testpeer.Require(t, "snmpsim", "/usr/bin/snmpsimd")
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var first string
	for community, recs := range data {
		writeSnmprec(t, dataDir, community, recs)
		if first == "" || community < first {
			first = community
		}
	}
	port := testpeer.FreeUDPPort(t)
	args := []string{
		"--data-dir=" + dataDir,
		"--cache-dir=" + filepath.Join(dir, "cache"),
		"--agent-udpv4-endpoint=127.0.0.1:" + strconv.Itoa(port),
		"--logging-method=stderr",
	}
	args = append(args, extra...)
	if os.Geteuid() == 0 {
		// As root snmpsim refuses to run without dropping privileges.
		args = append(args, "--process-user=root", "--process-group=root")
	}
	testpeer.StartProcess(t, "/usr/bin/snmpsimd", args, testpeer.WithReady(func() error {
		return probe(uint16(port), first)
	}))
	return uint16(port)
}

// probe sends one GETNEXT with a short timeout.
func probe(port uint16, community string) error {
	g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: port, Community: community, Version: gosnmp.Version2c,
		Timeout: 300 * time.Millisecond, Retries: 0}
	if err := g.Connect(); err != nil {
		return err
	}
	defer g.Conn.Close()
	_, err := g.GetNext([]string{"1.3.6.1"})
	return err
}

// upsRecords is an RFC 1628 UPS on battery: one input line, three output
// lines, two active alarms, and no upsBatteryTemperature.
func upsRecords(model string, charge int) []record {
	u := "1.3.6.1.2.1.33.1."
	return []record{
		{"1.3.6.1.2.1.1.1.0", tagString, "Test UPS agent"},
		{sysObjectIDOID, tagOID, "1.3.6.1.4.1.8072.3.2.10"},
		{sysUpTimeOID, tagTimeTicks, "123400"},
		{u + "1.1.0", tagString, "ACME"},
		{u + "1.2.0", tagString, model},
		{u + "1.3.0", tagString, "1.2"},
		{u + "1.4.0", tagString, "2.4.1"},
		{u + "1.5.0", tagString, "ups-a"},
		{u + "2.1.0", tagInteger, "2"},
		{u + "2.2.0", tagInteger, "95"},
		{u + "2.3.0", tagInteger, "41"},
		{u + "2.4.0", tagInteger, strconv.Itoa(charge)},
		{u + "2.5.0", tagInteger, "545"},
		{u + "2.6.0", tagInteger, "-123"},
		{u + "3.1.0", tagCounter32, "4294967290"},
		{u + "3.2.0", tagInteger, "1"},
		{u + "3.3.1.1.1", tagInteger, "1"},
		{u + "3.3.1.2.1", tagInteger, "499"},
		{u + "3.3.1.3.1", tagInteger, "0"},
		{u + "3.3.1.4.1", tagInteger, "0"},
		{u + "3.3.1.5.1", tagInteger, "0"},
		{u + "4.1.0", tagInteger, "5"},
		{u + "4.2.0", tagInteger, "500"},
		{u + "4.3.0", tagInteger, "3"},
		{u + "4.4.1.1.1", tagInteger, "1"}, {u + "4.4.1.1.2", tagInteger, "2"}, {u + "4.4.1.1.3", tagInteger, "3"},
		{u + "4.4.1.2.1", tagInteger, "230"}, {u + "4.4.1.2.2", tagInteger, "231"}, {u + "4.4.1.2.3", tagInteger, "229"},
		{u + "4.4.1.3.1", tagInteger, "52"}, {u + "4.4.1.3.2", tagInteger, "48"}, {u + "4.4.1.3.3", tagInteger, "50"},
		{u + "4.4.1.4.1", tagInteger, "1100"}, {u + "4.4.1.4.2", tagInteger, "1000"}, {u + "4.4.1.4.3", tagInteger, "1050"},
		{u + "4.4.1.5.1", tagInteger, "41"}, {u + "4.4.1.5.2", tagInteger, "38"}, {u + "4.4.1.5.3", tagInteger, "40"},
		{u + "6.1.0", tagGauge32, "2"},
		{u + "6.2.1.1.7", tagInteger, "7"}, {u + "6.2.1.1.8", tagInteger, "8"},
		{u + "6.2.1.2.7", tagOID, "1.3.6.1.2.1.33.1.6.3.2"}, {u + "6.2.1.2.8", tagOID, "1.3.6.1.2.1.33.1.6.3.6"},
		{u + "6.2.1.3.7", tagTimeTicks, "100"}, {u + "6.2.1.3.8", tagTimeTicks, "100"},
		{u + "9.5.0", tagInteger, "3000"},
		{u + "9.6.0", tagInteger, "2700"},
		{u + "9.7.0", tagInteger, "2"},
		{u + "9.9.0", tagInteger, "170"},
		{u + "9.10.0", tagInteger, "280"},
	}
}

// pollAll polls every group of d's resolved profile and returns the
// points by name.
func pollAll(t *testing.T, d *Device) map[string]point.Point {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := map[string]point.Point{}
	for _, p := range d.Poll(ctx, "default") {
		out[p.Name] = p
	}
	r := d.Resolved()
	if r == nil {
		t.Fatal("device not resolved")
	}
	for _, g := range r.Groups() {
		if g == "default" {
			continue
		}
		for _, p := range d.Poll(ctx, g) {
			out[p.Name] = p
		}
	}
	return out
}

func shipped(t *testing.T, model string) (*profiles.Registry, *profiles.Profile) {
	t.Helper()
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := reg.Get(model)
	if !ok {
		t.Fatalf("%s not shipped", model)
	}
	return reg, p
}

// upsWants are the values upsRecords("UPS 3000 XL", 87) gives through
// rfc1628-ups-snmp.
var upsWants = map[string]string{
	"ident.model":                 `"UPS 3000 XL"`,
	"ident.agent_firmware":        `"2.4.1"`,
	"ident.sys_object_id":         `"1.3.6.1.4.1.8072.3.2.10"`,
	"agent.uptime":                "1234 s",
	"battery.status":              "normal (2)",
	"ups.status.battery_low":      "false",
	"battery.time_on_battery":     "95 s",
	"battery.runtime":             "41 min",
	"battery.charge":              "87 %",
	"battery.voltage":             "54.5 V",
	"battery.current":             "-12.3 A",
	"ups.input.line_bads":         "4294967290",
	"ups.input.frequency.1":       "49.9 Hz",
	"ups.output.source":           "battery (5)",
	"ups.status.on_battery":       "true",
	"ups.status.online":           "false",
	"ups.status.on_bypass":        "false",
	"ups.output.frequency":        "50 Hz",
	"ups.output.voltage.1":        "230 V",
	"ups.output.voltage.2":        "231 V",
	"ups.output.voltage.3":        "229 V",
	"ups.output.current.1":        "5.2 A",
	"ups.output.realpower.3":      "1050 W",
	"ups.output.load.1":           "41 %",
	"ups.output.load.2":           "38 %",
	"ups.output.load.3":           "40 %",
	"ups.alarms_present":          "2",
	"ups.alarm.on_battery":        "true",
	"ups.status.input_bad":        "true",
	"ups.status.fault":            "false",
	"ups.status.overload":         "false",
	"ups.config.low_battery_time": "2 min",
}

// TestSnmpsimIntegration polls a simulated RFC 1628 UPS, served by
// snmpsim rather than by our own code, with the shipped
// rfc1628-ups-snmp profile over v2c and v1: values come back decoded,
// tables expand to one point per line, the missing upsBatteryTemperature
// is one bad point while every other point is good, and profile: auto
// picks the profile.
func TestSnmpsimIntegration(t *testing.T) {
	port := startSnmpsim(t, map[string][]record{"ups": upsRecords("UPS 3000 XL", 87)})
	reg, prof := shipped(t, "rfc1628-ups-snmp")
	for _, version := range []string{"2c", "1"} {
		t.Run("v"+version, func(t *testing.T) {
			d := NewDevice(DeviceConfig{ID: "dev", Target: "127.0.0.1", Port: port, Version: version, Community: "ups",
				Timeout: 2 * time.Second, Retries: 1, Profile: prof})
			t.Cleanup(func() { d.Close() })
			pts := pollAll(t, d)
			for name, w := range upsWants {
				p, ok := pts[name]
				switch {
				case !ok:
					t.Errorf("no point %s", name)
				case p.Quality != point.Good:
					t.Errorf("%s: bad (%s), want %s", name, p.Reason, w)
				case p.Format() != w:
					t.Errorf("%s = %s, want %s", name, p.Format(), w)
				}
			}
			missing := map[string]string{"2c": "snmp: noSuchInstance", "1": "snmp: error status noSuchName"}[version]
			var bad []string
			for name, p := range pts {
				if p.Quality != point.Good {
					bad = append(bad, name+": "+p.Reason)
				}
			}
			sort.Strings(bad)
			wantBad := []string{"battery.temperature: " + missing, "ups.input.line_bads.rate: not polled: a rate needs a second reading"}
			if strings.Join(bad, "\n") != strings.Join(wantBad, "\n") {
				t.Errorf("bad points:\n got  %s\n want %s", strings.Join(bad, "\n      "), strings.Join(wantBad, "\n      "))
			}
			// Requests per cycle: v2c reads the default group's scalars in
			// one GET and its eleven columns (at most three rows) in one
			// GETBULK, and the inventory group in one GET. v1 needs one
			// more GET (noSuchName splits the batch) and a GETNEXT per
			// row plus one to see each column end.
			if want := map[string]uint64{"2c": 3, "1": 7}[version]; d.Requests() != want {
				t.Errorf("%d requests for %d points, want %d", d.Requests(), len(pts), want)
			}
		})
	}
	t.Run("auto", func(t *testing.T) {
		d := NewDevice(DeviceConfig{ID: "dev", Target: "127.0.0.1", Port: port, Community: "ups", Timeout: 2 * time.Second,
			Retries: 1, Auto: true, Registry: reg})
		t.Cleanup(func() { d.Close() })
		id, err := d.Identify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if id.Profile.Model != "rfc1628-ups-snmp" || id.Firmware != "2.4.1" || id.SysObjectID != "1.3.6.1.4.1.8072.3.2.10" {
			t.Errorf("identified %s firmware %q sysObjectID %q", id.Profile.Model, id.Firmware, id.SysObjectID)
		}
	})
}

// TestSnmpsimTruncatedBulkIntegration polls an agent that caps every
// reply at four varbinds (snmpsim --max-varbinds=4): GETBULK replies come
// back truncated, not as tooBig, and the walks must still see every row.
func TestSnmpsimTruncatedBulkIntegration(t *testing.T) {
	port := startSnmpsim(t, map[string][]record{"ups": upsRecords("UPS 3000 XL", 87)}, "--max-varbinds=4")
	_, prof := shipped(t, "rfc1628-ups-snmp")
	d := NewDevice(DeviceConfig{ID: "dev", Target: "127.0.0.1", Port: port, Community: "ups", Timeout: 2 * time.Second,
		Retries: 1, MaxVarbinds: 4, Profile: prof})
	t.Cleanup(func() { d.Close() })
	pts := pollAll(t, d)
	for name, w := range upsWants {
		if p := pts[name]; p.Quality != point.Good || p.Format() != w {
			t.Errorf("%s = %s %s (%s), want %s", name, p.Quality, p.Format(), p.Reason, w)
		}
	}
	t.Logf("%d requests for %d points", d.Requests(), len(pts))
}

// TestConcurrentAgentsIntegration polls four simulated UPSes (four
// communities with different data, and one more agent process on another
// port) at the same time, repeatedly, and checks every value against its
// own device: no reading may land on the wrong UPS (gosnmp #217, #417).
func TestConcurrentAgentsIntegration(t *testing.T) {
	data := map[string][]record{}
	for i := 1; i <= 4; i++ {
		data[fmt.Sprintf("ups%d", i)] = upsRecords(fmt.Sprintf("UPS-%d", i), 10*i)
	}
	portA := startSnmpsim(t, data)
	portB := startSnmpsim(t, map[string][]record{"ups5": upsRecords("UPS-5", 50)})
	_, prof := shipped(t, "rfc1628-ups-snmp")
	type dev struct {
		d      *Device
		model  string
		charge string
	}
	var devs []dev
	for i := 1; i <= 5; i++ {
		port := portA
		if i == 5 {
			port = portB
		}
		d := NewDevice(DeviceConfig{ID: fmt.Sprintf("ups%d", i), Target: "127.0.0.1", Port: port, Community: fmt.Sprintf("ups%d", i),
			Timeout: 2 * time.Second, Retries: 2, Profile: prof})
		t.Cleanup(func() { d.Close() })
		devs = append(devs, dev{d, fmt.Sprintf(`"UPS-%d"`, i), fmt.Sprintf("%d %%", 10*i)})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	for _, dv := range devs {
		for _, group := range []string{"default", "inventory"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					pts := dv.d.Poll(ctx, group)
					cancel()
					for _, p := range pts {
						var problem string
						switch {
						case p.Device != dv.d.ID():
							problem = "device " + p.Device
						case p.Name == "ident.model" && p.Format() != dv.model:
							problem = p.Format()
						case p.Name == "battery.charge" && p.Format() != dv.charge:
							problem = p.Format()
						case (p.Name == "ident.model" || p.Name == "battery.charge") && p.Quality != point.Good:
							problem = p.Reason
						}
						if problem != "" {
							mu.Lock()
							errs = append(errs, fmt.Sprintf("%s %s: %s", dv.d.ID(), p.Name, problem))
							mu.Unlock()
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
}

// TestSnmpdV3Integration reads net-snmp's own agent over SNMPv3 authPriv
// (SHA-256, AES-256): sysDescr, sysUpTime and the IF-MIB rows of the
// loopback interface, labelled by ifName; then checks that a wrong
// authentication passphrase, a wrong privacy passphrase and an unknown
// user each give every point a clear bad reason and the poll returns.
func TestSnmpdV3Integration(t *testing.T) {
	testpeer.Require(t, "snmpd", "/usr/sbin/snmpd")
	dir := t.TempDir()
	conf := filepath.Join(dir, "snmpd.conf")
	err := os.WriteFile(conf, []byte(`createUser facgw SHA-256 authpass123 AES-256 privpass123
rouser facgw priv
sysDescr facgw test agent
sysLocation lab
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(testpeer.FreeUDPPort(t))
	good := V3Config{User: "facgw", AuthProto: "SHA-256", AuthPass: "authpass123", PrivProto: "AES-256", PrivPass: "privpass123", SecurityLevel: "authPriv"}
	testpeer.StartProcess(t, "/usr/sbin/snmpd",
		[]string{"-f", "-Lo", "-C", "-c", conf, "-I", "-smux", fmt.Sprintf("UDP:127.0.0.1:%d", port)},
		testpeer.WithEnv("SNMP_PERSISTENT_DIR="+filepath.Join(dir, "persist"), "MIBS="),
		testpeer.WithReady(func() error {
			c, err := openGoSNMP(DeviceConfig{Target: "127.0.0.1", Port: port, Version: "3", V3: good, Timeout: 300 * time.Millisecond, MaxVarbinds: 20})
			if err != nil {
				return err
			}
			defer c.close()
			_, err = c.get(context.Background(), []string{sysUpTimeOID})
			return err
		}))
	prof, errs := profiles.Parse("loopback.yaml", []byte(`
model: netsnmp-host
class: switch
protocol: snmp
source: test
points:
  - {name: ident.model, oid: 1.3.6.1.2.1.1.1.0, type: string}
  - {name: agent.uptime, oid: 1.3.6.1.2.1.1.3.0, type: timeticks, unit: s}
  - {name: if.descr, walk: 1.3.6.1.2.1.2.2.1.2, row_label: 1.3.6.1.2.1.31.1.1.1.1, type: string}
  - {name: if.oper_status, walk: 1.3.6.1.2.1.2.2.1.8, row_label: 1.3.6.1.2.1.31.1.1.1.1, type: integer, enum: {1: up, 2: down}}
  - {name: if.in_octets, walk: 1.3.6.1.2.1.31.1.1.1.6, row_label: 1.3.6.1.2.1.31.1.1.1.1, type: counter64}
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	newDev := func(v V3Config) *Device {
		d := NewDevice(DeviceConfig{ID: "dev", Target: "127.0.0.1", Port: port, Version: "3", V3: v,
			Timeout: time.Second, Retries: 1, Profile: prof})
		t.Cleanup(func() { d.Close() })
		return d
	}
	t.Run("authPriv", func(t *testing.T) {
		pts := pollAll(t, newDev(good))
		for name, w := range map[string]string{
			"ident.model":       `"facgw test agent"`,
			"if.descr.lo":       `"lo"`,
			"if.oper_status.lo": "up (1)",
		} {
			if p := pts[name]; p.Quality != point.Good || p.Format() != w {
				t.Errorf("%s = %s %s (%s), want %s", name, p.Quality, p.Format(), p.Reason, w)
			}
		}
		for _, name := range []string{"agent.uptime", "if.in_octets.lo"} {
			if p := pts[name]; p.Quality != point.Good {
				t.Errorf("%s: %s (%s)", name, p.Quality, p.Reason)
			}
		}
	})
	bad := []struct {
		name   string
		v3     V3Config
		reason string
	}{
		{"wrong auth passphrase", V3Config{User: "facgw", AuthProto: "SHA-256", AuthPass: "wrongpass123", PrivProto: "AES-256", PrivPass: "privpass123"},
			"snmp: authentication failure (wrong user or passphrase?)"},
		{"unknown user", V3Config{User: "nobody", AuthProto: "SHA-256", AuthPass: "authpass123", PrivProto: "AES-256", PrivPass: "privpass123"},
			"snmp: authentication failure (wrong user or passphrase?)"},
		{"wrong auth protocol", V3Config{User: "facgw", AuthProto: "SHA", AuthPass: "authpass123", PrivProto: "AES-256", PrivPass: "privpass123"},
			"snmp: authentication failure (wrong user or passphrase?)"},
		// The agent drops a request it cannot decrypt: only the request's
		// timeout ends the wait, and the reason says what it may mean.
		{"wrong priv passphrase", V3Config{User: "facgw", AuthProto: "SHA-256", AuthPass: "authpass123", PrivProto: "AES-256", PrivPass: "wrongpriv123"},
			"timeout (with SNMPv3 privacy a wrong privacy passphrase looks the same"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			d := newDev(tc.v3)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			pts := d.Poll(ctx, "default")
			if len(pts) == 0 {
				t.Fatal("no points")
			}
			for _, p := range pts {
				if p.Quality != point.Bad || !strings.HasPrefix(p.Reason, tc.reason) {
					t.Errorf("%s: %s %q, want bad %q", p.Name, p.Quality, p.Reason, tc.reason)
				}
			}
			// The first refused request ends the poll: nothing else is
			// sent with credentials the agent refuses.
			if n := d.Requests(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/strictyaml"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.want from the current messages (review the diff)")

// testRegistry loads the test profiles, so these tests do not depend on the
// contents of the shipped ones.
func testRegistry(t testing.TB) *profiles.Registry {
	t.Helper()
	reg := profiles.NewRegistry()
	if err := reg.AddDir("testdata/profiles"); err != nil {
		t.Fatalf("loading test profiles: %v", err)
	}
	return reg
}

func messages(err error) []string {
	var es strictyaml.Errors
	if !errors.As(err, &es) {
		return []string{"not strictyaml.Errors: " + err.Error()}
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Error())
	}
	return out
}

// TestBad loads every testdata/bad/*.yaml and compares all its messages,
// in order, with the .want file next to it.
func TestBad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			cfg, err := Load(file, testRegistry(t))
			if err == nil {
				t.Fatalf("got config %+v, want errors", cfg)
			}
			if cfg != nil {
				t.Errorf("got a config with errors, want nil")
			}
			got := strings.Join(messages(err), "\n") + "\n"
			wantFile := strings.TrimSuffix(file, ".yaml") + ".want"
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("every bad config needs a .want file: %v", err)
			}
			if got != string(want) {
				t.Errorf("got messages:\n%s\nwant:\n%s", got, want)
			}
		})
	}
	wants, _ := filepath.Glob("testdata/bad/*.want")
	for _, w := range wants {
		if _, err := os.Stat(strings.TrimSuffix(w, ".want") + ".yaml"); err != nil {
			t.Errorf("%s has no config: %v", w, err)
		}
	}
}

// TestAllProblemsAtOnce checks that one file with many kinds of mistake
// reports each of them, decoding and semantic alike, sorted by line.
func TestAllProblemsAtOnce(t *testing.T) {
	in := `site: lab
gateway: gw-1
defaults: {stale_after: 1}
devices:
  - id: ups-1
    profile: test-ups-modbuss
    transport: modbus-tcp
    address: 10.0.0.1
    unti: 3
  - id: ups-1
    profile: test-bms-rtu
    transport: modbus-rtu
    serial: {port: /dev/ttyUSB0, parity: Q}
    unit: 0
`
	_, err := Parse("x.yaml", []byte(in), testRegistry(t))
	want := []string{
		`x.yaml:3:12: defaults.stale_after: stale_after must be at least 2 intervals, got 1`,
		`x.yaml:6:5: devices[0].profile: unknown profile "test-ups-modbuss" (did you mean "test-ups-modbus"?)`,
		`x.yaml:8:5: devices[0].address: address "10.0.0.1": missing port in address, want host:port`,
		`x.yaml:9:5: devices[0].unti: unknown field "unti" (did you mean "unit"?)`,
		`x.yaml:10:5: devices[1].id: duplicate device id "ups-1" (first at line 5)`,
		`x.yaml:13:34: devices[1].serial.parity: parity must be N, E or O, got "Q"`,
		`x.yaml:14:5: devices[1].unit: unit must be 1..247 on a serial line, got 0`,
	}
	got := messages(err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestGood(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good configs: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			cfg, err := Load(file, testRegistry(t))
			if err != nil {
				t.Fatalf("got errors:\n%v", err)
			}
			if len(cfg.Devices) == 0 {
				t.Error("got no devices")
			}
		})
	}
}

func TestEffectiveSettings(t *testing.T) {
	cfg, err := Load("testdata/good/full.yaml", testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	dev := func(id string) *Device {
		t.Helper()
		d, ok := cfg.Device(id)
		if !ok {
			t.Fatalf("no device %q", id)
		}
		return d
	}
	ups1, bms2, bms3, bms4, crac1, ups2 := dev("ups-1"), dev("bms-2"), dev("bms-3"), dev("bms-4"), dev("crac-1"), dev("ups-2")
	bms1, _ := cfg.Device("bms-1")

	tests := []struct {
		name      string
		got, want any
	}{
		{"state dir as written when absolute", cfg.StateDir, "/var/lib/facgw"},
		{"profile dir relative to the config", cfg.ProfileDirs[0], filepath.Join("testdata", "good", "my-profiles")},
		{"listen", cfg.HTTP.Listen, "127.0.0.1:8080"},
		{"device timeout override", ups1.Timeout(), 500 * time.Millisecond},
		{"device retries override", ups1.Retries(), 1},
		{"default timeout", bms2.Timeout(), time.Second},
		{"default retries", bms2.Retries(), 2},
		{"backoff", bms2.Backoff(), 200 * time.Millisecond},
		{"max backoff", bms2.MaxBackoff(), 30 * time.Second},
		{"stale after", bms2.StaleAfter(), 3},
		{"device group", ups1.Interval("safety"), 250 * time.Millisecond},
		{"device slow group", ups1.Interval("slow"), 30 * time.Second},
		{"defaults group before device default", bms2.Interval("safety"), time.Second},
		{"device default for other groups", bms2.Interval("slow"), 10 * time.Second},
		{"defaults default", bms3.Interval("slow"), 5 * time.Second},
		{"explicit unit", ups1.Unit, 255},
		{"default unit", crac1.Unit, DefaultUnit},
		{"serial defaults", fmt.Sprintf("%s %d %d%s%d", crac1.Serial.Port, crac1.Serial.Baud, crac1.Serial.DataBits, crac1.Serial.Parity, crac1.Serial.StopBits), "/dev/ttyUSB1 9600 8E1"},
		{"parity upper-cased", bms3.Serial.Parity, "N"},
		{"shared gateway key", bms1.ConnKey(), bms2.ConnKey()},
		{"shared serial key", bms3.ConnKey(), bms4.ConnKey()},
		{"tcp key", ups1.ConnKey(), "modbus-tcp 127.0.0.1:502"},
		{"rtu key", crac1.ConnKey(), "modbus-rtu /dev/ttyUSB1"},
		{"ipv6 key", ups2.ConnKey(), "modbus-tcp [fe80::1]:502"},
		{"auto has no profile", ups2.ProfileDef() == nil, true},
		{"auto", ups2.IsAuto(), true},
		{"profile bound", ups1.ProfileDef().Model, "test-ups-modbus"},
		{"profile from profile_dirs", crac1.ProfileDef().Model, "test-crac-extra"},
		{"wants listed point", ups1.WantsPoint("battery.charge"), true},
		{"skips unlisted point", ups1.WantsPoint("input.voltage"), false},
		{"wants every point without a list", bms2.WantsPoint("string.voltage"), true},
		{"only the two-paths warning", fmt.Sprint(cfg.Warnings), fmt.Sprintf("%s:%d:1: alerting: no alert delivery path configured: add", cfg.File, cfg.Pos.Line) + " an alerting section (alertmanager, snmp or webhook) so alerts have two independent paths"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestDefaultsWithoutLoad(t *testing.T) {
	var d Device
	if d.Timeout() != DefaultTimeout || d.Retries() != DefaultRetries || d.Interval("x") != DefaultInterval ||
		d.Backoff() != DefaultBackoff || d.MaxBackoff() != DefaultMaxBackoff || d.StaleAfter() != DefaultStaleAfter {
		t.Errorf("a zero Device: got timeout %v retries %d interval %v, want the built-in defaults", d.Timeout(), d.Retries(), d.Interval("x"))
	}
	if d.ConnKey() != "" {
		t.Errorf("a zero Device: got conn key %q, want empty", d.ConnKey())
	}
}

func TestMinimalDefaults(t *testing.T) {
	cfg, err := Load("testdata/good/minimal.yaml", testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("testdata", "good", "var"); cfg.StateDir != want {
		t.Errorf("state dir: got %q, want %q (relative to the config file)", cfg.StateDir, want)
	}
	if cfg.HTTP.Listen != DefaultListen {
		t.Errorf("listen: got %q, want %q", cfg.HTTP.Listen, DefaultListen)
	}
	d := &cfg.Devices[0]
	if d.Unit != 1 || d.Interval("safety") != 5*time.Second || d.Timeout() != time.Second {
		t.Errorf("got unit %d, safety %v, timeout %v, want 1, 5s, 1s", d.Unit, d.Interval("safety"), d.Timeout())
	}
}

// TestSharedConnections spells out the rules for devices on one connection.
func TestSharedConnections(t *testing.T) {
	const head = "site: lab\ngateway: gw-1\ndevices:\n"
	tcp := func(id, addr string, unit int) string {
		return "  - {id: " + id + ", profile: test-bms-rtu, transport: modbus-tcp, address: \"" + addr + "\", unit: " + strconv.Itoa(unit) + "}\n"
	}
	rtu := func(id, serial string, unit int) string {
		return "  - {id: " + id + ", profile: test-bms-rtu, transport: modbus-rtu, serial: " + serial + ", unit: " + strconv.Itoa(unit) + "}\n"
	}
	tests := []struct {
		name    string
		devices string
		want    []string
	}{
		{"tcp distinct units", tcp("a", "10.0.0.1:502", 1) + tcp("b", "10.0.0.1:502", 2), nil},
		{"tcp same unit, different hosts", tcp("a", "10.0.0.1:502", 1) + tcp("b", "10.0.0.2:502", 1), nil},
		{"tcp same unit, different ports", tcp("a", "10.0.0.1:502", 1) + tcp("b", "10.0.0.1:503", 1), nil},
		{"tcp same unit", tcp("a", "10.0.0.1:502", 1) + tcp("b", "10.0.0.1:502", 1),
			[]string{`x.yaml:5:84: devices[1].unit: unit 1 is also used by device "a" (line 4) on the shared connection 10.0.0.1:502`}},
		{"tcp host case does not matter", tcp("a", "GW.example:502", 1) + tcp("b", "gw.example:502", 1),
			[]string{`x.yaml:5:86: devices[1].unit: unit 1 is also used by device "a" (line 4) on the shared connection gw.example:502`}},
		{"tcp default unit clashes", tcp("a", "10.0.0.1:502", 1) + "  - {id: b, profile: test-bms-rtu, transport: modbus-tcp, address: \"10.0.0.1:502\"}\n",
			[]string{`x.yaml:5:5: devices[1].unit: unit 1 is also used by device "a" (line 4) on the shared connection 10.0.0.1:502`}},
		{"rtu distinct units, defaults equal explicit", rtu("a", "{port: /dev/ttyS0}", 1) + rtu("b", "{port: /dev/ttyS0, baud: 9600, data_bits: 8, parity: E, stop_bits: 1}", 2), nil},
		{"rtu same unit on different ports", rtu("a", "{port: /dev/ttyS0}", 1) + rtu("b", "{port: /dev/ttyS1, baud: 19200}", 1), nil},
		{"rtu same unit", rtu("a", "{port: /dev/ttyS0}", 1) + rtu("b", "{port: /dev/ttyS0}", 1),
			[]string{`x.yaml:5:87: devices[1].unit: unit 1 is also used by device "a" (line 4) on the shared port /dev/ttyS0`}},
		{"rtu baud differs", rtu("a", "{port: /dev/ttyS0}", 1) + rtu("b", "{port: /dev/ttyS0, baud: 19200}", 2),
			[]string{`x.yaml:5:86: devices[1].serial.baud: baud 19200 differs from 9600 of device "a" (line 4) on the shared port /dev/ttyS0`}},
		{"rtu every setting differs", rtu("a", "{port: /dev/ttyS0, baud: 19200, data_bits: 7, parity: O, stop_bits: 2}", 1) + rtu("b", "{port: /dev/ttyS0}", 2),
			[]string{
				`x.yaml:5:67: devices[1].serial.baud: baud 9600 differs from 19200 of device "a" (line 4) on the shared port /dev/ttyS0`,
				`x.yaml:5:67: devices[1].serial.data_bits: data_bits 8 differs from 7 of device "a" (line 4) on the shared port /dev/ttyS0`,
				`x.yaml:5:67: devices[1].serial.parity: parity E differs from O of device "a" (line 4) on the shared port /dev/ttyS0`,
				`x.yaml:5:67: devices[1].serial.stop_bits: stop_bits 1 differs from 2 of device "a" (line 4) on the shared port /dev/ttyS0`,
			}},
		{"disabled device does not clash", tcp("a", "10.0.0.1:502", 1) + "  - {id: b, profile: test-bms-rtu, transport: modbus-tcp, address: \"10.0.0.1:502\", unit: 1, disabled: true}\n", nil},
		{"tcp and rtu never share", tcp("a", "10.0.0.1:502", 1) + rtu("b", "{port: \"10.0.0.1:502\"}", 1), nil},
		{"a bad address is reported once", tcp("a", "10.0.0.1", 1) + tcp("b", "10.0.0.1", 1),
			[]string{
				`x.yaml:4:59: devices[0].address: address "10.0.0.1": missing port in address, want host:port`,
				`x.yaml:5:59: devices[1].address: address "10.0.0.1": missing port in address, want host:port`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(head+tt.devices), testRegistry(t))
			var got []string
			if err != nil {
				got = messages(err)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("config:\n%s\ngot:\n%s\nwant:\n%s", tt.devices, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/no-such.yaml", testRegistry(t))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestNilRegistry(t *testing.T) {
	_, err := Parse("x.yaml", []byte("site: lab\ngateway: gw-1\ndevices:\n  - {id: a, profile: test-ups-modbus, transport: modbus-tcp, address: \"h:502\"}\n"), nil)
	want := `x.yaml:4:13: devices[0].profile: unknown profile "test-ups-modbus"`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestProfileDirOverrides checks that a profile_dirs model replaces one
// already in the registry, as a site overrides a shipped profile.
func TestProfileDirOverrides(t *testing.T) {
	reg := testRegistry(t)
	before, _ := reg.Get("test-ups-modbus")
	dir := t.TempDir()
	override := `model: test-ups-modbus
class: ups
protocol: modbus
source: override
points:
  - {name: only.point, table: input, address: 0, type: u16}
`
	if err := os.WriteFile(filepath.Join(dir, "ups.yaml"), []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "facgw.yaml")
	cfgText := "site: lab\ngateway: gw-1\nprofile_dirs: [.]\ndevices:\n  - {id: a, profile: test-ups-modbus, transport: modbus-tcp, address: \"h:502\", points: [only.point]}\n"
	cfg, err := Parse(cfgFile, []byte(cfgText), reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Devices[0].ProfileDef(); got == before || got.Source != "override" {
		t.Errorf("got profile from %q, want the override from profile_dirs", got.Source)
	}
}

func FuzzParse(f *testing.F) {
	for _, glob := range []string{"testdata/good/*.yaml", "testdata/bad/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("devices: &d [{id: a, serial: *d}]"))
	reg := testRegistry(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		// A stub directory loader: a fuzzed profile_dirs must not walk
		// the file system, and the shared registry must not change.
		cfg, err := parse("fuzz.yaml", data, reg, func(string) error { return nil })
		if (cfg == nil) == (err == nil) {
			t.Fatalf("got config %v and error %v, want exactly one", cfg != nil, err)
		}
		if err != nil {
			var es strictyaml.Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("got %T %v, want a non-empty strictyaml.Errors", err, err)
			}
			for _, e := range es {
				if e.File != "fuzz.yaml" {
					t.Errorf("error in file %q: %v", e.File, e)
				}
			}
		}
	})
}

func TestAutoNeedsIdentify(t *testing.T) {
	reg := profiles.NewRegistry()
	if _, err := reg.AddFile("testdata/profiles/bms.yaml"); err != nil {
		t.Fatal(err)
	}
	in := "site: lab\ngateway: gw-1\ndevices:\n  - {id: a, profile: auto, transport: modbus-tcp, address: \"h:502\"}\n"
	_, err := Parse("x.yaml", []byte(in), reg)
	want := `x.yaml:4:13: devices[0].profile: profile auto needs a modbus profile with an identify section, and no loaded profile has one`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestShippedProfiles checks the message the docs show against the real
// profiles; it skips while the shipped set lacks the model.
func TestShippedProfiles(t *testing.T) {
	reg, err := profiles.Shipped()
	if err != nil {
		t.Skipf("shipped profiles do not load: %v", err)
	}
	if _, ok := reg.Get("apc-smart-ups-modbus"); !ok {
		t.Skip("no shipped apc-smart-ups-modbus profile")
	}
	in := `site: pangyo-b3
gateway: gw-1
devices:
  - id: ups-1
    profile: apc-smart-ups-modbus
    transport: modbus-tcp
    address: 127.0.0.1:502
  - id: ups-2
    profile: apc-smart-up
    transport: modbus-tcp
    address: 127.0.0.1:503
`
	_, err = Parse("deploy/demo.yaml", []byte(in), reg)
	want := `deploy/demo.yaml:9:5: devices[1].profile: unknown profile "apc-smart-up" (did you mean "apc-smart-ups-modbus"?)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

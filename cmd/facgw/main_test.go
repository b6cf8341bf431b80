package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/facsim"
)

func runCmd(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = realMain(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestCheckDemoConfig(t *testing.T) {
	out, errs, code := runCmd("check", "-config", "../../deploy/demo.yaml")
	if code != 0 || !strings.Contains(out, "ok: site demo-hall, gateway gw-demo, 12 devices") {
		t.Fatalf("got code %d, stdout %q, stderr %q; want ok", code, out, errs)
	}
}

// TestCheckBrokenConfig asserts every message `facgw check` prints for a
// config with several mistakes: all of them at once, each located.
func TestCheckBrokenConfig(t *testing.T) {
	_, errs, code := runCmd("check", "-config", "testdata/broken.yaml")
	if code != 1 {
		t.Fatalf("got exit code %d, want 1", code)
	}
	want := []string{
		`testdata/broken.yaml:4:10: defaults.poll.default: interval 10ms is below the minimum of 50ms`,
		`testdata/broken.yaml:7:5: devices[0].profile: unknown profile "apc-smart-up" (did you mean "apc-smart-ups-modbus"?)`,
		`testdata/broken.yaml:10:5: devices[0].tiemout: unknown field "tiemout" (did you mean "timeout"?)`,
		`testdata/broken.yaml:11:5: devices[1].id: duplicate device id "ups-1" (first at line 6)`,
		`testdata/broken.yaml:14:5: devices[1].address: address "127.0.0.1": missing port in address, want host:port`,
		`testdata/broken.yaml:15:23: devices[1].points[1]: profile "generic-liion-bms" has no point "bms.offgas" (did you mean "bms.offgas_ppm"?)`,
	}
	got := strings.Split(strings.TrimSpace(errs), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d:\n%s", len(got), len(want), errs)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d:\ngot  %s\nwant %s", i, got[i], want[i])
		}
	}
}

func TestProfilesLists(t *testing.T) {
	out, _, code := runCmd("profiles")
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range reg.List() {
		if !strings.Contains(out, p.Model) {
			t.Errorf("profiles output lacks %s:\n%s", p.Model, out)
		}
	}
}

// TestProbeIntegration probes a simulated UPS once by identification and
// once with a named profile, as table and as JSON.
func TestProbeIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the simulator")
	}
	fac, err := facsim.LoadFacility("../../deploy/facility.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := facsim.Start(ctx, fac, facsim.Options{FreePorts: true, Manual: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sim.Step(time.Second)
	url := "modbus-tcp://" + sim.Addr("ups-a") + "?unit=1"

	out, errs, code := runCmd("probe", url)
	if code != 0 || !strings.HasPrefix(out, "profile apc-smart-ups-modbus, firmware UPS 09.8 (ID18)") || !strings.Contains(out, "ups.status.online") {
		t.Fatalf("probe by identification: code %d\n%s\n%s", code, out, errs)
	}
	out, errs, code = runCmd("probe", "-json", "-profile", "liebert-icom-crac", "modbus-tcp://"+sim.Addr("crac-1")+"?unit=1")
	if code != 0 {
		t.Fatalf("probe -json: code %d: %s", code, errs)
	}
	var doc struct {
		Profile string `json:"profile"`
		Points  []struct {
			Name    string `json:"name"`
			Quality string `json:"quality"`
			Unit    string `json:"unit"`
		} `json:"points"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("probe -json output is not JSON: %v\n%s", err, out)
	}
	if doc.Profile != "liebert-icom-crac" || len(doc.Points) == 0 {
		t.Fatalf("got profile %q with %d points", doc.Profile, len(doc.Points))
	}
	for _, p := range doc.Points {
		if p.Quality != "good" {
			t.Errorf("%s: quality %s", p.Name, p.Quality)
		}
	}
	_, errs, code = runCmd("probe", "modbus-udp://127.0.0.1:1")
	if code != 2 || !strings.Contains(errs, "scheme must be modbus-tcp or modbus-rtu") {
		t.Errorf("bad url: got code %d, %q", code, errs)
	}
}

// TestDocExamplesParse loads every YAML config example in the README and
// docs/config.md, so the documentation cannot drift from the parser.
func TestDocExamplesParse(t *testing.T) {
	// The secrets the examples read from the environment.
	t.Setenv("FACGW_NMS_COMMUNITY", "public")
	t.Setenv("FACGW_WEBHOOK_SECRET", "a-webhook-secret-of-some-length")
	t.Setenv("FACGW_COMMUNITY", "public")
	for _, file := range []string{"../../README.md", "../../docs/config.md"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		blocks := 0
		for i, block := range strings.Split(string(data), "```yaml\n")[1:] {
			block, _, _ = strings.Cut(block, "```")
			if !strings.Contains(block, "devices:") {
				continue
			}
			blocks++
			reg, err := profiles.Shipped()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := config.Parse(fmt.Sprintf("%s example %d", file, i+1), []byte(block), reg); err != nil {
				t.Errorf("%v", err)
			}
		}
		if blocks == 0 {
			t.Errorf("%s: no config example found", file)
		}
	}
}

// TestExampleConfigParses loads deploy/facgw.example.yaml with its
// secrets supplied, as an operator would after copying it.
func TestExampleConfigParses(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("../../deploy/facgw.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"snmp-auth.pass", "snmp-priv.pass", "mqtt-ca.pem"} {
		os.WriteFile(dir+"/"+f, []byte("example-passphrase\n"), 0o600)
	}
	text := strings.ReplaceAll(string(data), "/etc/facgw/", dir+"/")
	for _, v := range []string{"FACGW_MQTT_PASSWORD", "FACGW_INFLUX_TOKEN", "FACGW_SNMP_TRAP_COMMUNITY", "FACGW_SNMP_COMMUNITY"} {
		t.Setenv(v, "example-secret")
	}
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("facgw.example.yaml", []byte(text), reg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PathCount() != 3 {
		t.Errorf("example config: got %d alert paths, want mqtt, alertmanager and snmp", cfg.PathCount())
	}
	if len(cfg.Devices) != 5 || len(cfg.MQTT.Brokers) != 2 || cfg.Influx == nil || cfg.Traps == nil {
		t.Errorf("example config: got %d devices, mqtt %+v, influx %v, traps %v", len(cfg.Devices), cfg.MQTT, cfg.Influx != nil, cfg.Traps != nil)
	}
}

func TestPasswd(t *testing.T) {
	var out, errb strings.Builder
	if code := passwd(nil, strings.NewReader("correct horse battery\n"), &out, &errb); code != 0 {
		t.Fatalf("got exit %d (%s), want 0", code, errb.String())
	}
	hash := strings.TrimSpace(out.String())
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse battery")); err != nil {
		t.Errorf("got hash %q that does not match the password: %v", hash, err)
	}
	if strings.Contains(out.String()+errb.String(), "horse") {
		t.Error("the password was echoed")
	}
	out.Reset()
	errb.Reset()
	if code := passwd(nil, strings.NewReader("short\n"), &out, &errb); code != 1 || !strings.Contains(errb.String(), "8") {
		t.Errorf("short password: got exit %d, %q; want 1 and a message on the minimum length", code, errb.String())
	}
}

func TestRulesCommands(t *testing.T) {
	failing := filepath.Join(t.TempDir(), "failing.test.yaml")
	if err := os.WriteFile(failing, []byte(`rule_files: ["shipped:power"]
devices:
  - {id: ups-1, class: ups, profile: rfc1628-ups-snmp}
tests:
  - name: on battery does not fire (wrong on purpose)
    input:
      - {device: ups-1, point: ups.status.on_battery, values: "true x20"}
    expect:
      - {at: 19s, firing: []}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"shipped pack tests pass", []string{"rules", "test", "../../rules/packs/tests/fire.yaml", "../../rules/packs/tests/power.yaml"}, 0, "PASS ../../rules/packs/tests/power.yaml"},
		{"a failing rule test fails", []string{"rules", "test", failing}, 1, "want firing [], got [power/"},
		{"a missing test file", []string{"rules", "test", "no-such.yaml"}, 1, "no-such.yaml"},
		{"list the demo's rules", []string{"rules", "list", "-config", "../../deploy/demo.yaml"}, 0, "fire/liion-offgas-alarm"},
		{"replay a recording", []string{"replay", "-config", "../../deploy/demo.yaml", "testdata/offgas.csv"}, 0,
			"2026-11-26T12:00:01Z firing fire/liion-offgas-alarm@bms-rack1 critical"},
		{"replay needs a recording", []string{"replay", "-config", "../../deploy/demo.yaml"}, 2, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(tt.args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.contains) {
				t.Errorf("got exit %d, output:\n%s%s\nwant exit %d and %q", code, stdout, stderr, tt.code, tt.contains)
			}
		})
	}
}

// TestLoadshedDocExampleParses checks the loadshed section of
// docs/loadshed.md against the demo's devices: the documented example must
// pass facgw check.
func TestLoadshedDocExampleParses(t *testing.T) {
	doc, err := os.ReadFile("../../docs/loadshed.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```yaml\nloadshed:")
	if !ok {
		t.Fatal("docs/loadshed.md has no loadshed example")
	}
	block, _, _ = strings.Cut(block, "```")
	demo, err := os.ReadFile("../../deploy/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base, _, _ := strings.Cut(string(demo), "\nloadshed:")
	t.Setenv("PDU_WRITE_COMMUNITY", "private")
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("../../deploy/demo-with-docs-loadshed.yaml", []byte(base+"\nloadshed:"+block), reg)
	if err != nil {
		t.Fatalf("docs/loadshed.md example: %v", err)
	}
	if cfg.Loadshed == nil || len(cfg.Loadshed.Policies) == 0 {
		t.Errorf("got no load-shed policies from the example")
	}
}

// startSim runs the simulated facility of deploy/facility.yaml on free
// loopback ports (opts.FreePorts is set) until the test ends.
func startSim(t testing.TB, opts facsim.Options) *facsim.Sim {
	t.Helper()
	fac, err := facsim.LoadFacility("../../deploy/facility.yaml")
	if err != nil {
		t.Fatal(err)
	}
	opts.FreePorts = true
	sim, err := facsim.Start(t.Context(), fac, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

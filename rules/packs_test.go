package rules_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/rules"
	"github.com/facgw/facgw/rules/ruletest"
)

// The shipped packs are tested from outside the package (rules_test):
// ruletest imports rules, so an in-package test could not import it.

// shippedPackNames are the packs facgw ships, exactly.
var shippedPackNames = []string{"cooling", "data-quality", "fire", "network", "power"}

// packTestFiles lists rules/packs/tests/*.yaml.
func packTestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("packs", "tests", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("got no rule test files in packs/tests, want one per shipped pack")
	}
	return files
}

func shipped(t *testing.T) *rules.RuleSet {
	t.Helper()
	set, err := rules.Shipped()
	if err != nil {
		t.Fatalf("shipped rule packs do not load:\n%v", err)
	}
	return set
}

// TestShippedPacks checks the packs load, are exactly the shipped ones and
// read only point names the shipped firmware profiles have.
func TestShippedPacks(t *testing.T) {
	set := shipped(t)
	if got := set.PackNames(); !slices.Equal(got, shippedPackNames) {
		t.Errorf("got packs %v, want %v", got, shippedPackNames)
	}
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	if err := rules.Check(set, reg); err != nil {
		t.Errorf("shipped packs against the shipped profiles:\n%v", err)
	}
	for _, r := range set.Rules() {
		if r.Class != r.Pack {
			t.Errorf("rule %s: got class %q, want the pack's class %q", r.ID, r.Class, r.Pack)
		}
	}
}

// TestShippedPackUnits pins the units the thresholds of the shipped packs
// are written in: a profile that changed a unit (runtime from minutes to
// seconds, say) would silently shift a threshold by a factor of 60.
func TestShippedPackUnits(t *testing.T) {
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, profile, point, unit string
	}{
		{"APC Modbus runtime in seconds (power/runtime-*-apc-modbus: 600, 300)", "apc-smart-ups-modbus", "battery.runtime", "s"},
		{"APC SNMP PowerNet runtime in seconds (power/runtime-*-apc-snmp: 600, 300)", "apc-smart-ups-snmp", "apc.battery.runtime", "s"},
		{"RFC 1628 runtime in minutes (power/runtime-*-rfc1628: 10, 5)", "rfc1628-ups-snmp", "battery.runtime", "min"},
		{"Socomec runtime in minutes (power/runtime-*-socomec: 10, 5)", "socomec-delphys-jbus", "battery.runtime", "min"},
		{"RFC 1628 input frequency in Hz (power/input-frequency)", "rfc1628-ups-snmp", "ups.input.frequency", "Hz"},
		{"APC SNMP input frequency in Hz (power/input-frequency)", "apc-smart-ups-snmp", "ups.input.frequency", "Hz"},
		{"APC Modbus input voltage in V (power/input-voltage-apc-modbus)", "apc-smart-ups-modbus", "ups.input.voltage", "V"},
		{"APC Modbus transfer point in V (power/input-voltage-apc-modbus)", "apc-smart-ups-modbus", "ups.config.transfer_low", "V"},
		{"RFC 1628 input voltage in V (power/input-voltage-snmp)", "rfc1628-ups-snmp", "ups.input.voltage", "V"},
		{"RFC 1628 transfer point in V (power/input-voltage-snmp)", "rfc1628-ups-snmp", "ups.config.transfer_high", "V"},
		{"cell temperature in degC (fire/cell-temp-*)", "generic-liion-bms", "bms.cell_temp_max", "degC"},
		{"BMS rate of rise in degC/min (fire/cell-temp-rise-fast)", "generic-liion-bms", "bms.cell_temp_rise", "degC/min"},
		{"off-gas in ppm (fire/liion-offgas-*)", "generic-liion-bms", "bms.offgas_ppm", "ppm"},
		{"H2 in ppm (fire/hydrogen-*)", "generic-liion-bms", "bms.h2_ppm", "ppm"},
		{"cell spread in mV (fire/cell-voltage-spread)", "generic-liion-bms", "bms.cell_voltage_spread", "mV"},
		{"supply air in degC (cooling/supply-air-*)", "liebert-icom-crac", "crac.supply_temp", "degC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := reg.Get(tc.profile)
			if !ok {
				t.Fatalf("no shipped profile %q", tc.profile)
			}
			defs := slices.Clone(p.Points)
			for _, v := range p.Variants {
				defs = append(defs, v.Points...)
			}
			found := false
			for _, d := range defs {
				if d.Name != tc.point {
					continue
				}
				found = true
				if d.Unit != tc.unit {
					t.Errorf("%s %s: got unit %q, want %q", tc.profile, tc.point, d.Unit, tc.unit)
				}
			}
			if !found {
				t.Errorf("%s has no point %s", tc.profile, tc.point)
			}
		})
	}
}

// TestShippedPackRuleTests runs every rule test file of packs/tests.
func TestShippedPackRuleTests(t *testing.T) {
	for _, f := range packTestFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out bytes.Buffer
			passed, err := ruletest.Run(f, &out)
			if err != nil {
				t.Fatalf("%s does not load:\n%v", f, err)
			}
			if !passed {
				t.Errorf("%s failed:\n%s", f, out.String())
			}
		})
	}
}

// testFile is the part of a rule test file this test reads: which alerts
// the tests expect to fire.
type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name   string `yaml:"name"`
		Expect []struct {
			Firing []string `yaml:"firing"`
		} `yaml:"expect"`
		Events []struct {
			Kind  string `yaml:"kind"`
			Alert string `yaml:"alert"`
		} `yaml:"events"`
	} `yaml:"tests"`
}

// TestEveryShippedRuleIsTested fails when a shipped rule is not expected to
// fire in any test of packs/tests (a rule added without a test), and when a
// pack has no test file of its own.
func TestEveryShippedRuleIsTested(t *testing.T) {
	set := shipped(t)
	fired := map[string][]string{} // rule id -> test files that expect it firing
	covered := map[string]bool{}   // packs named by a test file
	for _, f := range packTestFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tf testFile
		if err := yaml.Unmarshal(data, &tf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, rf := range tf.RuleFiles {
			if name, ok := strings.CutPrefix(rf, "shipped:"); ok {
				covered[name] = true
			}
		}
		add := func(alert string) {
			rule, _, _ := strings.Cut(alert, "@")
			if !slices.Contains(fired[rule], f) {
				fired[rule] = append(fired[rule], f)
			}
		}
		for _, tc := range tf.Tests {
			for _, ex := range tc.Expect {
				for _, a := range ex.Firing {
					add(a)
				}
			}
			for _, ev := range tc.Events {
				if ev.Kind == "firing" {
					add(ev.Alert)
				}
			}
		}
	}
	for _, p := range shippedPackNames {
		if !covered[p] {
			t.Errorf("pack %s: no test file in packs/tests names shipped:%s in rule_files", p, p)
		}
	}
	var untested []string
	for _, r := range set.Rules() {
		if len(fired[r.ID]) == 0 {
			untested = append(untested, r.ID)
		}
	}
	sort.Strings(untested)
	if len(untested) > 0 {
		t.Errorf("got %d shipped rules that no test in packs/tests expects to fire, want 0:\n  %s",
			len(untested), strings.Join(untested, "\n  "))
	}
}

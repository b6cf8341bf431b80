package ruletest

import (
	"bytes"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestRunFailing checks the report of failing tests against a golden file.
func TestRunFailing(t *testing.T) {
	var out bytes.Buffer
	passed, err := Run("testdata/failing.test.yaml", &out)
	if err != nil {
		t.Fatal(err)
	}
	if passed {
		t.Error("got passed, want failed")
	}
	golden := "testdata/failing.golden"
	if *update {
		os.WriteFile(golden, out.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// TestRunBadFile: a wrong test file is an error listing every problem,
// located; no test runs.
func TestRunBadFile(t *testing.T) {
	var out bytes.Buffer
	passed, err := Run("testdata/bad.test.yaml", &out)
	if err == nil || passed {
		t.Fatalf("got passed %v, error %v; want an error", passed, err)
	}
	if out.Len() != 0 {
		t.Errorf("got output %q, want none", out.String())
	}
	want := []string{
		`testdata/bad.test.yaml:1:47: rule_files[1]: cannot read rule file: open testdata/missing.yaml: no such file or directory`,
		`testdata/bad.test.yaml:1:61: rule_files[2]: no shipped pack "nope"`,
		`testdata/bad.test.yaml:4:6: devices[1].id: device "ups-1" is listed twice`,
		`testdata/bad.test.yaml:6:1: start: want an RFC 3339 time such as 2026-01-01T00:00:00Z, got "yesterday"`,
		`testdata/bad.test.yaml:7:1: bogus: unknown field "bogus"`,
		`testdata/bad.test.yaml:11:10: tests[0].input[0].device: device "usp-1" is not in devices (did you mean "ups-1"?)`,
		`testdata/bad.test.yaml:11:37: tests[0].input[0].unit: unknown unit "volts" (docs/units.md)`,
		`testdata/bad.test.yaml:11:50: tests[0].input[0].values: "true" is a bool, but the series holds numbers`,
		`testdata/bad.test.yaml:12:37: tests[0].input[1].values: "1+2": a step needs a count, such as 1+2x10`,
		`testdata/bad.test.yaml:14:10: tests[0].expect[0].at: 3s is not a step: steps are multiples of the interval 2s from 0`,
		`testdata/bad.test.yaml:14:27: tests[0].expect[0].firing[0]: no rule "power/on-batery" in the rule files (did you mean "power/on-battery"?)`,
		`testdata/bad.test.yaml:15:27: tests[0].expect[1].firing[0]: want rule@instance, such as fire/liion-offgas@bms-1, got "nonsense"`,
		`testdata/bad.test.yaml:17:18: tests[0].events[0].kind: want firing or resolved, got "fired"`,
		`testdata/bad.test.yaml:18:5: tests[1].name: test name "t" is used twice`,
		`testdata/bad.test.yaml:20:9: tests[1].expect[0].firing: missing required field "firing"`,
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d errors:\n%s\nwant %d:\n%s", len(got), err, len(want), strings.Join(want, "\n"))
	}
	for i := range want {
		// Prefixes: a did-you-mean lists the shipped packs, which change.
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d:\ngot  %s\nwant %s", i, got[i], want[i])
		}
	}
}

// TestDocsRuleTest runs the rule test of docs/rules.md against the rule
// file examples there, so the documented format cannot drift.
func TestDocsRuleTest(t *testing.T) {
	b, err := os.ReadFile("../../docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	block := func(kind string) []string {
		re := regexp.MustCompile("(?s)<!-- example: " + kind + " -->\\s*```yaml\\n(.*?)```")
		var out []string
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out = append(out, m[1])
		}
		return out
	}
	dir := t.TempDir()
	packRE := regexp.MustCompile(`(?m)^pack: (\S+)`)
	for _, rf := range block("rule-file") {
		m := packRE.FindStringSubmatch(rf)
		if m == nil {
			t.Fatalf("a rule-file example without a pack:\n%s", rf)
		}
		os.WriteFile(dir+"/"+m[1]+".yaml", []byte(rf), 0o644)
	}
	tests := block("rule-test")
	if len(tests) == 0 {
		t.Fatal("no rule-test example in docs/rules.md")
	}
	for i, tf := range tests {
		path := dir + "/test.yaml"
		os.WriteFile(path, []byte(tf), 0o644)
		var out bytes.Buffer
		passed, err := Run(path, &out)
		if err != nil || !passed {
			t.Errorf("example %d: got passed %v, error %v, want PASS:\n%s", i+1, passed, err, out.String())
		}
	}
}

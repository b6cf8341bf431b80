package ruletest

import (
	"bytes"
	"path/filepath"
	"testing"
)

// TestRuleTestdata runs every rule test of the rules package's testdata:
// each must pass.
func TestRuleTestdata(t *testing.T) {
	files, err := filepath.Glob("../testdata/*.test.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out bytes.Buffer
			passed, err := Run(f, &out)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !passed {
				t.Errorf("got FAIL, want PASS:\n%s", out.String())
			}
		})
	}
}

package rules

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	profiles "github.com/facgw/facgw/firmware-profiles"
)

// docExamples returns the fenced blocks of docs/rules.md that follow an
// "<!-- example: KIND -->" marker, so the documentation cannot drift from
// the code. ruletest runs the rule-test examples.
func docExamples(t *testing.T, kind string) []string {
	t.Helper()
	b, err := os.ReadFile("../docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- example: " + regexp.QuoteMeta(kind) + " -->\\s*```yaml\\n(.*?)```")
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

// TestDocsRuleFiles loads every rule file example of docs/rules.md and
// checks it against the shipped profiles.
func TestDocsRuleFiles(t *testing.T) {
	examples := docExamples(t, "rule-file")
	if len(examples) < 4 {
		t.Fatalf("got %d rule-file examples in docs/rules.md, want at least 4", len(examples))
	}
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	var packs []*Pack
	for i, ex := range examples {
		p, err := Load("docs/rules.md#example-"+strconv.Itoa(i+1), []byte(ex))
		if err != nil {
			t.Errorf("example %d: got error, want none:\n%v", i+1, err)
			continue
		}
		packs = append(packs, p)
	}
	set, err := NewRuleSet(packs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(set, reg); err != nil {
		t.Errorf("Check: got error, want none:\n%v", err)
	}
	// The tour must use every function of the language.
	used := map[string]bool{}
	for _, ex := range examples {
		for name := range ruleFuncs {
			if regexp.MustCompile(`\b` + name + `\(`).MatchString(ex) {
				used[name] = true
			}
		}
	}
	for name := range ruleFuncs {
		if !used[name] {
			t.Errorf("docs/rules.md examples never call %s()", name)
		}
	}
}

package rules

import (
	"time"

	"github.com/facgw/facgw/internal/strictyaml"
)

// Trigger is a condition written in the rule language that another part of
// facgw acts on (a load-shed policy's trigger), rather than an alert rule
// of a pack. It has a rule's when, for, select and group_by and nothing
// else: no summary, no clear, no keep_firing_for, since what happens when
// it holds is the caller's business.
//
// Decode it with strictyaml as part of the caller's file; Pos then locates
// every compile error in that file ("loadshed.policies[0].trigger.when").
type Trigger struct {
	Select  Select        `yaml:"select"`
	GroupBy []string      `yaml:"group_by"`
	When    string        `yaml:"when" check:"required"`
	For     time.Duration `yaml:"for"`
	Pos     strictyaml.Pos
}

// CompileTrigger compiles t into a rule "pack/name" of the given class,
// with the same checks and error locations as a rule in a pack file. The
// rule is compiled with missing: fire, so an instance whose condition stays
// unknown (bad, stale or missing inputs) for the for-duration fires with
// SupervisionLost set: the caller can then refuse to act and say so,
// where missing: hold would leave it silent. Put the rules into a RuleSet
// with NewRuleSet(&Pack{...}) and run them in an Engine of their own.
//
// A trigger may read alerts of the rule set with firing() instead of, or
// besides, points (then it need read no point): check the names with
// CheckReferences against the set, and give the trigger's engine the
// rules engine as Options.Alerts.
func CompileTrigger(pack, name, class string, t *Trigger) (*Rule, error) {
	p := &Pack{Name: pack, File: t.Pos.File}
	ry := &ruleYAML{
		Name: name, Class: class, Severity: "critical",
		Select: t.Select, GroupBy: t.GroupBy, When: t.When, For: t.For,
		Missing: string(MissingFire), Summary: "trigger " + pack + "/" + name,
		Pos: t.Pos,
	}
	r, errs := compileRule(p, ry, t.Pos.File, t.Pos.Path)
	if len(errs) > 0 {
		return nil, errs.Err()
	}
	return r, nil
}

package loadshed

import (
	"fmt"
	"io"
	"time"

	"github.com/facgw/facgw/internal/config"
)

// PlanStage is one stage of a policy's plan.
type PlanStage struct {
	Stage int `json:"stage"`
	// After is the stage's delay after the previous one, with the rate
	// limit applied.
	After time.Duration `json:"after"`
	Loads []PlanLoad    `json:"loads"`
	// Drain is the stage's drain command, if it has one: sent first, the
	// loads go off once it is acknowledged or its timeout passes.
	Drain *PlanDrain `json:"drain,omitempty"`
}

// PlanDrain is a stage's drain command in a plan.
type PlanDrain struct {
	Scope   string        `json:"scope"`
	Timeout time.Duration `json:"timeout"`
}

// PlanLoad is one load of a plan.
type PlanLoad struct {
	Load   string  `json:"load"`
	Tier   string  `json:"tier"`
	Device string  `json:"device"`
	Point  string  `json:"point"`
	Index  string  `json:"index,omitempty"`
	Value  float64 `json:"value"`
	Off    string  `json:"off"`
	Verify string  `json:"verify"`
}

// Plan returns what a policy sheds, stage by stage.
func Plan(ls *config.Loadshed, pol *config.ShedPolicy) []PlanStage {
	var out []PlanStage
	for i, st := range pol.Stages {
		ps := PlanStage{Stage: i, After: st.After}
		if d := st.Drain; d != nil {
			ps.Drain = &PlanDrain{Scope: d.Scope, Timeout: d.Timeout}
		}
		if i > 0 {
			ps.After = max(st.After, ls.MinStageInterval)
		}
		for _, name := range st.Targets {
			l, ok := ls.Load(name)
			if !ok {
				continue
			}
			ps.Loads = append(ps.Loads, PlanLoad{Load: l.Name, Tier: l.Tier, Device: l.Device, Point: l.Point, Index: l.Index,
				Value: l.OffValue, Off: l.Off, Verify: fmt.Sprintf("%s = %s", l.Verify.Point, l.Verify.Value)})
		}
		out = append(out, ps)
	}
	return out
}

// WritePlan prints every policy's plan for review before arming.
func WritePlan(w io.Writer, ls *config.Loadshed) {
	var never []string
	for _, t := range ls.Tiers {
		if t.Critical {
			never = append(never, t.Name)
		}
	}
	fmt.Fprintf(w, "tiers never shed: %v\n", never)
	fmt.Fprintf(w, "rate limit: at most one stage every %s; read-back within %s\n", ls.MinStageInterval, ls.VerifyTimeout)
	for i := range ls.Policies {
		pol := &ls.Policies[i]
		armed := "disarmed (dry run only) at start"
		if pol.Armed {
			armed = "ARMED at start by the config"
		}
		fmt.Fprintf(w, "\npolicy %s: %s; restore %s\n", pol.Name, armed, pol.Restore)
		fmt.Fprintf(w, "  trigger: %s", pol.Trigger.When)
		if pol.Trigger.For > 0 {
			fmt.Fprintf(w, " for %s", pol.Trigger.For)
		}
		fmt.Fprintln(w)
		if r := pol.RestoreWhen; pol.Restore == config.RestoreAuto && r != nil {
			fmt.Fprintf(w, "  restore: when %s for %s, last stage first\n", r.When, r.For)
		}
		for _, st := range Plan(ls, pol) {
			fmt.Fprintf(w, "  stage %d, after %s:\n", st.Stage+1, st.After)
			if d := st.Drain; d != nil {
				fmt.Fprintf(w, "    drain %s: publish the drain command, wait up to %s for the acknowledgement, then escalate\n", d.Scope, d.Timeout)
			}
			for _, l := range st.Loads {
				at := l.Device + " " + l.Point
				if l.Index != "" {
					at += "." + l.Index
				}
				fmt.Fprintf(w, "    %-16s tier %-14s write %s = %s (%g), verify %s\n", l.Load, l.Tier, at, l.Off, l.Value, l.Verify)
			}
		}
	}
}

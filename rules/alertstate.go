package rules

import (
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/strictyaml"
)

// AlertState is where firing("pack/name") and firing_any("pack/name")
// read another rule's alert state. An Engine is one (over its own rules);
// the gateway hands the load-shed controller's trigger engine one that
// reads the running rules engine.
//
// Firing reports whether an instance of rule (a rule id) in scope is
// firing: for a per-device rule, its instance of one of the scope's
// devices; for a rule with group_by, an instance whose group label values
// are those of one of the scope's devices; with sc.Anywhere(), any
// instance. known is false when the source cannot tell: it does not run
// the rule, or the matching alert fires only because its own inputs are
// unknown (supervision lost), or was put back after a restart and its
// rule has not evaluated it since. firing() is then unknown, not false.
//
// It is called on the polling path, by every evaluation of a condition
// that reads firing(): it must be cheap, must not block and must be safe
// for concurrent use. The value is as of the other rule's last
// evaluation.
type AlertState interface {
	Firing(rule string, sc Scope) (firing, known bool)
}

// NoAlerts is an AlertState that knows nothing: firing() is always
// unknown. The load-shed controller uses it when it is given no source.
var NoAlerts AlertState = noAlerts{}

type noAlerts struct{}

func (noAlerts) Firing(string, Scope) (bool, bool) { return false, false }

// Scope is where firing() looks: the devices of the instance evaluating
// it (one for a per-device instance, the group's for a group instance),
// or anywhere for firing_any(). It is passed by value and allocates
// nothing.
type Scope struct {
	members  []*devState
	anywhere bool
}

// Anywhere reports whether any instance of the rule counts (firing_any).
func (s Scope) Anywhere() bool { return s.anywhere }

// Len is the number of devices in the scope.
func (s Scope) Len() int { return len(s.members) }

// Device returns the id and labels of the scope's i-th device. The labels
// must not be changed.
func (s Scope) Device(i int) (id string, labels map[string]string) {
	d := &s.members[i].dev
	return d.ID, d.Labels
}

// firingRef is one rule a rule's expressions read with firing() or
// firing_any(), listed once per rule and kind.
type firingRef struct {
	rule  string
	any   bool
	field string // when or clear: the first field that reads it
	at    string // " (column 9 of the expression)": where, for errors
}

// fn is the function as written: firing or firing_any.
func (f *firingRef) fn() string {
	if f.any {
		return "firing_any"
	}
	return "firing"
}

func (f *firingRef) String() string { return fmt.Sprintf("%s(%q)", f.fn(), f.rule) }

// firingRef adds a reference, once per rule and kind; it returns its
// index and whether it is new.
func (t *refTable) firingRef(rule string, anywhere bool, field string) (int, bool) {
	for i, f := range t.firing {
		if f.rule == rule && f.any == anywhere {
			return i, false
		}
	}
	t.firing = append(t.firing, firingRef{rule: rule, any: anywhere, field: field})
	return len(t.firing) - 1, true
}

// firingOf asks src about one reference of an instance.
func firingOf(src AlertState, f *firingRef, in *instance) (firing, known bool) {
	if src == nil {
		return false, false
	}
	return src.Firing(f.rule, Scope{members: in.members, anywhere: f.any})
}

// What an instance publishes of its state for firing(), read without its
// locks.
const (
	pubInactive int32 = iota // inactive or pending
	pubFiring
	pubUnknown // firing on unknown data, or restored and not yet evaluated
)

// ruleIndex is what Engine.Firing needs of one rule: built with the
// engine, never changed but for the count.
type ruleIndex struct {
	groupBy []string
	byDev   map[string]*instance // per-device rules: instance by device id
	all     []*instance
	// active counts instances publishing pubFiring or pubUnknown, so a
	// rule with no alert answers without looking at its instances.
	active atomic.Int32
}

// publish makes the instance's state visible to firing(). The caller
// holds the instance's locks; readers only load the atomic.
func (in *instance) publish() {
	v := pubInactive
	if in.state == alert.Firing {
		v = pubFiring
		if in.lost {
			v = pubUnknown
		}
	}
	in.setPub(v)
}

func (in *instance) setPub(v int32) {
	old := in.pub.Load()
	if old == v {
		return
	}
	in.pub.Store(v)
	switch {
	case old == pubInactive:
		in.ix.active.Add(1)
	case v == pubInactive:
		in.ix.active.Add(-1)
	}
}

// Firing implements AlertState over the engine's own instances (see
// AlertState). It takes no lock: instances publish their state in an
// atomic at every evaluation.
func (e *Engine) Firing(rule string, sc Scope) (firing, known bool) {
	ix := e.byRule[rule]
	if ix == nil {
		return false, false
	}
	if ix.active.Load() == 0 {
		return false, true
	}
	unk := false
	see := func(in *instance) bool {
		switch in.pub.Load() {
		case pubFiring:
			return true
		case pubUnknown:
			unk = true
		}
		return false
	}
	switch {
	case sc.anywhere:
		for _, in := range ix.all {
			if see(in) {
				return true, true
			}
		}
	case len(ix.groupBy) == 0:
		for _, d := range sc.members {
			if in := ix.byDev[d.dev.ID]; in != nil && see(in) {
				return true, true
			}
		}
	default:
		for _, in := range ix.all {
			if in.pub.Load() == pubInactive || !groupHasAny(ix.groupBy, in, sc.members) {
				continue
			}
			if see(in) {
				return true, true
			}
		}
	}
	return false, !unk
}

// groupHasAny reports whether one of the devices has the group's label
// values (whether or not the group's rule selects it).
func groupHasAny(by []string, in *instance, devs []*devState) bool {
	for _, d := range devs {
		match := true
		for i, l := range by {
			if d.dev.Labels[l] != in.groupVals[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// indexRules builds the engine's per-rule index for Firing and, when the
// engine is its own source, the readers of each rule (for propagate) and
// the check that every rule read is running here.
func (e *Engine) indexRules() strictyaml.Errors {
	e.byRule = make(map[string]*ruleIndex, len(e.rules))
	for _, r := range e.rules {
		e.byRule[r.ID] = &ruleIndex{groupBy: r.GroupBy, byDev: map[string]*instance{}}
	}
	for _, in := range e.all {
		ix := e.byRule[in.rule.ID]
		in.ix = ix
		ix.all = append(ix.all, in)
		if in.group {
			for _, l := range in.rule.GroupBy {
				in.groupVals = append(in.groupVals, in.members[0].dev.Labels[l])
			}
		} else {
			ix.byDev[in.key] = in
		}
		if len(in.rule.refs.firing) > 0 {
			e.stateful = append(e.stateful, in)
		}
	}
	if e.opts.Alerts != nil {
		return nil // another engine's rules: checked by whoever built both
	}
	var errs strictyaml.Errors
	e.readers = map[string][]*instance{}
	ids := make([]string, len(e.rules))
	for i, r := range e.rules {
		ids[i] = r.ID
	}
	for _, r := range e.rules {
		for _, f := range r.refs.firing {
			if e.byRule[f.rule] == nil {
				errs = append(errs, r.errorAt(f.field, "%s: no rule %q among the rules running here%s%s", f.fn(), f.rule, strictyaml.DidYouMean(f.rule, ids), f.at))
			}
		}
	}
	for _, in := range e.stateful {
		for _, f := range in.rule.refs.firing {
			if !slices.Contains(e.readers[f.rule], in) {
				e.readers[f.rule] = append(e.readers[f.rule], in)
			}
		}
	}
	return errs
}

// maxPropagation bounds the rounds of propagate: rules that read each
// other in a cycle could otherwise flip each other for ever.
const maxPropagation = 8

// propagate evaluates again, at now, the instances of this engine that
// read the rules of new transitions (evs), so a rule built on another's
// alert follows it in the same Feed or Tick rather than at the next one;
// their own transitions propagate in turn, a bounded number of rounds.
// It holds no lock when called, and takes each instance's as Tick does.
func (e *Engine) propagate(ev *evaluator, evs []alert.Event, now time.Time) []alert.Event {
	if len(e.readers) == 0 {
		return evs
	}
	from := 0
	for round := 0; round < maxPropagation && from < len(evs); round++ {
		var todo []*instance
		for _, x := range evs[from:] {
			for _, in := range e.readers[x.Rule] {
				if !slices.Contains(todo, in) {
					todo = append(todo, in)
				}
			}
		}
		from = len(evs)
		sort.Slice(todo, func(i, j int) bool { return todo[i].ord < todo[j].ord })
		for _, in := range todo {
			if in.group {
				evs = e.stepGroup(ev, in, now, evs)
			} else {
				d := in.members[0]
				d.mu.Lock()
				evs = e.step(ev, in, now, evs)
				d.mu.Unlock()
			}
		}
	}
	return evs
}

// firingValues adds the rules an instance reads with firing() to its
// values, for people reading the alert (and the load-shed audit): "true"
// or "false" of quality good, or quality missing when not known.
func firingValues(src AlertState, in *instance, out map[string]alert.Value) {
	for i := range in.rule.refs.firing {
		f := &in.rule.refs.firing[i]
		v, known := firingOf(src, f, in)
		if !known {
			out[f.String()] = alert.Value{Quality: "missing", Reason: "alert state not known"}
			continue
		}
		out[f.String()] = alert.Value{Value: fmt.Sprint(v), Quality: "good"}
	}
}

// CheckReferences checks that every rule that firing() or firing_any()
// reads is an enabled rule of set: what the rules rs read (load-shed
// triggers, compiled apart), or without rs what the enabled rules of set
// read. Errors are located at the field that reads it, with a
// did-you-mean.
func CheckReferences(set *RuleSet, rs ...*Rule) error {
	var errs strictyaml.Errors
	var enabled []string
	for _, r := range set.Rules() {
		enabled = append(enabled, r.ID)
	}
	all := set.ids()
	if len(rs) == 0 {
		rs = set.Rules()
	}
	for _, r := range rs {
		for _, f := range r.refs.firing {
			switch {
			case slices.Contains(enabled, f.rule):
			case slices.Contains(all, f.rule):
				errs = append(errs, r.errorAt(f.field, "%s: rule %q is disabled%s", f.fn(), f.rule, f.at))
			default:
				errs = append(errs, r.errorAt(f.field, "%s: no rule %q%s%s", f.fn(), f.rule, strictyaml.DidYouMean(f.rule, enabled), f.at))
			}
		}
	}
	return errs.Err()
}

// Reads returns the rule ids the rule's expressions read with firing() or
// firing_any(), sorted, each once.
func (r *Rule) Reads() []string {
	var out []string
	for _, f := range r.refs.firing {
		if !slices.Contains(out, f.rule) {
			out = append(out, f.rule)
		}
	}
	sort.Strings(out)
	return out
}

var _ AlertState = (*Engine)(nil)

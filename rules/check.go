package rules

import (
	"sort"
	"strings"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/strictyaml"
)

// Check lints the enabled rules of a set against the firmware profiles:
//
//   - select.profile must name a loaded profile;
//   - every point name a rule reads (in when, clear, summary or
//     description) must exist in at least one profile the rule can select:
//     the profile named by select.profile, else the profiles of
//     select.class, else (a selection by devices or labels only, or none)
//     every loaded profile. A name no candidate has can never be polled:
//     it is a typo, or a profile is missing.
//
// SNMP table columns are points per row ("if.oper_status.uplink-1", and
// "<row>.rate" for counters): a name below a column counts as that
// column's. A rule whose class selects no loaded profile is not checked
// (there is nothing to check it against).
//
// Errors are located at the field that reads the name, with a did-you-mean
// over the candidates' point names.
func Check(set *RuleSet, reg *profiles.Registry) error {
	var errs strictyaml.Errors
	all := reg.List()
	for _, r := range set.Rules() {
		var cands []*profiles.Profile
		switch {
		case r.Select.Profile != "":
			p, ok := reg.Get(r.Select.Profile)
			if !ok {
				errs = append(errs, r.errorAt("select.profile", "unknown profile %q%s", r.Select.Profile, strictyaml.DidYouMean(r.Select.Profile, models(all))))
				continue
			}
			if r.Select.Class != "" && p.Class != r.Select.Class {
				errs = append(errs, r.errorAt("select.class", "profile %s has class %q, so no device matches both select.profile and select.class %q", p.Model, p.Class, r.Select.Class))
				continue
			}
			cands = []*profiles.Profile{p}
		case r.Select.Class != "":
			for _, p := range all {
				if p.Class == r.Select.Class {
					cands = append(cands, p)
				}
			}
		default:
			cands = all
		}
		if len(cands) == 0 {
			continue
		}
		known := map[string]bool{}
		columns := map[string]bool{}
		for _, p := range cands {
			for n := range p.PointNames() {
				known[n] = true
			}
			for _, pts := range pointLists(p) {
				for _, pt := range pts {
					if pt.IsColumn() && pt.Contains == "" {
						columns[pt.Name] = true
					}
				}
			}
		}
		for i, name := range r.refs.names {
			if known[name] || underColumn(name, columns) {
				continue
			}
			var names []string
			for n := range known {
				names = append(names, n)
			}
			sort.Strings(names)
			what := "any loaded profile"
			switch {
			case r.Select.Profile != "":
				what = "profile " + r.Select.Profile
			case r.Select.Class != "":
				what = "the profiles of class " + r.Select.Class
			}
			errs = append(errs, r.errorAt(r.refs.field[i], "no point %q in %s%s", name, what, strictyaml.DidYouMean(name, names)))
		}
	}
	return errs.Err()
}

func pointLists(p *profiles.Profile) [][]profiles.PointDef {
	out := [][]profiles.PointDef{p.Points}
	for _, v := range p.Variants {
		out = append(out, v.Points)
	}
	return out
}

// underColumn reports whether name is a row (or a row's rate) of a column.
func underColumn(name string, columns map[string]bool) bool {
	for i := strings.LastIndexByte(name, '.'); i > 0; i = strings.LastIndexByte(name[:i], '.') {
		if columns[name[:i]] {
			return true
		}
	}
	return false
}

func models(ps []*profiles.Profile) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Model
	}
	return out
}

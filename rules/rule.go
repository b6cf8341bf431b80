package rules

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"
	"time"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/strictyaml"
)

// shipped holds the rule packs compiled into facgw. The folder also holds a
// README.md, because embed refuses a folder without files.
//
//go:embed packs
var shipped embed.FS

// Missing says what a rule does while its condition is unknown.
type Missing string

// The missing settings.
const (
	// MissingHold freezes the instance: inactive stays inactive, pending
	// stays pending without its for-duration advancing, firing stays
	// firing.
	MissingHold Missing = "hold"
	// MissingFire treats an unknown condition as true (fail-safe) and
	// marks the alert SupervisionLost.
	MissingFire Missing = "fire"
)

// Select says which devices a rule applies to. Every given field must match;
// an empty Select matches every device.
type Select struct {
	Class   string            `yaml:"class" json:"class,omitempty"`
	Profile string            `yaml:"profile" json:"profile,omitempty"`
	Devices []string          `yaml:"devices" json:"devices,omitempty"`
	Labels  map[string]string `yaml:"labels" json:"labels,omitempty"`
}

// Matches reports whether the device is selected.
func (s *Select) Matches(d *Device) bool { return s.matches(d) }

// matches reports whether the device is selected.
func (s *Select) matches(d *Device) bool {
	if s.Class != "" && s.Class != d.Class {
		return false
	}
	if s.Profile != "" && s.Profile != d.Profile {
		return false
	}
	if len(s.Devices) > 0 && !slices.Contains(s.Devices, d.ID) {
		return false
	}
	for k, v := range s.Labels {
		if d.Labels[k] != v {
			return false
		}
	}
	return true
}

// Rule is one alert rule of a pack, compiled. The exported fields are what
// the file said (with defaults applied), for listing; a Rule is read-only
// once loaded and safe to share between engines.
type Rule struct {
	// ID is "pack/name", the rule's identity in events and the ledger.
	ID            string            `json:"id"`
	Pack          string            `json:"pack"`
	Name          string            `json:"name"`
	Class         string            `json:"class"`
	Severity      alert.Severity    `json:"severity"`
	Select        Select            `json:"select"`
	GroupBy       []string          `json:"group_by,omitempty"`
	When          string            `json:"when"`
	Clear         string            `json:"clear,omitempty"`
	For           time.Duration     `json:"for"`
	KeepFiringFor time.Duration     `json:"keep_firing_for"`
	Missing       Missing           `json:"missing"`
	Summary       string            `json:"summary"`
	Description   string            `json:"description,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	// File is the file the rule was loaded from ("shipped:fire" for a
	// shipped pack's file is "rules/packs/fire.yaml").
	File string `json:"file"`

	pos   strictyaml.Pos // the rule's mapping, for located errors
	field string         // "rules[2]", the path of the rule in its file

	refs    *refTable // the point names the expressions and templates read
	when    *program
	clear   *program // nil without clear:
	summary *template.Template
	descr   *template.Template // nil without description:
}

// Pack is one rule file: a named set of rules.
type Pack struct {
	Name  string
	File  string
	Rules []*Rule
}

// RuleSet is the rules an engine runs: packs merged, some rules disabled.
type RuleSet struct {
	packs    []*Pack
	disabled map[string]bool
}

// ruleFile is the YAML shape of a pack.
type ruleFile struct {
	Pack  string     `yaml:"pack" check:"required"`
	Rules []ruleYAML `yaml:"rules" check:"required"`
	Pos   strictyaml.Pos
}

type ruleYAML struct {
	Name          string            `yaml:"name" check:"required"`
	Class         string            `yaml:"class" check:"required"`
	Severity      string            `yaml:"severity" check:"required"`
	Select        Select            `yaml:"select"`
	GroupBy       []string          `yaml:"group_by"`
	When          string            `yaml:"when" check:"required"`
	Clear         string            `yaml:"clear"`
	For           time.Duration     `yaml:"for"`
	KeepFiringFor time.Duration     `yaml:"keep_firing_for"`
	Missing       string            `yaml:"missing"`
	Summary       string            `yaml:"summary" check:"required"`
	Description   string            `yaml:"description"`
	Labels        map[string]string `yaml:"labels"`
	Pos           strictyaml.Pos
}

var (
	packRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	nameRE  = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// RuleClasses are the classes a rule can have: alert.Classes without
// "gateway", which only the gateway itself raises.
var RuleClasses = func() []string {
	var out []string
	for _, c := range alert.Classes {
		if c != "gateway" {
			out = append(out, c)
		}
	}
	return out
}()

// Load decodes, validates and compiles one pack. file names it in errors.
// Every problem of the file is returned together, as strictyaml.Errors.
func Load(file string, data []byte) (*Pack, error) {
	var f ruleFile
	errs := strictyaml.Decode(file, data, &f)
	// A field that failed to decode holds its zero value: a semantic
	// complaint about it would only repeat the first error.
	bad := map[string]bool{}
	for _, e := range errs {
		bad[e.Path] = true
	}
	add := func(e *strictyaml.Error) {
		if !bad[e.Path] {
			errs = append(errs, e)
		}
	}
	if f.Pos.Line == 0 {
		return nil, errs.Err()
	}
	p := &Pack{Name: f.Pack, File: file}
	if f.Pack != "" && !packRE.MatchString(f.Pack) {
		add(f.Pos.At("pack", "pack name %q must be lower-case letters, digits and dashes", f.Pack))
	}
	seen := map[string]string{}
	for i := range f.Rules {
		ry := &f.Rules[i]
		if ry.Pos.Line == 0 {
			continue // not a mapping: already reported
		}
		field := fmt.Sprintf("rules[%d]", i)
		r, rerrs := compileRule(p, ry, file, field)
		for _, e := range rerrs {
			add(e)
		}
		if ry.Name != "" {
			if other, dup := seen[ry.Name]; dup {
				add(ry.Pos.At("name", "rule name %q is also used by %s", ry.Name, other))
			}
			seen[ry.Name] = field
		}
		if r != nil {
			p.Rules = append(p.Rules, r)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// compileRule validates one rule and compiles its expressions and
// templates. It returns the rule only when it has no errors.
func compileRule(p *Pack, ry *ruleYAML, file, field string) (*Rule, strictyaml.Errors) {
	var errs strictyaml.Errors
	at := func(f, format string, args ...any) {
		errs = append(errs, ry.Pos.At(f, format, args...))
	}
	r := &Rule{
		ID: p.Name + "/" + ry.Name, Pack: p.Name, Name: ry.Name, Class: ry.Class,
		Select: ry.Select, GroupBy: ry.GroupBy, When: ry.When, Clear: ry.Clear,
		For: ry.For, KeepFiringFor: ry.KeepFiringFor, Missing: Missing(ry.Missing),
		Summary: ry.Summary, Description: ry.Description, Labels: ry.Labels,
		File: file, pos: ry.Pos, field: field,
	}
	if ry.Name != "" && !nameRE.MatchString(ry.Name) {
		at("name", "rule name %q must be lower-case letters and digits separated by single dashes", ry.Name)
	}
	if ry.Class != "" && !slices.Contains(RuleClasses, ry.Class) {
		at("class", "unknown class %q%s", ry.Class, strictyaml.DidYouMeanOr(ry.Class, RuleClasses))
	}
	if ry.Severity != "" {
		s, err := alert.ParseSeverity(ry.Severity)
		if err != nil {
			at("severity", "unknown severity %q%s", ry.Severity, strictyaml.DidYouMeanOr(ry.Severity, alert.Severities))
		}
		r.Severity = s
	}
	switch r.Missing {
	case "":
		r.Missing = MissingHold
	case MissingHold, MissingFire:
	default:
		at("missing", "want hold or fire, got %q", ry.Missing)
	}
	if s := ry.Select.Class; s != "" && !slices.Contains(profiles.Classes, s) {
		errs = append(errs, ry.Pos.AtPath("select.class", "unknown device class %q%s", s, strictyaml.DidYouMeanOr(s, profiles.Classes)))
	}
	seenDev := map[string]bool{}
	for i, d := range ry.Select.Devices {
		if seenDev[d] {
			errs = append(errs, ry.Pos.AtPath(fmt.Sprintf("select.devices[%d]", i), "device %q is listed twice", d))
		}
		seenDev[d] = true
	}
	seenLabel := map[string]bool{}
	for i, l := range ry.GroupBy {
		if !labelRE.MatchString(l) {
			errs = append(errs, ry.Pos.AtPath(fmt.Sprintf("group_by[%d]", i), "%q is not a label name", l))
		}
		if seenLabel[l] {
			errs = append(errs, ry.Pos.AtPath(fmt.Sprintf("group_by[%d]", i), "label %q is listed twice", l))
		}
		seenLabel[l] = true
	}
	if ry.GroupBy != nil && len(ry.GroupBy) == 0 {
		at("group_by", "group_by needs at least one label")
	}
	for k := range ry.Labels {
		if !labelRE.MatchString(k) {
			errs = append(errs, ry.Pos.AtPath("labels."+k, "%q is not a label name", k))
		}
	}
	// A key given with an empty value is a mistake, not a default.
	for _, f := range []struct{ key, val, msg string }{
		{"when", ry.When, "when is empty"},
		{"clear", ry.Clear, "clear is empty; leave it out to clear when the condition is false"},
		{"summary", ry.Summary, "summary is empty"},
		{"description", ry.Description, "description is empty; leave it out"},
	} {
		if ry.Pos.Has(f.key) && strings.TrimSpace(f.val) == "" {
			at(f.key, "%s", f.msg)
		}
	}

	r.refs = newRefTable()
	if strings.TrimSpace(ry.When) != "" {
		prog, err := compileExpr(ry.When, r.refs, "when")
		if err != nil {
			at("when", "%s", err)
		} else {
			r.when = prog
			if !prog.readsPoints() && !prog.alerts {
				at("when", "the condition reads no point and no alert (firing()), so nothing would ever evaluate it")
			}
		}
	}
	if strings.TrimSpace(ry.Clear) != "" {
		prog, err := compileExpr(ry.Clear, r.refs, "clear")
		if err != nil {
			at("clear", "%s", err)
		} else {
			r.clear = prog
		}
	}
	if strings.TrimSpace(ry.Summary) != "" {
		t, err := parseTemplate("summary", ry.Summary, r.refs)
		if err != nil {
			at("summary", "%s", err)
		}
		r.summary = t
	}
	if strings.TrimSpace(ry.Description) != "" {
		t, err := parseTemplate("description", ry.Description, r.refs)
		if err != nil {
			at("description", "%s", err)
		}
		r.descr = t
	}
	for _, f := range r.refs.firing {
		if f.rule == r.ID {
			at(f.field, "%s: a rule cannot read its own alert%s", f.fn(), f.at)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	r.refs.finish()
	return r, nil
}

// LoadFiles loads rule files into one set. Every file's errors are
// returned together; a pack name defined by two files is an error.
func LoadFiles(paths ...string) (*RuleSet, error) {
	var errs strictyaml.Errors
	rs := &RuleSet{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, &strictyaml.Error{File: p, Msg: fmt.Sprintf("cannot read: %v", err)})
			continue
		}
		pack, err := Load(p, data)
		if err != nil {
			errs = append(errs, asErrors(p, err)...)
			continue
		}
		if e := rs.add(pack); e != nil {
			errs = append(errs, e)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return rs, nil
}

// Shipped loads the packs compiled into facgw (rules/packs/*.yaml).
func Shipped() (*RuleSet, error) { return loadFS(shipped, "packs", "rules/packs") }

// loadFS loads dir/*.yaml of fsys, naming files prefix/<name> in errors.
func loadFS(fsys fs.FS, dir, prefix string) (*RuleSet, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	var errs strictyaml.Errors
	rs := &RuleSet{}
	for _, e := range entries {
		if e.IsDir() || (path.Ext(e.Name()) != ".yaml" && path.Ext(e.Name()) != ".yml") {
			continue
		}
		data, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("rules: %w", err)
		}
		name := prefix + "/" + e.Name()
		pack, err := Load(name, data)
		if err != nil {
			errs = append(errs, asErrors(name, err)...)
			continue
		}
		if e := rs.add(pack); e != nil {
			errs = append(errs, e)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return rs, nil
}

// asErrors flattens a Load error into located errors.
func asErrors(file string, err error) strictyaml.Errors {
	if es, ok := err.(strictyaml.Errors); ok {
		return es
	}
	return strictyaml.Errors{{File: file, Msg: err.Error()}}
}

// add appends a pack, refusing a pack name that is already present.
func (s *RuleSet) add(p *Pack) *strictyaml.Error {
	for _, q := range s.packs {
		if q.Name == p.Name {
			return &strictyaml.Error{File: p.File, Line: 1, Col: 1, Path: "pack",
				Msg: fmt.Sprintf("pack %q is also defined in %s", p.Name, q.File)}
		}
	}
	s.packs = append(s.packs, p)
	return nil
}

// NewRuleSet makes a set of the given packs (from Load).
func NewRuleSet(packs ...*Pack) (*RuleSet, error) {
	rs := &RuleSet{}
	var errs strictyaml.Errors
	for _, p := range packs {
		if e := rs.add(p); e != nil {
			errs = append(errs, e)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return rs, nil
}

// Merge returns a new set with the packs of s and o; s and o are not
// changed. A pack name present in both is an error: a site that wants to
// change a shipped rule disables it and adds its own under another pack,
// so a shipped fire rule is never replaced by accident. Disabled rules of
// both stay disabled. The merged set must hold every rule its rules read
// with firing() (CheckReferences).
func (s *RuleSet) Merge(o *RuleSet) (*RuleSet, error) {
	out := &RuleSet{}
	var errs strictyaml.Errors
	for _, set := range []*RuleSet{s, o} {
		if set == nil {
			continue
		}
		for _, p := range set.packs {
			if e := out.add(p); e != nil {
				errs = append(errs, e)
			}
		}
		for id := range set.disabled {
			if out.disabled == nil {
				out.disabled = map[string]bool{}
			}
			out.disabled[id] = true
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if err := CheckReferences(out); err != nil {
		return nil, err
	}
	return out, nil
}

// Disable turns rules off by id ("fire/liion-offgas") or whole packs
// ("fire/*"). An id that names no rule is an error with a did-you-mean,
// and so is disabling a rule that a rule left enabled reads with
// firing(); then nothing is disabled.
func (s *RuleSet) Disable(ids ...string) error {
	all := s.ids()
	var bad []string
	var want []string
	for _, id := range ids {
		if pack, ok := strings.CutSuffix(id, "/*"); ok {
			n := 0
			for _, r := range all {
				if strings.HasPrefix(r, pack+"/") {
					want = append(want, r)
					n++
				}
			}
			if n == 0 {
				bad = append(bad, fmt.Sprintf("no pack %q%s", pack, strictyaml.DidYouMean(pack, s.PackNames())))
			}
			continue
		}
		if !slices.Contains(all, id) {
			bad = append(bad, fmt.Sprintf("no rule %q%s", id, strictyaml.DidYouMean(id, all)))
			continue
		}
		want = append(want, id)
	}
	for _, r := range s.Rules() {
		if slices.Contains(want, r.ID) {
			continue
		}
		for _, id := range r.Reads() {
			if slices.Contains(want, id) {
				bad = append(bad, fmt.Sprintf("rule %q is read by %s (firing), which stays enabled", id, r.ID))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("rules: disable: %s", strings.Join(bad, "; "))
	}
	if s.disabled == nil {
		s.disabled = map[string]bool{}
	}
	for _, id := range want {
		s.disabled[id] = true
	}
	return nil
}

// ids lists every rule id of the set, disabled ones included, sorted.
func (s *RuleSet) ids() []string {
	var out []string
	for _, p := range s.packs {
		for _, r := range p.Rules {
			out = append(out, r.ID)
		}
	}
	sort.Strings(out)
	return out
}

// PackNames lists the packs of the set, sorted.
func (s *RuleSet) PackNames() []string {
	var out []string
	for _, p := range s.packs {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

// Packs returns the packs of the set in the order they were added.
func (s *RuleSet) Packs() []*Pack { return slices.Clone(s.packs) }

// Rules returns the enabled rules, sorted by id.
func (s *RuleSet) Rules() []*Rule {
	var out []*Rule
	for _, p := range s.packs {
		for _, r := range p.Rules {
			if !s.disabled[r.ID] {
				out = append(out, r)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Disabled reports whether a rule id is disabled in the set.
func (s *RuleSet) Disabled(id string) bool { return s.disabled[id] }

// Points returns the point names the rule reads (in its expressions and
// templates), sorted.
func (r *Rule) Points() []string { return slices.Clone(r.refs.names) }

// errorAt locates a problem at one of the rule's fields.
func (r *Rule) errorAt(field, format string, args ...any) *strictyaml.Error {
	return r.pos.AtPath(field, format, args...)
}

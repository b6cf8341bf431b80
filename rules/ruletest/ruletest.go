// Package ruletest runs rule unit tests: YAML files that feed series of
// point values into a rules.Engine step by step and check which alerts are
// firing at given times and which events came out, in the spirit of
// promtool's rule tests. It also replays recorded telemetry (CSV or MQTT
// JSON) through a rule set and prints the alert timeline. The file format
// and series notation are documented in docs/rules.md.
package ruletest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/strictyaml"
	"github.com/facgw/facgw/rules"
)

// DefaultStart is the time of step 0 when a test file gives no start.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// maxSteps bounds a test's length.
const maxSteps = 1000000

// offset is a signed duration from the test's start ("30s", "-5m").
// strictyaml's durations are never negative; a restored alert's start is.
type offset time.Duration

// UnmarshalYAMLNode implements strictyaml.Unmarshaler.
func (o *offset) UnmarshalYAMLNode(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration such as 30s or -5m")
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("want a duration such as 30s or -5m, got %q", n.Value)
	}
	*o = offset(d)
	return nil
}

type file struct {
	RuleFiles []string      `yaml:"rule_files" check:"required"`
	Devices   []deviceYAML  `yaml:"devices" check:"required"`
	Interval  time.Duration `yaml:"interval"`
	// Start is the time of step 0, RFC 3339 (default DefaultStart).
	Start string     `yaml:"start"`
	Tests []testCase `yaml:"tests" check:"required"`
	Pos   strictyaml.Pos
}

type deviceYAML struct {
	ID      string            `yaml:"id" check:"required"`
	Class   string            `yaml:"class"`
	Profile string            `yaml:"profile"`
	Labels  map[string]string `yaml:"labels"`
	Pos     strictyaml.Pos
}

type testCase struct {
	Name string `yaml:"name" check:"required"`
	// Restore are episodes the ledger had open before step 0.
	Restore []restoreYAML `yaml:"restore"`
	// Orphans are the restored alerts the engine must hand back.
	Orphans []string     `yaml:"orphans"`
	Input   []seriesYAML `yaml:"input"`
	Expect  []expectYAML `yaml:"expect"`
	// Events, when given (also empty), are exactly the events expected,
	// in order.
	Events []eventYAML `yaml:"events"`
	Pos    strictyaml.Pos
}

type restoreYAML struct {
	Alert    string `yaml:"alert" check:"required"`
	ActiveAt offset `yaml:"active_at" check:"required"`
	FiredAt  offset `yaml:"fired_at" check:"required"`
	ID       string `yaml:"id"`
	Pos      strictyaml.Pos
}

type seriesYAML struct {
	Device string `yaml:"device" check:"required"`
	Point  string `yaml:"point" check:"required"`
	Unit   string `yaml:"unit"`
	Values string `yaml:"values" check:"required"`
	Pos    strictyaml.Pos
}

type expectYAML struct {
	At      offset   `yaml:"at" check:"required"`
	Firing  []string `yaml:"firing" check:"required"`
	Pending []string `yaml:"pending"`
	Pos     strictyaml.Pos
}

type eventYAML struct {
	At              offset  `yaml:"at" check:"required"`
	Kind            string  `yaml:"kind" check:"required"`
	Alert           string  `yaml:"alert" check:"required"`
	SupervisionLost *bool   `yaml:"supervision_lost"`
	Summary         *string `yaml:"summary"`
	// ID, when given, is the episode id the event must carry (a restored
	// alert keeps the ledger's).
	ID  string `yaml:"id"`
	Pos strictyaml.Pos
}

// Run runs the tests of one test file and writes go-test-like results to
// w. passed is false when a test failed; err is set when the file itself
// is wrong (then no test ran), with every problem located.
func Run(path string, w io.Writer) (passed bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("ruletest: %w", err)
	}
	s, err := load(path, data)
	if err != nil {
		return false, err
	}
	passed = true
	for i := range s.tests {
		if !s.run(&s.tests[i], w) {
			passed = false
		}
	}
	if passed {
		fmt.Fprintf(w, "PASS %s\n", path)
	} else {
		fmt.Fprintf(w, "FAIL %s\n", path)
	}
	return passed, nil
}

// suite is a loaded test file.
type suite struct {
	path     string
	set      *rules.RuleSet
	devices  []rules.Device
	interval time.Duration
	start    time.Time
	tests    []compiled
}

type compiled struct {
	tc     *testCase
	steps  int
	series []compiledSeries
}

type compiledSeries struct {
	device, point string
	unit          point.Unit
	kind          point.Kind
	samples       []sample
}

// load decodes and checks a test file and loads its rule files.
func load(path string, data []byte) (*suite, error) {
	var f file
	errs := strictyaml.Decode(path, data, &f)
	if f.Pos.Line == 0 && len(errs) > 0 {
		return nil, errs.Err()
	}
	s := &suite{path: path, interval: f.Interval, start: DefaultStart}
	if s.interval == 0 {
		s.interval = time.Second
	}
	if f.Start != "" {
		t, err := time.Parse(time.RFC3339Nano, f.Start)
		if err != nil {
			errs = append(errs, f.Pos.At("start", "want an RFC 3339 time such as 2026-01-01T00:00:00Z, got %q", f.Start))
		}
		s.start = t.UTC()
	}

	// Rule files.
	var packs []*rules.Pack
	var shipped *rules.RuleSet
	for i, rf := range f.RuleFiles {
		field := fmt.Sprintf("rule_files[%d]", i)
		if name, ok := strings.CutPrefix(rf, "shipped:"); ok {
			if shipped == nil {
				var err error
				if shipped, err = rules.Shipped(); err != nil {
					errs = append(errs, f.Pos.AtPath(field, "shipped rules do not load: %v", err))
					continue
				}
			}
			var found *rules.Pack
			for _, p := range shipped.Packs() {
				if p.Name == name {
					found = p
				}
			}
			if found == nil {
				errs = append(errs, f.Pos.AtPath(field, "no shipped pack %q%s", name, strictyaml.DidYouMeanOr(name, shipped.PackNames())))
				continue
			}
			packs = append(packs, found)
			continue
		}
		p := rf
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(path), p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, f.Pos.AtPath(field, "cannot read rule file: %v", err))
			continue
		}
		pack, err := rules.Load(p, b)
		if err != nil {
			if es, ok := err.(strictyaml.Errors); ok {
				errs = append(errs, es...)
			} else {
				errs = append(errs, f.Pos.AtPath(field, "%v", err))
			}
			continue
		}
		packs = append(packs, pack)
	}
	if len(errs) == 0 {
		set, err := rules.NewRuleSet(packs...)
		if err != nil {
			errs = append(errs, f.Pos.At("rule_files", "%v", err))
		}
		s.set = set
	}

	// Devices.
	devIDs := map[string]bool{}
	var ids []string
	for i, d := range f.Devices {
		if devIDs[d.ID] {
			errs = append(errs, f.Pos.AtPath(fmt.Sprintf("devices[%d].id", i), "device %q is listed twice", d.ID))
		}
		devIDs[d.ID] = true
		ids = append(ids, d.ID)
		s.devices = append(s.devices, rules.Device{ID: d.ID, Class: d.Class, Profile: d.Profile, Labels: d.Labels})
	}
	if len(errs) == 0 {
		// Build an engine once, for the errors of the rule set against the
		// devices (a rule naming an unknown device).
		if _, err := rules.NewEngine(s.set, s.devices, rules.Options{}); err != nil {
			errs = append(errs, asErrors(path, err)...)
		}
	}
	// The rules of the files that loaded, to check alert names even when
	// another rule file is wrong.
	var ruleIDs []string
	for _, p := range packs {
		for _, r := range p.Rules {
			ruleIDs = append(ruleIDs, r.ID)
		}
	}

	// Tests.
	names := map[string]bool{}
	for i := range f.Tests {
		tc := &f.Tests[i]
		if tc.Pos.Line == 0 {
			continue
		}
		if names[tc.Name] {
			errs = append(errs, tc.Pos.At("name", "test name %q is used twice", tc.Name))
		}
		names[tc.Name] = true
		c := compiled{tc: tc}
		checkAlert := func(pos strictyaml.Pos, field, a string) {
			rule, inst, ok := strings.Cut(a, "@")
			if !ok || inst == "" {
				errs = append(errs, pos.AtPath(field, "want rule@instance, such as fire/liion-offgas@bms-1, got %q", a))
				return
			}
			if len(ruleIDs) > 0 && !slices.Contains(ruleIDs, rule) {
				errs = append(errs, pos.AtPath(field, "no rule %q in the rule files%s", rule, strictyaml.DidYouMeanOr(rule, ruleIDs)))
			}
		}
		for j, in := range tc.Input {
			if in.Pos.Line == 0 {
				continue
			}
			if in.Device != "" && !devIDs[in.Device] {
				errs = append(errs, in.Pos.At("device", "device %q is not in devices%s", in.Device, strictyaml.DidYouMeanOr(in.Device, ids)))
			}
			u := point.Unit(in.Unit)
			if !u.Known() {
				errs = append(errs, in.Pos.At("unit", "unknown unit %q (docs/units.md)", in.Unit))
			}
			samples, kind, err := parseSeries(in.Values)
			if err != nil {
				errs = append(errs, in.Pos.At("values", "%v", err))
				continue
			}
			for k := range j {
				if tc.Input[k].Device == in.Device && tc.Input[k].Point == in.Point {
					errs = append(errs, in.Pos.At("point", "point %s of %s has two series", in.Point, in.Device))
				}
			}
			c.series = append(c.series, compiledSeries{device: in.Device, point: in.Point, unit: u, kind: kind, samples: samples})
			c.steps = max(c.steps, len(samples))
		}
		step := func(pos strictyaml.Pos, o offset) int {
			d := time.Duration(o)
			if d < 0 || d%s.interval != 0 {
				errs = append(errs, pos.At("at", "%s is not a step: steps are multiples of the interval %s from 0", d, s.interval))
				return 0
			}
			return int(d / s.interval)
		}
		for _, ex := range tc.Expect {
			c.steps = max(c.steps, step(ex.Pos, ex.At)+1)
			for k, a := range ex.Firing {
				checkAlert(ex.Pos, fmt.Sprintf("firing[%d]", k), a)
			}
			for k, a := range ex.Pending {
				checkAlert(ex.Pos, fmt.Sprintf("pending[%d]", k), a)
			}
		}
		for _, ev := range tc.Events {
			c.steps = max(c.steps, step(ev.Pos, ev.At)+1)
			switch alert.Kind(ev.Kind) {
			case alert.KindFiring, alert.KindResolved:
			default:
				errs = append(errs, ev.Pos.At("kind", "want firing or resolved, got %q", ev.Kind))
			}
			checkAlert(ev.Pos, "alert", ev.Alert)
		}
		for _, r := range tc.Restore {
			// A restored alert may name a rule that is gone: that is
			// what orphans are.
			if rule, inst, ok := strings.Cut(r.Alert, "@"); !ok || rule == "" || inst == "" {
				errs = append(errs, r.Pos.At("alert", "want rule@instance, such as fire/liion-offgas@bms-1, got %q", r.Alert))
			}
			if r.FiredAt < r.ActiveAt {
				errs = append(errs, r.Pos.At("fired_at", "fired_at is before active_at"))
			}
		}
		for k, a := range tc.Orphans {
			if !strings.Contains(a, "@") {
				errs = append(errs, tc.Pos.AtPath(fmt.Sprintf("orphans[%d]", k), "want rule@instance, got %q", a))
			}
		}
		if c.steps > maxSteps {
			errs = append(errs, tc.Pos.At("name", "the test runs %d steps, more than %d", c.steps, maxSteps))
		}
		s.tests = append(s.tests, c)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

func asErrors(path string, err error) strictyaml.Errors {
	if es, ok := err.(strictyaml.Errors); ok {
		return es
	}
	return strictyaml.Errors{{File: path, Msg: err.Error()}}
}

// alertName is how tests name an alert instance: "rule@device" or
// "rule@group".
func alertName(rule, instance string) string { return rule + "@" + instance }

// run runs one test and reports it.
func (s *suite) run(c *compiled, w io.Writer) bool {
	tc := c.tc
	fmt.Fprintf(w, "=== RUN   %s\n", tc.Name)
	var fails []string
	failf := func(format string, args ...any) { fails = append(fails, fmt.Sprintf(format, args...)) }

	e, err := rules.NewEngine(s.set, s.devices, rules.Options{Site: "test", Gateway: "ruletest"})
	if err != nil { // load built one already: cannot happen
		failf("engine: %v", err)
	} else {
		s.simulate(e, c, failf)
	}
	if len(fails) == 0 {
		fmt.Fprintf(w, "--- PASS: %s (%d steps of %s)\n", tc.Name, c.steps, s.interval)
		return true
	}
	fmt.Fprintf(w, "--- FAIL: %s\n", tc.Name)
	for _, f := range fails {
		for _, line := range strings.Split(f, "\n") {
			fmt.Fprintf(w, "    %s\n", line)
		}
	}
	return false
}

type gotEvent struct {
	at time.Duration
	ev alert.Event
}

func (g gotEvent) String() string {
	s := fmt.Sprintf("%s %s %s", g.at, g.ev.Kind, alertName(g.ev.Rule, g.ev.Instance()))
	if g.ev.SupervisionLost {
		s += " (supervision lost)"
	}
	return s
}

// simulate feeds the series step by step and checks the expectations.
func (s *suite) simulate(e *rules.Engine, c *compiled, failf func(string, ...any)) {
	tc := c.tc
	if len(tc.Restore) > 0 || tc.Orphans != nil {
		var active []alert.Event
		for _, r := range tc.Restore {
			rule, inst, _ := strings.Cut(r.Alert, "@")
			ev := alert.Event{Kind: alert.KindFiring, State: alert.Firing, Rule: rule,
				ActiveAt: s.start.Add(time.Duration(r.ActiveAt)), FiredAt: s.start.Add(time.Duration(r.FiredAt))}
			if strings.Contains(inst, "=") {
				ev.Group = inst
			} else {
				ev.Device = inst
			}
			ev.ID = r.ID
			if ev.ID == "" {
				ev.ID = alert.EpisodeID(rule, inst, ev.ActiveAt)
			}
			ev.At = ev.FiredAt
			active = append(active, ev)
		}
		var got []string
		for _, o := range e.Restore(active) {
			got = append(got, alertName(o.Rule, o.Instance()))
		}
		sort.Strings(got)
		want := slices.Clone(tc.Orphans)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			failf("restore: want orphans %s, got %s", list(want), list(got))
		}
	}

	expects := map[int][]*expectYAML{}
	for i := range tc.Expect {
		ex := &tc.Expect[i]
		k := int(time.Duration(ex.At) / s.interval)
		expects[k] = append(expects[k], ex)
	}
	var events []gotEvent
	last := map[string]*point.Point{} // last sample of each series, for stale and bad points
	for k := 0; k < c.steps; k++ {
		t := s.start.Add(time.Duration(k) * s.interval)
		for _, d := range s.devices {
			var batch []point.Point
			for i := range c.series {
				cs := &c.series[i]
				if cs.device != d.ID || k >= len(cs.samples) {
					continue
				}
				smp := cs.samples[k]
				key := cs.device + "\x00" + cs.point
				prev := last[key]
				p := point.Point{Device: cs.device, Name: cs.point, Kind: cs.kind, Unit: cs.unit, Time: t}
				switch smp.kind {
				case noSample:
					continue
				case valueSample:
					p.Num, p.Str = smp.num, smp.str
				case badSample:
					if prev != nil {
						p.Num, p.Str = prev.Num, prev.Str
					}
					p.Quality, p.Reason = point.Bad, point.ReasonTimeout+": no answer (ruletest)"
				case staleSample:
					// As the gateway's sweeper: the last value and its time.
					if prev != nil {
						p.Num, p.Str, p.Time = prev.Num, prev.Str, prev.Time
					}
					p.Quality, p.Reason = point.Stale, point.ReasonStale+": not refreshed (ruletest)"
				}
				if smp.kind != staleSample {
					pc := p
					last[key] = &pc
				}
				batch = append(batch, p)
			}
			if len(batch) > 0 {
				for _, ev := range e.Feed(batch) {
					events = append(events, gotEvent{time.Duration(k) * s.interval, ev})
				}
			}
		}
		// The gateway ticks the engine from its staleness sweeper; the
		// runner ticks every step, so for-durations complete on time
		// also for devices that went silent.
		for _, ev := range e.Tick(t) {
			events = append(events, gotEvent{time.Duration(k) * s.interval, ev})
		}
		for _, ex := range expects[k] {
			firing, pending := states(e.Instances())
			want := sorted(ex.Firing)
			if !slices.Equal(firing, want) {
				failf("at %s: want firing %s, got %s", time.Duration(ex.At), list(want), list(firing))
			}
			if ex.Pending != nil {
				want := sorted(ex.Pending)
				if !slices.Equal(pending, want) {
					failf("at %s: want pending %s, got %s", time.Duration(ex.At), list(want), list(pending))
				}
			}
		}
	}
	if tc.Events != nil {
		checkEvents(tc.Events, events, failf)
	}
}

func states(is []rules.InstanceState) (firing, pending []string) {
	for _, s := range is {
		name := alertName(s.Rule, s.Device+s.Group)
		if s.State == alert.Firing {
			firing = append(firing, name)
		} else {
			pending = append(pending, name)
		}
	}
	sort.Strings(firing)
	sort.Strings(pending)
	return firing, pending
}

func checkEvents(want []eventYAML, got []gotEvent, failf func(string, ...any)) {
	ok := len(want) == len(got)
	for i := 0; ok && i < len(want); i++ {
		w, g := want[i], got[i]
		if time.Duration(w.At) != g.at || w.Kind != string(g.ev.Kind) || w.Alert != alertName(g.ev.Rule, g.ev.Instance()) {
			ok = false
			break
		}
		if w.SupervisionLost != nil && *w.SupervisionLost != g.ev.SupervisionLost {
			failf("event %d (%s): want supervision_lost %v, got %v", i+1, g, *w.SupervisionLost, g.ev.SupervisionLost)
		}
		if w.Summary != nil && *w.Summary != g.ev.Summary {
			failf("event %d (%s): want summary %q, got %q", i+1, g, *w.Summary, g.ev.Summary)
		}
		if w.ID != "" && w.ID != g.ev.ID {
			failf("event %d (%s): want id %q, got %q", i+1, g, w.ID, g.ev.ID)
		}
	}
	if ok {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "events: want %d, got %d:", len(want), len(got))
	for i := 0; i < max(len(want), len(got)); i++ {
		ws, gs := "-", "-"
		if i < len(want) {
			ws = fmt.Sprintf("%s %s %s", time.Duration(want[i].At), want[i].Kind, want[i].Alert)
		}
		if i < len(got) {
			gs = got[i].String()
		}
		mark := " "
		if ws != gs && !strings.HasPrefix(gs, ws+" (") {
			mark = "!"
		}
		fmt.Fprintf(&b, "\n  %s want %-50s got %s", mark, ws, gs)
	}
	failf("%s", b.String())
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

func list(s []string) string { return "[" + strings.Join(s, ", ") + "]" }

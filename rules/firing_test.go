package rules

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/strictyaml"
)

// firingPack is a pack "f" with a per-device alarm (x.b), a room vote
// grouped by room (count_true(x.b)), and rules that read them.
const firingPack = `pack: f
rules:
  - name: alarm
    class: fire
    severity: major
    when: x.b
    summary: alarm
  - name: room-fire
    class: fire
    severity: critical
    group_by: [room]
    when: count_true(x.b) > 0
    summary: room fire
  - name: hot-alarm
    class: fire
    severity: critical
    when: firing("f/alarm") && x.n > 50
    summary: alarm and hot
  - name: in-burning-room
    class: fire
    severity: critical
    when: firing("f/room-fire")
    summary: my room burns
  - name: room-reads-room
    class: fire
    severity: critical
    group_by: [room]
    when: firing("f/room-fire")
    summary: room reads room
  - name: room-has-alarm
    class: fire
    severity: critical
    group_by: [room]
    when: firing("f/alarm")
    summary: some alarm in the room
  - name: site-wide
    class: fire
    severity: warning
    select: {devices: [d3]}
    when: firing_any("f/room-fire")
    summary: a fire somewhere
`

func firingSet(t testing.TB, src string) *RuleSet {
	t.Helper()
	p, err := Load("f.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := NewRuleSet(p)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// roomDevices: d1 and d2 in room a, d3 in room b.
var roomDevices = []Device{
	{ID: "d1", Class: "battery", Labels: map[string]string{"room": "a"}},
	{ID: "d2", Class: "battery", Labels: map[string]string{"room": "a"}},
	{ID: "d3", Class: "battery", Labels: map[string]string{"room": "b"}},
}

// firingNow lists the firing instances, "rule@instance", sorted.
func firingNow(e *Engine) []string {
	var out []string
	for _, in := range e.Instances() {
		if in.State == alert.Firing {
			out = append(out, in.Rule+"@"+in.Device+in.Group)
		}
	}
	slices.Sort(out)
	return out
}

func TestFiringScope(t *testing.T) {
	e, err := NewEngine(firingSet(t, firingPack), roomDevices, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Everything quiet and hot: nothing fires.
	for _, d := range []string{"d1", "d2", "d3"} {
		feed(e, batch{at: 0, dev: d, pts: []point.Point{boolean("x.b", false), num("x.n", 60)}})
	}
	e.Tick(t0.Add(time.Second))
	if got := firingNow(e); len(got) != 0 {
		t.Fatalf("quiet: got firing %v, want none", got)
	}
	// d2 (room a) alarms. The readers follow in the same Feed.
	evs := feed(e, batch{at: 2 * time.Second, dev: "d2", pts: []point.Point{boolean("x.b", true), num("x.n", 60)}})
	want := []string{
		"f/alarm@d2",
		"f/hot-alarm@d2",           // per device: its own device's alarm
		"f/in-burning-room@d1",     // per device reading a group rule: d1's room
		"f/in-burning-room@d2",     //
		"f/room-fire@room=a",       //
		"f/room-has-alarm@room=a",  // group reading a per-device rule: any member's
		"f/room-reads-room@room=a", // group reading a group rule: the same room
		"f/site-wide@d3",           // firing_any: anywhere, room b too
	}
	if got := firingNow(e); !slices.Equal(got, want) {
		t.Errorf("after d2's alarm: got firing\n%v\nwant\n%v", got, want)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, eventString(ev))
	}
	if len(got) != len(want) {
		t.Errorf("Feed returned %d events, want %d (the readers' too): %v", len(got), len(want), got)
	}
	// The reader's event says what it read.
	for _, ev := range evs {
		if ev.Rule == "f/room-reads-room" {
			if v := ev.Values[`firing("f/room-fire")`]; v.Value != "true" || v.Quality != "good" {
				t.Errorf("room-reads-room values: got %+v, want firing(\"f/room-fire\") true, good", ev.Values)
			}
		}
	}
	// The alarm clears: the readers resolve with it.
	feed(e, batch{at: 3 * time.Second, dev: "d2", pts: []point.Point{boolean("x.b", false), num("x.n", 60)}})
	if got := firingNow(e); len(got) != 0 {
		t.Errorf("after the alarm cleared: got firing %v, want none", got)
	}
}

// TestFiringByTick: a rule that reads only firing() of another engine's
// rule is evaluated at every Tick (no point of its own changes).
func TestFiringByTick(t *testing.T) {
	src := &fakeAlerts{}
	rs := firingSet(t, `pack: g
rules:
  - name: r
    class: power
    severity: major
    group_by: [room]
    when: firing("fire/confirmed-fire")
    summary: r
`)
	e, err := NewEngine(rs, roomDevices, Options{Alerts: src})
	if err != nil {
		t.Fatal(err)
	}
	e.Tick(t0)
	if got := firingNow(e); len(got) != 0 {
		t.Fatalf("got firing %v, want none", got)
	}
	src.set("fire/confirmed-fire", "room=b", true, true)
	evs := e.Tick(t0.Add(time.Second))
	if got, want := firingNow(e), []string{"g/r@room=b"}; !slices.Equal(got, want) {
		t.Fatalf("got firing %v, want %v", got, want)
	}
	if len(evs) != 1 || evs[0].Kind != alert.KindFiring {
		t.Errorf("Tick: got events %v, want one firing", evs)
	}
	// The fake saw the scope of room b: device d3.
	if got := src.lastScope; !slices.Equal(got, []string{"d3"}) && !slices.Equal(got, []string{"d1", "d2"}) {
		t.Errorf("scope: got %v, want the devices of a room", got)
	}
}

// fakeAlerts is an AlertState answering per rule and group key (as
// "room=b"), by the first device of the scope.
type fakeAlerts struct {
	state     map[string][2]bool // rule + " " + group -> firing, known
	lastScope []string
}

func (f *fakeAlerts) set(rule, group string, firing, known bool) {
	if f.state == nil {
		f.state = map[string][2]bool{}
	}
	f.state[rule+" "+group] = [2]bool{firing, known}
}

func (f *fakeAlerts) Firing(rule string, sc Scope) (bool, bool) {
	f.lastScope = nil
	for i := range sc.Len() {
		id, _ := sc.Device(i)
		f.lastScope = append(f.lastScope, id)
	}
	if sc.Len() == 0 {
		return false, true
	}
	_, labels := sc.Device(0)
	s, ok := f.state[rule+" room="+labels["room"]]
	if !ok {
		return false, true
	}
	return s[0], s[1]
}

func TestFiringUnknown(t *testing.T) {
	const pack = `pack: g
rules:
  - name: plain
    class: fire
    severity: major
    when: firing("fire/confirmed-fire")
    summary: r
  - name: or-true
    class: fire
    severity: major
    when: firing("fire/confirmed-fire") || x.b
    summary: r
  - name: and-false
    class: fire
    severity: major
    when: firing("fire/confirmed-fire") && x.b
    summary: r
`
	tests := []struct {
		name string
		src  AlertState
		xb   bool
		want map[string]tri // instance results by rule
	}{
		{"no source", NoAlerts, true, map[string]tri{"g/plain": unknown, "g/or-true": isTrue, "g/and-false": unknown}},
		{"no source, x.b false", NoAlerts, false, map[string]tri{"g/plain": unknown, "g/or-true": unknown, "g/and-false": isFalse}},
		{"the source cannot tell", func() AlertState {
			f := &fakeAlerts{}
			f.set("fire/confirmed-fire", "room=a", false, false)
			return f
		}(), false, map[string]tri{"g/plain": unknown, "g/or-true": unknown, "g/and-false": isFalse}},
		{"known, not firing", &fakeAlerts{}, true, map[string]tri{"g/plain": isFalse, "g/or-true": isTrue, "g/and-false": isFalse}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEngine(firingSet(t, pack), roomDevices[:1], Options{Alerts: tt.src})
			if err != nil {
				t.Fatal(err)
			}
			feed(e, batch{at: 0, dev: "d1", pts: []point.Point{boolean("x.b", tt.xb)}})
			for _, in := range e.all {
				e.devices["d1"].mu.Lock()
				got, err := newEvaluatorFor(e).run(in, in.rule.when, in.now)
				e.devices["d1"].mu.Unlock()
				if err != nil {
					t.Fatal(err)
				}
				if want := tt.want[in.rule.ID]; got != want {
					t.Errorf("%s: got %s, want %s", in.rule.ID, got, want)
				}
			}
		})
	}
}

func newEvaluatorFor(e *Engine) *evaluator {
	ev := newEvaluator()
	ev.env.alerts = e.alerts
	return ev
}

// TestFiringUnknownStates: an alert that fires on unknown data (missing:
// fire, supervision lost), or that was restored from the ledger and not
// evaluated since, is read as unknown, not as firing.
func TestFiringUnknownStates(t *testing.T) {
	const pack = `pack: g
rules:
  - name: trouble
    class: fire
    severity: major
    when: x.b
    missing: fire
    summary: trouble
  - name: reader
    class: fire
    severity: major
    when: firing("g/trouble") || x.n > 100
    summary: reader
`
	e, err := NewEngine(firingSet(t, pack), roomDevices[:1], Options{})
	if err != nil {
		t.Fatal(err)
	}
	feed(e, batch{at: 0, dev: "d1", pts: []point.Point{bad(boolean("x.b", false), "timeout"), num("x.n", 1)}})
	if f, known := e.Firing("g/trouble", Scope{members: e.devList}); f || known {
		t.Errorf("trouble fired on unknown data: got firing %v known %v, want unknown", f, known)
	}
	if got, _ := whenOf(t, e, "d1", "g/reader"); got != unknown {
		t.Errorf("reader of an alert fired on unknown data: got %s, want unknown", got)
	}
	feed(e, batch{at: time.Second, dev: "d1", pts: []point.Point{boolean("x.b", true), num("x.n", 1)}})
	if got, _ := whenOf(t, e, "d1", "g/reader"); got != isTrue {
		t.Errorf("reader of an alert fired on good data: got %s, want true", got)
	}

	// Restored from the ledger: unknown until evaluated.
	e2, err := NewEngine(firingSet(t, pack), roomDevices[:1], Options{})
	if err != nil {
		t.Fatal(err)
	}
	e2.Restore([]alert.Event{{ID: "x", Rule: "g/trouble", Device: "d1", State: alert.Firing, ActiveAt: t0, FiredAt: t0}})
	if f, known := e2.Firing("g/trouble", Scope{members: e2.devList}); f || known {
		t.Errorf("restored, not evaluated: got firing %v known %v, want unknown", f, known)
	}
	feed(e2, batch{at: time.Second, dev: "d1", pts: []point.Point{boolean("x.b", true)}})
	if f, known := e2.Firing("g/trouble", Scope{members: e2.devList}); !f || !known {
		t.Errorf("restored, then evaluated on good data: got firing %v known %v, want firing", f, known)
	}
}

// whenOf evaluates the when of one rule's instance, as whenNow does.
func whenOf(t testing.TB, e *Engine, key, rule string) (tri, error) {
	t.Helper()
	for _, in := range e.all {
		if in.key != key || in.rule.ID != rule {
			continue
		}
		lockIn(in)
		defer e.unlock(in)
		return newEvaluatorFor(e).run(in, in.rule.when, in.now)
	}
	t.Fatalf("no instance %s@%s", rule, key)
	return unknown, nil
}

func lockIn(in *instance) {
	if in.group {
		lockGroup(in)
	} else {
		in.members[0].mu.Lock()
	}
}

func TestFiringReferenceErrors(t *testing.T) {
	site := firingSet(t, `pack: site
rules:
  - name: r
    class: fire
    severity: major
    when: 'x.b && firing("f/room-fir")'
    summary: r
`)
	// The engine reading its own rules: a rule it does not run.
	_, err := NewEngine(site, roomDevices, Options{})
	wantErr(t, "NewEngine", err, `f.yaml:6:5: rules[0].when: firing: no rule "f/room-fir" among the rules running here (column 8 of the expression)`)

	// Merged with the pack it reads: did you mean.
	f := firingSet(t, firingPack)
	_, err = f.Merge(site)
	wantErr(t, "Merge", err, `f.yaml:6:5: rules[0].when: firing: no rule "f/room-fir" (did you mean "f/room-fire"?) (column 8 of the expression)`)

	// A trigger checked against the set (what internal/config does).
	trig, err := CompileTrigger("loadshed", "p", "power", &Trigger{When: `firing("f/alram")`,
		Pos: strictyaml.Pos{File: "c.yaml", Line: 3, Col: 5, Path: "loadshed.policies[0].trigger"}})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CheckReferences", CheckReferences(f, trig), `c.yaml:3:5: loadshed.policies[0].trigger.when: firing: no rule "f/alram" (did you mean "f/alarm"?) (column 1 of the expression)`)

	// Disabling a rule that an enabled rule reads.
	err = f.Disable("f/room-fire")
	if err == nil || !strings.Contains(err.Error(), `rule "f/room-fire" is read by f/in-burning-room (firing), which stays enabled`) {
		t.Errorf("Disable: got %v, want an error naming the reader", err)
	}
	if f.Disabled("f/room-fire") {
		t.Errorf("Disable failed but disabled the rule anyway")
	}
	// Disabled together with its readers: fine; then a trigger reading it
	// is told it is disabled.
	if err := f.Disable("f/room-fire", "f/in-burning-room", "f/room-reads-room", "f/site-wide"); err != nil {
		t.Fatalf("Disable with the readers: %v", err)
	}
	trig2, err := CompileTrigger("loadshed", "p", "power", &Trigger{When: `firing("f/room-fire")`, Pos: strictyaml.Pos{File: "c.yaml", Line: 3, Col: 5}})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CheckReferences", CheckReferences(f, trig2), `c.yaml:3:5: when: firing: rule "f/room-fire" is disabled (column 1 of the expression)`)
	if err := CheckReferences(f, trig); err == nil {
		t.Errorf("CheckReferences: got nil, want an error")
	}
}

func wantErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	var es strictyaml.Errors
	if !errors.As(err, &es) || len(es) != 1 {
		t.Fatalf("%s: got %v, want one located error %q", what, err, want)
	}
	if got := es[0].Error(); got != want {
		t.Errorf("%s: got\n%s\nwant\n%s", what, got, want)
	}
}

// TestFiringTriggerNeedsNoPoint: a trigger may read only firing().
func TestFiringTriggerNeedsNoPoint(t *testing.T) {
	r, err := CompileTrigger("loadshed", "fire-room", "power", &Trigger{When: `firing("fire/confirmed-fire")`, GroupBy: []string{"room"}})
	if err != nil {
		t.Fatalf("got %v, want a trigger", err)
	}
	if got := r.Reads(); !slices.Equal(got, []string{"fire/confirmed-fire"}) {
		t.Errorf("Reads: got %v, want [fire/confirmed-fire]", got)
	}
	if got := r.Points(); len(got) != 0 {
		t.Errorf("Points: got %v, want none", got)
	}
}

// TestFiringShippedConfirmedFire: a rule in a site pack reading the
// shipped fire pack's confirmed-fire, grouped by room, sees it fire in its
// own room only.
func TestFiringShippedConfirmedFire(t *testing.T) {
	shipped, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	site := firingSet(t, `pack: site
rules:
  - name: battery-room-fire
    class: power
    severity: critical
    select: {labels: {room_type: battery}}
    group_by: [room]
    when: firing("fire/confirmed-fire")
    summary: fire in battery room {{ .Labels.room }}
`)
	set, err := shipped.Merge(site)
	if err != nil {
		t.Fatal(err)
	}
	devs := []Device{
		{ID: "bms-a", Class: "battery", Profile: "generic-liion-bms", Labels: map[string]string{"room": "a", "room_type": "battery"}},
		{ID: "vesda-a", Class: "fire", Profile: "generic-vesda", Labels: map[string]string{"room": "a", "room_type": "battery"}},
		{ID: "bms-b", Class: "battery", Profile: "generic-liion-bms", Labels: map[string]string{"room": "b", "room_type": "battery"}},
		{ID: "vesda-b", Class: "fire", Profile: "generic-vesda", Labels: map[string]string{"room": "b", "room_type": "battery"}},
	}
	e, err := NewEngine(set, devs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := func(at time.Duration, room string) {
		feed(e, batch{at: at, dev: "bms-" + room, pts: []point.Point{boolean("bms.alarm.offgas", false), boolean("bms.alarm.cell_overtemp", false)}})
		feed(e, batch{at: at, dev: "vesda-" + room, pts: []point.Point{boolean("vesda.fire1", false)}})
	}
	var site2 []string
	for s := 0; s <= 10; s++ {
		at := time.Duration(s) * time.Second
		quiet(at, "b")
		// Room a: VESDA fire 1 and BMS off-gas from 2 s: two technologies.
		fire := s >= 2
		feed(e, batch{at: at, dev: "bms-a", pts: []point.Point{boolean("bms.alarm.offgas", fire), boolean("bms.alarm.cell_overtemp", false)}})
		feed(e, batch{at: at, dev: "vesda-a", pts: []point.Point{boolean("vesda.fire1", fire)}})
		e.Tick(t0.Add(at))
		if s == 5 {
			for _, f := range firingNow(e) {
				if strings.HasPrefix(f, "site/") {
					site2 = append(site2, f)
				}
			}
		}
	}
	if len(site2) != 0 {
		t.Errorf("at 5 s (confirmed-fire still pending, for: 5s): got %v, want none", site2)
	}
	var got []string
	for _, f := range firingNow(e) {
		if strings.HasPrefix(f, "site/") || f == "fire/confirmed-fire@room=a" || f == "fire/confirmed-fire@room=b" {
			got = append(got, f)
		}
	}
	if want := []string{"fire/confirmed-fire@room=a", "site/battery-room-fire@room=a"}; !slices.Equal(got, want) {
		t.Errorf("got firing %v, want %v", got, want)
	}
}

package rules

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/strictyaml"
)

// step is one batch of device d1 in a state machine test: the bool point
// x.b (true, false or bad) and the number x.n, at a time.
type step struct {
	at time.Duration
	b  string // "t", "f", "bad", "stale", "" (not sent)
	n  float64
}

func (s step) points() []point.Point {
	var out []point.Point
	switch s.b {
	case "t":
		out = append(out, boolean("x.b", true))
	case "f":
		out = append(out, boolean("x.b", false))
	case "bad":
		out = append(out, bad(boolean("x.b", false), "timeout"))
	case "stale":
		out = append(out, stale(boolean("x.b", false)))
	}
	return append(out, num("x.n", s.n))
}

// seq makes steps of one second from..to (inclusive) with the same b.
func seq(from, to int, b string) []step {
	var out []step
	for i := from; i <= to; i++ {
		out = append(out, step{at: time.Duration(i) * time.Second, b: b})
	}
	return out
}

func steps(parts ...[]step) []step { return slices.Concat(parts...) }

func TestStateMachine(t *testing.T) {
	tests := []struct {
		name   string
		rule   string
		steps  []step
		tick   time.Duration // Tick at this time after the steps, if set
		want   []string      // events: "kind rule@instance at [lost]"
		wantSt alert.State   // state at the end ("" inactive)
	}{
		{
			name:   "for 0 fires at once",
			rule:   "when: x.b",
			steps:  seq(0, 2, "t"),
			want:   []string{"firing t/r@d1 0s"},
			wantSt: alert.Firing,
		},
		{
			name:   "pending until for elapsed",
			rule:   "when: x.b\nfor: 5s",
			steps:  steps(seq(0, 4, "f"), seq(5, 10, "t")),
			want:   []string{"firing t/r@d1 10s"},
			wantSt: alert.Firing,
		},
		{
			name:   "pending goes back to inactive without an event",
			rule:   "when: x.b\nfor: 5s",
			steps:  steps(seq(0, 3, "t"), seq(4, 5, "f")),
			want:   nil,
			wantSt: "",
		},
		{
			name:   "for restarts after the condition went false",
			rule:   "when: x.b\nfor: 5s",
			steps:  steps(seq(0, 3, "t"), seq(4, 4, "f"), seq(5, 12, "t")),
			want:   []string{"firing t/r@d1 10s"},
			wantSt: alert.Firing,
		},
		{
			name:   "resolves when the condition is false",
			rule:   "when: x.b",
			steps:  steps(seq(0, 2, "t"), seq(3, 3, "f")),
			want:   []string{"firing t/r@d1 0s", "resolved t/r@d1 3s"},
			wantSt: "",
		},
		{
			name:   "keep_firing_for",
			rule:   "when: x.b\nkeep_firing_for: 3s",
			steps:  steps(seq(0, 2, "t"), seq(3, 10, "f")),
			want:   []string{"firing t/r@d1 0s", "resolved t/r@d1 6s"},
			wantSt: "",
		},
		{
			name:   "the condition again while clearing resets the clearing",
			rule:   "when: x.b\nkeep_firing_for: 3s",
			steps:  steps(seq(0, 0, "t"), seq(1, 2, "f"), seq(3, 3, "t"), seq(4, 10, "f")),
			want:   []string{"firing t/r@d1 0s", "resolved t/r@d1 7s"},
			wantSt: "",
		},
		{
			name: "clear gives hysteresis",
			rule: "when: x.n > 50\nclear: x.n < 25",
			steps: []step{
				{at: 0, n: 60}, {at: time.Second, n: 40}, {at: 2 * time.Second, n: 30}, {at: 3 * time.Second, n: 20},
			},
			want:   []string{"firing t/r@d1 0s", "resolved t/r@d1 3s"},
			wantSt: "",
		},
		{
			name:   "a new episode after a resolve",
			rule:   "when: x.b",
			steps:  steps(seq(0, 0, "t"), seq(1, 1, "f"), seq(2, 2, "t")),
			want:   []string{"firing t/r@d1 0s", "resolved t/r@d1 1s", "firing t/r@d1 2s"},
			wantSt: alert.Firing,
		},
		{
			name:   "missing hold: unknown keeps inactive inactive",
			rule:   "when: x.b",
			steps:  seq(0, 5, "bad"),
			want:   nil,
			wantSt: "",
		},
		{
			name:   "missing hold: pending does not advance while unknown",
			rule:   "when: x.b\nfor: 10s",
			steps:  steps(seq(0, 4, "t"), seq(5, 14, "bad"), seq(15, 30, "t")),
			want:   []string{"firing t/r@d1 20s"},
			wantSt: alert.Firing,
		},
		{
			name:   "missing hold: pending resumes and can still go inactive",
			rule:   "when: x.b\nfor: 10s",
			steps:  steps(seq(0, 4, "t"), seq(5, 14, "bad"), seq(15, 15, "f")),
			want:   nil,
			wantSt: "",
		},
		{
			name:   "missing hold: firing stays firing",
			rule:   "when: x.b",
			steps:  steps(seq(0, 1, "t"), seq(2, 20, "bad")),
			want:   []string{"firing t/r@d1 0s"},
			wantSt: alert.Firing,
		},
		{
			name:   "missing fire: unknown fires, marked supervision lost",
			rule:   "when: x.b\nfor: 10s\nmissing: fire",
			steps:  steps(seq(0, 4, "t"), seq(5, 14, "bad")),
			want:   []string{"firing t/r@d1 10s lost"},
			wantSt: alert.Firing,
		},
		{
			name:   "missing fire: a good reading that fires is not lost",
			rule:   "when: x.b\nmissing: fire",
			steps:  seq(0, 1, "t"),
			want:   []string{"firing t/r@d1 0s"},
			wantSt: alert.Firing,
		},
		{
			name:   "missing fire: a stale device fires through Tick",
			rule:   "when: x.b\nfor: 10s\nmissing: fire",
			steps:  steps(seq(0, 2, "f"), []step{{at: 3 * time.Second, b: "stale"}}),
			tick:   13 * time.Second,
			want:   []string{"firing t/r@d1 13s lost"},
			wantSt: alert.Firing,
		},
		{
			name:   "Tick completes keep_firing_for when no point arrives",
			rule:   "when: x.b\nkeep_firing_for: 30s",
			steps:  steps(seq(0, 0, "t"), seq(1, 1, "f")),
			tick:   31 * time.Second,
			want:   []string{"firing t/r@d1 0s", "resolved t/r@d1 31s"},
			wantSt: "",
		},
		{
			name:   "an unknown when never resolves",
			rule:   "when: x.b\nmissing: fire",
			steps:  steps(seq(0, 0, "t"), seq(1, 10, "bad")),
			want:   []string{"firing t/r@d1 0s"},
			wantSt: alert.Firing,
		},
		{
			name: "an unknown clear never resolves, whatever missing says",
			rule: "when: x.n > 50\nclear: x.b && x.n < 25",
			steps: []step{
				{at: 0, b: "f", n: 60}, {at: time.Second, b: "bad", n: 10}, {at: 2 * time.Second, b: "bad", n: 10},
				{at: 3 * time.Second, b: "t", n: 10},
			},
			want:   []string{"firing t/r@d1 0s", "resolved t/r@d1 3s"},
			wantSt: "",
		},
		{
			name:   "Tick leaves inactive instances alone",
			rule:   "when: x.b\nmissing: fire",
			steps:  seq(0, 0, "f"),
			tick:   time.Hour,
			want:   nil,
			wantSt: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, rulePack(t, tt.rule))
			var got []string
			for _, s := range tt.steps {
				for _, ev := range feed(e, batch{s.at, "d1", s.points()}) {
					got = append(got, eventString(ev))
				}
			}
			if tt.tick > 0 {
				for at := tt.steps[len(tt.steps)-1].at; at <= tt.tick; at += time.Second {
					for _, ev := range e.Tick(t0.Add(at)) {
						got = append(got, eventString(ev))
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events:\ngot  %q\nwant %q", got, tt.want)
			}
			var st alert.State
			for _, is := range e.Instances() {
				st = is.State
			}
			if st != tt.wantSt {
				t.Errorf("state at the end: got %q, want %q", st, tt.wantSt)
			}
		})
	}
}

// TestTimeNeverGoesBack: a batch older than the last evaluation (a slow
// poll of another group, a stale batch) evaluates at the last time.
func TestTimeNeverGoesBack(t *testing.T) {
	e := newEngine(t, rulePack(t, "when: x.b\nfor: 5s"))
	feed(e, batch{10 * time.Second, "d1", pts(boolean("x.b", true))})
	feed(e, batch{2 * time.Second, "d1", pts(boolean("x.b", true))})
	evs := feed(e, batch{15 * time.Second, "d1", pts(boolean("x.b", true))})
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	if got, want := evs[0].ActiveAt, t0.Add(10*time.Second); !got.Equal(want) {
		t.Errorf("active at: got %s, want %s", got, want)
	}
}

// TestEventFields checks what a firing and a resolved event carry.
func TestEventFields(t *testing.T) {
	rs := rulePack(t, `
class: power
severity: critical
select: {class: ups}
when: x.n < 10
clear: x.n > 15
summary: '{{ .Device }} in {{ .Labels.room }}: {{ value "x.n" }}, x.m {{ value "x.m" }} {{ quality "x.m" }}; {{ .Rule }}'
description: 'Runtime of {{ .Device }} is short: shed load.'
labels: {room: override, team: power}`)
	e, err := NewEngine(rs, []Device{{ID: "ups-1", Class: "ups", Labels: map[string]string{"room": "b3", "row": "4"}}}, Options{Site: "pangyo", Gateway: "gw-1"})
	if err != nil {
		t.Fatal(err)
	}
	m := bad(num("x.m", 3), "timeout: no answer")
	n := num("x.n", 8)
	n.Unit = point.Minute
	evs := feed(e, batch{0, "ups-1", pts(n, m)})
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	ev := evs[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"id", ev.ID, alert.EpisodeID("t/r", "ups-1", t0)},
		{"kind", ev.Kind, alert.KindFiring},
		{"state", ev.State, alert.Firing},
		{"seq", ev.Seq, uint64(0)},
		{"rule", ev.Rule, "t/r"},
		{"class", ev.Class, "power"},
		{"severity", ev.Severity, alert.Critical},
		{"device", ev.Device, "ups-1"},
		{"group", ev.Group, ""},
		{"devices", len(ev.Devices), 0},
		{"site", ev.Site, "pangyo"},
		{"gateway", ev.Gateway, "gw-1"},
		{"summary", ev.Summary, "ups-1 in override: 8 min, x.m bad (timeout: no answer) bad; t/r"},
		{"description", ev.Description, "Runtime of ups-1 is short: shed load."},
		{"labels", fmt.Sprint(ev.Labels), "map[room:override row:4 team:power]"},
		{"active at", ev.ActiveAt, t0},
		{"fired at", ev.FiredAt, t0},
		{"at", ev.At, t0},
		{"resolved at", ev.ResolvedAt.IsZero(), true},
		{"value x.n", ev.Values["x.n"], alert.Value{Value: "8", Unit: "min", Quality: "good"}},
		{"value x.m", ev.Values["x.m"], alert.Value{Value: "3", Quality: "bad", Reason: "timeout: no answer"}},
		{"values", len(ev.Values), 2},
		{"supervision lost", ev.SupervisionLost, false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("firing %s: got %v, want %v", c.what, c.got, c.want)
		}
	}

	feed(e, batch{time.Second, "ups-1", pts(num("x.n", 12))}) // not clear yet
	evs = feed(e, batch{2 * time.Second, "ups-1", pts(num("x.n", 16))})
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1 resolved", len(evs))
	}
	r := evs[0]
	checks = []struct {
		what      string
		got, want any
	}{
		{"id", r.ID, ev.ID},
		{"kind", r.Kind, alert.KindResolved},
		{"state", r.State, alert.Resolved},
		{"active at", r.ActiveAt, t0},
		{"fired at", r.FiredAt, t0},
		{"resolved at", r.ResolvedAt, t0.Add(2 * time.Second)},
		{"at", r.At, t0.Add(2 * time.Second)},
		{"value x.n", r.Values["x.n"].Value, "16"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("resolved %s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	// The events survive the JSON every path carries.
	back, err := alert.Unmarshal(ev.Marshal())
	if err != nil || back.ID != ev.ID || back.Values["x.m"] != ev.Values["x.m"] {
		t.Errorf("round trip: got %+v, %v", back, err)
	}
}

func TestGroups(t *testing.T) {
	devs := []Device{
		{ID: "g1", Class: "fire", Labels: map[string]string{"room": "a", "row": "1"}},
		{ID: "g2", Class: "fire", Labels: map[string]string{"room": "a", "row": "2"}},
		{ID: "g3", Class: "fire", Labels: map[string]string{"room": "b"}},
		{ID: "g4", Class: "fire"},
	}
	tests := []struct {
		name    string
		when    string
		batches []batch
		want    tri
	}{
		{"bool: true on any device", "x.b", []batch{{0, "g1", pts(boolean("x.b", false))}, {0, "g2", pts(boolean("x.b", true))}}, isTrue},
		{"bool: false when good and true on none", "x.b", []batch{{0, "g1", pts(boolean("x.b", false))}, {0, "g2", pts(bad(boolean("x.b", true), "timeout"))}}, isFalse},
		{"bool: unknown when good on none", "x.b", []batch{{0, "g1", pts(bad(boolean("x.b", true), "timeout"))}, {0, "g2", pts(stale(boolean("x.b", true)))}}, unknown},
		{"bool: a device without the point does not matter", "x.b", []batch{{0, "g1", pts(boolean("x.b", true))}, {0, "g2", pts(num("x.n", 1))}}, isTrue},
		{"number: the highest good value", "x.n == 7", []batch{{0, "g1", pts(num("x.n", 3))}, {0, "g2", pts(num("x.n", 7))}}, isTrue},
		{"number: bad values do not count", "x.n == 3", []batch{{0, "g1", pts(num("x.n", 3))}, {0, "g2", pts(bad(num("x.n", 100), "timeout"))}}, isTrue},
		{"count_true counts each argument once", "count_true(x.a, x.b) == 1", []batch{{0, "g1", pts(boolean("x.a", true))}, {0, "g2", pts(boolean("x.a", true))}}, isTrue},
		{"count_true across devices", "count_true(x.a, x.b) == 2", []batch{{0, "g1", pts(boolean("x.a", true))}, {0, "g2", pts(boolean("x.b", true))}}, isTrue},
		{"count_bad: good on no device", "count_bad(x.a, x.b) == 1", []batch{{0, "g1", pts(boolean("x.a", true), bad(boolean("x.b", true), "timeout"))}, {0, "g2", pts(bad(boolean("x.a", true), "timeout"))}}, isTrue},
		{"quality is the best", `quality(x.a) == "good" && good(x.a)`, []batch{{0, "g1", pts(bad(boolean("x.a", true), "timeout"))}, {0, "g2", pts(boolean("x.a", true))}}, isTrue},
		{"age is the youngest", "age(x.n) == 1", []batch{{0, "g1", pts(num("x.n", 1))}, {9 * time.Second, "g2", pts(num("x.n", 1))}, {10 * time.Second, "g1", pts(bad(num("x.n", 1), "timeout"))}}, isTrue},
		{"windows: the highest result", "max_over(x.n, 1m) == 9", []batch{{0, "g1", pts(num("x.n", 9))}, {time.Second, "g2", pts(num("x.n", 4))}}, isTrue},
		{"unreachable: all devices", "unreachable()", []batch{{0, "g1", pts(bad(num("x.n", 0), "timeout"))}, {0, "g2", pts(num("x.n", 0))}}, isFalse},
		{"unreachable: every device", "unreachable()", []batch{{0, "g1", pts(bad(num("x.n", 0), "timeout"))}, {0, "g2", pts(stale(num("x.n", 0)))}}, isTrue},
		{"counts add up", "stale_count() == 1 && bad_count() == 1", []batch{{0, "g1", pts(bad(num("x.n", 0), "timeout"))}, {0, "g2", pts(stale(num("x.n", 0)))}}, isTrue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, rulePack(t, "group_by: [room]\nwhen: '"+tt.when+"'"), devs...)
			for _, b := range tt.batches {
				feed(e, b)
			}
			got, err := whenNow(t, e, "room=a")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("%s: got %s, want %s", tt.when, got, tt.want)
			}
		})
	}

	// Instances, names, labels and the event of a group.
	e := newEngine(t, rulePack(t, "group_by: [room]\nwhen: x.b\nsummary: '{{ .Group }} {{ .Labels.room }}: {{ value \"x.b\" }}'"), devs...)
	var keys []string
	for _, in := range e.all {
		keys = append(keys, in.key)
	}
	if want := []string{"room=", "room=a", "room=b"}; !slices.Equal(keys, want) {
		t.Errorf("group instances: got %q, want %q", keys, want)
	}
	feed(e, batch{0, "g1", pts(boolean("x.b", false))})
	evs := feed(e, batch{0, "g2", pts(boolean("x.b", true))})
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	ev := evs[0]
	if ev.Group != "room=a" || ev.Device != "" || !slices.Equal(ev.Devices, []string{"g1", "g2"}) || ev.Instance() != "room=a" {
		t.Errorf("group event: got group %q device %q devices %q", ev.Group, ev.Device, ev.Devices)
	}
	if want := "room=a a: g1: false, g2: true"; ev.Summary != want {
		t.Errorf("summary: got %q, want %q", ev.Summary, want)
	}
	if _, ok := ev.Labels["row"]; ok || ev.Labels["room"] != "a" {
		t.Errorf("labels: got %v, want the shared room only", ev.Labels)
	}
	if len(ev.Values) != 2 || ev.Values["g2/x.b"].Value != "true" {
		t.Errorf("values: got %v, want g1/x.b and g2/x.b", ev.Values)
	}
	if ev.ID != alert.EpisodeID("t/r", "room=a", t0) {
		t.Errorf("id: got %s, want the episode id of t/r, room=a", ev.ID)
	}
}

func TestRestore(t *testing.T) {
	rs := rulePack(t, "when: x.b\nkeep_firing_for: 2s")
	devs := []Device{{ID: "d1", Class: "battery"}, {ID: "d2", Class: "battery"}}
	ep := func(rule, dev string, activeAgo time.Duration, id string) alert.Event {
		return alert.Event{ID: id, Kind: alert.KindFiring, State: alert.Firing, Rule: rule, Device: dev,
			ActiveAt: t0.Add(-activeAgo), FiredAt: t0.Add(-activeAgo + time.Second), SupervisionLost: true}
	}
	e := newEngine(t, rs, devs...)
	orphans := e.Restore([]alert.Event{
		ep("t/r", "d1", time.Minute, "id-1"),
		ep("t/r", "d2", time.Minute, "old"),
		ep("t/r", "d2", 30*time.Second, "new"),
		ep("t/gone", "d1", time.Minute, "id-gone"),
		ep("t/r", "d9", time.Minute, "id-d9"),
		{ID: "resolved", Kind: alert.KindResolved, State: alert.Resolved, Rule: "t/r", Device: "d1"},
	})
	var ids []string
	for _, o := range orphans {
		ids = append(ids, o.ID)
	}
	if want := []string{"old", "id-gone", "id-d9"}; !slices.Equal(ids, want) {
		t.Errorf("orphans: got %q, want %q", ids, want)
	}
	is := e.Instances()
	if len(is) != 2 || is[0].ID != "id-1" || is[1].ID != "new" || is[0].State != alert.Firing || !is[0].SupervisionLost ||
		!is[0].ActiveAt.Equal(t0.Add(-time.Minute)) || !is[0].FiredAt.Equal(t0.Add(-time.Minute+time.Second)) {
		t.Fatalf("restored instances: got %+v", is)
	}
	// Still true: no new firing event. Gone: resolved with the ledger's id.
	if evs := feed(e, batch{0, "d1", pts(boolean("x.b", true))}); len(evs) != 0 {
		t.Errorf("restored and still true: got events %v, want none", evs)
	}
	feed(e, batch{0, "d2", pts(boolean("x.b", false))})
	evs := feed(e, batch{2 * time.Second, "d2", pts(boolean("x.b", false))})
	if len(evs) != 1 || evs[0].Kind != alert.KindResolved || evs[0].ID != "new" || !evs[0].ActiveAt.Equal(t0.Add(-30*time.Second)) {
		t.Errorf("restored and gone: got %v, want one resolved event with id new", evs)
	}
	// A restored instance is then like any other.
	evs = feed(e, batch{3 * time.Second, "d2", pts(boolean("x.b", true))})
	if len(evs) != 1 || evs[0].ID != alert.EpisodeID("t/r", "d2", t0.Add(3*time.Second)) {
		t.Errorf("new episode after a restored one: got %v", evs)
	}
}

func TestInstances(t *testing.T) {
	rs := rulePack(t, "when: x.n > 5\nfor: 10s\nkeep_firing_for: 1m\nsummary: 'n={{ value \"x.n\" }}'\ndescription: 'on {{ .Device }}'")
	e := newEngine(t, rs, Device{ID: "d1", Class: "battery"}, Device{ID: "d2", Class: "battery"}, Device{ID: "d3", Class: "battery"})
	feed(e, batch{0, "d1", pts(num("x.n", 9))})
	feed(e, batch{0, "d2", pts(num("x.n", 9))})
	feed(e, batch{10 * time.Second, "d2", pts(num("x.n", 9))})
	feed(e, batch{11 * time.Second, "d2", pts(num("x.n", 1))})
	feed(e, batch{0, "d3", pts(num("x.n", 1))})
	is := e.Instances()
	if len(is) != 2 {
		t.Fatalf("got %d instances, want d1 pending and d2 firing: %+v", len(is), is)
	}
	p, f := is[0], is[1]
	if p.Device != "d1" || p.State != alert.Pending || !p.FiredAt.IsZero() || p.Summary != "n=9" || p.Description != "on d1" || p.ID != alert.EpisodeID("t/r", "d1", t0) || p.Values["x.n"].Value != "9" {
		t.Errorf("pending: got %+v", p)
	}
	if f.Device != "d2" || f.State != alert.Firing || !f.FiredAt.Equal(t0.Add(10*time.Second)) || !f.ClearingSince.Equal(t0.Add(11*time.Second)) || f.Summary != "n=1" {
		t.Errorf("firing and clearing: got %+v", f)
	}
}

func TestNewEngineErrors(t *testing.T) {
	rs := rulePack(t, "when: x.b\nselect: {devices: [bms-1, bsm-2]}")
	_, err := NewEngine(rs, []Device{{ID: "bms-1"}, {ID: "bms-2"}}, Options{})
	var es strictyaml.Errors
	if !errors.As(err, &es) || len(es) != 1 {
		t.Fatalf("got %v, want one located error", err)
	}
	if want := `t.yaml:5:31: rules[0].select.devices[1]: rule t/r selects device "bsm-2", which is not configured (did you mean "bms-2"?)`; es[0].Error() != want {
		t.Errorf("got\n%s\nwant\n%s", es[0], want)
	}
	if _, err := NewEngine(rs, []Device{{ID: "bms-1"}, {ID: "bms-1"}}, Options{}); err == nil || !strings.Contains(err.Error(), `device "bms-1" is listed twice`) {
		t.Errorf("duplicate device: got %v", err)
	}
	if _, err := NewEngine(rs, []Device{{ID: ""}}, Options{}); err == nil {
		t.Error("device without id: got no error")
	}
	// No rules, no devices: an engine that does nothing.
	e, err := NewEngine(nil, nil, Options{})
	if err != nil || len(e.Feed([]point.Point{{Device: "x", Name: "y"}})) != 0 || len(e.Instances()) != 0 {
		t.Errorf("empty engine: got %v", err)
	}
}

func TestSelect(t *testing.T) {
	devs := []Device{
		{ID: "a", Class: "ups", Profile: "apc-smart-ups-modbus", Labels: map[string]string{"room": "b3"}},
		{ID: "b", Class: "ups", Profile: "rfc1628-ups-snmp", Labels: map[string]string{"room": "b3"}},
		{ID: "c", Class: "battery", Profile: "generic-liion-bms", Labels: map[string]string{"room": "b4"}},
	}
	tests := []struct {
		sel  string
		want []string
	}{
		{"{}", []string{"a", "b", "c"}},
		{"{class: ups}", []string{"a", "b"}},
		{"{profile: rfc1628-ups-snmp}", []string{"b"}},
		{"{devices: [a, c]}", []string{"a", "c"}},
		{"{labels: {room: b3}}", []string{"a", "b"}},
		{"{class: ups, labels: {room: b4}}", nil},
		{"{class: ups, devices: [b, c]}", []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			e := newEngine(t, rulePack(t, "when: x.b\nselect: "+tt.sel), devs...)
			var got []string
			for _, in := range e.all {
				got = append(got, in.key)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestFeedTriggers: a batch evaluates only the instances that read its
// points (or use device-level functions); others keep their state.
func TestFeedTriggers(t *testing.T) {
	p1, _ := Load("a.yaml", []byte(`pack: a
rules:
  - {name: reads-b, class: fire, severity: info, when: x.b, summary: s}
  - {name: reads-n, class: fire, severity: info, when: x.n > 0, summary: s}
  - {name: device, class: fire, severity: info, when: bad_count() > 0, summary: s}
  - {name: template-only, class: fire, severity: info, when: x.n > 100, summary: '{{ value "x.b" }}'}
`))
	rs, _ := NewRuleSet(p1)
	e := newEngine(t, rs)
	evs := feed(e, batch{0, "d1", pts(boolean("x.b", true))})
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Rule)
	}
	if want := []string{"a/reads-b"}; !slices.Equal(got, want) {
		t.Errorf("x.b: got events of %q, want %q", got, want)
	}
	evs = feed(e, batch{time.Second, "d1", pts(bad(num("y.unrelated", 0), "timeout"))})
	if len(evs) != 1 || evs[0].Rule != "a/device" {
		t.Errorf("a point no rule names: got %v, want only the device-level rule", evs)
	}
}

// TestConcurrentFeed feeds many devices from many goroutines, with group
// rules spanning them, while the API reads instances and a ticker ticks;
// run with -race. Every device's rule fires exactly once and every group
// once.
func TestConcurrentFeed(t *testing.T) {
	p, err := Load("c.yaml", []byte(`pack: c
rules:
  - {name: dev, class: fire, severity: info, when: x.n > 5, for: 2s, summary: s}
  - {name: room, class: fire, severity: info, group_by: [room], when: count_true(x.b) >= 1 && x.n > 5, summary: s}
  - {name: quality, class: data-quality, severity: info, when: bad_count() > 100, summary: s}
`))
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := NewRuleSet(p)
	var devs []Device
	for i := range 40 {
		devs = append(devs, Device{ID: fmt.Sprintf("d%02d", i), Labels: map[string]string{"room": fmt.Sprintf("r%d", i%4)}})
	}
	e, err := NewEngine(rs, devs, Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				evs := feed(e, batch{time.Duration(i) * time.Second, d.ID, pts(num("x.n", 10), boolean("x.b", true))})
				mu.Lock()
				for _, ev := range evs {
					count[ev.Rule+"@"+ev.Instance()+" "+string(ev.Kind)]++
				}
				mu.Unlock()
			}
		}()
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				e.Instances()
				e.Tick(t0)
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	for _, d := range devs {
		if got := count["c/dev@"+d.ID+" firing"]; got != 1 {
			t.Errorf("c/dev@%s fired %d times, want 1", d.ID, got)
		}
	}
	for r := range 4 {
		if got := count[fmt.Sprintf("c/room@room=r%d firing", r)]; got != 1 {
			t.Errorf("c/room@room=r%d fired %d times, want 1", r, got)
		}
	}
	if len(count) != 44 {
		t.Errorf("got %d distinct events, want 44: %v", len(count), count)
	}
}

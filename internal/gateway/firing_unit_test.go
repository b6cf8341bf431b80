package gateway

import (
	"slices"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/rules"
)

// TestFiringUnknownWhileIdentifying: the gateway's firing() answers
// unknown, not false, for a scope a still unidentified device may belong
// to (its rules do not run yet), and false elsewhere; once no device is
// being identified, false again. A reader rule "!firing(...)" with
// missing: hold shows the difference: it fires on false, holds on unknown.
func TestFiringUnknownWhileIdentifying(t *testing.T) {
	src := `pack: f
rules:
  - name: room-fire
    class: fire
    severity: critical
    group_by: [room]
    when: count_true(x.b) > 0
    summary: room fire
`
	reader := `pack: r
rules:
  - name: no-fire
    class: power
    severity: warning
    group_by: [room]
    when: '!firing("f/room-fire") && x.n > 0'
    summary: no fire in the room
`
	load := func(name, s string) *rules.Pack {
		p, err := rules.Load(name, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	fires, err := rules.NewRuleSet(load("f.yaml", src))
	if err != nil {
		t.Fatal(err)
	}
	both, err := rules.NewRuleSet(load("f.yaml", src), load("r.yaml", reader))
	if err != nil {
		t.Fatal(err)
	}
	devs := []rules.Device{{ID: "d1", Class: "bms", Labels: map[string]string{"room": "b3"}}, {ID: "d2", Class: "bms", Labels: map[string]string{"room": "b4"}}}
	e, err := rules.NewEngine(fires, devs, rules.Options{Site: "s", Gateway: "g"})
	if err != nil {
		t.Fatal(err)
	}
	a := &alerting{engine: e, unidentified: []*device{{cfg: &config.Device{ID: "smoke-9", Labels: map[string]string{"room": "b3"}}}}}
	r, err := rules.NewEngine(both, devs, rules.Options{Site: "s", Gateway: "g", Alerts: a})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	feed := func() []string {
		now = now.Add(time.Second)
		var pts []point.Point
		for _, d := range devs {
			pts = append(pts, point.Point{Device: d.ID, Name: "x.b", Kind: point.Bool, Time: now},
				point.Point{Device: d.ID, Name: "x.n", Num: 1, Time: now})
		}
		e.Feed(pts)
		r.Feed(pts)
		var rooms []string
		for _, in := range r.Instances() {
			if in.Rule == "r/no-fire" && in.State == "firing" {
				rooms = append(rooms, in.Labels["room"])
			}
		}
		slices.Sort(rooms)
		return rooms
	}
	if got := feed(); !slices.Equal(got, []string{"b4"}) {
		t.Errorf("while smoke-9 (room b3) is being identified: no-fire fires in %v, want b4 only (b3 unknown)", got)
	}
	a.mu.Lock()
	a.unidentified = nil
	a.mu.Unlock()
	if got := feed(); !slices.Equal(got, []string{"b3", "b4"}) {
		t.Errorf("once identified: no-fire fires in %v, want b3 and b4", got)
	}
}

package loadshed

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/rules"
)

// fireConfig is a config of two battery rooms, each with a BMS and an
// aspirating detector, and the battery room b3's outlet bank. The policy
// sheds b3's non-critical outlets when the fire pack's confirmed-fire
// fires in b3; WHEN is its trigger condition.
const fireConfig = `site: test-site
gateway: gw-1
state_dir: ./var
devices:
  - {id: bms-b3, profile: generic-liion-bms, labels: {room: battery-room-b3}, transport: modbus-tcp, address: 127.0.0.1:15023, unit: 1}
  - {id: vesda-b3, profile: generic-vesda, labels: {room: battery-room-b3}, transport: modbus-tcp, address: 127.0.0.1:15026, unit: 2}
  - {id: bms-b4, profile: generic-liion-bms, labels: {room: battery-room-b4}, transport: modbus-tcp, address: 127.0.0.1:15033, unit: 1}
  - {id: vesda-b4, profile: generic-vesda, labels: {room: battery-room-b4}, transport: modbus-tcp, address: 127.0.0.1:15036, unit: 2}
  - {id: outlets-lab, profile: generic-modbus-outlet-bank, labels: {room: battery-room-b3}, transport: modbus-tcp, address: 127.0.0.1:15027, unit: 1}
loadshed:
  min_stage_interval: 1s
  tiers:
    - {name: critical, critical: true}
    - {name: non-critical}
  loads:
    - {name: lab-1, tier: non-critical, device: outlets-lab, point: pdu.outlet.command.1, off: "false", verify: {point: pdu.outlet.state.1, value: "false"}}
    - {name: lab-2, tier: non-critical, device: outlets-lab, point: pdu.outlet.command.2, off: "false", verify: {point: pdu.outlet.state.2, value: "false"}}
  policies:
    - name: battery-room-fire
      trigger:
        select: {labels: {room: battery-room-b3}}
        group_by: [room]
        when: WHEN
      stages:
        - {tiers: [non-critical]}
`

// fireRig is a controller whose triggers read the alerts of a real rules
// engine running the shipped packs over the same devices, as in the
// gateway: every batch goes to the engine first, then the controller.
type fireRig struct {
	*rig
	engine *rules.Engine
	nilSrc bool // start the controller without an alert source
}

func newFireRig(t *testing.T, when string, nilSrc bool) *fireRig {
	t.Helper()
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "facgw.yaml"), []byte(strings.Replace(fireConfig, "WHEN", when, 1)), reg)
	if err != nil {
		t.Fatal(err)
	}
	var devs []rules.Device
	for _, d := range cfg.Devices {
		devs = append(devs, rules.Device{ID: d.ID, Profile: d.Profile, Class: d.ProfileDef().Class, Labels: d.Labels})
	}
	e, err := rules.NewEngine(cfg.RuleSet, devs, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &fireRig{rig: &rig{t: t, cfg: cfg, dir: t.TempDir(), now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, engine: e, nilSrc: nilSrc}
	r.bank = &fakeDevice{id: "outlets-lab", state: map[string]float64{"pdu.outlet.state.1/": 1, "pdu.outlet.state.2/": 1},
		link: map[string]string{"pdu.outlet.command.1/": "pdu.outlet.state.1/", "pdu.outlet.command.2/": "pdu.outlet.state.2/"}}
	opts := Options{
		Config: cfg.Loadshed, Site: "s", Gateway: "g", Devices: devs, Dir: r.dir,
		Actuators: map[string]Actuator{"outlets-lab": r.bank},
		Alert:     func(evs []alert.Event) { r.alerts = append(r.alerts, evs...) },
		Now:       func() time.Time { return r.now }, ReadbackEvery: time.Millisecond,
	}
	if !nilSrc {
		opts.Alerts = e
	}
	ctl, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r.ctl = ctl
	t.Cleanup(func() { ctl.Close() })
	return r
}

// second polls every device once at the next second (fire: the rooms
// whose VESDA reads fire 1 and whose BMS reads an off-gas alarm: two
// technologies, so confirmed-fire after its for: 5s), ticks and steps.
func (r *fireRig) second(fire ...string) {
	r.now = r.now.Add(time.Second)
	for _, room := range []string{"b3", "b4"} {
		on := slices.Contains(fire, room)
		for _, b := range [][]point.Point{
			{r.boolPt("bms-"+room, "bms.alarm.offgas", on), r.boolPt("bms-"+room, "bms.alarm.cell_overtemp", false), r.numPt("bms-"+room, "bms.soc", 80)},
			{r.boolPt("vesda-"+room, "vesda.fire1", on)},
		} {
			r.engine.Feed(b)
			r.ctl.Feed(b)
		}
	}
	r.engine.Tick(r.now)
	r.ctl.Tick(r.now)
	r.ctl.Step(context.Background())
}

func (r *fireRig) boolPt(dev, name string, v bool) point.Point {
	p := point.Point{Device: dev, Name: name, Kind: point.Bool, Quality: point.Good, Time: r.now}
	if v {
		p.Num = 1
	}
	return p
}

func (r *fireRig) numPt(dev, name string, v float64) point.Point {
	return point.Point{Device: dev, Name: name, Kind: point.Number, Num: v, Quality: point.Good, Time: r.now}
}

func (r *fireRig) seconds(n int, fire ...string) {
	for range n {
		r.second(fire...)
	}
}

func (r *fireRig) confirmed() []string {
	var out []string
	for _, in := range r.engine.Instances() {
		if in.Rule == "fire/confirmed-fire" && in.State == alert.Firing {
			out = append(out, in.Group)
		}
	}
	return out
}

func (r *fireRig) armFire() {
	if err := r.ctl.Arm("battery-room-fire", "alice", "test: fire drill", time.Hour); err != nil {
		r.t.Fatal(err)
	}
}

const fireTrigger = `firing("fire/confirmed-fire")`

// TestFiringTriggerDryRunOnlyForItsRoom: disarmed, a confirmed fire in the
// other battery room does nothing; one in b3 records the dry run, with
// the alert the trigger read as its input.
func TestFiringTriggerDryRunOnlyForItsRoom(t *testing.T) {
	r := newFireRig(t, fireTrigger, false)
	r.seconds(3)
	r.seconds(10, "b4")
	if got := r.confirmed(); !slices.Equal(got, []string{"room=battery-room-b4"}) {
		t.Fatalf("confirmed-fire: got %v, want room=battery-room-b4", got)
	}
	if got := r.events(); len(got) != 0 {
		t.Fatalf("fire in b4: got audit %v, want nothing (the policy watches b3)", got)
	}
	r.seconds(10, "b3", "b4")
	if got, want := r.events(), []string{EventDryRun}; !slices.Equal(got, want) {
		t.Fatalf("fire in b3: got audit %v, want %v", got, want)
	}
	recs, err := ReadAudit(filepath.Join(r.dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if v := recs[0].Inputs[fireTrigger]; v.Value != "true" || v.Quality != "good" {
		t.Errorf("dry-run inputs: got %+v, want %s true, good", recs[0].Inputs, fireTrigger)
	}
	if len(r.alerts) != 1 || r.alerts[0].Severity != alert.Warning {
		t.Errorf("alerts: got %+v, want one warning (dry run)", r.alerts)
	}
	if got := r.bank.Writes(); len(got) != 0 {
		t.Errorf("disarmed: got writes %v, want none", got)
	}
}

// TestFiringTriggerArmedSheds: armed, the trigger reads no point, yet it
// is not refused for "inputs not good": the shed runs.
func TestFiringTriggerArmedSheds(t *testing.T) {
	r := newFireRig(t, fireTrigger, false)
	r.armFire()
	r.seconds(10, "b4")
	if got := r.bank.Writes(); len(got) != 0 {
		t.Fatalf("fire in b4: got writes %v, want none", got)
	}
	r.seconds(10, "b3")
	if got, want := r.bank.Writes(), []string{"pdu.outlet.command.1/=0", "pdu.outlet.command.2/=0"}; !slices.Equal(got, want) {
		t.Errorf("fire in b3: got writes %v, want %v", got, want)
	}
	if got, want := r.events(), []string{"armed", "triggered", "stage", "action:lab-1", "action:lab-2", "completed"}; !slices.Equal(got, want) {
		t.Errorf("audit: got %v, want %v", got, want)
	}
}

// TestFiringTriggerInterlocks: a trigger that cannot see the alert (no
// source: unknown, not false) is refused, as is one whose points are not
// good; nothing is written.
func TestFiringTriggerInterlocks(t *testing.T) {
	t.Run("no alert source", func(t *testing.T) {
		r := newFireRig(t, fireTrigger, true)
		r.armFire()
		r.seconds(10, "b3")
		if got := r.bank.Writes(); len(got) != 0 {
			t.Errorf("got writes %v, want none", got)
		}
		if got := r.events(); !slices.Contains(got, EventRefused) || slices.Contains(got, EventTriggered) {
			t.Errorf("audit: got %v, want refused, never triggered", got)
		}
	})
	t.Run("a point it reads is stale", func(t *testing.T) {
		r := newFireRig(t, fireTrigger+` && bms.soc > 20`, false)
		r.armFire()
		r.seconds(3, "b3")
		// From now on the b3 BMS's state of charge is stale.
		for range 8 {
			r.now = r.now.Add(time.Second)
			for _, b := range [][]point.Point{
				{r.boolPt("bms-b3", "bms.alarm.offgas", true), r.boolPt("bms-b3", "bms.alarm.cell_overtemp", false), stalePt(r.numPt("bms-b3", "bms.soc", 80))},
				{r.boolPt("vesda-b3", "vesda.fire1", true)},
			} {
				r.engine.Feed(b)
				r.ctl.Feed(b)
			}
			r.engine.Tick(r.now)
			r.ctl.Step(context.Background())
		}
		if got := r.confirmed(); !slices.Equal(got, []string{"room=battery-room-b3"}) {
			t.Fatalf("confirmed-fire: got %v, want room=battery-room-b3", got)
		}
		if got := r.bank.Writes(); len(got) != 0 {
			t.Errorf("got writes %v, want none", got)
		}
		if got := r.events(); !slices.Contains(got, EventRefused) || slices.Contains(got, EventTriggered) {
			t.Errorf("audit: got %v, want refused, never triggered", got)
		}
	})
}

func stalePt(p point.Point) point.Point {
	p.Quality, p.Reason = point.Stale, "stale"
	return p
}

// TestFiringTriggerConfigCheck: a rule name the rule set does not have is
// a located config error with a did-you-mean.
func TestFiringTriggerConfigCheck(t *testing.T) {
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.Parse("facgw.yaml", []byte(strings.Replace(fireConfig, "WHEN", `firing("fire/confirmed-fir")`, 1)), reg)
	want := `facgw.yaml:23:9: loadshed.policies[0].trigger.when: firing: no rule "fire/confirmed-fir" (did you mean "fire/confirmed-fire"?) (column 1 of the expression)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestFiringPolicyDocExample: the example policy of docs/loadshed.md
// ("Triggers that read alerts") passes the config check with the rooms
// and loads above.
func TestFiringPolicyDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/loadshed.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- example: firing-policy -->\\s*```yaml\\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/loadshed.md has no firing-policy example")
	}
	base, _, _ := strings.Cut(fireConfig, "  policies:\n")
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("facgw.yaml", []byte(base+string(m[1])), reg)
	if err != nil {
		t.Fatalf("docs/loadshed.md firing-policy example: %v", err)
	}
	if got := cfg.Loadshed.Policies[0].Rule.Reads(); !slices.Equal(got, []string{"fire/confirmed-fire"}) {
		t.Errorf("the example's trigger reads %v, want [fire/confirmed-fire]", got)
	}
}

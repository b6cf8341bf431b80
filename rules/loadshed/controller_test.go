package loadshed

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/rules"
)

// fakeDevice is an actuator whose outlets follow writes (or not, when
// stuck), recording every write.
type fakeDevice struct {
	mu     sync.Mutex
	id     string
	state  map[string]float64 // verify point (with index) -> value
	link   map[string]string  // written point (with index) -> verify point
	stuck  bool
	writes []string
	// onWrite, when set, is called after each write (not under mu), on
	// the controller's goroutine: the tests' way into the middle of a
	// stage.
	onWrite func(write string)
	// badReads makes the next n reads of a verify point (with index)
	// bad.
	badReads map[string]int
}

func (f *fakeDevice) WritePoint(_ context.Context, name, index string, v float64) error {
	k := name + "/" + index
	w := fmt.Sprintf("%s=%g", k, v)
	if f.onWrite != nil {
		defer f.onWrite(w)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, w)
	if !f.stuck {
		// The tests' values: coil false -> feedback false; rPDU2 command
		// immediateOff 2 -> state off 1.
		out := v
		if v == 2 {
			out = 1
		} else if v == 1 && strings.Contains(k, "/5") {
			out = 2 // rPDU2: immediateOn 1 -> state on 2
		}
		f.state[f.link[k]] = out
	}
	return nil
}

func (f *fakeDevice) ReadPoint(_ context.Context, name, index string) point.Point {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k := name + "/" + index; f.badReads[k] > 0 {
		f.badReads[k]--
		return point.Point{Device: f.id, Name: name, Kind: point.Number, Quality: point.Bad, Reason: "timeout"}
	}
	return point.Point{Device: f.id, Name: name, Kind: point.Number, Num: f.state[name+"/"+index], Quality: point.Good}
}

func (f *fakeDevice) Writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.writes...)
}

type rig struct {
	t       *testing.T
	cfg     *config.Config
	dir     string
	now     time.Time
	bank    *fakeDevice
	pdu     *fakeDevice
	ctl     *Controller
	alerts  []alert.Event
	publish []string
	// payloads are the published payloads by topic level.
	payloads map[string][][]byte
	open     []alert.Event // OpenAlerts for the next start
}

func newRig(t *testing.T) *rig { return newRigFile(t, "testdata/policy.yaml") }

func newRigFile(t *testing.T, file string) *rig {
	t.Helper()
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file, reg)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, cfg: cfg, dir: t.TempDir(), now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	r.bank = &fakeDevice{id: "outlets-lab", state: map[string]float64{"pdu.outlet.state.1/": 1, "pdu.outlet.state.2/": 1},
		link: map[string]string{"pdu.outlet.command.1/": "pdu.outlet.state.1/", "pdu.outlet.command.2/": "pdu.outlet.state.2/"}}
	r.pdu = &fakeDevice{id: "pdu-a1", state: map[string]float64{"pdu.outlet.state/5": 2, "pdu.outlet.state/1": 2},
		link: map[string]string{"pdu.outlet.command/5": "pdu.outlet.state/5", "pdu.outlet.command/1": "pdu.outlet.state/1"}}
	r.start()
	return r
}

// start builds a controller on the rig's state directory, as a gateway
// (re)start does.
func (r *rig) start() {
	r.t.Helper()
	if r.ctl != nil {
		r.ctl.Close()
	}
	var devs []rules.Device
	for _, d := range r.cfg.Devices {
		devs = append(devs, rules.Device{ID: d.ID, Profile: d.Profile, Class: d.ProfileDef().Class})
	}
	ctl, err := New(Options{
		Config: r.cfg.Loadshed, Site: "s", Gateway: "g", Devices: devs, Dir: r.dir,
		Actuators: map[string]Actuator{"outlets-lab": r.bank, "pdu-a1": r.pdu},
		Alert:     func(evs []alert.Event) { r.alerts = append(r.alerts, evs...) },
		Publish: func(sub string, b []byte) error {
			r.publish = append(r.publish, sub)
			if r.payloads == nil {
				r.payloads = map[string][][]byte{}
			}
			r.payloads[sub] = append(r.payloads[sub], b)
			return nil
		},
		OpenAlerts: r.open, AckTopic: "facgw/test-site/gw-1/loadshed/ack",
		Now: func() time.Time { return r.now }, ReadbackEvery: time.Millisecond,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.ctl = ctl
	r.t.Cleanup(func() { ctl.Close() })
}

// ups feeds one poll of the UPS: on battery, runtime in minutes.
func (r *rig) ups(onBattery bool, runtime float64, q point.Quality) {
	b := 0.0
	if onBattery {
		b = 1
	}
	r.ctl.Feed([]point.Point{
		{Device: "ups-c", Name: "ups.status.on_battery", Kind: point.Bool, Num: b, Quality: q, Time: r.now},
		{Device: "ups-c", Name: "battery.runtime", Kind: point.Number, Num: runtime, Unit: "min", Quality: q, Time: r.now},
	})
}

// advance moves the clock, feeding the UPS every second, and steps.
func (r *rig) advance(d time.Duration, onBattery bool, runtime float64, q point.Quality) {
	for end := r.now.Add(d); r.now.Before(end); {
		r.now = r.now.Add(time.Second)
		r.ups(onBattery, runtime, q)
		r.ctl.Step(context.Background())
	}
}

func (r *rig) events() []string {
	recs, err := ReadAudit(filepath.Join(r.dir, "audit.jsonl"))
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, rec := range recs {
		s := rec.Event
		if rec.Action != nil {
			s += ":" + rec.Action.Load
			if rec.Action.Skipped != "" {
				s += "(skipped)"
			} else if !rec.Action.Verified {
				s += "(unverified)"
			}
		}
		out = append(out, s)
	}
	return out
}

func (r *rig) arm() {
	if err := r.ctl.Arm("utility-failure", "alice", "test: utility work tonight", time.Hour); err != nil {
		r.t.Fatal(err)
	}
}

func eq(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestArmedShedsTierByTierInOrder(t *testing.T) {
	r := newRig(t)
	r.arm()
	r.advance(5*time.Second, true, 8, point.Good) // for: 2s, then stage 1 at once
	if got, want := r.bank.Writes(), []string{"pdu.outlet.command.1/=0", "pdu.outlet.command.2/=0"}; !eq(got, want) {
		t.Fatalf("bank writes after stage 1: got %v, want %v", got, want)
	}
	if got := r.pdu.Writes(); len(got) != 0 {
		t.Fatalf("pdu written before stage 2 is due: got %v, want nothing", got)
	}
	r.advance(6*time.Second, true, 6, point.Good) // stage 2 after 5s
	if got, want := r.pdu.Writes(), []string{"pdu.outlet.command/5=2"}; !eq(got, want) {
		t.Fatalf("pdu writes: got %v, want %v", got, want)
	}
	want := []string{"armed", "triggered", "stage", "action:lab-1", "action:lab-2", "stage", "action:app-01", "completed"}
	if got := r.events(); !eq(got, want) {
		t.Errorf("audit: got %v, want %v", got, want)
	}
	if len(r.publish) != len(want) {
		t.Errorf("published %d audit records, want %d", len(r.publish), len(want))
	}
	// More time and polls: nothing is written again.
	r.advance(10*time.Second, true, 5, point.Good)
	if got := len(r.bank.Writes()) + len(r.pdu.Writes()); got != 3 {
		t.Errorf("writes after completion: got %d, want 3", got)
	}
}

func TestDisarmedDryRunOnly(t *testing.T) {
	r := newRig(t)
	r.advance(10*time.Second, true, 8, point.Good)
	if got := len(r.bank.Writes()) + len(r.pdu.Writes()); got != 0 {
		t.Fatalf("disarmed: got %d writes, want 0", got)
	}
	recs, _ := ReadAudit(filepath.Join(r.dir, "audit.jsonl"))
	if len(recs) != 1 || recs[0].Event != EventDryRun || !recs[0].DryRun || len(recs[0].Plan) != 2 {
		t.Fatalf("audit: got %+v, want one dry-run record with a 2-stage plan", recs)
	}
	if got, want := recs[0].Plan[1].Loads[0].Load, "app-01"; got != want {
		t.Errorf("plan stage 2: got %s, want %s", got, want)
	}
	if len(r.alerts) != 1 || r.alerts[0].Rule != "loadshed/utility-failure" || r.alerts[0].Class != "power" {
		t.Errorf("alerts: got %+v, want one power alert of loadshed/utility-failure", r.alerts)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(r *rig)
		q     point.Quality
		want  string
	}{
		{"stale runtime", func(r *rig) { r.arm() }, point.Stale, EventRefused},
		{"bad runtime", func(r *rig) { r.arm() }, point.Bad, EventRefused},
		{"inhibited", func(r *rig) {
			r.arm()
			if err := r.ctl.Inhibit("utility-failure", "bob", "maintenance on the PDUs", true); err != nil {
				t.Fatal(err)
			}
		}, point.Good, EventRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			tt.setup(r)
			r.advance(10*time.Second, true, 8, tt.q)
			if got := len(r.bank.Writes()) + len(r.pdu.Writes()); got != 0 {
				t.Fatalf("got %d writes, want 0", got)
			}
			evs := r.events()
			if evs[len(evs)-1] != tt.want {
				t.Errorf("audit: got %v, want it to end with %s", evs, tt.want)
			}
			if len(r.alerts) != 1 || r.alerts[0].Severity < alert.Major {
				t.Errorf("alerts: got %+v, want one major or critical alert", r.alerts)
			}
		})
	}
}

func TestReadbackMismatchIsAlerted(t *testing.T) {
	r := newRig(t)
	r.bank.stuck = true
	r.cfg.Loadshed.VerifyTimeout = 20 * time.Millisecond
	r.arm()
	r.advance(4*time.Second, true, 8, point.Good)
	evs := r.events()
	want := []string{"armed", "triggered", "stage", "action:lab-1(unverified)", "shed-failed:lab-1(unverified)", "action:lab-2(unverified)", "shed-failed:lab-2(unverified)"}
	if !eq(evs, want) {
		t.Fatalf("audit: got %v, want %v", evs, want)
	}
	failed := 0
	for _, a := range r.alerts {
		if a.Labels["decision"] == "failed-lab-1" || a.Labels["decision"] == "failed-lab-2" {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("shed-failed alerts: got %d, want 2", failed)
	}
}

func TestRestartMidShedNeitherRepeatsNorForgets(t *testing.T) {
	r := newRig(t)
	r.arm()
	r.advance(4*time.Second, true, 8, point.Good) // stage 1 done
	r.start()                                     // restart: stage 2 pending
	r.advance(8*time.Second, true, 6, point.Good)
	if got, want := r.bank.Writes(), []string{"pdu.outlet.command.1/=0", "pdu.outlet.command.2/=0"}; !eq(got, want) {
		t.Errorf("bank writes: got %v, want %v (stage 1 once)", got, want)
	}
	if got, want := r.pdu.Writes(), []string{"pdu.outlet.command/5=2"}; !eq(got, want) {
		t.Errorf("pdu writes: got %v, want %v (stage 2 after the restart)", got, want)
	}
	actions := map[string]int{}
	recs, _ := ReadAudit(filepath.Join(r.dir, "audit.jsonl"))
	for _, rec := range recs {
		if rec.Event == EventAction && rec.Action.Skipped == "" {
			actions[rec.Action.Load]++
		}
	}
	if fmt.Sprint(actions) != "map[app-01:1 lab-1:1 lab-2:1]" {
		t.Errorf("actions per load: got %v, want one each", actions)
	}
}

func TestTriggerEndsCancelsRemainingStages(t *testing.T) {
	r := newRig(t)
	r.arm()
	r.advance(4*time.Second, true, 8, point.Good)
	r.advance(10*time.Second, false, 30, point.Good) // mains back
	if got := r.pdu.Writes(); len(got) != 0 {
		t.Errorf("pdu writes after the trigger ended: got %v, want none", got)
	}
	evs := r.events()
	if evs[len(evs)-2] != EventCancelled {
		t.Errorf("audit: got %v, want a cancelled record", evs)
	}
}

func TestArmNeedsReasonAndBoundedDuration(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		name, policy, reason string
		d                    time.Duration
	}{
		{"no reason", "utility-failure", " ", time.Hour},
		{"too long", "utility-failure", "x", 9 * time.Hour},
		{"unknown policy", "nope", "x", time.Hour},
	}
	for _, tt := range tests {
		if err := r.ctl.Arm(tt.policy, "alice", tt.reason, tt.d); err == nil {
			t.Errorf("%s: got nil, want an error", tt.name)
		}
	}
	if err := r.ctl.Arm("utility-failure", "alice", "ok", time.Minute); err != nil {
		t.Fatal(err)
	}
	r.advance(61*time.Second, false, 30, point.Good)
	if s := r.ctl.Status(); s.Policies[0].Armed != nil {
		t.Errorf("armed after expiry: got %+v, want disarmed", s.Policies[0].Armed)
	}
}

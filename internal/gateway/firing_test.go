package gateway_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/demo/demotest"
	"github.com/facgw/facgw/rules"
	"github.com/facgw/facgw/rules/loadshed"
)

// TestFiringTriggerIntegration: a load-shed policy whose trigger is
// firing("fire/confirmed-fire") for the battery room sees the alert the
// running rules engine raises there (off-gas on a rack and the aspirating
// detector's fire 1: two technologies) and records its dry run; the same
// policy for the hall, where nothing burns, stays silent.
func TestFiringTriggerIntegration(t *testing.T) {
	const when = `firing("fire/confirmed-fire")`
	d := demotest.Start(t, "../..", func(cfg *config.Config) {
		for _, room := range []string{"battery-room-b3", "hall-1"} {
			trig := rules.Trigger{Select: rules.Select{Labels: map[string]string{"room": room}}, GroupBy: []string{"room"}, When: when}
			r, err := rules.CompileTrigger("loadshed", "fire-"+room, "power", &trig)
			if err != nil {
				t.Fatal(err)
			}
			if err := rules.CheckReferences(cfg.RuleSet, r); err != nil {
				t.Fatal(err)
			}
			cfg.Loadshed.Policies = append(cfg.Loadshed.Policies, config.ShedPolicy{
				Name: "fire-" + room, Trigger: trig, Rule: r, Restore: config.RestoreManual,
				Stages: []config.ShedStage{{Loads: []string{"test-rack-1"}, Targets: []string{"test-rack-1"}}},
			})
		}
	})
	dryRuns := func() map[string]loadshed.Record {
		out := map[string]loadshed.Record{}
		for _, rec := range loadshedDoc(t, d.Base).Recent {
			if rec.Event == loadshed.EventDryRun {
				out[rec.Policy] = rec
			}
		}
		return out
	}
	if got := dryRuns(); len(got) != 0 {
		t.Fatalf("normal operation: got dry runs %v, want none", got)
	}
	for dev, sc := range map[string]string{"bms-rack1": "thermal-runaway", "vesda-1": "fire-alarm"} {
		if err := d.Info.Sim.SetScenario(dev, sc); err != nil {
			t.Fatal(err)
		}
	}
	var rec loadshed.Record
	demotest.WaitFor(t, "the battery room's policy's dry run", func() bool {
		d.Info.Sim.Step(5 * time.Second)
		var ok bool
		rec, ok = dryRuns()["fire-battery-room-b3"]
		return ok
	})
	if v := rec.Inputs[when]; v.Value != "true" || v.Quality != "good" {
		t.Errorf("dry-run inputs: got %+v, want %s true, good", rec.Inputs, when)
	}
	if _, ok := dryRuns()["fire-hall-1"]; ok {
		t.Errorf("the hall's policy ran dry although nothing burns in the hall")
	}
	confirmed := false
	for _, e := range alerts(t, d.Base).Active {
		confirmed = confirmed || (e.Rule == "fire/confirmed-fire" && e.Group == "room=battery-room-b3")
	}
	if !confirmed {
		t.Errorf("no confirmed-fire alert for the battery room is active, yet the policy ran")
	}
}

func loadshedDoc(t *testing.T, base string) loadshed.Status {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/loadshed")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc loadshed.Status
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("decode loadshed: %v", err)
	}
	return doc
}

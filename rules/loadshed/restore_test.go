package loadshed

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
)

// shedManual runs the manual.yaml policy to completion, then lets the
// trigger end (mains back) and disarms: the state an engineer restores
// from.
func shedManual(t *testing.T, r *rig) {
	t.Helper()
	r.arm()
	r.advance(12*time.Second, true, 8, point.Good)
	if evs := r.events(); evs[len(evs)-1] != EventCompleted {
		t.Fatalf("audit: got %v, want a completed shed", evs)
	}
	r.advance(3*time.Second, false, 30, point.Good)
	if err := r.ctl.Disarm("utility-failure", "alice", "shed over"); err != nil {
		t.Fatal(err)
	}
}

// restoreActions lists the restore-action records as load=value:verified
// by operator.
func restoreActions(t *testing.T, r *rig) []string {
	t.Helper()
	recs, err := ReadAudit(filepath.Join(r.dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rec := range recs {
		if rec.Event == EventRestoreAction {
			out = append(out, fmt.Sprintf("%s=%g:%v by %s", rec.Action.Load, rec.Action.Value, rec.Action.Verified, rec.Operator))
		}
	}
	return out
}

func TestManualRestoreReverseOrderAudited(t *testing.T) {
	r := newRigFile(t, "testdata/manual.yaml")
	shedManual(t, r)
	if got := r.ctl.Status().Policies[0].StillOff; !eq(got, []string{"app-01", "lab-1", "lab-2"}) {
		t.Fatalf("still_off before the restore: got %v, want [app-01 lab-1 lab-2]", got)
	}
	if err := r.ctl.Restore("utility-failure", "carol", "mains back, generator test done"); err != nil {
		t.Fatalf("restore: %v", err)
	}
	// Recorded before anything is written; the writes happen on the
	// controller's steps.
	if got := len(r.bank.Writes()) + len(r.pdu.Writes()); got != 3 {
		t.Fatalf("writes right after Restore: got %d, want 3 (the shed's only)", got)
	}
	r.advance(5*time.Second, false, 30, point.Good)

	want := []string{"app-01=1:true by carol", "lab-2=1:true by carol", "lab-1=1:true by carol"}
	if got := restoreActions(t, r); !eq(got, want) {
		t.Fatalf("restore actions: got %v, want %v", got, want)
	}
	if got, want := r.bank.Writes(), []string{"pdu.outlet.command.1/=0", "pdu.outlet.command.2/=0", "pdu.outlet.command.2/=1", "pdu.outlet.command.1/=1"}; !eq(got, want) {
		t.Errorf("bank writes: got %v, want %v", got, want)
	}
	if got, want := r.pdu.Writes(), []string{"pdu.outlet.command/5=2", "pdu.outlet.command/5=1"}; !eq(got, want) {
		t.Errorf("pdu writes: got %v, want %v", got, want)
	}
	recs, _ := ReadAudit(filepath.Join(r.dir, "audit.jsonl"))
	var started, restored *Record
	for i := range recs {
		switch recs[i].Event {
		case EventRestoring:
			started = &recs[i]
		case EventRestored:
			restored = &recs[i]
		}
	}
	if started == nil || started.Operator != "carol" || !strings.Contains(started.Reason, "mains back, generator test done") {
		t.Errorf("restore-started record: got %+v, want operator carol and the reason", started)
	}
	if restored == nil || restored.Operator != "carol" {
		t.Errorf("restored record: got %+v, want operator carol", restored)
	}
	// Published like every audit record.
	var published []string
	for _, b := range r.payloads["audit/utility-failure"] {
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(rec.Event, "restore") && rec.Operator == "carol" {
			published = append(published, rec.Event)
		}
	}
	if want := []string{EventRestoring, EventRestoreAction, EventRestoreAction, EventRestoreAction, EventRestored}; !eq(published, want) {
		t.Errorf("published restore records by carol: got %v, want %v", published, want)
	}
	st := r.ctl.Status().Policies[0]
	if rs := st.Shed.Restore; rs == nil || !rs.Manual || rs.By != "carol" || rs.Result != EventRestored || rs.Reason == "" {
		t.Errorf("status restore: got %+v, want a manual restore by carol, restored", rs)
	}
	if len(st.StillOff) != 0 {
		t.Errorf("still_off after the restore: got %v, want none", st.StillOff)
	}
	// A second restore has nothing to do.
	if err := r.ctl.Restore("utility-failure", "carol", "again"); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "nothing to restore") {
		t.Errorf("second restore: got %v, want ErrConflict, nothing to restore", err)
	}
}

func TestManualRestoreRefused(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		setup func(t *testing.T, r *rig)
		want  error
		msg   string
	}{
		{"trigger firing", "manual.yaml", func(t *testing.T, r *rig) {
			r.arm()
			r.advance(12*time.Second, true, 8, point.Good)
		}, ErrConflict, "the trigger still holds"},
		{"trigger pending", "manual.yaml", func(t *testing.T, r *rig) {
			shedManual(t, r)
			r.advance(time.Second, true, 8, point.Good) // holds again, for: 2s not yet over
		}, ErrConflict, "pending"},
		{"trigger inputs stale", "manual.yaml", func(t *testing.T, r *rig) {
			shedManual(t, r)
			r.advance(5*time.Second, false, 30, point.Stale)
		}, ErrConflict, "cannot be told"},
		{"inhibited", "manual.yaml", func(t *testing.T, r *rig) {
			shedManual(t, r)
			if err := r.ctl.Inhibit("utility-failure", "bob", "PDU work", true); err != nil {
				t.Fatal(err)
			}
		}, ErrConflict, "inhibited by bob"},
		{"nothing shed", "manual.yaml", func(t *testing.T, r *rig) {
			r.advance(3*time.Second, false, 30, point.Good)
		}, ErrConflict, "nothing to restore"},
		{"loads without on values", "policy.yaml", func(t *testing.T, r *rig) {
			shedManual(t, r)
		}, ErrConflict, "have no on: and verify.on:"},
		{"no reading since a restart", "manual.yaml", func(t *testing.T, r *rig) {
			shedManual(t, r)
			r.start() // the trigger's UPS not polled yet: not evaluated
		}, ErrConflict, "no reading yet since the gateway started from ups-c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRigFile(t, "testdata/"+tt.file)
			tt.setup(t, r)
			writes := len(r.bank.Writes()) + len(r.pdu.Writes())
			err := r.ctl.Restore("utility-failure", "carol", "test")
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("restore: got %v, want %v containing %q", err, tt.want, tt.msg)
			}
			r.ctl.Step(t.Context())
			if got := len(r.bank.Writes()) + len(r.pdu.Writes()); got != writes {
				t.Errorf("writes after a refused restore: got %d, want %d", got, writes)
			}
			if got := count(r.events(), EventRestoring); got != 0 {
				t.Errorf("restore-started records: got %d, want 0", got)
			}
		})
	}
	r := newRigFile(t, "testdata/manual.yaml")
	if err := r.ctl.Restore("utility-failure", "carol", " "); !errors.Is(err, ErrInvalid) {
		t.Errorf("no reason: got %v, want ErrInvalid", err)
	}
	if err := r.ctl.Restore("nope", "carol", "x"); !errors.Is(err, ErrUnknownPolicy) {
		t.Errorf("unknown policy: got %v, want ErrUnknownPolicy", err)
	}
}

// TestManualRestoreAfterRestartWaitsForReadings: after a restart the
// restore is accepted once the trigger's device has been polled (and the
// trigger found not holding).
func TestManualRestoreAfterRestartWaitsForReadings(t *testing.T) {
	r := newRigFile(t, "testdata/manual.yaml")
	shedManual(t, r)
	r.start()
	if err := r.ctl.Restore("utility-failure", "carol", "mains back"); !errors.Is(err, ErrConflict) {
		t.Fatalf("restore before any reading: got %v, want a conflict", err)
	}
	r.advance(3*time.Second, false, 30, point.Good)
	if err := r.ctl.Restore("utility-failure", "carol", "mains back"); err != nil {
		t.Fatalf("restore once the UPS reads on mains: %v", err)
	}
}

func TestManualRestoreAbortedWhenTriggerHoldsAgain(t *testing.T) {
	r := newRigFile(t, "testdata/manual.yaml")
	shedManual(t, r)
	if err := r.ctl.Restore("utility-failure", "carol", "mains back"); err != nil {
		t.Fatal(err)
	}
	r.advance(time.Second, false, 30, point.Good) // stage 2 back: app-01
	r.advance(time.Second, true, 8, point.Good)   // on battery again: pending
	evs := r.events()
	if count(evs, EventRestoreAborted) != 1 {
		t.Fatalf("audit: got %v, want the restore aborted", evs)
	}
	if got, want := r.bank.Writes(), []string{"pdu.outlet.command.1/=0", "pdu.outlet.command.2/=0"}; !eq(got, want) {
		t.Errorf("bank writes: got %v, want %v (the lab outlets stay off)", got, want)
	}
	if got := r.ctl.Status().Policies[0].StillOff; !eq(got, []string{"lab-1", "lab-2"}) {
		t.Errorf("still_off: got %v, want [lab-1 lab-2]", got)
	}
}

func TestManualRestoreLeavesLoadsOffBeforeTheShed(t *testing.T) {
	r := newRigFile(t, "testdata/manual.yaml")
	r.bank.state["pdu.outlet.state.1/"] = 0 // switched off by hand before
	shedManual(t, r)
	if err := r.ctl.Restore("utility-failure", "carol", "mains back"); err != nil {
		t.Fatal(err)
	}
	r.advance(5*time.Second, false, 30, point.Good)
	if slices.Contains(r.bank.Writes(), "pdu.outlet.command.1/=1") {
		t.Errorf("bank writes: got %v, want outlet 1 left off", r.bank.Writes())
	}
	if !slices.Contains(r.bank.Writes(), "pdu.outlet.command.2/=1") {
		t.Errorf("bank writes: got %v, want outlet 2 restored", r.bank.Writes())
	}
}

// An automatic restore that power failing again aborted leaves the rest
// "until restored by hand": the API restore finishes it without writing
// the loads already back on.
func TestManualRestoreAfterAbortedAutomaticRestore(t *testing.T) {
	r := newRigFile(t, "testdata/drain.yaml")
	shedAll(t, r)
	r.advance(11*time.Second, false, 30, point.Good) // automatic restore: app-01 back on
	r.advance(time.Second, true, 30, point.Good)     // on battery again: aborted
	if count(r.events(), EventRestoreAborted) != 1 {
		t.Fatalf("audit: got %v, want the automatic restore aborted", r.events())
	}
	r.advance(2*time.Second, false, 30, point.Good)
	if err := r.ctl.Restore("utility-failure", "carol", "mains stable, checked on site"); err != nil {
		t.Fatal(err)
	}
	r.advance(3*time.Second, false, 30, point.Good)
	if got, want := restoreActions(t, r), []string{"app-01=1:true by ", "lab-2=1:true by carol", "lab-1=1:true by carol"}; !eq(got, want) {
		t.Errorf("restore actions: got %v, want %v", got, want)
	}
	if got, want := r.pdu.Writes(), []string{"pdu.outlet.command/5=2", "pdu.outlet.command/5=1"}; !eq(got, want) {
		t.Errorf("pdu writes: got %v, want %v (app-01 on once)", got, want)
	}
}

// restoreRecords returns the restore-action records of a load.
func restoreRecords(t *testing.T, r *rig, load string) []Record {
	t.Helper()
	recs, err := ReadAudit(filepath.Join(r.dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	for _, rec := range recs {
		if rec.Event == EventRestoreAction && rec.Action.Load == load {
			out = append(out, rec)
		}
	}
	return out
}

// A restore of utility-failure leaves lab-1 off while battery-low, which
// sheds it too, holds it: its shed found it off (already-off) and has not
// restored it, or its trigger holds now.
func TestRestoreLeavesLoadHeldByAnotherPolicyOff(t *testing.T) {
	t.Run("held by its shed", func(t *testing.T) {
		r := newRigFile(t, "testdata/shared.yaml")
		r.arm()
		if err := r.ctl.Arm("battery-low", "alice", "test", time.Hour); err != nil {
			t.Fatal(err)
		}
		r.advance(12*time.Second, true, 8, point.Good) // utility-failure sheds everything
		r.advance(2*time.Second, true, 3, point.Good)  // battery-low fires: lab-1 found off
		if got := r.ctl.Status().Policies[1].Shed; got == nil || got.Done["lab-1"] != ResultAlreadyOff {
			t.Fatalf("battery-low's shed: got %+v, want lab-1 already-off", got)
		}
		r.advance(3*time.Second, false, 3, point.Good) // mains back, battery still low
		if err := r.ctl.Restore("utility-failure", "carol", "mains back"); err != nil {
			t.Fatal(err)
		}
		r.advance(5*time.Second, false, 3, point.Good)
		if got, want := r.bank.Writes(), []string{"pdu.outlet.command.1/=0", "pdu.outlet.command.2/=0", "pdu.outlet.command.2/=1"}; !eq(got, want) {
			t.Fatalf("bank writes: got %v, want %v (lab-1 left off)", got, want)
		}
		recs := restoreRecords(t, r, "lab-1")
		if len(recs) != 1 || !strings.Contains(recs[0].Action.Skipped, "battery-low") || recs[0].Operator != "carol" {
			t.Errorf("lab-1 restore records: got %+v, want one, skipped, naming battery-low", recs)
		}
		evs := r.events()
		if count(evs, EventRestoreFailed) != 0 || evs[len(evs)-1] != EventRestored {
			t.Errorf("audit: got %v, want restored, no restore-failed", evs)
		}
		if rs := r.ctl.Status().Policies[0].Shed.Restore; rs.Done["lab-1"] != ResultLeftOff {
			t.Errorf("restore done: got %v, want lab-1 left-off", rs.Done)
		}
		// The battery recovers: battery-low's trigger ends, its shed still
		// holds lab-1 (not restored), so there is nothing to switch on.
		r.advance(3*time.Second, false, 30, point.Good)
		err := r.ctl.Restore("utility-failure", "carol", "again")
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "held off by policy battery-low") {
			t.Errorf("restore with only held loads: got %v, want ErrConflict naming battery-low", err)
		}
	})
	t.Run("held by its trigger", func(t *testing.T) {
		r := newRigFile(t, "testdata/shared.yaml") // battery-low disarmed: dry run only
		shedManual(t, r)
		r.advance(time.Second, false, 3, point.Good) // battery low on mains: battery-low holds
		if err := r.ctl.Restore("utility-failure", "carol", "mains back"); err != nil {
			t.Fatal(err)
		}
		r.advance(5*time.Second, false, 3, point.Good)
		if slices.Contains(r.bank.Writes(), "pdu.outlet.command.1/=1") {
			t.Fatalf("bank writes: got %v, want lab-1 left off while battery-low's trigger holds", r.bank.Writes())
		}
		if recs := restoreRecords(t, r, "lab-1"); len(recs) != 1 || !strings.Contains(recs[0].Reason, "battery-low") {
			t.Errorf("lab-1 restore records: got %+v, want one naming battery-low", recs)
		}
		r.advance(2*time.Second, false, 30, point.Good) // its trigger ends
		if err := r.ctl.Restore("utility-failure", "carol", "battery recharged"); err != nil {
			t.Fatal(err)
		}
		r.advance(2*time.Second, false, 30, point.Good)
		if !slices.Contains(r.bank.Writes(), "pdu.outlet.command.1/=1") {
			t.Errorf("bank writes: got %v, want lab-1 restored once nothing holds it", r.bank.Writes())
		}
	})
}

// An inhibit, or the trigger holding again, between two loads of a stage
// stops the restore before the next load.
func TestRestoreStopsMidStage(t *testing.T) {
	tests := []struct {
		name string
		stop func(r *rig)
		want string // the event that stops it; "" for a pause
	}{
		{"inhibited", func(r *rig) {
			if err := r.ctl.Inhibit("utility-failure", "bob", "PDU work", true); err != nil {
				r.t.Fatal(err)
			}
		}, ""},
		{"trigger holds", func(r *rig) { r.ups(true, 8, point.Good) }, EventRestoreAborted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRigFile(t, "testdata/manual.yaml")
			shedManual(t, r)
			r.bank.onWrite = func(w string) {
				if w == "pdu.outlet.command.2/=1" { // lab-2 back on: lab-1 is next in the stage
					tt.stop(r)
				}
			}
			if err := r.ctl.Restore("utility-failure", "carol", "mains back"); err != nil {
				t.Fatal(err)
			}
			r.advance(5*time.Second, false, 30, point.Good)
			if slices.Contains(r.bank.Writes(), "pdu.outlet.command.1/=1") {
				t.Fatalf("bank writes: got %v, want lab-1 left off (audit %v)", r.bank.Writes(), r.events())
			}
			if got := r.ctl.Status().Policies[0].StillOff; !eq(got, []string{"lab-1"}) {
				t.Errorf("still_off: got %v, want [lab-1]", got)
			}
			if tt.want != "" {
				if got := count(r.events(), tt.want); got != 1 {
					t.Errorf("audit: got %v, want one %s", r.events(), tt.want)
				}
				return
			}
			// Paused: released, the stage goes on with lab-1.
			r.bank.onWrite = nil
			if err := r.ctl.Inhibit("utility-failure", "bob", "done", false); err != nil {
				t.Fatal(err)
			}
			r.advance(2*time.Second, false, 30, point.Good)
			if got := restoreActions(t, r); !eq(got, []string{"app-01=1:true by carol", "lab-2=1:true by carol", "lab-1=1:true by carol"}) {
				t.Errorf("restore actions after the release: got %v", got)
			}
		})
	}
}

// A load the shed wrote without reading it on first (the reading bad)
// may have been off before (maintenance): a restore leaves it off.
func TestRestoreLeavesLoadOfUnknownPriorStateOff(t *testing.T) {
	tests := []struct {
		name     string
		badReads int    // reads of lab-1's verify point that fail from the shed on
		result   string // lab-1's shed result
	}{
		{"shed failed", 1 << 20, ResultFailed},
		{"shed verified", 1, ResultOff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRigFile(t, "testdata/manual.yaml")
			r.cfg.Loadshed.VerifyTimeout = 20 * time.Millisecond
			r.bank.state["pdu.outlet.state.1/"] = 0 // off for maintenance
			r.bank.badReads = map[string]int{"pdu.outlet.state.1/": tt.badReads}
			shedManual(t, r)
			r.bank.mu.Lock()
			r.bank.badReads = nil
			r.bank.mu.Unlock()
			if got := r.ctl.Status().Policies[0].Shed; got.Done["lab-1"] != tt.result || !slices.Contains(got.PriorUnknown, "lab-1") {
				t.Fatalf("shed: got done %v, prior unknown %v; want lab-1 %s, prior unknown", got.Done, got.PriorUnknown, tt.result)
			}
			if err := r.ctl.Restore("utility-failure", "carol", "mains back"); err != nil {
				t.Fatal(err)
			}
			r.advance(5*time.Second, false, 30, point.Good)
			if slices.Contains(r.bank.Writes(), "pdu.outlet.command.1/=1") {
				t.Fatalf("bank writes: got %v, want lab-1 left off", r.bank.Writes())
			}
			if !slices.Contains(r.bank.Writes(), "pdu.outlet.command.2/=1") {
				t.Errorf("bank writes: got %v, want lab-2 (read on before the shed) restored", r.bank.Writes())
			}
			if recs := restoreRecords(t, r, "lab-1"); len(recs) != 1 || !strings.Contains(recs[0].Action.Skipped, "prior state unknown") {
				t.Errorf("lab-1 restore records: got %+v, want one, skipped: prior state unknown", recs)
			}
			if count(r.events(), EventRestoreFailed) != 0 {
				t.Errorf("audit: got %v, want no restore-failed", r.events())
			}
			err := r.ctl.Restore("utility-failure", "carol", "again")
			if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "prior state unknown") {
				t.Errorf("second restore: got %v, want ErrConflict, prior state unknown", err)
			}
		})
	}
}

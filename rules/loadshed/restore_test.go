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

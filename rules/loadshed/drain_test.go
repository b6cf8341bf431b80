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

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/point"
)

// drainRig is a rig on drain.yaml, armed, with stage 1 shed and the drain
// stage's command sent.
func drainRig(t *testing.T) (*rig, DrainCommand) {
	t.Helper()
	r := newRigFile(t, "testdata/drain.yaml")
	r.arm()
	r.advance(6*time.Second, true, 8, point.Good) // for 2s, stage 1, after 2s + 1s interval: drain sent
	cmds := r.payloads["drain/utility-failure"]
	if len(cmds) != 1 {
		t.Fatalf("drain commands published: got %d, want 1 (audit %v)", len(cmds), r.events())
	}
	var cmd DrainCommand
	if err := json.Unmarshal(cmds[0], &cmd); err != nil {
		t.Fatal(err)
	}
	if got := r.pdu.Writes(); len(got) != 0 {
		t.Fatalf("pdu written before the drain was acknowledged: got %v", got)
	}
	return r, cmd
}

func ack(t *testing.T, r *rig, id, status, via string) error {
	t.Helper()
	b, _ := json.Marshal(DrainAck{ID: id, Status: status, By: "k8s-drainer", Message: "test"})
	return r.ctl.Ack(b, via)
}

func count(evs []string, ev string) int {
	n := 0
	for _, e := range evs {
		if e == ev {
			n++
		}
	}
	return n
}

func TestDrainCommandPayload(t *testing.T) {
	_, cmd := drainRig(t)
	tests := []struct{ name, got, want string }{
		{"policy", cmd.Policy, "utility-failure"},
		{"scope", cmd.Scope, "hall-1"},
		{"stage", fmt.Sprint(cmd.Stage), "2"},
		{"loads", fmt.Sprint(len(cmd.Loads)), "1"},
		{"load", cmd.Loads[0].Load, "app-01"},
		{"deadline", cmd.Deadline.Sub(cmd.Sent).String(), "10s"},
		{"ack topic", cmd.AckTopic, "facgw/test-site/gw-1/loadshed/ack/utility-failure"},
		{"site", cmd.Site, "s"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if cmd.ID == "" || cmd.Episode == "" {
		t.Errorf("id %q, episode %q: want both set", cmd.ID, cmd.Episode)
	}
}

func TestDrainAckedGoesOnOnceFromEitherBroker(t *testing.T) {
	r, cmd := drainRig(t)
	if err := ack(t, r, cmd.ID, AckAccepted, "a"); err != nil {
		t.Fatal(err)
	}
	r.advance(2*time.Second, true, 8, point.Good)
	if got := r.pdu.Writes(); len(got) != 0 {
		t.Fatalf("pdu written after only accepted: got %v, want nothing yet", got)
	}
	for _, via := range []string{"a", "b", "a"} {
		if err := ack(t, r, cmd.ID, AckDrained, via); err != nil {
			t.Fatal(err)
		}
	}
	r.advance(time.Second, true, 8, point.Good)
	if got, want := r.pdu.Writes(), []string{"pdu.outlet.command/5=2"}; !eq(got, want) {
		t.Fatalf("pdu writes: got %v, want %v", got, want)
	}
	evs := r.events()
	if got := count(evs, EventDrainAck); got != 2 {
		t.Errorf("drain-ack records: got %d, want 2 (accepted, drained once): %v", got, evs)
	}
	if got := count(evs, EventDrainEscalated); got != 0 {
		t.Errorf("drain-escalated records: got %d, want 0", got)
	}
	if got := evs[len(evs)-1]; got != EventCompleted {
		t.Errorf("last record: got %s, want %s", got, EventCompleted)
	}
}

func TestDrainWithoutAckEscalates(t *testing.T) {
	tests := []struct {
		name   string
		answer string // "" for none
		failed bool   // escalates at once, not at the deadline
	}{
		{"no acknowledgement", "", false},
		{"only accepted", AckAccepted, false},
		{"failed", AckFailed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, cmd := drainRig(t)
			if tt.answer != "" {
				if err := ack(t, r, cmd.ID, tt.answer, "b"); err != nil {
					t.Fatal(err)
				}
			}
			if !tt.failed {
				r.advance(cmd.Deadline.Sub(r.now)-time.Second, true, 8, point.Good)
				if got := r.pdu.Writes(); len(got) != 0 {
					t.Fatalf("pdu written before the deadline: got %v", got)
				}
			}
			r.advance(2*time.Second, true, 8, point.Good)
			if got, want := r.pdu.Writes(), []string{"pdu.outlet.command/5=2"}; !eq(got, want) {
				t.Fatalf("pdu writes after escalation: got %v, want %v (audit %v)", got, want, r.events())
			}
			if got := count(r.events(), EventDrainEscalated); got != 1 {
				t.Errorf("drain-escalated records: got %d, want 1", got)
			}
			found := false
			for _, a := range r.alerts {
				found = found || (a.Labels["decision"] == "drain-escalated" && a.Severity == alert.Major)
			}
			if !found {
				t.Errorf("alerts: got %+v, want a major drain-escalated alert", r.alerts)
			}
		})
	}
}

func TestDrainSurvivesRestart(t *testing.T) {
	r, cmd := drainRig(t)
	r.start()
	r.advance(2*time.Second, true, 8, point.Good)
	if got := len(r.payloads["drain/utility-failure"]); got != 1 {
		t.Fatalf("drain commands after the restart: got %d, want 1 (not sent again)", got)
	}
	if err := ack(t, r, cmd.ID, AckDrained, "a"); err != nil {
		t.Fatalf("ack after the restart: %v", err)
	}
	r.advance(time.Second, true, 8, point.Good)
	if got, want := r.pdu.Writes(), []string{"pdu.outlet.command/5=2"}; !eq(got, want) {
		t.Fatalf("pdu writes: got %v, want %v", got, want)
	}
}

func TestAckRejects(t *testing.T) {
	r, cmd := drainRig(t)
	tests := []struct {
		name    string
		payload string
		want    error
	}{
		{"malformed", `{"id":`, ErrInvalid},
		{"no id", `{"status":"drained"}`, ErrInvalid},
		{"unknown status", fmt.Sprintf(`{"id":%q,"status":"done"}`, cmd.ID), ErrInvalid},
		{"unknown id", `{"id":"other-1","status":"drained"}`, ErrUnknownCommand},
	}
	for _, tt := range tests {
		if err := r.ctl.Ack([]byte(tt.payload), "a"); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	if got := count(r.events(), EventDrainAck); got != 0 {
		t.Errorf("drain-ack records after rejected acks: got %d, want 0", got)
	}
}

// shedAll runs the drain policy to completion, the drain acknowledged.
func shedAll(t *testing.T, r *rig) {
	t.Helper()
	r.arm()
	r.advance(6*time.Second, true, 8, point.Good)
	cmds := r.payloads["drain/utility-failure"]
	var cmd DrainCommand
	if len(cmds) == 0 || json.Unmarshal(cmds[0], &cmd) != nil {
		t.Fatalf("no drain command: audit %v", r.events())
	}
	if err := ack(t, r, cmd.ID, AckDrained, "a"); err != nil {
		t.Fatal(err)
	}
	r.advance(2*time.Second, true, 8, point.Good)
	if evs := r.events(); evs[len(evs)-1] != EventCompleted {
		t.Fatalf("audit: got %v, want a completed shed", evs)
	}
}

func TestRestoreAutoReverseOrderAfterStablePower(t *testing.T) {
	r := newRigFile(t, "testdata/drain.yaml")
	shedAll(t, r)
	r.advance(9*time.Second, false, 30, point.Good) // mains back, not yet 10 s
	if got := count(r.events(), EventRestoring); got != 0 {
		t.Fatalf("restore started before power was stable for 10s: %v", r.events())
	}
	r.advance(5*time.Second, false, 30, point.Good)
	var got []string
	recs, _ := ReadAudit(filepath.Join(r.dir, "audit.jsonl"))
	for _, rec := range recs {
		if rec.Event == EventRestoreAction {
			got = append(got, fmt.Sprintf("%s=%g:%v", rec.Action.Load, rec.Action.Value, rec.Action.Verified))
		}
	}
	if want := []string{"app-01=1:true", "lab-2=1:true", "lab-1=1:true"}; !eq(got, want) {
		t.Fatalf("restore actions: got %v, want %v", got, want)
	}
	if evs := r.events(); evs[len(evs)-1] != EventRestored {
		t.Errorf("audit: got %v, want it to end with restored", evs)
	}
	if got, want := r.bank.Writes(), []string{"pdu.outlet.command.1/=0", "pdu.outlet.command.2/=0", "pdu.outlet.command.2/=1", "pdu.outlet.command.1/=1"}; !eq(got, want) {
		t.Errorf("bank writes: got %v, want %v", got, want)
	}
	r.advance(20*time.Second, false, 30, point.Good)
	if got := len(r.bank.Writes()) + len(r.pdu.Writes()); got != 6 {
		t.Errorf("writes after the restore: got %d, want 6 (nothing toggled again)", got)
	}
}

func TestRestoreAbortedWhenPowerFails(t *testing.T) {
	r := newRigFile(t, "testdata/drain.yaml")
	shedAll(t, r)
	r.advance(11*time.Second, false, 30, point.Good) // restore starts: app-01 back on
	r.advance(time.Second, true, 30, point.Good)     // on battery again (runtime fine)
	evs := r.events()
	if count(evs, EventRestoring) != 1 || count(evs, EventRestoreAborted) != 1 {
		t.Fatalf("audit: got %v, want a restore started then aborted", evs)
	}
	r.advance(15*time.Second, true, 30, point.Good)
	if got, want := r.bank.Writes(), []string{"pdu.outlet.command.1/=0", "pdu.outlet.command.2/=0"}; !eq(got, want) {
		t.Errorf("bank writes: got %v, want %v (the lab outlets stay off)", got, want)
	}
}

func TestRestoreLeavesLoadsOffBeforeTheShed(t *testing.T) {
	r := newRigFile(t, "testdata/drain.yaml")
	r.bank.state["pdu.outlet.state.1/"] = 0 // switched off by hand before
	shedAll(t, r)
	r.advance(15*time.Second, false, 30, point.Good)
	if slices.Contains(r.bank.Writes(), "pdu.outlet.command.1/=1") {
		t.Errorf("bank writes: got %v, want outlet 1 left off", r.bank.Writes())
	}
	if !slices.Contains(r.bank.Writes(), "pdu.outlet.command.2/=1") {
		t.Errorf("bank writes: got %v, want outlet 2 restored", r.bank.Writes())
	}
}

func TestRestartKeepsEpisodeAndAlerts(t *testing.T) {
	r := newRig(t) // disarmed: dry run
	r.advance(5*time.Second, true, 8, point.Good)
	if len(r.alerts) != 1 {
		t.Fatalf("alerts: got %d, want 1 dry-run alert", len(r.alerts))
	}
	dry := r.alerts[0]
	gone := alert.Event{ID: "x1", Kind: alert.KindFiring, State: alert.Firing, Rule: "loadshed/old-policy", Class: "power"}
	r.open = []alert.Event{dry, gone}
	r.alerts = nil
	r.start()
	if len(r.alerts) != 1 || r.alerts[0].ID != "x1" || r.alerts[0].State != alert.Resolved {
		t.Fatalf("alerts at start: got %+v, want x1 (policy gone) resolved", r.alerts)
	}
	r.alerts = nil
	r.advance(5*time.Second, true, 8, point.Good) // same episode, still holding
	if got := count(r.events(), EventDryRun); got != 1 {
		t.Errorf("dry-run records: got %d, want 1 (not again after the restart)", got)
	}
	if len(r.alerts) != 0 {
		t.Errorf("alerts while the episode goes on: got %+v, want none", r.alerts)
	}
	r.advance(3*time.Second, false, 30, point.Good)
	if len(r.alerts) != 1 || r.alerts[0].ID != dry.ID || r.alerts[0].State != alert.Resolved {
		t.Errorf("alerts once the trigger ended: got %+v, want %s resolved", r.alerts, dry.ID)
	}
}

func TestCompletedShedNotRepeatedAfterRestart(t *testing.T) {
	r := newRig(t)
	r.arm()
	r.advance(12*time.Second, true, 8, point.Good)
	if evs := r.events(); evs[len(evs)-1] != EventCompleted {
		t.Fatalf("audit: got %v, want a completed shed", evs)
	}
	r.start()
	r.advance(10*time.Second, true, 5, point.Good)
	if got := count(r.events(), EventTriggered); got != 1 {
		t.Errorf("triggered records: got %d, want 1 (the episode goes on after the restart)", got)
	}
	if got := len(r.bank.Writes()) + len(r.pdu.Writes()); got != 3 {
		t.Errorf("writes: got %d, want 3", got)
	}
}

// published decodes the drain topic's messages.
func published(t *testing.T, r *rig) []DrainCommand {
	t.Helper()
	var out []DrainCommand
	for _, b := range r.payloads["drain/utility-failure"] {
		var c DrainCommand
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestDrainWithdrawn(t *testing.T) {
	tests := []struct {
		name string
		// end ends or pauses the shed; onBattery is the UPS afterwards.
		end       func(t *testing.T, r *rig)
		onBattery bool
		reason    string
	}{
		{"trigger ends", func(t *testing.T, r *rig) {}, false, "the trigger no longer holds"},
		{"disarmed", func(t *testing.T, r *rig) {
			if err := r.ctl.Disarm("utility-failure", "alice", "false alarm"); err != nil {
				t.Fatal(err)
			}
		}, true, "disarmed"},
		{"inhibited", func(t *testing.T, r *rig) {
			if err := r.ctl.Inhibit("utility-failure", "bob", "orchestrator maintenance", true); err != nil {
				t.Fatal(err)
			}
		}, true, "inhibited by bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, cmd := drainRig(t)
			if err := ack(t, r, cmd.ID, AckAccepted, "a"); err != nil {
				t.Fatal(err)
			}
			tt.end(t, r)
			// Well past the deadline: no escalation, nothing written.
			r.advance(cmd.Deadline.Sub(r.now)+5*time.Second, tt.onBattery, 8, point.Good)
			cmds := published(t, r)
			if len(cmds) != 2 {
				t.Fatalf("drain topic: got %d messages, want the drain and one withdrawal (audit %v)", len(cmds), r.events())
			}
			w := cmds[1]
			if w.Action != ActionWithdraw || w.ID != cmd.ID || w.Stage != cmd.Stage || w.Episode != cmd.Episode || w.Scope != "hall-1" || w.AckTopic != "" {
				t.Errorf("withdrawal: got %+v, want action withdraw, id %s, stage %d, scope hall-1, no ack topic", w, cmd.ID, cmd.Stage)
			}
			if !strings.Contains(w.Reason, tt.reason) {
				t.Errorf("withdrawal reason: got %q, want it to contain %q", w.Reason, tt.reason)
			}
			if cmds[0].Action != ActionDrain {
				t.Errorf("drain command action: got %q, want %q", cmds[0].Action, ActionDrain)
			}
			evs := r.events()
			if count(evs, EventDrainWithdrawn) != 1 || count(evs, EventDrainEscalated) != 0 {
				t.Errorf("audit: got %v, want one drain-withdrawn and no drain-escalated", evs)
			}
			if got := r.pdu.Writes(); len(got) != 0 {
				t.Errorf("pdu writes: got %v, want none", got)
			}
			for _, a := range r.alerts {
				if a.Labels["decision"] == "drain-escalated" {
					t.Errorf("alerts: got a drain-escalated alert %+v, want none", a)
				}
			}
			// A late answer to the withdrawn command changes nothing.
			if err := ack(t, r, cmd.ID, AckDrained, "b"); err != nil && !errors.Is(err, ErrUnknownCommand) {
				t.Errorf("ack after the withdrawal: got %v, want nil or ErrUnknownCommand", err)
			}
			r.advance(2*time.Second, tt.onBattery, 8, point.Good)
			if got := count(r.events(), EventDrainAck); got != 1 {
				t.Errorf("drain-ack records: got %d, want 1 (accepted only)", got)
			}
			if got := r.pdu.Writes(); len(got) != 0 {
				t.Errorf("pdu writes after a late drained: got %v, want none", got)
			}
		})
	}
}

func TestDrainAskedAgainAfterInhibitReleased(t *testing.T) {
	r, cmd := drainRig(t)
	if err := r.ctl.Inhibit("utility-failure", "bob", "orchestrator maintenance", true); err != nil {
		t.Fatal(err)
	}
	r.advance(time.Second, true, 8, point.Good)
	if err := r.ctl.Inhibit("utility-failure", "bob", "done", false); err != nil {
		t.Fatal(err)
	}
	r.advance(time.Second, true, 8, point.Good)
	cmds := published(t, r)
	if len(cmds) != 3 {
		t.Fatalf("drain topic: got %d messages, want drain, withdraw, drain (audit %v)", len(cmds), r.events())
	}
	again := cmds[2]
	if again.Action != ActionDrain || again.ID != cmd.ID+"-2" || again.AckTopic == "" {
		t.Fatalf("drain after the release: got %+v, want action drain, id %s-2, an ack topic", again, cmd.ID)
	}
	if err := ack(t, r, cmd.ID, AckDrained, "a"); err != nil {
		t.Fatal(err)
	}
	r.advance(time.Second, true, 8, point.Good)
	if got := r.pdu.Writes(); len(got) != 0 {
		t.Fatalf("pdu writes after an answer to the withdrawn command: got %v, want none", got)
	}
	if err := ack(t, r, again.ID, AckDrained, "a"); err != nil {
		t.Fatal(err)
	}
	r.advance(time.Second, true, 8, point.Good)
	if got, want := r.pdu.Writes(), []string{"pdu.outlet.command/5=2"}; !eq(got, want) {
		t.Errorf("pdu writes: got %v, want %v", got, want)
	}
}

func TestDrainWithdrawnAfterRestartNotAfterEscalation(t *testing.T) {
	t.Run("restart", func(t *testing.T) {
		r, cmd := drainRig(t)
		r.start()
		r.advance(3*time.Second, false, 30, point.Good)
		r.start()
		r.advance(2*time.Second, false, 30, point.Good)
		cmds := published(t, r)
		if len(cmds) != 2 || cmds[1].Action != ActionWithdraw || cmds[1].ID != cmd.ID {
			t.Errorf("drain topic: got %+v, want the drain and one withdrawal of %s", cmds, cmd.ID)
		}
	})
	t.Run("escalated", func(t *testing.T) {
		r, cmd := drainRig(t)
		r.advance(cmd.Deadline.Sub(r.now)+2*time.Second, true, 8, point.Good) // escalated, app-01 off
		r.advance(3*time.Second, false, 30, point.Good)
		if got := len(published(t, r)); got != 1 {
			t.Errorf("drain topic: got %d messages, want only the drain (its stage ran)", got)
		}
		if got := count(r.events(), EventDrainWithdrawn); got != 0 {
			t.Errorf("drain-withdrawn records: got %d, want 0", got)
		}
	})
}

// A drain stage stopped between its loads (disarmed or inhibited after
// lab-2 went off) ran: its drain is not withdrawn.
func TestDrainNotWithdrawnOnceItsStageRan(t *testing.T) {
	tests := []struct {
		name string
		stop func(r *rig)
	}{
		{"inhibited", func(r *rig) {
			if err := r.ctl.Inhibit("utility-failure", "bob", "PDU work", true); err != nil {
				r.t.Fatal(err)
			}
		}},
		{"disarmed", func(r *rig) {
			if err := r.ctl.Disarm("utility-failure", "alice", "false alarm"); err != nil {
				r.t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRigFile(t, "testdata/drain-stage.yaml")
			r.arm()
			r.advance(6*time.Second, true, 8, point.Good) // stage 1, the drain of stage 2 sent
			cmds := published(t, r)
			if len(cmds) != 1 {
				t.Fatalf("drain topic: got %+v, want the drain (audit %v)", cmds, r.events())
			}
			r.bank.onWrite = func(w string) {
				if w == "pdu.outlet.command.2/=0" {
					tt.stop(r)
				}
			}
			if err := ack(t, r, cmds[0].ID, AckDrained, "a"); err != nil {
				t.Fatal(err)
			}
			r.advance(3*time.Second, true, 8, point.Good)
			if !slices.Contains(r.bank.Writes(), "pdu.outlet.command.2/=0") || len(r.pdu.Writes()) != 0 {
				t.Fatalf("writes: bank %v, pdu %v; want lab-2 off, app-01 not written", r.bank.Writes(), r.pdu.Writes())
			}
			if got := published(t, r); len(got) != 1 || count(r.events(), EventDrainWithdrawn) != 0 {
				t.Fatalf("drain topic: got %+v, audit %v; want no withdrawal", got, r.events())
			}
			if tt.name != "inhibited" {
				return
			}
			// Released: the stage goes on under its drain, not asked again.
			r.bank.onWrite = nil
			if err := r.ctl.Inhibit("utility-failure", "bob", "done", false); err != nil {
				t.Fatal(err)
			}
			r.advance(2*time.Second, true, 8, point.Good)
			if got, want := r.pdu.Writes(), []string{"pdu.outlet.command/5=2"}; !eq(got, want) {
				t.Errorf("pdu writes after the release: got %v, want %v", got, want)
			}
			if got := published(t, r); len(got) != 1 {
				t.Errorf("drain topic after the release: got %+v, want only the drain", got)
			}
		})
	}
}

package loadshed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/rules"
)

// stillOff returns the loads the policy's last shed switched off (or
// tried to) that no restore has switched on again. Call without c.mu.
func (c *Controller) stillOff(name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.state(name).Shed
	if s == nil {
		return nil
	}
	return unrestored(s)
}

// carried returns the loads a new shed of the policy counts as its own
// when it finds them off: those its last shed switched off and no restore
// switched on, less those whose state before that shed is unknown.
func (c *Controller) carried(name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.state(name).Shed
	if s == nil {
		return nil
	}
	var out []string
	for _, ln := range unrestored(s) {
		if !slices.Contains(s.PriorUnknown, ln) {
			out = append(out, ln)
		}
	}
	return out
}

// unrestored lists the loads of a shed written off and not restored on.
// Call with c.mu held.
func unrestored(s *Shed) []string {
	var out []string
	for ln, res := range s.Done {
		if res != ResultOff && res != ResultFailed {
			continue
		}
		if s.Restore != nil && s.Restore.Done[ln] == ResultOn {
			continue
		}
		out = append(out, ln)
	}
	slices.Sort(out)
	return out
}

// targets reports whether a policy sheds load ln in one of its stages.
func targets(pol *config.ShedPolicy, ln string) bool {
	for _, st := range pol.Stages {
		if slices.Contains(st.Targets, ln) {
			return true
		}
	}
	return false
}

// released reports whether a shed no longer holds load ln off: its
// restore switched it back on, or its restore completed (a load it left
// off it leaves to whoever else switched it off).
func released(s *Shed, ln string) bool {
	r := s.Restore
	return r != nil && (r.Done[ln] == ResultOn || (!r.Ended.IsZero() && r.Result == EventRestored))
}

// heldBy says which other policy holds load ln off, and why; "" if none.
// A policy Q holds it when Q's shed handled it (any result: off,
// already-off, failed) and Q has not restored it, or when Q sheds it and
// Q's trigger holds now. A restore of p leaves such a load off. Call with
// c.mu held.
func (c *Controller) heldBy(p *policy, ln string, all []rules.InstanceState) string {
	for _, q := range c.pols {
		if q == p {
			continue
		}
		s := c.state(q.cfg.Name).Shed
		var (
			res     string
			handled bool
		)
		if s != nil {
			res, handled = s.Done[ln]
		}
		if handled && !released(s, ln) {
			return fmt.Sprintf("held off by policy %s: its shed (episode %s) handled it (%s) and has not restored it", q.cfg.Name, s.Episode, res)
		}
		if why := holding(q.cfg.Rule.ID, all); why != "" && (handled || targets(q.cfg, ln)) {
			return fmt.Sprintf("held off by policy %s, which sheds it: %s", q.cfg.Name, why)
		}
	}
	return ""
}

// leftOff says why a restore of p leaves load ln of its shed s off, ""
// if it may switch it on: another policy holds it off, or its state
// before the shed is unknown (the shed wrote it without reading it on
// first). Call with c.mu held.
func (c *Controller) leftOff(p *policy, s *Shed, ln string, all []rules.InstanceState) string {
	if why := c.heldBy(p, ln, all); why != "" {
		return why
	}
	if slices.Contains(s.PriorUnknown, ln) {
		return "prior state unknown: the shed wrote it off without reading it on first, so it may have been off before (maintenance); switch it on at the device if it should be on"
	}
	return ""
}

// stepRestore runs the automatic restore of a policy whose shed is over:
// once restore_when holds (for its for-duration, on good inputs) and the
// trigger does not, the loads the shed switched off go back on in
// reverse order, stage by stage (the last stage shed first), at most one
// stage per min_stage_interval, each verified by read-back. Nothing is
// written while the policy is disarmed or inhibited.
func (c *Controller) stepRestore(ctx context.Context, p *policy, all []rules.InstanceState, armed, inhibited bool, now time.Time) {
	name := p.cfg.Name
	c.mu.Lock()
	s := c.state(name).Shed
	if s == nil || s.Ended.IsZero() || (s.Restore != nil && (s.Restore.Manual || !s.Restore.Ended.IsZero())) || (s.Restore == nil && len(unrestored(s)) == 0) {
		c.mu.Unlock()
		return
	}
	var rs *RestoreState
	if s.Restore != nil {
		cp := *s.Restore
		rs = &cp
	}
	c.mu.Unlock()
	if !armed || inhibited || p.cfg.RestoreRule == nil {
		return
	}
	trig := firing(p.cfg.RestoreRule.ID, all)
	if rs == nil {
		var t *trigger
		for i := range trig {
			if trig[i].good {
				t = &trig[i]
				break
			}
		}
		if t == nil {
			for _, x := range trig {
				if !unseen(x.in) && p.restoreRefused != x.in.ID {
					p.restoreRefused = x.in.ID
					c.record(Record{Time: now, Policy: name, Episode: s.Episode, Event: EventRefused, Inputs: x.in.Values,
						Reason: "restore held back: restore_when holds but its inputs are not good: " + x.why})
				}
			}
			return
		}
		c.mu.Lock()
		if s.Restore != nil {
			c.mu.Unlock()
			return // an engineer started a manual restore meanwhile
		}
		s.Restore = &RestoreState{Episode: t.in.ID, StartedAt: now, Done: map[string]string{}}
		c.saveLocked()
		c.mu.Unlock()
		c.record(Record{Time: now, Policy: name, Episode: s.Episode, Event: EventRestoring, Inputs: t.in.Values,
			Reason: fmt.Sprintf("restore_when held for %s on good inputs and the trigger does not: switching %s back on, last stage first", p.cfg.RestoreWhen.For, strings.Join(c.stillOff(name), ", "))})
		c.continueRestore(ctx, p, s, now)
		return
	}
	var t *trigger
	for i := range trig {
		if trig[i].in.ID == rs.Episode {
			t = &trig[i]
		}
	}
	switch {
	case t == nil:
		c.mu.Lock()
		s.Restore.Ended, s.Restore.Result = now, EventRestoreAborted
		c.saveLocked()
		left := unrestored(s)
		c.mu.Unlock()
		c.record(Record{Time: now, Policy: name, Episode: s.Episode, Event: EventRestoreAborted,
			Reason: "restore_when no longer holds (utility power not stable): the remaining loads stay off until restored by hand: " + strings.Join(left, ", ")})
		return
	case !t.good:
		return // wait for good data
	}
	c.continueRestore(ctx, p, s, now)
}

// continueRestore restores the next stage that has loads to restore,
// when it is due; stages with none are passed over at once.
func (c *Controller) continueRestore(ctx context.Context, p *policy, s *Shed, now time.Time) {
	n := len(p.cfg.Stages)
	for {
		c.mu.Lock()
		rs := s.Restore
		k := rs.NextStage
		var last time.Time
		if len(rs.StageAt) > 0 {
			last = rs.StageAt[len(rs.StageAt)-1]
		}
		var loads []string
		if k < n {
			tg := p.cfg.Stages[n-1-k].Targets
			for i := len(tg) - 1; i >= 0; i-- {
				if r := s.Done[tg[i]]; (r == ResultOff || r == ResultFailed) && rs.Done[tg[i]] == "" {
					loads = append(loads, tg[i])
				}
			}
			if len(loads) == 0 {
				rs.NextStage++
				c.saveLocked()
			}
		}
		c.mu.Unlock()
		switch {
		case k >= n:
			c.endRestore(p, s, c.now().UTC())
			return
		case len(loads) == 0:
			continue
		case !last.IsZero() && now.Before(last.Add(c.cfg.MinStageInterval)):
			return // the rate limit holds for restores too (inrush)
		}
		if !c.restoreStage(ctx, p, s, n-1-k, loads) {
			return // paused or aborted mid-stage
		}
		c.mu.Lock()
		rs.NextStage++
		rs.StageAt = append(rs.StageAt, c.now().UTC())
		c.saveLocked()
		c.mu.Unlock()
		return
	}
}

// restoreStage switches the loads of one shed stage back on. Before each
// load it checks again that the policy is not inhibited (nor, for an
// automatic restore, disarmed: the restore pauses) and that its trigger
// does not hold (the restore is aborted); it reports false then. A load
// another policy holds off, or whose state before the shed is unknown, is
// left off (audited; not a restore failure).
func (c *Controller) restoreStage(ctx context.Context, p *policy, s *Shed, stage int, loads []string) bool {
	name := p.cfg.Name
	for _, ln := range loads {
		l, _ := c.cfg.Load(ln)
		st := stage
		all := c.engine.Instances()
		now := c.now().UTC()
		c.mu.Lock()
		ps := c.state(name)
		by := s.Restore.By
		if ps.Inhibit != nil || (!s.Restore.Manual && ps.Arming == nil) {
			c.mu.Unlock()
			return false // paused: nothing is written while inhibited (or, automatic, disarmed)
		}
		if why := holding(p.cfg.Rule.ID, all); why != "" {
			s.Restore.Ended, s.Restore.Result = now, EventRestoreAborted
			c.saveLocked()
			left := unrestored(s)
			c.mu.Unlock()
			c.record(Record{Time: now, Policy: name, Episode: s.Episode, Event: EventRestoreAborted, Operator: by,
				Reason: why + ": the restore stops mid-stage; these loads stay off until restored by hand: " + strings.Join(left, ", ")})
			return false
		}
		if why := c.leftOff(p, s, ln, all); why != "" {
			s.Restore.Done[ln] = ResultLeftOff
			c.saveLocked()
			c.mu.Unlock()
			c.record(Record{Time: now, Policy: name, Episode: s.Episode, Event: EventRestoreAction, Stage: &st, Operator: by,
				Action: &Action{Load: ln, Tier: l.Tier, Device: l.Device, Point: l.Point, Index: l.Index, Value: l.OnValue, Skipped: "left off: " + why},
				Reason: "left off, not written: " + why})
			continue
		}
		c.mu.Unlock()
		a := c.switchLoad(ctx, l, l.OnValue, l.Verify.WantOn, "already on before the write")
		res := ResultOn
		if !a.Verified {
			res = ResultFailed
		}
		c.mu.Lock()
		s.Restore.Done[ln] = res
		c.saveLocked()
		c.mu.Unlock()
		c.record(Record{Time: c.now().UTC(), Policy: name, Episode: s.Episode, Event: EventRestoreAction, Stage: &st, Action: a, Operator: s.Restore.By})
		if res == ResultFailed {
			c.record(Record{Time: c.now().UTC(), Policy: name, Episode: s.Episode, Event: EventRestoreFailed, Stage: &st, Action: a, Operator: s.Restore.By,
				Reason: "the read-back did not confirm the load on"})
			c.raise(p, "restore-failed-"+ln, s.Episode, alert.Critical, c.now().UTC(), nil,
				fmt.Sprintf("load shed %s: %s (%s %s) NOT confirmed back on: %s", name, ln, l.Device, l.Point, actionProblem(a)))
		}
	}
	return true
}

// endRestore closes a restore, automatic or manual.
func (c *Controller) endRestore(p *policy, s *Shed, now time.Time) {
	c.mu.Lock()
	s.Restore.Ended, s.Restore.Result = now, EventRestored
	c.saveLocked()
	done := doneList(s.Restore.Done)
	by := s.Restore.By
	failed, kept := false, false
	for _, res := range s.Restore.Done {
		failed = failed || res == ResultFailed
		kept = kept || res == ResultLeftOff
	}
	c.mu.Unlock()
	why := "every load the shed switched off was switched back on: " + done
	switch {
	case failed && kept:
		why = "the loads the shed switched off were written on, NOT all confirmed (see restore-failed), except those left off (held by another policy, or prior state unknown: see restore-action): " + done
	case failed:
		why = "every load the shed switched off was written on, NOT all confirmed (see restore-failed): " + done
	case kept:
		why = "the loads the shed switched off were switched back on except those left off (held by another policy, or prior state unknown: see restore-action): " + done
	}
	c.record(Record{Time: now, Policy: p.cfg.Name, Episode: s.Episode, Event: EventRestored, Operator: by, Reason: why})
}

// ErrConflict is returned by an operator action the controller's state
// does not allow now: a manual restore while the trigger holds, while a
// shed or another restore runs, while inhibited, or with nothing to
// restore. The message says which; the HTTP layer answers 409.
var ErrConflict = errors.New("loadshed: refused")

// Restore starts a manual restore on behalf of by: the loads the policy's
// last shed switched off (or tried to) that are not back on go back on as
// an automatic restore does them (last stage first, at most one stage per
// min_stage_interval, each written and read back), on the controller's
// goroutine; Restore returns once the restore is recorded. Loads that were
// off before the shed are never switched on, nor are loads another
// policy's shed holds off (see heldBy) or whose state before the shed is
// unknown: those are left off, audited.
//
// It is refused (ErrConflict) while the trigger holds, pending or firing,
// or its inputs are not good enough to tell: restoring into a power
// situation that is still failing is what the policy exists to prevent.
// Also refused while a shed or another restore is in progress, while the
// policy is inhibited (nothing is written then), when nothing is off, and
// when every load still off is left off (held off by another policy,
// named, or prior state unknown).
// Disarming does not matter: a restore is an engineer's decision.
func (c *Controller) Restore(name, by, reason string) error {
	p, err := c.policy(name)
	if err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("%w: a restore needs a reason", ErrInvalid)
	}
	conflict := func(format string, args ...any) error {
		return fmt.Errorf("%w: restore %s: "+format, append([]any{ErrConflict, name}, args...)...)
	}
	// Refuse at once when the trigger holds, without waiting for a step
	// of the policy to finish; then again under the policy's lock. Before
	// the trigger's devices have been polled since the start, it has not
	// been evaluated: not holding then tells nothing.
	if unseen := c.unseenTrigger(p); len(unseen) > 0 {
		return conflict("no reading yet since the gateway started from %s, which the trigger reads: whether the power situation is over cannot be told yet", strings.Join(unseen, ", "))
	}
	if why := holding(p.cfg.Rule.ID, c.engine.Instances()); why != "" {
		return conflict("%s", why)
	}
	p.run.Lock()
	defer p.run.Unlock()
	all := c.engine.Instances()
	if why := holding(p.cfg.Rule.ID, all); why != "" {
		return conflict("%s", why)
	}
	now := c.now().UTC()
	c.mu.Lock()
	ps := c.state(name)
	s := ps.Shed
	var left, todo, kept []string
	if s != nil {
		left = unrestored(s)
	}
	switch {
	case ps.Inhibit != nil:
		err = conflict("the policy is inhibited by %s (%s): nothing is written while inhibited; release the inhibit first", ps.Inhibit.By, ps.Inhibit.Reason)
	case s == nil:
		err = conflict("nothing to restore: the policy has not shed anything")
	case s.Ended.IsZero():
		err = conflict("a shed is in progress (stage %d of %d next)", s.NextStage+1, len(p.cfg.Stages))
	case s.Restore != nil && s.Restore.Ended.IsZero() && s.Restore.Manual:
		err = conflict("a restore by %s is already in progress", s.Restore.By)
	case s.Restore != nil && s.Restore.Ended.IsZero():
		err = conflict("an automatic restore is in progress")
	case len(left) == 0:
		err = conflict("nothing to restore: every load the last shed switched off is back on (loads that were off before it stay off)")
	default:
		for _, ln := range left {
			if why := c.leftOff(p, s, ln, all); why != "" {
				kept = append(kept, ln+": "+why)
			} else {
				todo = append(todo, ln)
			}
		}
		var noOn []string
		for _, ln := range todo {
			if l, ok := c.cfg.Load(ln); !ok || l.On == "" || l.Verify.On == "" {
				noOn = append(noOn, ln)
			}
		}
		if len(todo) == 0 {
			err = conflict("nothing it may switch on: every load still off stays off: %s", strings.Join(kept, "; "))
		} else if len(noOn) > 0 {
			err = conflict("load(s) %s have no on: and verify.on: in the config, so the gateway cannot switch them on and prove it: switch them on at the device, or add the values", strings.Join(noOn, ", "))
		}
	}
	if err != nil {
		c.mu.Unlock()
		return err
	}
	rs := &RestoreState{Manual: true, By: by, Reason: reason, StartedAt: now, Done: map[string]string{}}
	if s.Restore != nil {
		// An earlier restore (aborted) switched some back on already.
		for ln, res := range s.Restore.Done {
			if res == ResultOn {
				rs.Done[ln] = res
			}
		}
	}
	s.Restore = rs
	c.saveLocked()
	c.mu.Unlock()
	c.record(Record{Time: now, Policy: name, Episode: s.Episode, Event: EventRestoring, Operator: by,
		Reason: fmt.Sprintf("%s (manual restore: switching %s back on, last stage first%s)", reason, strings.Join(todo, ", "), keptText(kept))})
	c.poke()
	return nil
}

func keptText(kept []string) string {
	if len(kept) == 0 {
		return ""
	}
	return "; left off: " + strings.Join(kept, "; ")
}

// stepManualRestore runs a manual restore in progress: the next stage
// when it is due, nothing while inhibited, and it stops (restore-aborted)
// when the trigger holds again.
func (c *Controller) stepManualRestore(ctx context.Context, p *policy, all []rules.InstanceState, inhibited bool, now time.Time) {
	c.mu.Lock()
	s := c.state(p.cfg.Name).Shed
	running := s != nil && s.Restore != nil && s.Restore.Manual && s.Restore.Ended.IsZero()
	c.mu.Unlock()
	if !running {
		return
	}
	if why := holding(p.cfg.Rule.ID, all); why != "" {
		c.mu.Lock()
		s.Restore.Ended, s.Restore.Result = now, EventRestoreAborted
		c.saveLocked()
		left := unrestored(s)
		by := s.Restore.By
		c.mu.Unlock()
		c.record(Record{Time: now, Policy: p.cfg.Name, Episode: s.Episode, Event: EventRestoreAborted, Operator: by,
			Reason: why + ": the manual restore stops; these loads stay off: " + strings.Join(left, ", ")})
		return
	}
	if inhibited {
		return // paused: nothing is written while inhibited
	}
	c.continueRestore(ctx, p, s, now)
}

// holding says why a trigger counts as holding, "" if it does not: an
// instance pending or firing (with missing: fire, also one whose inputs
// are bad, stale or missing).
func holding(rule string, all []rules.InstanceState) string {
	for _, in := range all {
		if in.Rule != rule {
			continue
		}
		on := in.Device + in.Group
		if on != "" {
			on = " on " + on
		}
		switch {
		case in.State == alert.Firing && in.SupervisionLost:
			return "the trigger's inputs are bad, stale or missing" + on + ", so whether the power situation is over cannot be told"
		case in.State == alert.Firing:
			return "the trigger still holds" + on + " (firing): restoring now would switch loads back onto the failing supply"
		case in.State == alert.Pending:
			return "the trigger condition holds" + on + " (pending its for-duration): restoring now would switch loads back onto the failing supply"
		}
	}
	return ""
}

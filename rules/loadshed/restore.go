package loadshed

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/facgw/facgw/internal/alert"
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
	if s == nil || s.Ended.IsZero() || (s.Restore != nil && !s.Restore.Ended.IsZero()) || (s.Restore == nil && len(unrestored(s)) == 0) {
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
		c.restoreStage(ctx, p, s, n-1-k, loads)
		c.mu.Lock()
		rs.NextStage++
		rs.StageAt = append(rs.StageAt, c.now().UTC())
		c.saveLocked()
		c.mu.Unlock()
		return
	}
}

// restoreStage switches the loads of one shed stage back on.
func (c *Controller) restoreStage(ctx context.Context, p *policy, s *Shed, stage int, loads []string) {
	name := p.cfg.Name
	for _, ln := range loads {
		l, _ := c.cfg.Load(ln)
		a := c.switchLoad(ctx, l, l.OnValue, l.Verify.WantOn, "already on before the write")
		res := ResultOn
		if !a.Verified {
			res = ResultFailed
		}
		c.mu.Lock()
		s.Restore.Done[ln] = res
		c.saveLocked()
		c.mu.Unlock()
		st := stage
		c.record(Record{Time: c.now().UTC(), Policy: name, Episode: s.Episode, Event: EventRestoreAction, Stage: &st, Action: a})
		if res == ResultFailed {
			c.record(Record{Time: c.now().UTC(), Policy: name, Episode: s.Episode, Event: EventRestoreFailed, Stage: &st, Action: a,
				Reason: "the read-back did not confirm the load on"})
			c.raise(p, "restore-failed-"+ln, s.Episode, alert.Critical, c.now().UTC(), nil,
				fmt.Sprintf("load shed %s: %s (%s %s) NOT confirmed back on: %s", name, ln, l.Device, l.Point, actionProblem(a)))
		}
	}
}

// endRestore closes an automatic restore.
func (c *Controller) endRestore(p *policy, s *Shed, now time.Time) {
	c.mu.Lock()
	s.Restore.Ended, s.Restore.Result = now, EventRestored
	c.saveLocked()
	done := doneList(s.Restore.Done)
	c.mu.Unlock()
	c.record(Record{Time: now, Policy: p.cfg.Name, Episode: s.Episode, Event: EventRestored, Reason: "every load the shed switched off was switched back on: " + done})
}

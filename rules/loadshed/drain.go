package loadshed

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
)

// DrainCommand is the payload of a drain command, published QoS 1 on
// every broker at <prefix>/<gateway>/loadshed/drain/<policy> when a drain
// stage comes due (Action ActionDrain). The orchestrator moves work off
// the listed loads (or the scope) and answers on AckTopic with a DrainAck
// of the same ID. When the shed is cancelled or inhibited before the
// stage ran, the same command goes out again on the same topic with
// Action ActionWithdraw and a Reason: the power cut it prepared for is
// not coming (for now); no answer is expected, and later answers to it
// are ignored.
type DrainCommand struct {
	// ID identifies the command; acknowledgements carry it back. It is
	// stable over gateway restarts: a command is sent once per stage of
	// a shed episode (again, with a new ID, only when the stage comes due
	// again after an inhibit withdrew it).
	ID string `json:"id"`
	// Action is ActionDrain or ActionWithdraw.
	Action  string `json:"action"`
	Site    string `json:"site"`
	Gateway string `json:"gateway"`
	Policy  string `json:"policy"`
	Episode string `json:"episode"`
	// Stage is the stage's number, 1-based as in the plan.
	Stage int    `json:"stage"`
	Scope string `json:"scope"`
	// Loads are the loads this stage switches off once drained (or at
	// the deadline); empty when the stage only drains.
	Loads []PlanLoad `json:"loads"`
	// Sent is when this message was sent: the drain, or the withdrawal.
	Sent time.Time `json:"sent"`
	// Deadline is when the gateway stops waiting and escalates (for a
	// withdrawal: the deadline the drain had).
	Deadline time.Time `json:"deadline"`
	// AckTopic is where to answer a drain; empty in a withdrawal.
	AckTopic string `json:"ack_topic,omitempty"`
	// Reason says why a drain is withdrawn.
	Reason string `json:"reason,omitempty"`
}

// Drain command actions.
const (
	ActionDrain    = "drain"
	ActionWithdraw = "withdraw"
)

// DrainAck is the orchestrator's answer to a drain command.
type DrainAck struct {
	ID string `json:"id"`
	// Status is AckAccepted (received, draining: the gateway keeps
	// waiting), AckDrained (done: the stage goes on at once) or AckFailed
	// (cannot drain: the gateway escalates at once).
	Status  string `json:"status"`
	By      string `json:"by,omitempty"`
	Message string `json:"message,omitempty"`
}

// Acknowledgement statuses.
const (
	AckAccepted = "accepted"
	AckDrained  = "drained"
	AckFailed   = "failed"
)

// ErrUnknownCommand is returned by Ack for an id no drain in progress
// has: a late answer to a finished stage, or someone else's.
var ErrUnknownCommand = errors.New("loadshed: no drain command in progress with this id")

// drained sends the stage's drain command if it has not been sent and
// reports whether the stage may go on: acknowledged as drained, or
// escalated (failed acknowledgement, or none by the deadline).
func (c *Controller) drained(p *policy, s *Shed, t *trigger, now time.Time) bool {
	idx := s.NextStage
	st := &p.cfg.Stages[idx]
	c.mu.Lock()
	d := s.drain(idx)
	var cp DrainState
	if d != nil {
		cp = *d
	}
	c.mu.Unlock()
	if d == nil || cp.Withdrawn {
		// Not sent yet, or withdrawn while inhibited: the stage is due
		// again, so the orchestrator is asked again.
		c.sendDrain(p, s, idx, st, t, now)
		return false
	}
	switch {
	case cp.Escalated || cp.AckStatus == AckDrained:
		return true
	case cp.AckStatus == AckFailed:
		c.escalate(p, s, d, now, fmt.Sprintf("the orchestrator (%s) could not drain: %s", cp.AckBy, cp.AckMessage))
		return true
	case now.Before(cp.Deadline):
		return false
	}
	c.escalate(p, s, d, now, fmt.Sprintf("no acknowledgement within %s", cp.Deadline.Sub(cp.SentAt)))
	return true
}

// sendDrain records the drain command durably, then publishes it. A
// command whose publishing fails is not sent again: the deadline
// escalates, as it would for a lost command.
func (c *Controller) sendDrain(p *policy, s *Shed, idx int, st *config.ShedStage, t *trigger, now time.Time) {
	name := p.cfg.Name
	id := fmt.Sprintf("%s-%s-%d", name, s.Episode, idx+1)
	c.mu.Lock()
	if n := s.drains(idx); n > 0 {
		id = fmt.Sprintf("%s-%d", id, n+1) // asked again after a withdrawal
	}
	c.mu.Unlock()
	d := &DrainState{ID: id, Stage: idx, Scope: st.Drain.Scope, SentAt: now, Deadline: now.Add(st.Drain.Timeout)}
	cmd := c.drainCommand(p, s, d, now)
	if c.opts.AckTopic != "" {
		cmd.AckTopic = c.opts.AckTopic + "/" + name
	}
	c.mu.Lock()
	s.Drains = append(s.Drains, d)
	c.saveLocked()
	c.mu.Unlock()
	st1 := idx
	c.record(Record{Time: now, Policy: name, Episode: s.Episode, Event: EventDrain, Stage: &st1, Inputs: t.in.Values, Drain: cmd,
		Reason: fmt.Sprintf("stage %d: drain command %s for %q; waiting for the orchestrator's acknowledgement until %s", idx+1, d.ID, d.Scope, d.Deadline.Format(time.RFC3339))})
	if err := c.publishDrain(name, cmd); err != nil {
		c.log.Error("loadshed: drain command not published; the stage escalates at its deadline", "policy", name, "id", d.ID, "err", err)
	}
}

// publishDrain publishes a drain command or withdrawal on the policy's
// drain topic.
func (c *Controller) publishDrain(policy string, cmd *DrainCommand) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	if c.opts.Publish == nil {
		return errors.New("no MQTT brokers to publish on")
	}
	return c.opts.Publish("drain/"+policy, b)
}

// drainCommand builds the payload of a drain command (ActionDrain; the
// caller adds the acknowledgement topic).
func (c *Controller) drainCommand(p *policy, s *Shed, d *DrainState, now time.Time) *DrainCommand {
	cmd := &DrainCommand{ID: d.ID, Action: ActionDrain, Site: c.opts.Site, Gateway: c.opts.Gateway, Policy: p.cfg.Name, Episode: s.Episode,
		Stage: d.Stage + 1, Scope: d.Scope, Loads: []PlanLoad{}, Sent: now, Deadline: d.Deadline}
	if plan := Plan(c.cfg, p.cfg); d.Stage < len(plan) && plan[d.Stage].Loads != nil {
		cmd.Loads = plan[d.Stage].Loads
	}
	return cmd
}

// withdrawDrain withdraws the drain command of the shed's next stage if
// one was sent and the stage has not run (no acknowledgement yet, only
// accepted, or drained with none of its loads handled yet: a stage
// stopped between its loads keeps its drain): the shed is being
// cancelled or paused, so the orchestrator need not (or no longer) move
// work for it. The withdrawal is recorded durably, audited, then
// published on the drain topic with the command's id; the gateway stops
// waiting for the answer and never escalates that command.
func (c *Controller) withdrawDrain(p *policy, s *Shed, now time.Time, why string) {
	name := p.cfg.Name
	c.mu.Lock()
	d := s.drain(s.NextStage)
	if d == nil || d.Escalated || d.Withdrawn || d.AckStatus == AckFailed || s.NextStage >= len(p.cfg.Stages) || stageStarted(p.cfg.Stages[s.NextStage].Targets, s.Done) {
		c.mu.Unlock()
		return
	}
	d.Withdrawn, d.WithdrawnAt, d.WithdrawReason = true, now, why
	c.saveLocked()
	cp := *d
	c.mu.Unlock()
	cmd := c.drainCommand(p, s, &cp, now)
	cmd.Action, cmd.Reason = ActionWithdraw, why
	stage := cp.Stage
	c.record(Record{Time: now, Policy: name, Episode: s.Episode, Event: EventDrainWithdrawn, Stage: &stage, Drain: cmd,
		Reason: fmt.Sprintf("drain %s withdrawn: %s; no longer waiting for the orchestrator", cp.ID, why)})
	if err := c.publishDrain(name, cmd); err != nil {
		c.log.Error("loadshed: drain withdrawal not published", "policy", name, "id", cp.ID, "err", err)
	}
}

// stageStarted reports whether any load of a stage was already handled:
// the stage ran in part (disarmed or inhibited mid-stage), so its drain
// stands and is never withdrawn.
func stageStarted(targets []string, done map[string]string) bool {
	for _, ln := range targets {
		if _, ok := done[ln]; ok {
			return true
		}
	}
	return false
}

// escalate records that a drain stage goes on without the orchestrator.
func (c *Controller) escalate(p *policy, s *Shed, d *DrainState, now time.Time, why string) {
	c.mu.Lock()
	d.Escalated = true
	stage := d.Stage
	id := d.ID
	c.saveLocked()
	c.mu.Unlock()
	c.record(Record{Time: now, Policy: p.cfg.Name, Episode: s.Episode, Event: EventDrainEscalated, Stage: &stage,
		Reason: fmt.Sprintf("drain %s: %s: escalating, stage %d goes on", id, why, stage+1)})
	c.raise(p, "drain-escalated", s.Episode, alert.Major, now, nil,
		fmt.Sprintf("load shed %s: drain %s not acknowledged (%s); escalated to the next stage", p.cfg.Name, id, why))
}

// Ack takes an acknowledgement of a drain command (the payload of a
// message on the acknowledgement topic); via names the broker it came
// through. The first acknowledgement of each status counts, from any
// broker; repeats are ignored (nil). An id no drain in progress has is
// ErrUnknownCommand, a malformed payload ErrInvalid.
func (c *Controller) Ack(payload []byte, via string) error {
	var a DrainAck
	if err := json.Unmarshal(payload, &a); err != nil {
		return fmt.Errorf("%w: drain acknowledgement: %v", ErrInvalid, err)
	}
	if a.ID == "" {
		return fmt.Errorf("%w: drain acknowledgement without id", ErrInvalid)
	}
	if !slices.Contains([]string{AckAccepted, AckDrained, AckFailed}, a.Status) {
		return fmt.Errorf("%w: drain acknowledgement %s: status %q, want accepted, drained or failed", ErrInvalid, a.ID, a.Status)
	}
	now := c.now().UTC()
	c.mu.Lock()
	var (
		d   *DrainState
		pol string
		ep  string
	)
	for _, p := range c.pols {
		if s := c.state(p.cfg.Name).Shed; s != nil && s.Ended.IsZero() {
			for _, x := range s.Drains {
				if x.ID == a.ID {
					d, pol, ep = x, p.cfg.Name, s.Episode
				}
			}
		}
	}
	if d == nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownCommand, a.ID)
	}
	final := d.AckStatus == AckDrained || d.AckStatus == AckFailed
	if final || d.AckStatus == a.Status || d.Escalated || d.Withdrawn {
		c.mu.Unlock()
		return nil // a repeat, or from the other broker, or too late
	}
	d.AckStatus, d.AckBy, d.AckMessage, d.AckVia = a.Status, a.By, a.Message, via
	if a.Status != AckAccepted {
		d.AckedAt = now
	}
	stage := d.Stage
	c.saveLocked()
	c.mu.Unlock()
	c.record(Record{Time: now, Policy: pol, Episode: ep, Event: EventDrainAck, Stage: &stage, Operator: a.By, Ack: &a,
		Reason: fmt.Sprintf("drain %s acknowledged %s by %s via %s: %s", a.ID, a.Status, a.By, via, a.Message)})
	c.poke()
	return nil
}

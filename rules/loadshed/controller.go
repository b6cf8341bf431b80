package loadshed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/rules"
)

// Actuator is the write side of a device driver: drivers/modbus.Device and
// drivers/snmp.Device implement it. WritePoint writes one value once (no
// retries) to a point the profile marks writable; ReadPoint reads one
// point now and returns it decoded with its quality (a failed read is a
// bad point with a reason, not an error). index is the row of a table
// column point, "" for a scalar. Both must be safe for concurrent use
// with polling, and bounded by ctx or the driver's own timeout.
type Actuator interface {
	WritePoint(ctx context.Context, name, index string, value float64) error
	ReadPoint(ctx context.Context, name, index string) point.Point
}

// Errors of the operator actions, for the HTTP layer.
var (
	ErrUnknownPolicy = errors.New("loadshed: no such policy")
	ErrInvalid       = errors.New("loadshed: invalid request")
)

// Options configure a Controller.
type Options struct {
	// Config is the checked loadshed section (config.Load compiled each
	// policy's trigger into its Rule).
	Config *config.Loadshed
	// Site and Gateway go into alert events.
	Site, Gateway string
	// Devices are the devices the triggers may select, as the rules
	// engine wants them.
	Devices []rules.Device
	// Actuators write and read back the loads' devices, by device id.
	Actuators map[string]Actuator
	// Dir holds the audit log and the durable state; created if needed.
	Dir string
	// Publish, when set, is handed every audit record (JSON) and the
	// topic level below loadshed/ it belongs on ("audit/<policy>"). It
	// must not block for long; the gateway appends to the MQTT outboxes.
	Publish func(sub string, payload []byte) error
	// Alert, when set, is handed alert events (class power, rule
	// loadshed/<policy>) for the dispatcher.
	Alert func(evs []alert.Event)
	// Log receives what the controller does; nil discards.
	Log *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// ReadbackEvery is the pause between read-backs; default 100 ms.
	ReadbackEvery time.Duration
	// OpenAlerts are the open alert events of rules loadshed/* that the
	// alert ledger kept over a restart: the controller adopts those of
	// its policies (and resolves them when their episode ends) and
	// resolves those of policies no longer configured.
	OpenAlerts []alert.Event
	// AckTopic is the topic under which the orchestrator acknowledges
	// drain commands (<AckTopic>/<policy>); it goes into each command so
	// the orchestrator need not be told.
	AckTopic string
	// Alerts is where triggers read other rules' alerts with firing()
	// and firing_any(): the gateway's rules engine. Nil: firing() is
	// unknown, so a trigger that needs it holds on unknown data and is
	// refused, never acted on.
	Alerts rules.AlertState
}

// Controller runs the load-shed policies. Feed and Tick take points and
// time from the gateway; Run executes decisions on its own goroutine, so
// a slow device write never holds up polling. The operator actions and
// Status are safe for concurrent use.
type Controller struct {
	opts   Options
	cfg    *config.Loadshed
	log    *slog.Logger
	now    func() time.Time
	engine *rules.Engine
	audit  *auditLog
	wake   chan struct{}

	mu        sync.Mutex
	st        *persisted
	pols      []*policy
	lastStage time.Time // when the last stage of any policy ran: the rate limit

	seen sync.Map // device id -> true: a batch came from it since the start
}

// policy is a policy's run-time bookkeeping; what must survive a restart
// is in st.
type policy struct {
	cfg *config.ShedPolicy
	// episodes the controller already spoke about, so each decision is
	// audited once per trigger episode.
	dryRun, refused, inhibited string
	// restoreRefused is the restore_when episode refused for bad inputs.
	restoreRefused string
	// open alert events, resolved when the episode ends.
	open []alert.Event
	// run is held while the controller steps the policy, and by an
	// operator action that must not interleave with a step (a manual
	// restore starting): device I/O for one policy is never concurrent.
	run sync.Mutex
}

// New builds a controller: it opens the audit log and the state in
// opts.Dir, arms the policies the config arms (unless the state records a
// later operator decision) and puts a shed that was in progress back
// where it was. No device I/O happens here.
func New(opts Options) (*Controller, error) {
	if opts.Config == nil {
		return nil, errors.New("loadshed: no config")
	}
	c := &Controller{opts: opts, cfg: opts.Config, log: opts.Log, now: opts.Now, wake: make(chan struct{}, 1)}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.opts.ReadbackEvery <= 0 {
		c.opts.ReadbackEvery = 100 * time.Millisecond
	}
	var trig []*rules.Rule
	for i := range c.cfg.Policies {
		p := &c.cfg.Policies[i]
		if p.Rule == nil {
			return nil, fmt.Errorf("loadshed: policy %q has no compiled trigger (load the config with config.Load)", p.Name)
		}
		trig = append(trig, p.Rule)
		if p.RestoreRule != nil {
			trig = append(trig, p.RestoreRule)
		}
		c.pols = append(c.pols, &policy{cfg: p})
	}
	set, err := rules.NewRuleSet(&rules.Pack{Name: "loadshed", File: "loadshed", Rules: trig})
	if err != nil {
		return nil, fmt.Errorf("loadshed: %w", err)
	}
	alerts := opts.Alerts
	if alerts == nil {
		alerts = rules.NoAlerts
	}
	if c.engine, err = rules.NewEngine(set, opts.Devices, rules.Options{Site: opts.Site, Gateway: opts.Gateway, Log: c.log, Alerts: alerts}); err != nil {
		return nil, fmt.Errorf("loadshed: %w", err)
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("loadshed: %w", err)
	}
	var (
		aside error
		moved string
	)
	if c.st, moved, aside, err = loadState(opts.Dir, c.now()); err != nil {
		return nil, err
	}
	if c.audit, err = openAudit(opts.Dir); err != nil {
		return nil, err
	}
	now := c.now().UTC()
	if aside != nil {
		c.log.Error("loadshed: state unreadable; starting without it", "err", aside)
		c.record(Record{Time: now, Event: EventStateUnreadable, Reason: aside.Error()})
	}
	var active []alert.Event
	for _, p := range c.pols {
		ps := c.state(p.cfg.Name)
		if ps.Arming == nil && p.cfg.Armed {
			ps.Arming = &Arming{By: "config", Reason: "armed: true in " + p.cfg.Pos.File, At: now}
			c.record(Record{Time: now, Policy: p.cfg.Name, Event: EventArmed, Operator: "config", Reason: ps.Arming.Reason})
		}
		if aside != nil {
			// Fail safe: an engineer's inhibit may be lost with the state,
			// and a shed or restore may be half done: nothing is written
			// until an engineer checks and releases the inhibit.
			ps.Inhibit = &Arming{By: "facgw", At: now,
				Reason: "state file unreadable at start (moved to " + moved + "): inhibited until an engineer checks and releases it"}
			c.record(Record{Time: now, Policy: p.cfg.Name, Event: EventInhibited, Operator: "facgw", Reason: ps.Inhibit.Reason})
		}
		if w := ps.Watch; w != nil {
			active = append(active, w.Trigger)
			p.dryRun, p.refused, p.inhibited = w.DryRun, w.Refused, w.Inhibited
		} else if s := ps.Shed; s != nil && s.Ended.IsZero() {
			active = append(active, s.Trigger)
		}
		if s := ps.Shed; s != nil && s.Ended.IsZero() {
			c.record(Record{Time: now, Policy: p.cfg.Name, Episode: s.Episode, Event: EventResumed,
				Reason: fmt.Sprintf("shed in progress at restart: stage %d of %d next; loads done: %s", s.NextStage+1, len(p.cfg.Stages), doneList(s.Done))})
		}
	}
	// The trigger episode the controller was acting on is firing again
	// at once, with its id: the next evaluation on fresh data resolves it
	// (and so cancels the rest of a shed, and resolves its alerts) if the
	// condition is gone, or goes on with it: no second dry run, refusal
	// or shed for the same episode.
	c.engine.Restore(active)
	c.adoptAlerts(now)
	if err := c.st.save(opts.Dir); err != nil {
		c.audit.close()
		return nil, err
	}
	return c, nil
}

func doneList(m map[string]string) string {
	if len(m) == 0 {
		return "none"
	}
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// state returns a policy's durable state, creating it. Call with c.mu held
// (or before the controller is shared).
func (c *Controller) state(name string) *policyState {
	ps := c.st.Policies[name]
	if ps == nil {
		ps = &policyState{}
		c.st.Policies[name] = ps
	}
	return ps
}

// adoptAlerts takes over the open loadshed/* alerts the ledger kept over a
// restart: a policy's go back into its open list, to be resolved with
// their episode; those of a policy no longer configured are resolved now.
func (c *Controller) adoptAlerts(now time.Time) {
	var orphans []alert.Event
	for _, ev := range c.opts.OpenAlerts {
		if !strings.HasPrefix(ev.Rule, "loadshed/") || ev.State != alert.Firing {
			continue
		}
		name := strings.TrimPrefix(ev.Rule, "loadshed/")
		p, err := c.policy(name)
		if err != nil {
			ev.Kind, ev.State, ev.At, ev.ResolvedAt = alert.KindResolved, alert.Resolved, now, now
			ev.Summary = "resolved: load-shed policy " + name + " is no longer configured (" + ev.Summary + ")"
			orphans = append(orphans, ev)
			continue
		}
		dup := false
		for _, o := range p.open {
			dup = dup || o.ID == ev.ID
		}
		if !dup {
			p.open = append(p.open, ev)
		}
	}
	if len(orphans) > 0 && c.opts.Alert != nil {
		c.opts.Alert(orphans)
	}
}

// watch records, durably, the trigger episode a decision was made on and
// the decision, so a restart neither repeats nor forgets it.
func (c *Controller) watch(p *policy, t trigger) {
	ev := c.triggerEvent(t)
	c.mu.Lock()
	ps := c.state(p.cfg.Name)
	ps.Watch = &Watch{Trigger: ev, DryRun: p.dryRun, Refused: p.refused, Inhibited: p.inhibited}
	c.saveLocked()
	c.mu.Unlock()
}

func (c *Controller) triggerEvent(t trigger) alert.Event {
	return alert.Event{ID: t.in.ID, Kind: alert.KindFiring, State: alert.Firing, Rule: t.in.Rule, Class: t.in.Class, Severity: t.in.Severity,
		Device: t.in.Device, Group: t.in.Group, Devices: t.in.Devices, Site: c.opts.Site, Gateway: c.opts.Gateway,
		ActiveAt: t.in.ActiveAt, FiredAt: t.in.FiredAt, At: t.in.FiredAt, Labels: t.in.Labels}
}

// Close closes the audit log.
func (c *Controller) Close() error { return c.audit.close() }

// Feed evaluates the triggers on a batch of points and wakes the runner.
// It is cheap and never blocks on devices: call it on the polling path.
func (c *Controller) Feed(pts []point.Point) {
	c.engine.Feed(pts)
	c.markSeen(pts)
	c.poke()
}

// markSeen records the devices a batch came from: a manual restore waits
// until every device a policy's trigger reads has been polled since the
// start (see unseenTrigger).
func (c *Controller) markSeen(pts []point.Point) {
	last := ""
	for i := range pts {
		if d := pts[i].Device; d != last {
			last = d
			// Polling path: a lock-free read once the device is known.
			if _, ok := c.seen.Load(d); !ok {
				c.seen.Store(d, true)
			}
		}
	}
}

// unseenTrigger lists the devices the policy's trigger selects that no
// batch has come from since the start.
func (c *Controller) unseenTrigger(p *policy) []string {
	var out []string
	for i := range c.opts.Devices {
		d := &c.opts.Devices[i]
		if _, seen := c.seen.Load(d.ID); !seen && p.cfg.Rule.Select.Matches(d) {
			out = append(out, d.ID)
		}
	}
	return out
}

// Tick completes for-durations of triggers no new point reaches.
func (c *Controller) Tick(now time.Time) {
	c.engine.Tick(now)
	c.poke()
}

func (c *Controller) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run decides and executes until ctx ends: on every Feed or Tick and at
// least every 100 ms (stage delays, arming expiry, for-durations of
// triggers gone silent). It runs on the caller's goroutine.
func (c *Controller) Run(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
		case now := <-t.C:
			// Completes for-durations of triggers no new point reaches.
			c.engine.Tick(now)
		}
		c.Step(ctx)
	}
}

// trigger is a policy's trigger instance as the controller sees it.
type trigger struct {
	in   rules.InstanceState
	good bool   // every input good, not fired on unknown data
	why  string // why not good
}

// triggers returns the firing instances of a policy's trigger.
func (c *Controller) triggers(p *policy, all []rules.InstanceState) []trigger {
	return firing(p.cfg.Rule.ID, all)
}

// firing returns the firing instances of a rule, each with whether every
// input it read is good.
func firing(rule string, all []rules.InstanceState) []trigger {
	var out []trigger
	for _, in := range all {
		if in.Rule != rule || in.State != alert.Firing {
			continue
		}
		t := trigger{in: in, good: true}
		var bad []string
		if in.SupervisionLost {
			bad = append(bad, "the condition is unknown (inputs bad, stale or missing)")
		}
		keys := make([]string, 0, len(in.Values))
		for k := range in.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if v := in.Values[k]; v.Quality != point.Good.String() {
				s := k + " is " + v.Quality
				if v.Reason != "" {
					s += " (" + v.Reason + ")"
				}
				bad = append(bad, s)
			}
		}
		if len(bad) > 0 {
			t.good, t.why = false, strings.Join(bad, "; ")
		}
		out = append(out, t)
	}
	return out
}

// Step makes one round of decisions and runs what is due. Run calls it;
// tests call it directly.
func (c *Controller) Step(ctx context.Context) {
	all := c.engine.Instances()
	for _, p := range c.pols {
		p.run.Lock()
		c.stepPolicy(ctx, p, all)
		p.run.Unlock()
	}
}

func (c *Controller) stepPolicy(ctx context.Context, p *policy, all []rules.InstanceState) {
	now := c.now().UTC()
	name := p.cfg.Name
	c.mu.Lock()
	ps := c.state(name)
	if a := ps.Arming; a != nil && !a.Until.IsZero() && !now.Before(a.Until) {
		ps.Arming = nil
		c.saveLocked()
		c.record(Record{Time: now, Policy: name, Event: EventArmExpired, Operator: a.By, Reason: "arming by " + a.By + " expired at " + a.Until.Format(time.RFC3339)})
	}
	armed, inhibited := ps.Arming != nil, ps.Inhibit != nil
	inhibitBy := ""
	if inhibited {
		inhibitBy = ps.Inhibit.By
	}
	shed, lastEpisode := ps.Shed, ""
	if shed != nil && !shed.Ended.IsZero() {
		// The episode that shed ran under stays handled until its
		// trigger ends: a completed or cancelled shed never starts over.
		shed, lastEpisode = nil, shed.Episode
	}
	c.mu.Unlock()

	trig := c.triggers(p, all)
	if shed != nil {
		c.continueShed(ctx, p, shed, trig, armed, inhibited, now)
		return
	}
	// A manual restore goes on, or stops if the trigger holds again (a
	// firing trigger is then handled below like any other).
	c.stepManualRestore(ctx, p, all, inhibited, now)
	if len(trig) == 0 {
		if p.dryRun != "" || p.refused != "" || p.inhibited != "" || len(p.open) > 0 || c.watching(name) {
			c.endEpisode(p, now, "")
		}
		if p.cfg.Restore == config.RestoreAuto {
			c.stepRestore(ctx, p, all, armed, inhibited, now)
		}
		return
	}
	// Prefer a trigger instance with good inputs; any one suffices.
	t := trig[0]
	for _, x := range trig {
		if x.good {
			t = x
			break
		}
	}
	id := t.in.ID
	switch {
	case id == lastEpisode:
		// Already shed (or cancelled) in this episode.
	case !t.good && unseen(t.in):
		// Put back after a restart, no reading yet: wait for data.
	case !t.good:
		if p.refused != id {
			p.refused = id
			c.watch(p, t)
			c.record(Record{Time: now, Policy: name, Episode: id, Event: EventRefused, Inputs: t.in.Values,
				Reason: "trigger held but its inputs are not good: " + t.why})
			c.raise(p, "refused", id, alert.Critical, now, t.in.Values,
				fmt.Sprintf("load shed %s refused: its trigger held on inputs that are not good (%s)", name, t.why))
		}
	case inhibited:
		if p.inhibited != id {
			p.inhibited = id
			c.watch(p, t)
			c.record(Record{Time: now, Policy: name, Episode: id, Event: EventRefused, Inputs: t.in.Values, Operator: inhibitBy,
				Reason: "trigger held but the policy is inhibited by " + inhibitBy})
			c.raise(p, "inhibited", id, alert.Major, now, t.in.Values, fmt.Sprintf("load shed %s: trigger held, not shedding: inhibited by %s", name, inhibitBy))
		}
	case !armed:
		if p.dryRun != id {
			p.dryRun = id
			c.watch(p, t)
			plan := Plan(c.cfg, p.cfg)
			c.record(Record{Time: now, Policy: name, Episode: id, Event: EventDryRun, Inputs: t.in.Values, Plan: plan, DryRun: true,
				Reason: "trigger held; the policy is disarmed, so this is what it would shed"})
			c.raise(p, "dry-run", id, alert.Warning, now, t.in.Values, fmt.Sprintf("load shed %s (disarmed, dry run): trigger held; would shed %d stage(s): %s", name, len(plan), planText(plan)))
		}
	default:
		ev := c.triggerEvent(t)
		s := &Shed{Episode: id, Trigger: ev, StartedAt: now, Done: map[string]string{}, Carried: c.carried(name)}
		c.mu.Lock()
		ps.Shed = s
		ps.Watch = &Watch{Trigger: ev, DryRun: p.dryRun, Refused: p.refused, Inhibited: p.inhibited}
		c.saveLocked()
		arming := ps.Arming
		c.mu.Unlock()
		c.record(Record{Time: now, Policy: name, Episode: id, Event: EventTriggered, Inputs: t.in.Values, Operator: arming.By,
			Reason: fmt.Sprintf("trigger held with good inputs; armed by %s (%s): shedding %d stage(s)", arming.By, arming.Reason, len(p.cfg.Stages))})
		c.raise(p, "shed", id, alert.Critical, now, t.in.Values, fmt.Sprintf("load shed %s started: %s", name, planText(Plan(c.cfg, p.cfg))))
		c.continueShed(ctx, p, s, trig, true, false, now)
	}
}

// continueShed runs the next stage of a shed in progress when it is due,
// or ends the shed when its trigger is gone or the policy was disarmed.
func (c *Controller) continueShed(ctx context.Context, p *policy, s *Shed, trig []trigger, armed, inhibited bool, now time.Time) {
	name := p.cfg.Name
	var t *trigger
	for i := range trig {
		if trig[i].in.ID == s.Episode {
			t = &trig[i]
		}
	}
	switch {
	case t == nil:
		c.withdrawDrain(p, s, now, "the trigger no longer holds: the shed is cancelled")
		c.finish(p, s, now, EventCancelled, "the trigger no longer holds: the remaining stages are cancelled; shed loads stay off until restored by hand")
		return
	case !armed:
		c.withdrawDrain(p, s, now, "the policy was disarmed: the shed is cancelled")
		c.finish(p, s, now, EventCancelled, "the policy was disarmed: the remaining stages are cancelled")
		return
	case inhibited:
		// Paused: nothing is written while inhibited, and a drain waiting
		// for its answer is withdrawn (asked again if the stage comes due
		// after the release).
		c.mu.Lock()
		by := ""
		if in := c.state(name).Inhibit; in != nil {
			by = in.By
		}
		c.mu.Unlock()
		c.withdrawDrain(p, s, now, "the policy is inhibited by "+by+": the shed is paused")
		return
	case !t.good && unseen(t.in):
		return // restored after a restart, no reading yet: wait for data
	case !t.good:
		if p.refused != s.Episode+"/"+fmt.Sprint(s.NextStage) {
			p.refused = s.Episode + "/" + fmt.Sprint(s.NextStage)
			st := s.NextStage
			c.record(Record{Time: now, Policy: name, Episode: s.Episode, Event: EventRefused, Stage: &st, Inputs: t.in.Values,
				Reason: "stage held back: the trigger's inputs are not good: " + t.why})
			c.raise(p, "refused", s.Episode, alert.Critical, now, t.in.Values,
				fmt.Sprintf("load shed %s: stage %d held back, inputs not good (%s)", name, st+1, t.why))
		}
		return
	}
	if s.NextStage >= len(p.cfg.Stages) {
		c.finish(p, s, now, EventCompleted, "every stage ran")
		return
	}
	st := p.cfg.Stages[s.NextStage]
	prev := s.StartedAt
	if n := len(s.StageAt); n > 0 {
		prev = s.StageAt[n-1]
	}
	due := prev.Add(st.After)
	c.mu.Lock()
	if s.NextStage > 0 || !c.lastStage.IsZero() {
		// The rate limit: no stage sooner than min_stage_interval after
		// the last stage of any policy.
		last := c.lastStage
		if n := len(s.StageAt); n > 0 && s.StageAt[n-1].After(last) {
			last = s.StageAt[n-1]
		}
		if !last.IsZero() {
			due = maxTime(due, last.Add(c.cfg.MinStageInterval))
		}
	}
	c.mu.Unlock()
	if now.Before(due) {
		return
	}
	if st.Drain != nil && !c.drained(p, s, t, now) {
		return // waiting for the orchestrator's acknowledgement
	}
	c.runStage(ctx, p, s, t)
	if s.NextStage >= len(p.cfg.Stages) {
		c.finish(p, s, c.now().UTC(), EventCompleted, "every stage ran")
	}
}

// unseen reports whether an instance has read nothing yet: every input is
// missing and it did not fire on unknown data (a trigger restored at start).
func unseen(in rules.InstanceState) bool {
	for _, v := range in.Values {
		if v.Quality != "missing" {
			return false
		}
	}
	return !in.SupervisionLost
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// runStage switches off the loads of the next stage, one by one, each
// verified by read-back, recording progress durably after each.
func (c *Controller) runStage(ctx context.Context, p *policy, s *Shed, t *trigger) {
	idx := s.NextStage
	st := p.cfg.Stages[idx]
	name := p.cfg.Name
	start := c.now().UTC()
	c.record(Record{Time: start, Policy: name, Episode: s.Episode, Event: EventStage, Stage: &idx, Inputs: t.in.Values,
		Reason: fmt.Sprintf("stage %d of %d: %s", idx+1, len(p.cfg.Stages), strings.Join(st.Targets, ", "))})
	var failed []string
	for _, ln := range st.Targets {
		c.mu.Lock()
		ps := c.state(name)
		stillArmed := ps.Arming != nil && ps.Inhibit == nil
		res, done := s.Done[ln]
		c.mu.Unlock()
		if done {
			c.record(Record{Time: c.now().UTC(), Policy: name, Episode: s.Episode, Event: EventAction, Stage: &idx,
				Action: &Action{Load: ln, Skipped: "already handled in this episode (" + res + "); never written twice"}})
			continue
		}
		if !stillArmed {
			return // disarmed or inhibited mid-stage: the next Step ends or pauses the shed
		}
		l, _ := c.cfg.Load(ln)
		a := c.shedLoad(ctx, l)
		// Written without reading it on first: it may have been off
		// before the shed (maintenance), so no restore switches it on.
		unknown := a.Skipped == "" && !readOn(l, a.Before)
		result := "off"
		switch {
		case !a.Verified && a.Skipped == "":
			result = "failed"
			failed = append(failed, ln)
		case a.Skipped != "" && !slices.Contains(s.Carried, ln):
			// Off before this shed and not by an earlier one: someone
			// switched it off; an automatic restore leaves it so.
			result = ResultAlreadyOff
		}
		c.mu.Lock()
		s.Done[ln] = result
		if unknown {
			s.PriorUnknown = append(s.PriorUnknown, ln)
		}
		c.saveLocked()
		c.mu.Unlock()
		c.record(Record{Time: c.now().UTC(), Policy: name, Episode: s.Episode, Event: EventAction, Stage: &idx, Action: a})
		if result == "failed" {
			c.record(Record{Time: c.now().UTC(), Policy: name, Episode: s.Episode, Event: EventShedFailed, Stage: &idx, Action: a,
				Reason: "the read-back did not confirm the load off"})
			c.raise(p, "failed-"+ln, s.Episode, alert.Critical, c.now().UTC(), nil,
				fmt.Sprintf("load shed %s: %s (%s %s) NOT confirmed off: %s", name, ln, l.Device, l.Point, actionProblem(a)))
		}
	}
	end := c.now().UTC()
	c.mu.Lock()
	s.StageAt = append(s.StageAt, end)
	s.NextStage = idx + 1
	c.lastStage = end
	c.saveLocked()
	c.mu.Unlock()
}

// readOn reports whether a reading before a shed's write showed the load
// on: good, and the verify.on value (any value but off for a load
// without verify.on, which no restore switches on).
func readOn(l *config.ShedLoad, r *Reading) bool {
	return r != nil && r.Quality == point.Good.String() && (l.Verify.On == "" || r.Value == l.Verify.WantOn)
}

func actionProblem(a *Action) string {
	if a.WriteError != "" {
		return "write failed: " + a.WriteError
	}
	if a.After == nil {
		return "no read-back"
	}
	if a.After.Quality != point.Good.String() {
		return "read-back " + a.After.Quality + ": " + a.After.Reason
	}
	return fmt.Sprintf("read back %g (%s), want %g", a.After.Value, a.After.Text, a.After.Want)
}

// shedLoad writes one load off and reads it back until it shows off or
// the verify timeout passes. A load that already reads off is not
// written: an outlet is never toggled for nothing.
func (c *Controller) shedLoad(ctx context.Context, l *config.ShedLoad) *Action {
	return c.switchLoad(ctx, l, l.OffValue, l.Verify.Want, "already off before the write")
}

// switchLoad writes value to a load unless its verify point already shows
// want, then reads back until it does or verify_timeout passes.
func (c *Controller) switchLoad(ctx context.Context, l *config.ShedLoad, value, want float64, already string) *Action {
	a := &Action{Load: l.Name, Tier: l.Tier, Device: l.Device, Point: l.Point, Index: l.Index, Value: value}
	act := c.opts.Actuators[l.Device]
	if act == nil {
		a.WriteError = "no actuator for device " + l.Device
		return a
	}
	vctx, cancel := context.WithTimeout(ctx, c.cfg.VerifyTimeout)
	defer cancel()
	read := func() *Reading {
		pt := act.ReadPoint(vctx, l.Verify.Point, l.Index)
		return &Reading{Point: pt.Name, Value: pt.Num, Text: pt.Str, Quality: pt.Quality.String(), Reason: pt.Reason, Want: want}
	}
	ok := func(r *Reading) bool { return r.Quality == point.Good.String() && r.Value == r.Want }
	a.Before = read()
	if ok(a.Before) {
		a.Verified, a.After, a.Skipped = true, a.Before, already
		return a
	}
	if err := act.WritePoint(vctx, l.Point, l.Index, value); err != nil {
		a.WriteError = err.Error()
		// The write may have reached the device before the error (a
		// lost reply): the read-back below still decides.
	}
	for {
		a.After = read()
		if ok(a.After) {
			a.Verified = true
			return a
		}
		select {
		case <-vctx.Done():
			return a
		case <-time.After(c.opts.ReadbackEvery):
		}
	}
}

// finish ends a shed episode.
func (c *Controller) finish(p *policy, s *Shed, now time.Time, event, reason string) {
	c.mu.Lock()
	s.Ended, s.Result = now, event
	c.saveLocked()
	c.mu.Unlock()
	c.record(Record{Time: now, Policy: p.cfg.Name, Episode: s.Episode, Event: event, Reason: reason + "; loads handled: " + doneList(s.Done)})
	if event == EventCancelled {
		c.endEpisode(p, now, s.Episode)
	}
}

// endEpisode resolves the alerts of an episode whose trigger is gone.
func (c *Controller) endEpisode(p *policy, now time.Time, episode string) {
	if len(p.open) > 0 {
		var evs []alert.Event
		for _, ev := range p.open {
			ev.Kind, ev.State, ev.At, ev.ResolvedAt = alert.KindResolved, alert.Resolved, now, now
			evs = append(evs, ev)
		}
		p.open = nil
		if c.opts.Alert != nil {
			c.opts.Alert(evs)
		}
	}
	if p.dryRun != "" || p.refused != "" || p.inhibited != "" || episode != "" {
		c.record(Record{Time: now, Policy: p.cfg.Name, Episode: episode, Event: EventTriggerEnded, Reason: "the trigger no longer holds"})
	}
	p.dryRun, p.refused, p.inhibited = "", "", ""
	c.mu.Lock()
	if ps := c.state(p.cfg.Name); ps.Watch != nil {
		ps.Watch = nil
		c.saveLocked()
	}
	c.mu.Unlock()
}

// watching reports whether a trigger episode of the policy is on record.
func (c *Controller) watching(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state(name).Watch != nil
}

// raise sends a firing alert event for one kind of decision of an
// episode, once.
func (c *Controller) raise(p *policy, kind, episode string, sev alert.Severity, now time.Time, values map[string]alert.Value, summary string) {
	rule := "loadshed/" + p.cfg.Name
	key := p.cfg.Name + ":" + kind
	id := alert.EpisodeID(rule, key, now)
	for _, o := range p.open {
		if o.Group == key && o.Labels["episode"] == episode {
			return
		}
	}
	ev := alert.Event{ID: id, Kind: alert.KindFiring, State: alert.Firing, Rule: rule, Class: "power", Severity: sev,
		Group: key, Site: c.opts.Site, Gateway: c.opts.Gateway, Summary: summary, ActiveAt: now, FiredAt: now, At: now,
		Values: values, Labels: map[string]string{"policy": p.cfg.Name, "decision": kind, "episode": episode}}
	p.open = append(p.open, ev)
	if c.opts.Alert != nil {
		c.opts.Alert([]alert.Event{ev})
	}
}

func planText(plan []PlanStage) string {
	var parts []string
	for _, st := range plan {
		var ls []string
		for _, l := range st.Loads {
			ls = append(ls, l.Load)
		}
		parts = append(parts, fmt.Sprintf("stage %d after %s: %s", st.Stage+1, st.After, strings.Join(ls, ", ")))
	}
	return strings.Join(parts, "; ")
}

// record appends to the audit log and publishes the record. A record that
// cannot be written is logged loudly; the controller goes on, since
// refusing to shed because a disk is full could cost the site.
func (c *Controller) record(r Record) {
	b, err := c.audit.append(r)
	attrs := []any{"policy", r.Policy, "event", r.Event, "episode", r.Episode, "reason", r.Reason}
	if r.Action != nil {
		attrs = append(attrs, "load", r.Action.Load, "verified", r.Action.Verified)
	}
	c.log.Info("loadshed", attrs...)
	if err != nil {
		c.log.Error("loadshed: audit record not written", "err", err)
	}
	if c.opts.Publish != nil && b != nil {
		if err := c.opts.Publish("audit/"+r.Policy, b); err != nil {
			c.log.Error("loadshed: audit record not published", "policy", r.Policy, "err", err)
		}
	}
}

// saveLocked persists the state; call with c.mu held.
func (c *Controller) saveLocked() {
	if err := c.st.save(c.opts.Dir); err != nil {
		c.log.Error("loadshed: state not saved", "err", err)
	}
}

func (c *Controller) policy(name string) (*policy, error) {
	for _, p := range c.pols {
		if p.cfg.Name == name {
			return p, nil
		}
	}
	var names []string
	for _, p := range c.pols {
		names = append(names, p.cfg.Name)
	}
	return nil, fmt.Errorf("%w %q (have %s)", ErrUnknownPolicy, name, strings.Join(names, ", "))
}

// Arm arms a policy on behalf of by, for d (at most the config's max_arm;
// zero means max_arm). reason is required: the audit says why.
func (c *Controller) Arm(name, by, reason string, d time.Duration) error {
	if _, err := c.policy(name); err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("%w: arming needs a reason", ErrInvalid)
	}
	if d < 0 || d > c.cfg.MaxArm {
		return fmt.Errorf("%w: duration %s outside 0..%s (max_arm)", ErrInvalid, d, c.cfg.MaxArm)
	}
	if d == 0 {
		d = c.cfg.MaxArm
	}
	now := c.now().UTC()
	a := &Arming{By: by, Reason: reason, At: now, Until: now.Add(d)}
	c.mu.Lock()
	c.state(name).Arming = a
	c.saveLocked()
	c.mu.Unlock()
	c.record(Record{Time: now, Policy: name, Event: EventArmed, Operator: by, Reason: fmt.Sprintf("%s (until %s)", reason, a.Until.Format(time.RFC3339))})
	c.poke()
	return nil
}

// Disarm disarms a policy; a shed in progress stops before its next load.
func (c *Controller) Disarm(name, by, reason string) error {
	if _, err := c.policy(name); err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("%w: disarming needs a reason", ErrInvalid)
	}
	now := c.now().UTC()
	c.mu.Lock()
	c.state(name).Arming = nil
	c.saveLocked()
	c.mu.Unlock()
	c.record(Record{Time: now, Policy: name, Event: EventDisarmed, Operator: by, Reason: reason})
	c.poke()
	return nil
}

// Inhibit sets (on) or releases the inhibit switch of a policy: while set,
// nothing is written, armed or not.
func (c *Controller) Inhibit(name, by, reason string, on bool) error {
	if _, err := c.policy(name); err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		return fmt.Errorf("%w: the inhibit switch needs a reason", ErrInvalid)
	}
	now := c.now().UTC()
	ev := EventReleased
	c.mu.Lock()
	if on {
		c.state(name).Inhibit = &Arming{By: by, Reason: reason, At: now}
		ev = EventInhibited
	} else {
		c.state(name).Inhibit = nil
	}
	c.saveLocked()
	c.mu.Unlock()
	c.record(Record{Time: now, Policy: name, Event: ev, Operator: by, Reason: reason})
	c.poke()
	return nil
}

// PolicyStatus is one policy's state, for the API.
type PolicyStatus struct {
	Name     string      `json:"name"`
	Armed    *Arming     `json:"armed"`
	Inhibit  *Arming     `json:"inhibited"`
	Trigger  string      `json:"trigger"`
	For      string      `json:"for,omitempty"`
	Restore  string      `json:"restore"`
	Plan     []PlanStage `json:"plan"`
	Shed     *Shed       `json:"shed,omitempty"`
	Pending  bool        `json:"trigger_pending"`
	Firing   bool        `json:"trigger_firing"`
	Tiers    []string    `json:"never_shed_tiers"`
	Instance string      `json:"trigger_instance,omitempty"`
	// StillOff are the loads the last shed switched off (or tried to)
	// that no restore has switched back on: what a restore would restore,
	// less those it leaves off (held off by another policy, or prior
	// state unknown).
	StillOff []string `json:"still_off"`
}

// Status is the controller's state, for GET /api/v1/loadshed.
type Status struct {
	Policies []PolicyStatus `json:"policies"`
	Recent   []Record       `json:"recent"`
}

// Status returns every policy's state and the latest audit records.
func (c *Controller) Status() Status {
	insts := c.engine.Instances()
	var never []string
	for _, t := range c.cfg.Tiers {
		if t.Critical {
			never = append(never, t.Name)
		}
	}
	out := Status{Policies: []PolicyStatus{}, Recent: c.audit.latest(50)}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pols {
		ps := c.state(p.cfg.Name)
		s := PolicyStatus{Name: p.cfg.Name, Trigger: p.cfg.Trigger.When, Restore: p.cfg.Restore, Plan: Plan(c.cfg, p.cfg), Tiers: slices.Clone(never), StillOff: []string{}}
		if p.cfg.Trigger.For > 0 {
			s.For = p.cfg.Trigger.For.String()
		}
		if ps.Arming != nil {
			a := *ps.Arming
			s.Armed = &a
		}
		if ps.Inhibit != nil {
			a := *ps.Inhibit
			s.Inhibit = &a
		}
		if ps.Shed != nil {
			sh := *ps.Shed
			sh.Done = maps(ps.Shed.Done)
			sh.StageAt = slices.Clone(ps.Shed.StageAt)
			sh.Carried = slices.Clone(ps.Shed.Carried)
			sh.PriorUnknown = slices.Clone(ps.Shed.PriorUnknown)
			sh.Drains = nil
			for _, d := range ps.Shed.Drains {
				cp := *d
				sh.Drains = append(sh.Drains, &cp)
			}
			if r := ps.Shed.Restore; r != nil {
				cp := *r
				cp.Done = maps(r.Done)
				cp.StageAt = slices.Clone(r.StageAt)
				sh.Restore = &cp
			}
			s.Shed = &sh
			if off := unrestored(ps.Shed); off != nil {
				s.StillOff = off
			}
		}
		for _, in := range insts {
			if in.Rule == p.cfg.Rule.ID {
				s.Pending = s.Pending || in.State == alert.Pending
				s.Firing = s.Firing || in.State == alert.Firing
				if s.Instance == "" {
					s.Instance = in.Device + in.Group
				}
			}
		}
		out.Policies = append(out.Policies, s)
	}
	return out
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

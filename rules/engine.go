package rules

import (
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/strictyaml"
)

// Device is what the engine needs to know of a configured device to select
// it: its id, profile model (as resolved, not "auto"), the profile's class
// and the device's labels.
type Device struct {
	ID      string
	Profile string
	Class   string
	Labels  map[string]string
}

// Options configure an engine.
type Options struct {
	// Site and Gateway are copied into every event.
	Site, Gateway string
	// Log receives evaluation problems (a rule whose expression fails at
	// run time for a reason other than unknown data). Nil discards.
	Log *slog.Logger
	// Alerts is where firing() and firing_any() read other rules' alert
	// state. Nil: the engine's own rules, and then every rule read must
	// be one the engine runs (NewEngine says which is not). The
	// load-shed controller passes the gateway's rules engine.
	Alerts AlertState
}

// Engine evaluates a rule set over the points of a set of devices. Feed,
// Tick, Restore, Instances and Rules are safe for concurrent use; Feed is
// meant to be called from the polling goroutines, each with its own
// device's batches.
//
// Locking: each device has a mutex that guards its points and its
// per-device instances, so polls of different devices evaluate in
// parallel. A group instance has its own mutex and, while it evaluates,
// holds the mutexes of its member devices, always taken in one order; a
// device's mutex is never held while taking another lock.
type Engine struct {
	opts    Options
	log     *slog.Logger
	rules   []*Rule
	devices map[string]*devState
	devList []*devState // sorted by id
	groups  []*instance // group instances, in rule order
	all     []*instance // every instance, in rule and instance order
	pool    sync.Pool   // *evaluator

	// firing(): where the engine's rules read alert state, its own rules
	// indexed for others to read (Firing), the instances that read alert
	// state (evaluated at every Tick, and on any batch of their devices)
	// and, when the engine reads its own rules, the readers of each rule.
	alerts   AlertState
	byRule   map[string]*ruleIndex
	stateful []*instance
	readers  map[string][]*instance
}

// instance is one rule applied to one device or one group of devices.
type instance struct {
	rule  *Rule
	ord   int
	key   string // the device id, or the group ("room=b3")
	group bool
	// members are the devices the instance reads: one for a per-device
	// instance, the group's devices (sorted by id) for a group instance.
	members []*devState
	// memberIdx is 0..len(members)-1, for count_devices.
	memberIdx []int
	// pts holds, per name of rule.refs.names, the point state of each
	// member.
	pts    [][]*pstate
	labels map[string]string

	mu   sync.Mutex // group instances only; per-device ones use the device's
	mark uint64     // queued in the device's Feed with this mark

	// For firing(): the state as others may read it without the locks
	// (pubInactive, pubFiring, pubUnknown), the rule's index, and for a
	// group the values of its group_by labels.
	pub       atomic.Int32
	ix        *ruleIndex
	groupVals []string

	// The state machine.
	state       alert.State // "" (inactive), Pending or Firing
	id          string
	activeAt    time.Time
	firedAt     time.Time
	forStart    time.Time // activeAt, moved on by time spent frozen (missing: hold)
	frozenSince time.Time // while pending and unknown under missing: hold
	clearSince  time.Time // when the clear condition started to hold; zero: not clearing
	lost        bool      // the last evaluation fired on unknown data
	now         time.Time // time of the last evaluation: time never goes back
	failing     bool      // the last evaluation failed (logged once)
}

// NewEngine builds instances of the set's enabled rules for the devices.
// It does no I/O. A rule that selects a device id not in devices is an
// error located at the rule.
func NewEngine(set *RuleSet, devices []Device, opts Options) (*Engine, error) {
	e := &Engine{opts: opts, log: opts.Log, devices: map[string]*devState{}, alerts: opts.Alerts}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.alerts == nil {
		e.alerts = e
	}
	e.pool.New = func() any {
		ev := newEvaluator()
		ev.env.alerts = e.alerts
		return ev
	}
	var errs strictyaml.Errors
	sorted := slices.Clone(devices)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	for i := range sorted {
		d := sorted[i]
		if d.ID == "" {
			return nil, fmt.Errorf("rules: a device has no id")
		}
		if _, dup := e.devices[d.ID]; dup {
			return nil, fmt.Errorf("rules: device %q is listed twice", d.ID)
		}
		ds := &devState{idx: len(e.devList), dev: d, points: map[string]*pstate{}, deps: map[string][]*instance{}}
		e.devices[d.ID] = ds
		e.devList = append(e.devList, ds)
	}
	ids := make([]string, len(e.devList))
	for i, d := range e.devList {
		ids[i] = d.dev.ID
	}
	if set != nil {
		e.rules = set.Rules()
	}
	for _, r := range e.rules {
		for i, id := range r.Select.Devices {
			if e.devices[id] == nil {
				errs = append(errs, r.errorAt(fmt.Sprintf("select.devices[%d]", i), "rule %s selects device %q, which is not configured%s", r.ID, id, strictyaml.DidYouMean(id, ids)))
			}
		}
		var selected []*devState
		for _, d := range e.devList {
			if r.Select.matches(&d.dev) {
				selected = append(selected, d)
			}
		}
		if len(r.GroupBy) == 0 {
			for _, d := range selected {
				e.addInstance(r, d.dev.ID, false, []*devState{d})
			}
			continue
		}
		groups := map[string][]*devState{}
		var keys []string
		for _, d := range selected {
			k := groupKey(r.GroupBy, d.dev.Labels)
			if groups[k] == nil {
				keys = append(keys, k)
			}
			groups[k] = append(groups[k], d)
		}
		sort.Strings(keys)
		for _, k := range keys {
			e.addInstance(r, k, true, groups[k])
		}
	}
	errs = append(errs, e.indexRules()...)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return e, nil
}

// groupKey names a group by its label values: "room=b3" or
// "room=b3,row=4". A device without one of the labels is grouped under
// the empty value, as Prometheus groups a missing label.
func groupKey(by []string, labels map[string]string) string {
	var b strings.Builder
	for i, l := range by {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l)
		b.WriteByte('=')
		b.WriteString(labels[l])
	}
	return b.String()
}

func (e *Engine) addInstance(r *Rule, key string, group bool, members []*devState) {
	in := &instance{rule: r, ord: len(e.all), key: key, group: group, members: members}
	for i := range members {
		in.memberIdx = append(in.memberIdx, i)
	}
	in.pts = make([][]*pstate, len(r.refs.names))
	for i, name := range r.refs.names {
		in.pts[i] = make([]*pstate, len(members))
		for j, d := range members {
			ps := d.pstate(name)
			if w := r.refs.window[i]; w > 0 {
				if ps.ring == nil {
					ps.ring = newRing(int64(w))
				}
				ps.ring.horizon = max(ps.ring.horizon, int64(w))
			}
			in.pts[i][j] = ps
		}
	}
	for _, d := range members {
		for i, name := range r.refs.names {
			if r.refs.inExpr[i] {
				d.deps[name] = append(d.deps[name], in)
			}
		}
		if r.refs.device {
			d.all = true
		}
		if r.refs.device || len(r.refs.firing) > 0 {
			// firing(): any batch of the device is a chance to see the
			// other rule's alert (Tick is the other).
			d.anyDeps = append(d.anyDeps, in)
		}
		if !group {
			d.inst = append(d.inst, in)
		}
	}
	in.labels = instanceLabels(r, members, group)
	if group {
		e.groups = append(e.groups, in)
	}
	e.all = append(e.all, in)
}

// instanceLabels are the device's labels (for a group: the labels all
// members share) overridden by the rule's.
func instanceLabels(r *Rule, members []*devState, group bool) map[string]string {
	out := map[string]string{}
	if len(members) > 0 {
		for k, v := range members[0].dev.Labels {
			shared := true
			for _, d := range members[1:] {
				if d.dev.Labels[k] != v {
					shared = false
					break
				}
			}
			if shared {
				out[k] = v
			}
		}
	}
	if group {
		for _, l := range r.GroupBy {
			out[l] = members[0].dev.Labels[l]
		}
	}
	for k, v := range r.Labels {
		out[k] = v
	}
	return out
}

// Rules returns the rules the engine runs, sorted by id.
func (e *Engine) Rules() []*Rule { return slices.Clone(e.rules) }

// Feed stores a batch of points and evaluates the instances that read any
// of them, at the batch's time (its newest point time; evaluations of an
// instance never go back in time). It returns the events of the
// transitions, in order. A batch normally holds one device's points from
// one poll; a batch of several devices (the staleness sweeper's) is taken
// device by device. Points of devices the engine does not know are
// ignored.
func (e *Engine) Feed(pts []point.Point) []alert.Event {
	var out []alert.Event
	for i := 0; i < len(pts); {
		j := i + 1
		for j < len(pts) && pts[j].Device == pts[i].Device {
			j++
		}
		out = e.feedDevice(pts[i:j], out)
		i = j
	}
	if len(out) > 0 && len(e.readers) > 0 {
		ev := e.pool.Get().(*evaluator)
		out = e.propagate(ev, out, out[len(out)-1].At)
		e.pool.Put(ev)
	}
	return out
}

func (e *Engine) feedDevice(pts []point.Point, out []alert.Event) []alert.Event {
	d := e.devices[pts[0].Device]
	if d == nil {
		return out
	}
	ev := e.pool.Get().(*evaluator)
	defer e.pool.Put(ev)
	ev.local, ev.groups = ev.local[:0], ev.groups[:0]

	d.mu.Lock()
	d.mark++
	var now time.Time
	for i := range pts {
		p := &pts[i]
		if p.Time.After(now) {
			now = p.Time
		}
		ps := d.points[p.Name]
		if ps == nil {
			if !d.all {
				continue
			}
			ps = d.pstate(p.Name)
		}
		d.update(ps, p)
		for _, in := range d.deps[p.Name] {
			ev.queue(in, d.mark)
		}
	}
	for _, in := range d.anyDeps {
		ev.queue(in, d.mark)
	}
	// Evaluate in rule order, so events come out in a stable order.
	slices.SortFunc(ev.local, func(a, b *instance) int { return a.ord - b.ord })
	for _, in := range ev.local {
		out = e.step(ev, in, now, out)
	}
	d.mu.Unlock()

	for _, in := range ev.groups {
		out = e.stepGroup(ev, in, now, out)
	}
	ev.local, ev.groups = ev.local[:0], ev.groups[:0]
	return out
}

// queue adds an instance to evaluate once in this batch.
func (ev *evaluator) queue(in *instance, mark uint64) {
	if in.group {
		if !slices.Contains(ev.groups, in) {
			ev.groups = append(ev.groups, in)
		}
		return
	}
	if in.mark != mark {
		in.mark = mark
		ev.local = append(ev.local, in)
	}
}

// lockGroup takes a group instance's mutex and its members' in order.
func lockGroup(in *instance) {
	in.mu.Lock()
	for _, d := range in.members {
		d.mu.Lock()
	}
}

func unlockGroup(in *instance) {
	for i := len(in.members) - 1; i >= 0; i-- {
		in.members[i].mu.Unlock()
	}
	in.mu.Unlock()
}

func (e *Engine) stepGroup(ev *evaluator, in *instance, now time.Time, out []alert.Event) []alert.Event {
	lockGroup(in)
	defer unlockGroup(in)
	return e.step(ev, in, now, out)
}

// Tick evaluates the pending and firing instances at now, so for and
// keep_firing_for durations complete even when no new point reaches an
// instance: a device gone silent gets one batch of stale points from the
// sweeper and then nothing, and a missing: fire rule must still fire. Call
// it periodically (the staleness sweeper's period is a good choice) with
// the wall clock; it never moves an instance back in time. Instances of
// rules that read firing() are evaluated at every Tick, whatever their
// state: another rule's alert is not a point, and may change between
// their devices' batches.
func (e *Engine) Tick(now time.Time) []alert.Event {
	ev := e.pool.Get().(*evaluator)
	defer e.pool.Put(ev)
	var out []alert.Event
	for _, d := range e.devList {
		d.mu.Lock()
		for _, in := range d.inst {
			if in.state != "" || len(in.rule.refs.firing) > 0 {
				out = e.step(ev, in, now, out)
			}
		}
		d.mu.Unlock()
	}
	for _, in := range e.groups {
		in.mu.Lock()
		active := in.state != "" || len(in.rule.refs.firing) > 0
		in.mu.Unlock()
		if active {
			out = e.stepGroup(ev, in, now, out)
		}
	}
	if len(out) > 0 {
		out = e.propagate(ev, out, now)
	}
	return out
}

// step runs the state machine of one instance at now (see the package
// documentation and docs/rules.md) and publishes its state for firing().
// The caller holds the instance's locks.
func (e *Engine) step(ev *evaluator, in *instance, now time.Time, out []alert.Event) []alert.Event {
	out = e.stepState(ev, in, now, out)
	in.publish()
	return out
}

func (e *Engine) stepState(ev *evaluator, in *instance, now time.Time, out []alert.Event) []alert.Event {
	if now.Before(in.now) {
		now = in.now
	}
	in.now = now
	r := in.rule
	w := e.eval(ev, in, r.when, "when", now)
	lost := false
	if w == unknown && r.Missing == MissingFire {
		w, lost = isTrue, true
	}
	switch in.state {
	case "":
		if w != isTrue {
			return out
		}
		in.state = alert.Pending
		in.activeAt, in.forStart, in.frozenSince = now, now, time.Time{}
		in.id = alert.EpisodeID(r.ID, in.key, now)
		if r.For > 0 {
			return out
		}
		return e.fire(in, now, lost, out)

	case alert.Pending:
		switch w {
		case unknown: // missing: hold freezes the for-duration
			if in.frozenSince.IsZero() {
				in.frozenSince = now
			}
			return out
		case isFalse:
			in.reset()
			return out
		}
		if !in.frozenSince.IsZero() {
			in.forStart = in.forStart.Add(now.Sub(in.frozenSince))
			in.frozenSince = time.Time{}
		}
		if now.Sub(in.forStart) < r.For {
			return out
		}
		return e.fire(in, now, lost, out)

	case alert.Firing:
		if w != isFalse {
			// True, or unknown: never "all clear" on data we cannot see.
			in.clearSince = time.Time{}
			if w == isTrue {
				in.lost = lost
			}
			return out
		}
		c := isTrue
		if r.clear != nil {
			c = e.eval(ev, in, r.clear, "clear", now)
		}
		if c != isTrue {
			in.clearSince = time.Time{}
			return out
		}
		in.lost = false
		if in.clearSince.IsZero() {
			in.clearSince = now
		}
		if now.Sub(in.clearSince) < r.KeepFiringFor {
			return out
		}
		ev := e.event(in, alert.KindResolved, alert.Resolved, now)
		ev.ResolvedAt = now
		in.reset()
		return append(out, ev)
	}
	return out
}

func (e *Engine) fire(in *instance, now time.Time, lost bool, out []alert.Event) []alert.Event {
	in.state = alert.Firing
	in.firedAt = now
	in.lost = lost
	in.clearSince = time.Time{}
	return append(out, e.event(in, alert.KindFiring, alert.Firing, now))
}

func (in *instance) reset() {
	in.state, in.id = "", ""
	in.activeAt, in.firedAt, in.forStart, in.frozenSince, in.clearSince = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	in.lost = false
}

// eval runs one condition and logs a failure once until it succeeds again.
func (e *Engine) eval(ev *evaluator, in *instance, p *program, field string, now time.Time) tri {
	t, err := ev.run(in, p, now)
	if err != nil {
		if !in.failing {
			e.log.Warn("rules: evaluation failed; treating the condition as unknown",
				"rule", in.rule.ID, "instance", in.key, "field", field, "err", err)
		}
		in.failing = true
		return unknown
	}
	in.failing = false
	return t
}

// event builds the event of a transition. The caller holds the instance's
// locks (it reads points).
func (e *Engine) event(in *instance, kind alert.Kind, state alert.State, now time.Time) alert.Event {
	r := in.rule
	ev := alert.Event{
		ID: in.id, Kind: kind, State: state, Rule: r.ID, Class: r.Class, Severity: r.Severity,
		Site: e.opts.Site, Gateway: e.opts.Gateway,
		Labels:   maps(in.labels),
		ActiveAt: in.activeAt, FiredAt: in.firedAt, At: now,
		Values:          in.values(e.alerts),
		SupervisionLost: in.lost && kind == alert.KindFiring,
	}
	if in.group {
		ev.Group = in.key
		ev.Devices = in.deviceIDs()
	} else {
		ev.Device = in.key
	}
	ev.Summary = e.render(in, r.summary)
	ev.Description = e.render(in, r.descr)
	return ev
}

func maps(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (in *instance) deviceIDs() []string {
	out := make([]string, len(in.members))
	for i, d := range in.members {
		out[i] = d.dev.ID
	}
	return out
}

// values reports every point the rule reads, for people reading the alert.
// A group instance reports "device/point" for each member that has seen
// the point. The rules read with firing() are reported as
// firing("pack/name"), as src says now.
func (in *instance) values(src AlertState) map[string]alert.Value {
	out := make(map[string]alert.Value, len(in.pts)+len(in.rule.refs.firing))
	firingValues(src, in, out)
	for i, name := range in.rule.refs.names {
		for j, ps := range in.pts[i] {
			key := name
			if in.group {
				if !ps.seen {
					continue
				}
				key = in.members[j].dev.ID + "/" + name
			}
			out[key] = valueOf(ps)
		}
	}
	return out
}

func valueOf(ps *pstate) alert.Value {
	if !ps.seen {
		return alert.Value{Quality: "missing"}
	}
	return alert.Value{Value: formatValue(&ps.p), Unit: string(ps.p.Unit), Quality: ps.p.Quality.String(), Reason: ps.p.Reason}
}

// InstanceState is a pending or firing instance, for the API.
type InstanceState struct {
	Rule     string         `json:"rule"`
	Class    string         `json:"class"`
	Severity alert.Severity `json:"severity"`
	State    alert.State    `json:"state"`
	// ID is the episode id the instance's events carry (or will carry,
	// for a pending one).
	ID      string            `json:"id"`
	Device  string            `json:"device,omitempty"`
	Group   string            `json:"group,omitempty"`
	Devices []string          `json:"devices,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Summary string            `json:"summary"`
	// Description is the rule's description template, rendered now.
	Description string `json:"description,omitempty"`
	// ActiveAt is when the condition first held, FiredAt when it fired
	// (zero while pending), ClearingSince when the clear condition started
	// to hold (zero unless the alert is about to resolve).
	ActiveAt        time.Time              `json:"active_at"`
	FiredAt         time.Time              `json:"fired_at,omitzero"`
	ClearingSince   time.Time              `json:"clearing_since,omitzero"`
	Values          map[string]alert.Value `json:"values,omitempty"`
	SupervisionLost bool                   `json:"supervision_lost,omitempty"`
}

// Instances returns the pending and firing instances, sorted by rule and
// instance.
func (e *Engine) Instances() []InstanceState {
	var out []InstanceState
	for _, in := range e.all {
		if in.group {
			lockGroup(in)
		} else {
			in.members[0].mu.Lock()
		}
		if in.state != "" {
			s := InstanceState{
				Rule: in.rule.ID, Class: in.rule.Class, Severity: in.rule.Severity, State: in.state, ID: in.id,
				Labels: maps(in.labels), Summary: e.render(in, in.rule.summary), Description: e.render(in, in.rule.descr),
				ActiveAt: in.activeAt, FiredAt: in.firedAt, ClearingSince: in.clearSince,
				Values: in.values(e.alerts), SupervisionLost: in.lost,
			}
			if in.group {
				s.Group, s.Devices = in.key, in.deviceIDs()
			} else {
				s.Device = in.key
			}
			out = append(out, s)
		}
		if in.group {
			unlockGroup(in)
		} else {
			in.members[0].mu.Unlock()
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Rule != out[j].Rule {
			return out[i].Rule < out[j].Rule
		}
		return out[i].Device+out[i].Group < out[j].Device+out[j].Group
	})
	return out
}

// Restore puts instances back into firing for the episodes the ledger
// still has open (events whose State is firing), with the same ID,
// ActiveAt and FiredAt, so a restart neither forgets an alert nor
// announces it again. The next evaluation resolves it as usual if the
// condition is gone. Events whose rule is not running (removed or
// disabled) or whose device or group no longer exists come back as
// orphans, for the caller to resolve; so does the older of two open
// episodes of one instance. Call Restore before the first Feed.
func (e *Engine) Restore(active []alert.Event) (orphans []alert.Event) {
	byKey := map[string]*instance{}
	for _, in := range e.all {
		byKey[in.rule.ID+"\x00"+in.key] = in
	}
	for _, ev := range active {
		if ev.State != alert.Firing {
			continue
		}
		in := byKey[ev.Rule+"\x00"+ev.Instance()]
		if in == nil {
			orphans = append(orphans, ev)
			continue
		}
		if in.group {
			lockGroup(in)
		} else {
			in.members[0].mu.Lock()
		}
		if in.state == alert.Firing {
			if !ev.ActiveAt.After(in.activeAt) {
				orphans = append(orphans, ev)
				e.unlock(in)
				continue
			}
			orphans = append(orphans, e.restoredEvent(in))
		}
		in.state = alert.Firing
		in.id = ev.ID
		in.activeAt, in.firedAt, in.forStart = ev.ActiveAt, ev.FiredAt, ev.ActiveAt
		in.frozenSince, in.clearSince = time.Time{}, time.Time{}
		in.lost = ev.SupervisionLost
		// Put back from the ledger, not seen on data: firing() reads it
		// as unknown until the rule evaluates it again.
		in.setPub(pubUnknown)
		e.unlock(in)
	}
	return orphans
}

func (e *Engine) unlock(in *instance) {
	if in.group {
		unlockGroup(in)
	} else {
		in.members[0].mu.Unlock()
	}
}

// restoredEvent rebuilds the open event of an instance restored earlier,
// when a newer episode of it replaces it.
func (e *Engine) restoredEvent(in *instance) alert.Event {
	ev := alert.Event{ID: in.id, Kind: alert.KindFiring, State: alert.Firing, Rule: in.rule.ID,
		Class: in.rule.Class, Severity: in.rule.Severity, Site: e.opts.Site, Gateway: e.opts.Gateway,
		ActiveAt: in.activeAt, FiredAt: in.firedAt, At: in.firedAt}
	if in.group {
		ev.Group = in.key
	} else {
		ev.Device = in.key
	}
	return ev
}

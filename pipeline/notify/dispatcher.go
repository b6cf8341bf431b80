package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

// DegradedRule is the rule name of the synthetic alert the Dispatcher
// raises for a delivery path that has been down for DegradedAfter; its
// Group is the path's name.
const DegradedRule = "gateway/delivery-path-degraded"

// DefaultDegradedAfter is the default of DispatcherOptions.DegradedAfter.
const DefaultDegradedAfter = 60 * time.Second

// DispatcherOptions configures a Dispatcher.
type DispatcherOptions struct {
	// Site and Gateway are stamped on events that lack them, and on the
	// degraded-path alert.
	Site, Gateway string
	// DegradedAfter is how long a target must be down before the
	// degraded-path alert fires (default DefaultDegradedAfter). A target
	// is down when its last attempt failed, or when the oldest event
	// waiting in it is older than DegradedAfter (a path that is "up" but
	// does not drain is no better).
	DegradedAfter time.Duration
	// Log receives dispatch failures (default: discard).
	Log *slog.Logger
	// Now is the clock of the degraded-path watch, acknowledgements and
	// silences (default time.Now).
	Now func() time.Time
}

// Dispatcher records events in the Ledger and hands them to every Target.
//
// The set of targets may change while it runs (a configuration reload):
// AddTarget, RemoveTarget and ReplaceTarget. An event is marked dispatched
// once every target of the current set holds it, so removing a target
// completes the events only it still owed.
//
// Submit, Ack, AddSilence, RemoveSilence, AddTarget, RemoveTarget,
// ReplaceTarget, SetDegradedAfter, SetMaxSilence, Health, AllDown and Stats
// are safe for concurrent use; Run is the Dispatcher's goroutine (the
// caller starts it; it ends with its context). The Dispatcher does not own
// the Ledger or the Targets: the caller closes them, a removed target once
// RemoveTarget returned, the others after Run returned.
type Dispatcher struct {
	l   *Ledger
	log *slog.Logger

	// targets is written with both mu and tmu held and never modified in
	// place (a change swaps in a new slice), so it may be read with either
	// held: Health and AllDown take only tmu, and do not wait for a
	// dispatch's fsyncs.
	tmu     sync.RWMutex
	targets []*dtarget

	mu       sync.Mutex
	opts     DispatcherOptions // DegradedAfter changes under mu
	deferred []alert.Event     // submitted, but the ledger could not be written
	orphans  []alert.Event     // degraded alerts of targets no longer configured
	stats    DispatcherStats
}

// dtarget is one target and the Dispatcher's account of it. While
// dispatchLocked serves the targets, each goroutine touches only its own
// dtarget; otherwise the fields are guarded by Dispatcher.mu.
type dtarget struct {
	t Target
	// took holds the undispatched seqs the target took.
	took map[uint64]bool
	// prelude, for a target added while the Dispatcher runs, is the
	// latest event of each episode that was firing then, in Seq order;
	// offered before anything else. Until it is all taken, the target
	// holds none of the events recorded before it was added; after, the
	// pending ones up to skipUpTo count as taken (the prelude shows their
	// outcome).
	prelude  []alert.Event
	skipUpTo uint64
	watch    targetWatch
	stats    TargetStats // Name and Kind are filled in by Stats
}

func newDTarget(t Target) *dtarget {
	return &dtarget{t: t, took: map[uint64]bool{}}
}

// targetWatch follows one target for the degraded-path alert.
type targetWatch struct {
	downSince time.Time // zero while healthy
	episode   string    // the degraded alert's episode, "" when none fires
	refusing  int       // consecutive Enqueue refusals
	refusal   string    // the last refusal
}

// DispatcherStats counts what the Dispatcher did, for metrics.
type DispatcherStats struct {
	// Submitted counts events handed to Submit (and synthetic ones);
	// Recorded those the ledger recorded; Dispatched those every target
	// took.
	Submitted, Recorded, Dispatched uint64
	// RecordErrors counts failed ledger writes.
	RecordErrors uint64
	// Undispatched counts recorded events some target has not taken;
	// Deferred events waiting for the ledger to be writable again.
	Undispatched, Deferred int
	// Active counts firing episodes; Silences silences in force.
	Active, Silences int
	Targets          []TargetStats
}

// TargetStats is the Dispatcher's account of one target.
type TargetStats struct {
	Name, Kind string
	// Enqueued counts events the target took; EnqueueErrors refusals.
	Enqueued, EnqueueErrors uint64
	// Down is the Dispatcher's view (last attempt failed or backlog too
	// old); Degraded is set while the degraded-path alert fires.
	Down, Degraded bool
}

// NewDispatcher returns a Dispatcher over l and targets. It does no I/O. A
// degraded-path alert left active in the ledger by a previous run is taken
// over: resolved when its target is healthy, or at once when no target of
// that name exists any more.
func NewDispatcher(l *Ledger, targets []Target, opts DispatcherOptions) *Dispatcher {
	if opts.DegradedAfter <= 0 {
		opts.DegradedAfter = DefaultDegradedAfter
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Dispatcher{
		l:    l,
		opts: opts,
		log:  opts.Log,
	}
	byName := map[string]*dtarget{}
	for _, t := range targets {
		dt := newDTarget(t)
		byName[t.Name()] = dt
		d.targets = append(d.targets, dt)
	}
	if len(targets) == 0 {
		d.log.Warn("notify: no alert delivery path configured: alerts are recorded and shown, but delivered nowhere")
	}
	for _, ev := range l.Active() {
		if ev.Rule != DegradedRule {
			continue
		}
		if dt, ok := byName[ev.Group]; ok {
			dt.watch.episode = ev.ID
		} else {
			d.orphans = append(d.orphans, ev)
		}
	}
	return d
}

// setTargetsLocked swaps in ts; the caller holds mu.
func (d *Dispatcher) setTargetsLocked(ts []*dtarget) {
	d.tmu.Lock()
	d.targets = ts
	d.tmu.Unlock()
}

// snapshot returns the current targets without waiting for mu.
func (d *Dispatcher) snapshot() []*dtarget {
	d.tmu.RLock()
	defer d.tmu.RUnlock()
	return d.targets
}

func (d *Dispatcher) indexLocked(name string) int {
	for i, dt := range d.targets {
		if dt.t.Name() == name {
			return i
		}
	}
	return -1
}

// AddTarget adds t, whose name must not be in use, to the targets. t first
// gets the latest event of every episode firing now (Ledger.Active, in Seq
// order), so a new destination learns what is burning, then every event
// recorded from now on, in Seq order. Events recorded before and not yet
// dispatched are not owed to t (their outcome is in what it got first),
// but none is marked dispatched before t holds the firing episodes, so a
// crash in between re-dispatches them to every path, t included. (If t
// refuses the firing episodes and the process dies before the next tick
// offers them again, t never gets those earlier events; it gets every
// later one.) A degraded-path alert of t's
// name that still fires (left by an earlier target of that name) is
// taken over. Like Submit, it syncs the events to t before it returns; a
// refusal is offered again on the next tick.
func (d *Dispatcher) AddTarget(t Target) error {
	if t == nil {
		return errors.New("notify: add target: nil target")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.indexLocked(t.Name()) >= 0 {
		return fmt.Errorf("notify: add target %q: a target of that name exists", t.Name())
	}
	dt := newDTarget(t)
	// Undispatched before Active: an event recorded in between (by a
	// caller of the Ledger itself) is in the prelude and offered again,
	// a duplicate rather than a gap.
	if pending := d.l.Undispatched(); len(pending) > 0 {
		dt.skipUpTo = pending[len(pending)-1].Seq
	}
	dt.prelude = d.l.Active()
	sort.Slice(dt.prelude, func(i, j int) bool { return dt.prelude[i].Seq < dt.prelude[j].Seq })
	for _, ev := range dt.prelude {
		if ev.Rule == DegradedRule && ev.Group == t.Name() {
			dt.watch.episode = ev.ID
		}
	}
	d.orphans = slices.DeleteFunc(d.orphans, func(ev alert.Event) bool { return ev.Group == t.Name() })
	d.setTargetsLocked(append(slices.Clone(d.targets), dt))
	d.log.Info("notify: delivery path added", "path", t.Name(), "kind", t.Kind(), "active", len(dt.prelude))
	d.dispatchLocked()
	return nil
}

// RemoveTarget removes the target named name and reports whether there
// was one. The events it has not taken are no longer owed to it: those
// every other target holds are marked dispatched before RemoveTarget
// returns. Its degraded-path alert, if firing, is resolved. The caller
// closes the target (stops its sender) afterwards; the Dispatcher does not
// call it once RemoveTarget returned.
func (d *Dispatcher) RemoveTarget(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := d.indexLocked(name)
	if i < 0 {
		return false
	}
	dt := d.targets[i]
	d.setTargetsLocked(slices.Delete(slices.Clone(d.targets), i, i+1))
	d.log.Info("notify: delivery path removed; alerts are no longer owed to it", "path", name, "kind", dt.t.Kind())
	if id := dt.watch.episode; id != "" {
		if prev, ok := d.l.Get(id); ok && prev.State == alert.Firing {
			if _, err := d.submitLocked([]alert.Event{resolvedOf(prev, d.now(), "delivery path "+name+" is no longer configured")}); err != nil && !errors.Is(err, ErrNotPersisted) {
				d.log.Error("notify: cannot resolve the degraded alert of a removed path", "path", name, "err", err)
			}
		}
	}
	d.dispatchLocked()
	return true
}

// ReplaceTarget puts t in the place of the target of the same name, which
// must exist. t takes over the old target's account: the events it took
// (t must hold them too, as a target built over the same durable queue
// does), its degraded-path watch and counters. The Dispatcher does not
// call the old target once ReplaceTarget returned.
func (d *Dispatcher) ReplaceTarget(t Target) error {
	if t == nil {
		return errors.New("notify: replace target: nil target")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	i := d.indexLocked(t.Name())
	if i < 0 {
		return fmt.Errorf("notify: replace target %q: no target of that name", t.Name())
	}
	nt := *d.targets[i]
	nt.t = t
	ts := slices.Clone(d.targets)
	ts[i] = &nt
	d.setTargetsLocked(ts)
	d.dispatchLocked()
	return nil
}

// SetDegradedAfter changes DispatcherOptions.DegradedAfter (<= 0: the
// default); it applies from the next tick, to targets already down too.
func (d *Dispatcher) SetDegradedAfter(after time.Duration) {
	if after <= 0 {
		after = DefaultDegradedAfter
	}
	d.mu.Lock()
	d.opts.DegradedAfter = after
	d.mu.Unlock()
}

// SetMaxSilence changes the ledger's LedgerOptions.MaxSilence (<= 0: the
// default) for silences added from now on; silences in force keep their
// end.
func (d *Dispatcher) SetMaxSilence(max time.Duration) {
	if max <= 0 {
		max = DefaultMaxSilence
	}
	// The ledger reads it under its own lock (checkSilenceLocked).
	d.l.mu.Lock()
	d.l.opts.MaxSilence = max
	d.l.mu.Unlock()
}

func (d *Dispatcher) now() time.Time { return d.opts.Now() }

// Submit records evs in the ledger and hands them to every target; it
// returns the recorded events (with Seq and stamps, duplicates dropped: see
// Ledger.Record). Site and Gateway are filled in where empty.
//
// A target that refuses an event does not stop the others: the refusal is
// counted and logged, the event stays undispatched and is offered to that
// target again on the next Submit or tick (after the ones it refused
// before, so each target gets events in Seq order).
//
// When the ledger cannot be written (the error matches ErrNotPersisted),
// the Dispatcher keeps evs and records them on a later tick, before any
// newer event: the caller must not submit them again. Any other error
// (an invalid event) means nothing was recorded.
func (d *Dispatcher) Submit(evs []alert.Event) ([]alert.Event, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.submitLocked(evs)
}

func (d *Dispatcher) submitLocked(evs []alert.Event) ([]alert.Event, error) {
	d.stats.Submitted += uint64(len(evs))
	batch := make([]alert.Event, 0, len(d.deferred)+len(evs))
	batch = append(batch, d.deferred...)
	for _, ev := range evs {
		if ev.Site == "" {
			ev.Site = d.opts.Site
		}
		if ev.Gateway == "" {
			ev.Gateway = d.opts.Gateway
		}
		batch = append(batch, ev)
	}
	rec, err := d.l.Record(batch)
	if err != nil {
		if errors.Is(err, ErrNotPersisted) {
			d.stats.RecordErrors++
			lvl := slog.LevelDebug
			if len(d.deferred) == 0 || len(evs) > 0 {
				lvl = slog.LevelError
			}
			d.deferred = batch
			d.log.Log(context.Background(), lvl, "notify: cannot record alerts in the ledger; holding them in memory and retrying every second",
				"err", err, "held", len(d.deferred))
		}
		return nil, err
	}
	if len(d.deferred) > 0 {
		d.log.Info("notify: ledger writable again; held alerts recorded", "events", len(d.deferred))
		d.deferred = nil
	}
	d.stats.Recorded += uint64(len(rec))
	d.dispatchLocked()
	return rec, nil
}

// dispatchLocked offers every undispatched event to every target that has
// not taken it, in Seq order, and marks dispatched what all targets took.
// The targets are served concurrently, each on its own goroutine and in
// Seq order: each Enqueue syncs to disk, and a fire alarm should not wait
// for one path's fsyncs before the next path gets it.
func (d *Dispatcher) dispatchLocked() {
	pending := d.l.Undispatched()
	preludes := slices.ContainsFunc(d.targets, func(dt *dtarget) bool { return len(dt.prelude) > 0 })
	if len(pending) == 0 && !preludes {
		return
	}
	var wg sync.WaitGroup
	for _, dt := range d.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.offer(dt, pending)
		}()
	}
	wg.Wait()
	for _, ev := range pending {
		all := true
		for _, dt := range d.targets {
			if !dt.took[ev.Seq] {
				all = false
				break
			}
		}
		if !all {
			continue
		}
		if err := d.l.MarkDispatched(ev.Seq); err != nil {
			d.log.Error("notify: cannot mark an alert dispatched", "seq", ev.Seq, "err", err)
			continue
		}
		for _, dt := range d.targets {
			delete(dt.took, ev.Seq)
		}
		d.stats.Dispatched++
	}
}

// offer hands dt its prelude, then the pending events it has not taken
// yet, in Seq order, stopping at the first refusal (later events wait, so
// the target keeps Seq order), and records in dt.took what it took. It
// touches only dt, and d.log.
func (d *Dispatcher) offer(dt *dtarget, pending []alert.Event) {
	for len(dt.prelude) > 0 {
		if !d.enqueue(dt, dt.prelude[0]) {
			return
		}
		dt.prelude = dt.prelude[1:]
	}
	for _, ev := range pending {
		if dt.took[ev.Seq] {
			continue
		}
		if ev.Seq > dt.skipUpTo && !d.enqueue(dt, ev) {
			return
		}
		dt.took[ev.Seq] = true
	}
}

// enqueue hands ev to dt's target and keeps the account of refusals.
func (d *Dispatcher) enqueue(dt *dtarget, ev alert.Event) bool {
	w := &dt.watch
	if err := dt.t.Enqueue(ev); err != nil {
		dt.stats.EnqueueErrors++
		w.refusing++
		w.refusal = err.Error()
		if n := w.refusing; n&(n-1) == 0 {
			d.log.Error("notify: delivery path refused an alert; it stays undispatched and is offered again",
				"path", dt.t.Name(), "seq", ev.Seq, "episode", ev.ID, "rule", ev.Rule, "err", err, "refusals", n)
		}
		return false
	}
	if w.refusing > 0 {
		d.log.Info("notify: delivery path takes alerts again", "path", dt.t.Name(), "refusals", w.refusing)
		w.refusing = 0
	}
	dt.stats.Enqueued++
	return true
}

// Ack acknowledges episode id on behalf of by (see Ledger.Ack) and
// dispatches the KindAcknowledged event. Acknowledging twice dispatches
// nothing.
func (d *Dispatcher) Ack(id, by, comment string) (alert.Event, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ev, isNew, err := d.l.ack(id, by, comment, d.now())
	if err != nil {
		return alert.Event{}, err
	}
	if isNew {
		d.stats.Recorded++
		d.dispatchLocked()
	}
	return ev, nil
}

// AddSilence adds s (see Ledger.AddSilence; Created defaults to the
// Dispatcher's clock) and dispatches the KindSilenced events.
func (d *Dispatcher) AddSilence(s Silence) (Silence, []alert.Event, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s.Created.IsZero() {
		s.Created = d.now()
	}
	s, evs, err := d.l.AddSilence(s)
	if err != nil {
		return Silence{}, nil, err
	}
	d.stats.Recorded += uint64(len(evs))
	d.dispatchLocked()
	return s, evs, nil
}

// RemoveSilence removes silence id on behalf of by (see
// Ledger.RemoveSilence) and dispatches the KindUnsilenced events.
func (d *Dispatcher) RemoveSilence(id, by string) ([]alert.Event, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	evs, err := d.l.RemoveSilence(id, by)
	if err != nil {
		return nil, err
	}
	d.stats.Recorded += uint64(len(evs))
	d.dispatchLocked()
	return evs, nil
}

// Run re-dispatches what the ledger recorded but did not mark dispatched
// (a crash between the two), then once a second: records held events,
// prunes expired silences, watches the targets for the degraded-path
// alert, offers undispatched events again and flushes the ledger. It
// returns nil when ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.start()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := d.l.Flush(); err != nil && !errors.Is(err, ErrLedgerClosed) {
				d.log.Error("notify: cannot flush the ledger", "err", err)
			}
			return nil
		case <-t.C:
			d.tick()
		}
	}
}

// start does what Run does before its first tick.
func (d *Dispatcher) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.l.Undispatched()); n > 0 {
		d.log.Warn("notify: re-dispatching alerts recorded but not dispatched before the last stop; paths may deliver some twice (same id and seq)",
			"events", n)
	}
	d.dispatchLocked()
	if len(d.orphans) > 0 {
		now := d.now()
		evs := make([]alert.Event, 0, len(d.orphans))
		for _, ev := range d.orphans {
			evs = append(evs, resolvedOf(ev, now, "delivery path "+ev.Group+" is no longer configured"))
		}
		if _, err := d.submitLocked(evs); err != nil && !errors.Is(err, ErrNotPersisted) {
			d.log.Error("notify: cannot resolve the degraded alert of a removed path", "err", err)
		}
		d.orphans = nil
	}
}

// tick is one round of Run's loop.
func (d *Dispatcher) tick() {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if len(d.deferred) > 0 {
		// Records them (and dispatches) if the ledger is writable.
		_, _ = d.submitLocked(nil)
	}
	if evs, err := d.l.PruneSilences(now); err != nil {
		d.log.Error("notify: cannot prune expired silences; retrying", "err", err)
	} else {
		d.stats.Recorded += uint64(len(evs))
	}
	var evs []alert.Event
	for _, dt := range d.targets {
		t := dt.t
		h := t.Health()
		w := &dt.watch
		down, why := d.isDownLocked(dt, h, now)
		dt.stats.Down = down
		switch {
		case down && w.downSince.IsZero():
			w.downSince = now
			fallthrough
		case down:
			if w.episode == "" && now.Sub(w.downSince) >= d.opts.DegradedAfter {
				ev := d.degradedEvent(t, h, why, w.downSince, now)
				w.episode = ev.ID
				evs = append(evs, ev)
				d.log.Error("notify: alert delivery path degraded; the other paths carry the alert", "path", t.Name(), "why", why, "down_since", w.downSince)
			}
		default:
			w.downSince = time.Time{}
			if w.episode != "" {
				prev, ok := d.l.Get(w.episode)
				if !ok || prev.State != alert.Firing {
					prev = d.degradedEvent(t, h, why, now, now)
					prev.ID = w.episode
				}
				evs = append(evs, resolvedOf(prev, now, ""))
				w.episode = ""
				d.log.Info("notify: alert delivery path healthy again", "path", t.Name())
			}
		}
		dt.stats.Degraded = w.episode != ""
	}
	if len(evs) > 0 {
		if _, err := d.submitLocked(evs); err != nil && !errors.Is(err, ErrNotPersisted) {
			d.log.Error("notify: cannot record the degraded-path alert", "err", err)
		}
	}
	d.dispatchLocked()
	if err := d.l.Flush(); err != nil {
		d.log.Error("notify: cannot flush the ledger", "err", err)
	}
}

// isDownLocked is isDown that also counts a target refusing new alerts
// as down: it may deliver its backlog, but not what happens now.
func (d *Dispatcher) isDownLocked(dt *dtarget, h Health, now time.Time) (bool, string) {
	if w := &dt.watch; w.refusing > 0 {
		return true, "refuses new alerts: " + w.refusal
	}
	return isDown(h, now, d.opts.DegradedAfter)
}

// isDown applies the Dispatcher's definition of a target that does not
// deliver, and says why.
func isDown(h Health, now time.Time, after time.Duration) (bool, string) {
	if !h.Up {
		if h.LastError != "" {
			return true, h.LastError
		}
		return true, "destination unreachable"
	}
	if h.Depth > 0 && !h.Oldest.IsZero() && now.Sub(h.Oldest) > after {
		return true, fmt.Sprintf("%d alerts waiting, the oldest for %s", h.Depth, now.Sub(h.Oldest).Round(time.Second))
	}
	return false, ""
}

// degradedEvent builds the firing degraded-path alert of target t.
func (d *Dispatcher) degradedEvent(t Target, h Health, why string, since, now time.Time) alert.Event {
	oldest := ""
	if !h.Oldest.IsZero() {
		oldest = now.Sub(h.Oldest).Round(time.Second).String()
	}
	return alert.Event{
		ID:       alert.EpisodeID(DegradedRule, t.Name(), since),
		Kind:     alert.KindFiring,
		State:    alert.Firing,
		Rule:     DegradedRule,
		Class:    "gateway",
		Severity: alert.Major,
		Group:    t.Name(),
		Site:     d.opts.Site,
		Gateway:  d.opts.Gateway,
		Summary:  fmt.Sprintf("alert delivery path %s (%s) degraded since %s: %s", t.Name(), t.Kind(), since.UTC().Format(time.RFC3339), why),
		Labels:   map[string]string{"path": t.Name(), "path_kind": t.Kind()},
		ActiveAt: since,
		FiredAt:  now,
		At:       now,
		Values: map[string]alert.Value{
			"up":         {Value: strconv.FormatBool(h.Up), Quality: "good"},
			"depth":      {Value: strconv.Itoa(h.Depth), Quality: "good"},
			"oldest_age": {Value: oldest, Quality: "good"},
		},
	}
}

// resolvedOf returns the resolved event of the episode whose latest event
// is ev.
func resolvedOf(ev alert.Event, now time.Time, summary string) alert.Event {
	ev.Kind, ev.State = alert.KindResolved, alert.Resolved
	ev.ResolvedAt, ev.At = now, now
	if summary != "" {
		ev.Summary = summary
	}
	ev.Seq = 0
	return ev
}

// Health returns the health of every current target: those given to
// NewDispatcher in their order (less the removed ones), then the added
// ones.
func (d *Dispatcher) Health() []Health {
	return health(d.snapshot())
}

func health(ts []*dtarget) []Health {
	out := make([]Health, len(ts))
	for i, dt := range ts {
		out[i] = dt.t.Health()
	}
	return out
}

// AllDown reports whether every target is down (last attempt failed, its
// backlog older than DegradedAfter, or it refuses new alerts): no alert
// leaves the gateway, and its /readyz says so. It is false when there are
// no targets.
func (d *Dispatcher) AllDown() bool {
	ts := d.snapshot()
	if len(ts) == 0 {
		return false
	}
	hs := health(ts)
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for i, h := range hs {
		if down, _ := d.isDownLocked(ts[i], h, now); !down {
			return false
		}
	}
	return true
}

// Stats returns a snapshot of the Dispatcher's account.
func (d *Dispatcher) Stats() DispatcherStats {
	d.mu.Lock()
	s := d.stats
	s.Deferred = len(d.deferred)
	for _, dt := range d.targets {
		ts := dt.stats
		ts.Name, ts.Kind = dt.t.Name(), dt.t.Kind()
		s.Targets = append(s.Targets, ts)
	}
	d.mu.Unlock()
	s.Undispatched = len(d.l.Undispatched())
	s.Active = len(d.l.Active())
	s.Silences = len(d.l.Silences())
	return s
}

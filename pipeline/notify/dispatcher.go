package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
// Submit, Ack, AddSilence, RemoveSilence, Health, AllDown and Stats are
// safe for concurrent use; Run is the Dispatcher's goroutine (the caller
// starts it; it ends with its context). The Dispatcher does not own the
// Ledger or the Targets: the caller closes them after Run returned.
type Dispatcher struct {
	l       *Ledger
	targets []Target
	opts    DispatcherOptions
	log     *slog.Logger

	mu       sync.Mutex
	done     map[uint64][]bool // per undispatched seq: which targets took it
	deferred []alert.Event     // submitted, but the ledger could not be written
	watch    []targetWatch
	orphans  []alert.Event // degraded alerts of targets no longer configured
	stats    DispatcherStats
	tstats   []TargetStats
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
		l:       l,
		targets: targets,
		opts:    opts,
		log:     opts.Log,
		done:    map[uint64][]bool{},
		watch:   make([]targetWatch, len(targets)),
		tstats:  make([]TargetStats, len(targets)),
	}
	byName := map[string]int{}
	for i, t := range targets {
		byName[t.Name()] = i
		d.tstats[i] = TargetStats{Name: t.Name(), Kind: t.Kind()}
	}
	if len(targets) == 0 {
		d.log.Warn("notify: no alert delivery path configured: alerts are recorded and shown, but delivered nowhere")
	}
	for _, ev := range l.Active() {
		if ev.Rule != DegradedRule {
			continue
		}
		if i, ok := byName[ev.Group]; ok {
			d.watch[i].episode = ev.ID
		} else {
			d.orphans = append(d.orphans, ev)
		}
	}
	return d
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
	if len(pending) == 0 {
		return
	}
	took := make([][]uint64, len(d.targets)) // per target: the seqs it took now
	var wg sync.WaitGroup
	for ti, t := range d.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			took[ti] = d.offer(ti, t, pending)
		}()
	}
	wg.Wait()
	for ti, seqs := range took {
		for _, seq := range seqs {
			tk := d.done[seq]
			if tk == nil {
				tk = make([]bool, len(d.targets))
				d.done[seq] = tk
			}
			tk[ti] = true
		}
	}
	for _, ev := range pending {
		took := d.done[ev.Seq]
		all := true
		for ti := range d.targets {
			if took == nil || !took[ti] {
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
		delete(d.done, ev.Seq)
		d.stats.Dispatched++
	}
}

// offer hands target ti the pending events it has not taken yet, in Seq
// order, stopping at the first refusal (later events wait, so the target
// keeps Seq order), and returns the seqs it took. It touches only target
// ti's watch and stats and reads d.done, which dispatchLocked does not
// change while the targets are served.
func (d *Dispatcher) offer(ti int, t Target, pending []alert.Event) []uint64 {
	w := &d.watch[ti]
	var seqs []uint64
	for _, ev := range pending {
		if tk := d.done[ev.Seq]; tk != nil && tk[ti] {
			continue
		}
		if err := t.Enqueue(ev); err != nil {
			d.tstats[ti].EnqueueErrors++
			w.refusing++
			w.refusal = err.Error()
			if n := w.refusing; n&(n-1) == 0 {
				d.log.Error("notify: delivery path refused an alert; it stays undispatched and is offered again",
					"path", t.Name(), "seq", ev.Seq, "episode", ev.ID, "rule", ev.Rule, "err", err, "refusals", n)
			}
			break
		}
		if w.refusing > 0 {
			d.log.Info("notify: delivery path takes alerts again", "path", t.Name(), "refusals", w.refusing)
			w.refusing = 0
		}
		seqs = append(seqs, ev.Seq)
		d.tstats[ti].Enqueued++
	}
	return seqs
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
	for i, t := range d.targets {
		h := t.Health()
		w := &d.watch[i]
		down, why := d.isDownLocked(i, h, now)
		d.tstats[i].Down = down
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
		d.tstats[i].Degraded = w.episode != ""
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
func (d *Dispatcher) isDownLocked(i int, h Health, now time.Time) (bool, string) {
	if w := &d.watch[i]; w.refusing > 0 {
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

// Health returns the health of every target, in the order given to
// NewDispatcher.
func (d *Dispatcher) Health() []Health {
	out := make([]Health, len(d.targets))
	for i, t := range d.targets {
		out[i] = t.Health()
	}
	return out
}

// AllDown reports whether every target is down (last attempt failed, its
// backlog older than DegradedAfter, or it refuses new alerts): no alert
// leaves the gateway, and its /readyz says so. It is false when there are
// no targets.
func (d *Dispatcher) AllDown() bool {
	if len(d.targets) == 0 {
		return false
	}
	hs := d.Health()
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for i, h := range hs {
		if down, _ := d.isDownLocked(i, h, now); !down {
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
	s.Targets = append([]TargetStats(nil), d.tstats...)
	d.mu.Unlock()
	s.Undispatched = len(d.l.Undispatched())
	s.Active = len(d.l.Active())
	s.Silences = len(d.l.Silences())
	return s
}

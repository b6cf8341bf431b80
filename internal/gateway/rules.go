package gateway

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/web"
	"github.com/facgw/facgw/pipeline/notify"
	"github.com/facgw/facgw/rules"
)

// buildRules starts the rules engine over the configured devices, puts the
// episodes the ledger still has open back into firing, and evaluates
// every batch of points as the hub hands it on: synchronously, on the
// polling goroutine, so an alert is in the ledger and every path's
// outbox before the next poll of that device.
func (g *Gateway) buildRules() error {
	if g.cfg.RuleSet == nil {
		return nil // config built without Load (tests): no rules
	}
	a := g.alerts
	a.ruleSet = g.cfg.RuleSet
	a.site, a.gateway = g.cfg.Site, g.cfg.Gateway
	for _, d := range g.devices {
		if d.cfg.IsAuto() {
			a.unidentified = append(a.unidentified, d)
		}
	}
	e, err := a.newEngine(g.devices)
	if err != nil {
		return err
	}
	a.engine = e
	g.hub.AddSink("rules", func(pts []point.Point) error {
		a.feed(g.deviceList(), pts)
		return nil
	}, g.sinkError)
	return nil
}

// newEngine builds an engine over the devices as identified so far and
// restores the episodes the ledger has open; episodes whose rule or device
// is gone are resolved.
func (a *alerting) newEngine(devices []*device) (*rules.Engine, error) {
	e, err := rules.NewEngine(a.ruleSet, rulesDevices(devices), rules.Options{Site: a.site, Gateway: a.gateway, Log: a.log.With("component", "rules")})
	if err != nil {
		return nil, err
	}
	var mine []alert.Event
	for _, ev := range a.ledger.Active() {
		// Not the engine's: the dispatcher's own (delivery path degraded)
		// and the load-shed controller's.
		if ev.Class != "gateway" && !strings.HasPrefix(ev.Rule, "loadshed/") {
			mine = append(mine, ev)
		}
	}
	if orphans := e.Restore(mine); len(orphans) > 0 && len(a.unidentified) == 0 {
		// While a device is still being identified its rules do not run
		// yet: its episodes are not orphans, only not back yet.
		now := time.Now().UTC()
		var resolved []alert.Event
		for _, ev := range orphans {
			ev.Kind, ev.State, ev.ResolvedAt, ev.At = alert.KindResolved, alert.Resolved, now, now
			ev.Summary = "resolved: its rule or device is no longer configured (" + ev.Summary + ")"
			resolved = append(resolved, ev)
		}
		a.log.Warn("resolving alerts of rules or devices no longer configured", "count", len(resolved))
		a.submit(resolved)
	}
	return e, nil
}

// feed evaluates a batch. A device configured with profile auto has no
// class (so no class-selected rules) until it is identified: then the
// engine is rebuilt with it. Its firing episodes come back from the
// ledger; pending timers and rate windows start over, which only happens
// in the first polls after a start.
func (a *alerting) feed(devices []*device, pts []point.Point) {
	a.mu.RLock()
	rebuild := false
	for _, d := range a.unidentified {
		if d.drv.Resolved() != nil {
			rebuild = true
			break
		}
	}
	if !rebuild {
		a.submit(a.engine.Feed(pts))
		a.mu.RUnlock()
		return
	}
	a.mu.RUnlock()
	a.mu.Lock()
	var still []*device
	for _, d := range a.unidentified {
		if d.drv.Resolved() == nil {
			still = append(still, d)
		}
	}
	if len(still) < len(a.unidentified) {
		a.unidentified = still
		if e, err := a.newEngine(devices); err != nil {
			a.log.Error("rules: cannot take in an identified device; its class-selected rules stay off", "err", err)
		} else {
			a.engine = e
		}
	}
	a.submit(a.engine.Feed(pts))
	a.mu.Unlock()
}

// submit hands the engine's events to the dispatcher. A ledger that could
// not be written keeps them and records them on its next tick (before
// anything newer), so the failure is logged, never retried here.
func (a *alerting) submit(evs []alert.Event) {
	if len(evs) == 0 {
		return
	}
	if _, err := a.disp.Submit(evs); err != nil && !errors.Is(err, notify.ErrNotPersisted) {
		a.log.Error("alert events not recorded", "events", len(evs), "err", err)
	} else if err != nil {
		a.log.Error("alert ledger not written; events held for the next attempt", "events", len(evs), "err", err)
	}
}

// runTicks completes for and keep_firing_for durations of instances no new
// point reaches (a device gone silent), at the sweeper's period.
func (a *alerting) runTicks(ctx context.Context, period time.Duration) {
	if a.ruleSet == nil {
		return // no rules (set before Run, never changed)
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			a.mu.RLock()
			a.submit(a.engine.Tick(now))
			a.mu.RUnlock()
		}
	}
}

// Firing implements rules.AlertState for the load-shed triggers'
// firing(): it asks the rules engine in force (a reload or an identified
// device replaces it); without one the state is unknown. Cheap and
// lock-free but for the read lock: the engine publishes its instances'
// states as they change.
//
// Not firing is unknown while a device that may belong to the scope is
// still being identified (profile: auto): its class selects its rules, so
// they do not run for it yet, and its episodes in the ledger are not
// restored until they do. Firing is firing either way.
func (a *alerting) Firing(rule string, sc rules.Scope) (firing, known bool) {
	a.mu.RLock()
	e, unidentified := a.engine, a.unidentified
	a.mu.RUnlock()
	if e == nil {
		return false, false
	}
	firing, known = e.Firing(rule, sc)
	if firing || !known || len(unidentified) == 0 {
		return firing, known
	}
	if sc.Anywhere() {
		return false, false
	}
	var groupBy []string
	for _, r := range e.Rules() {
		if r.ID == rule {
			groupBy = r.GroupBy
		}
	}
	for _, d := range unidentified {
		for i := range sc.Len() {
			id, labels := sc.Device(i)
			if mayBelong(d.cfg.ID, d.cfg.Labels, id, labels, groupBy) {
				return false, false
			}
		}
	}
	return false, true
}

// mayBelong reports whether device dev (with labels) can be part of the
// instance, of a rule grouped by groupBy (nil: per device), that scope
// device id (with its labels) reads: the same device, or the same values
// of every group label.
func mayBelong(dev string, labels map[string]string, id string, idLabels map[string]string, groupBy []string) bool {
	if dev == id {
		return true
	}
	if groupBy == nil {
		return false
	}
	for _, l := range groupBy {
		if labels[l] != idLabels[l] {
			return false
		}
	}
	return true
}

var _ rules.AlertState = (*alerting)(nil)

// pending lists the instances waiting out their for-duration.
func (a *alerting) pending() []web.PendingDoc {
	out := []web.PendingDoc{}
	a.mu.RLock()
	e := a.engine
	a.mu.RUnlock()
	if e == nil {
		return out
	}
	for _, in := range e.Instances() {
		if in.State != alert.Pending {
			continue
		}
		inst := in.Device
		if inst == "" {
			inst = in.Group
		}
		out = append(out, web.PendingDoc{Rule: in.Rule, Instance: inst, Severity: in.Severity, Class: in.Class, Since: in.ActiveAt, Summary: in.Summary})
	}
	return out
}

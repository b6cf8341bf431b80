package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/web"
	"github.com/facgw/facgw/pipeline/mqtt"
	"github.com/facgw/facgw/pipeline/notify"
	"github.com/facgw/facgw/rules"
)

// alerting owns the alert ledger, the delivery paths and the dispatcher
// between them.
type alerting struct {
	log *slog.Logger

	// The rules engine, nil without rules; replaced (under mu) when a
	// device configured with profile auto is identified.
	mu            sync.RWMutex
	engine        *rules.Engine
	ruleSet       *rules.RuleSet
	site, gateway string
	unidentified  []*device
	ledger        *notify.Ledger
	disp          *notify.Dispatcher
	paths         []*notify.Path // the paths with their own sender goroutine; a reload swaps in a new slice
	// mqttPath is the MQTT alert path, nil when alerts do not go over
	// MQTT; a reload that adds or removes brokers updates its publishers,
	// one that toggles alerting.mqtt sets or clears it.
	mqttPath *mqtt.AlertPath
	// applied is the alerting section in force (nil: none) and pathKeys
	// the fingerprint of each of its paths (by name) as they were built,
	// which a reload compares the new ones with (see alerting_reload.go).
	applied  *config.Alerting
	pathKeys map[string]string
	now      func() time.Time
}

// alertPathMaxBackoff caps the wait between attempts on an alert path:
// alerts are few and small, and a fire alarm should not sit a minute
// behind a receiver that has just come back.
const alertPathMaxBackoff = 10 * time.Second

// buildAlerting opens the ledger and each path's outbox under the state
// directory. No network I/O happens here.
func (g *Gateway) buildAlerting() error {
	cfg := g.cfg
	a := &alerting{now: time.Now, log: g.log, applied: cfg.Alerting, pathKeys: map[string]string{}}
	g.alerts = a
	maxSilence := config.DefaultMaxSilence
	degraded := config.DefaultDegradedAfter
	if ac := cfg.Alerting; ac != nil {
		maxSilence, degraded = ac.MaxSilence, ac.DegradedAfter
	}
	dir := filepath.Join(cfg.StateDir, "alerts")
	l, err := notify.OpenLedgerWith(notify.LedgerOptions{Dir: filepath.Join(dir, "ledger"), Log: g.log.With("component", "ledger"), MaxSilence: maxSilence})
	if err != nil {
		return fmt.Errorf("gateway: alert ledger: %w", err)
	}
	a.ledger = l
	var targets []notify.Target
	if pubs := g.pub.brokers(); cfg.Alerting.MQTTAlerts(cfg) && len(pubs) > 0 {
		info := mqtt.StatusInfo{Prefix: cfg.MQTT.Prefix, Site: cfg.Site, Gateway: cfg.Gateway, Version: g.version, Started: g.started}
		mp, err := mqtt.NewAlertPath(info, pubs...)
		if err != nil {
			return fmt.Errorf("gateway: mqtt alert path: %w", err)
		}
		a.mqttPath = mp
		targets = append(targets, mqttTarget{mp})
	}
	// The same specs and constructors as a reload's (alerting_reload.go).
	for _, ps := range alertPathSpecs(cfg, g.log) {
		s, err := ps.build()
		if err != nil {
			return fmt.Errorf("gateway: alert path %s: %w", ps.name, err)
		}
		p, err := g.openAlertPath(ps.name, ps.kind, s)
		if err != nil {
			return err
		}
		a.paths = append(a.paths, p)
		a.pathKeys[ps.name] = ps.key
		targets = append(targets, p)
	}
	a.disp = notify.NewDispatcher(l, targets, notify.DispatcherOptions{Site: cfg.Site, Gateway: cfg.Gateway, DegradedAfter: degraded,
		Log: g.log.With("component", "dispatcher")})
	return g.buildRules()
}

// run starts the dispatcher and every path's sender.
func (a *alerting) run(ctx context.Context, spawn func(func())) {
	spawn(func() { _ = a.disp.Run(ctx) })
	a.mu.RLock()
	paths := a.paths // a reload may swap the slice (and starts the paths it adds itself)
	a.mu.RUnlock()
	for _, p := range paths {
		spawn(func() { _ = p.Run(ctx) })
	}
}

// close closes the paths' outboxes and the ledger; call after the senders
// have stopped.
func (a *alerting) close() {
	if a == nil {
		return
	}
	a.mu.RLock()
	paths := a.paths
	a.mu.RUnlock()
	for _, p := range paths {
		_ = p.Close()
	}
	if a.ledger != nil {
		_ = a.ledger.Close()
	}
}

// mqttTarget adapts the MQTT alert path to a notify.Target.
type mqttTarget struct{ p *mqtt.AlertPath }

func (m mqttTarget) Name() string                 { return "mqtt" }
func (m mqttTarget) Kind() string                 { return "mqtt" }
func (m mqttTarget) Enqueue(ev alert.Event) error { return m.p.Enqueue(ev) }
func (m mqttTarget) Health() notify.Health {
	h := m.p.Health()
	return notify.Health{Name: "mqtt", Kind: "mqtt", Up: h.Up, Depth: h.Depth, Oldest: h.Oldest, LastError: h.LastError, Detail: h.Brokers}
}

// AlertsDoc implements web.Alerting.
func (a *alerting) AlertsDoc() web.AlertsDoc {
	doc := web.AlertsDoc{Active: a.ledger.Active(), Pending: a.pending(), Recent: a.ledger.Recent(50), Silences: []web.SilenceDoc{}, Paths: []web.PathDoc{}}
	sort.SliceStable(doc.Active, func(i, j int) bool {
		x, y := doc.Active[i], doc.Active[j]
		if x.Severity != y.Severity {
			return x.Severity > y.Severity
		}
		return x.ActiveAt.After(y.ActiveAt)
	})
	if doc.Active == nil {
		doc.Active = []alert.Event{}
	}
	if doc.Recent == nil {
		doc.Recent = []alert.Event{}
	}
	for _, s := range a.ledger.Silences() {
		doc.Silences = append(doc.Silences, web.SilenceDoc{ID: s.ID, Rule: s.Matchers.Rule, Device: s.Matchers.Device, Group: s.Matchers.Group,
			Class: s.Matchers.Class, Labels: s.Matchers.Labels, Severity: s.Severity, Until: s.Until, Reason: s.Reason, By: s.By, Created: s.Created})
	}
	for _, h := range a.disp.Health() {
		doc.Paths = append(doc.Paths, web.PathDoc{Name: h.Name, Kind: h.Kind, Up: h.Up, Depth: h.Depth, Oldest: h.Oldest, LastError: h.LastError,
			LastOK: h.LastOK, DownSince: h.DownSince, Delivered: h.Delivered, Failures: h.Failures, Detail: h.Detail})
	}
	doc.AllPathsDown = a.disp.AllDown()
	return doc
}

// Ack implements web.Alerting.
func (a *alerting) Ack(id, by, comment string) (alert.Event, error) {
	ev, err := a.disp.Ack(id, by, comment)
	return ev, apiErr(err)
}

// AddSilence implements web.Alerting.
func (a *alerting) AddSilence(req web.SilenceRequest, by string) (web.SilenceDoc, error) {
	d, err := time.ParseDuration(req.Duration)
	if err != nil || d <= 0 {
		return web.SilenceDoc{}, fmt.Errorf("duration %q: want a positive duration such as 2h: %w", req.Duration, web.ErrInvalid)
	}
	s := notify.Silence{Matchers: notify.Matchers{Rule: req.Rule, Device: req.Device, Group: req.Group, Class: req.Class, Labels: req.Labels},
		Until: a.now().Add(d), Reason: req.Reason, By: by}
	if req.Severity != "" {
		sev, err := alert.ParseSeverity(req.Severity)
		if err != nil {
			return web.SilenceDoc{}, fmt.Errorf("%v: %w", err, web.ErrInvalid)
		}
		s.Severity = sev
	}
	got, _, err := a.disp.AddSilence(s)
	if err != nil {
		return web.SilenceDoc{}, apiErr(err)
	}
	return web.SilenceDoc{ID: got.ID, Rule: got.Matchers.Rule, Device: got.Matchers.Device, Group: got.Matchers.Group, Class: got.Matchers.Class,
		Labels: got.Matchers.Labels, Severity: got.Severity, Until: got.Until, Reason: got.Reason, By: got.By, Created: got.Created}, nil
}

// RemoveSilence implements web.Alerting.
func (a *alerting) RemoveSilence(id, by string) error {
	_, err := a.disp.RemoveSilence(id, by)
	return apiErr(err)
}

// apiErr sorts the ledger's refusals into the API's classes: an unknown id
// is not found; a persisted-state failure stays a server error; anything
// else is the request's fault.
func apiErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, notify.ErrUnknownEpisode), errors.Is(err, notify.ErrUnknownSilence):
		return fmt.Errorf("%w: %w", web.ErrNotFound, err)
	case errors.Is(err, notify.ErrNotPersisted), errors.Is(err, notify.ErrLedgerClosed):
		return err
	default:
		return fmt.Errorf("%w: %w", web.ErrInvalid, err)
	}
}

// EventsSince implements web.AlertFeed.
func (a *alerting) EventsSince(seq uint64, max int) []alert.Event { return a.ledger.Since(seq, max) }

// LastSeq implements web.AlertFeed.
func (a *alerting) LastSeq() uint64 { return a.ledger.LastSeq() }

var _ web.AlertFeed = (*alerting)(nil)

package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/metrics"
	"github.com/facgw/facgw/internal/strictyaml"
	"github.com/facgw/facgw/internal/web"
	"github.com/facgw/facgw/internal/web/auth"
	"github.com/facgw/facgw/pipeline"
	"github.com/facgw/facgw/rules"
)

// Hot reload (issue 8). A reload applies a new, already loaded and checked
// configuration to the running gateway in two phases: plan builds
// everything that can fail (drivers, a trial rules engine, the
// authenticator) without touching what runs; apply then swaps the parts
// that changed. A refused configuration leaves the old one running in
// full.
//
// What a reload applies: devices (added, removed, or changed in any field
// or in their profile: only those restart, the others' poll goroutines are
// never touched), their Modbus connections, the rule set (the engine is
// rebuilt from the ledger, so firing episodes keep their id and are not
// announced again), the HTTP users and tokens (logged-in sessions are
// lost), the durable destinations: MQTT brokers and the history database
// (sinks_reload.go), the alert delivery paths (alerting_reload.go) — a
// changed destination keeps its outbox — and what the trap listener
// accepts (traps.go). What waits for a restart, and is reported so: site,
// gateway, state_dir, http listen/tls/history/session_ttl, the mqtt
// section as a whole and its prefix, outbox bounds, the traps section as
// a whole and its listen address, loadshed, the defaults' stale_after, and
// any device a load-shed policy switches (the controller holds its
// driver). The sequence store, outboxes, ledger and hub are never
// rebuilt, so sequence numbers and alert state carry over.

// Loader reads the configuration and the profiles anew, the way the
// process did at start (cmd/facgw: the same -config path).
type Loader func() (*config.Config, *profiles.Registry, error)

// ReloadResult is the outcome of one reload attempt.
type ReloadResult struct {
	At time.Time `json:"at"`
	OK bool      `json:"ok"`
	// Errors are the reasons a configuration was refused, each located
	// (file:line:col: path: message) where the loader could locate it.
	Errors []string `json:"errors,omitempty"`
	// Devices added, removed and restarted because they changed;
	// Unchanged kept polling without a gap.
	Added     []string `json:"devices_added"`
	Removed   []string `json:"devices_removed"`
	Changed   []string `json:"devices_changed"`
	Unchanged int      `json:"devices_unchanged"`
	// RulesRebuilt says the rules engine was rebuilt (rule set or devices
	// changed).
	RulesRebuilt bool `json:"rules_rebuilt"`
	// AuthRebuilt says the HTTP users or tokens changed; sessions were
	// dropped.
	AuthRebuilt bool `json:"http_auth_rebuilt"`
	// Sinks lists the durable destinations and alert paths changed,
	// added or removed ("mqtt.brokers[b] changed", "influx added",
	// "alerting.webhook[ops] changed", ...); their outboxes carried over.
	Sinks []string `json:"sinks"`
	// TrapsUpdated says the trap listener now accepts other communities,
	// users or sources (devices added or moved).
	TrapsUpdated bool `json:"traps_updated"`
	// NeedsRestart lists what differs from the running process but can
	// only take effect after a restart; it stays listed on later reloads
	// until a restart (or until the file matches the running value again).
	NeedsRestart []string `json:"needs_restart"`
}

// ReloadStatus is the "reload" object of /api/v1/state.
type ReloadStatus struct {
	Last        ReloadResult `json:"last"`
	LastSuccess time.Time    `json:"last_success,omitzero"`
	Succeeded   uint64       `json:"succeeded"`
	Failed      uint64       `json:"failed"`
}

// reloadState is the gateway's reload bookkeeping. mu serialises reloads;
// the status fields are guarded by statusMu so the state endpoint never
// waits for a reload in progress.
type reloadState struct {
	mu      sync.Mutex
	stopped bool // Run is shutting down: no more reloads
	load    Loader
	cur     *config.Config    // the config in force for devices and rules; nil: g.cfg
	keys    map[string]string // device id -> fingerprint of what it runs with
	connOf  map[string]string // device id -> Modbus connection key

	statusMu    sync.Mutex
	last        *ReloadResult
	lastSuccess time.Time
	ok, failed  uint64
}

// SetLoader sets how ReloadConfig (SIGHUP, POST /api/v1/reload) reads the
// configuration. Without one it loads cfg.File with the shipped profiles.
func (g *Gateway) SetLoader(l Loader) {
	g.rl.mu.Lock()
	g.rl.load = l
	g.rl.mu.Unlock()
}

// ReloadConfig loads the configuration with the loader and applies it
// (web.Reloader). A load error is recorded and reported like a refused
// configuration.
func (g *Gateway) ReloadConfig() (any, error) {
	g.rl.mu.Lock()
	load := g.rl.load
	g.rl.mu.Unlock()
	if load == nil {
		file := g.cfg.File
		load = func() (*config.Config, *profiles.Registry, error) {
			reg, err := profiles.Shipped()
			if err != nil {
				return nil, nil, err
			}
			cfg, err := config.Load(file, reg)
			return cfg, reg, err
		}
	}
	cfg, reg, err := load()
	if err != nil {
		return g.refuse(time.Now(), nil, err), fmt.Errorf("gateway: reload: %w", err)
	}
	return g.Reload(cfg, reg)
}

// ReloadStatus implements web.Reloader: nil before the first attempt.
func (g *Gateway) ReloadStatus() any {
	g.rl.statusMu.Lock()
	defer g.rl.statusMu.Unlock()
	if g.rl.last == nil {
		return nil
	}
	return ReloadStatus{Last: *g.rl.last, LastSuccess: g.rl.lastSuccess, Succeeded: g.rl.ok, Failed: g.rl.failed}
}

var _ web.Reloader = (*Gateway)(nil)

// Reload applies cfg (loaded and checked by config.Load against reg) to
// the running gateway. Only changed devices, the rules engine and the
// authenticator are rebuilt, and only when they changed; sections that
// need a restart are listed in the result and otherwise left as they run.
// On error nothing was changed and the previous configuration stays in
// force. Reloads are serialised; Run must have started.
func (g *Gateway) Reload(cfg *config.Config, reg *profiles.Registry) (ReloadResult, error) {
	g.rl.mu.Lock()
	defer g.rl.mu.Unlock()
	now := time.Now().UTC()
	if !g.running.Load() || g.rl.stopped {
		err := errors.New("gateway: reload: the gateway is not running")
		return g.refuse(now, nil, err), err
	}
	p, err := g.planReload(cfg, reg)
	if err != nil {
		return g.refuse(now, p, err), err
	}
	g.applyReload(p)
	res := p.result
	res.At, res.OK = now, true
	g.rl.statusMu.Lock()
	g.rl.last, g.rl.lastSuccess = &res, now
	g.rl.ok++
	g.rl.statusMu.Unlock()
	g.log.Info("configuration reloaded", "file", cfg.File, "devices_added", res.Added, "devices_removed", res.Removed,
		"devices_changed", res.Changed, "devices_unchanged", res.Unchanged, "rules_rebuilt", res.RulesRebuilt,
		"http_auth_rebuilt", res.AuthRebuilt, "sinks", res.Sinks, "needs_restart", res.NeedsRestart)
	return res, nil
}

// stopReloads waits for a reload in progress and refuses later ones; Run
// calls it before it closes the devices and connections.
func (g *Gateway) stopReloads() {
	g.rl.mu.Lock()
	g.rl.stopped = true
	g.rl.mu.Unlock()
}

// refuse records and logs a refused reload.
func (g *Gateway) refuse(now time.Time, p *reloadPlan, err error) ReloadResult {
	res := ReloadResult{At: now}
	if p != nil {
		res.NeedsRestart = p.result.NeedsRestart
	}
	res.Errors = located(err)
	g.rl.statusMu.Lock()
	g.rl.last = &res
	g.rl.failed++
	g.rl.statusMu.Unlock()
	g.log.Error("configuration reload refused; the running configuration stays in force", "errors", res.Errors)
	return res
}

// located splits an error into its messages: config.Load returns every
// problem at once (strictyaml.Errors), each already file:line:col located.
func located(err error) []string {
	var errs strictyaml.Errors
	if errors.As(err, &errs) {
		out := make([]string, 0, len(errs))
		for _, e := range errs {
			out = append(out, e.Error())
		}
		return out
	}
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// reloadPlan is everything built for a reload before anything running is
// touched.
type reloadPlan struct {
	cfg    *config.Config
	result ReloadResult
	// devices is the new device list in config order: kept ones are the
	// running *device, the others new.
	devices []*device
	// stop are the running devices to remove (removed or changed).
	stop []*device
	// start are the schedules of new and changed devices.
	start    []pipeline.Schedule
	conns    map[string]*mbdrv.Conn
	keys     map[string]string
	connOf   map[string]string
	rules    bool
	auth     *auth.Authenticator
	sinks    *sinksPlan
	traps    *trapsPlan
	alerting *alertingPlan
}

// planReload compares cfg with what runs and builds the new parts.
func (g *Gateway) planReload(cfg *config.Config, reg *profiles.Registry) (*reloadPlan, error) {
	if cfg == nil {
		return nil, errors.New("gateway: reload: no configuration")
	}
	cur := g.rl.cur
	if cur == nil {
		cur = g.cfg
	}
	g.initKeys()
	p := &reloadPlan{cfg: cfg, keys: map[string]string{}, connOf: map[string]string{}, conns: map[string]*mbdrv.Conn{}}
	p.result.NeedsRestart = g.needsRestart(cfg)
	if p.result.NeedsRestart == nil {
		p.result.NeedsRestart = []string{}
	}
	running := map[string]*device{}
	for _, d := range g.deviceList() {
		running[d.cfg.ID] = d
	}
	// Devices a load-shed policy switches stay as they are: the controller
	// holds their drivers.
	pinned := map[string]bool{}
	if ls := g.cfg.Loadshed; ls != nil && g.loadshed != nil {
		for _, l := range ls.Loads {
			pinned[l.Device] = true
		}
	}
	// Built on a scratch gateway so the running one's device, schedule
	// and connection lists stay untouched until apply.
	scratch := &Gateway{log: g.log, conns: p.conns}
	_, _, conns := g.snapshotDevices()
	keptConn := map[string]bool{}
	var kept []*device
	seen := map[string]bool{}
	for i := range cfg.Devices {
		dc := &cfg.Devices[i]
		if dc.Disabled {
			continue
		}
		seen[dc.ID] = true
		key := deviceKey(dc, cfg.Profiles)
		old := running[dc.ID]
		if old != nil && (g.rl.keys[dc.ID] == key || pinned[dc.ID]) {
			if g.rl.keys[dc.ID] != key {
				p.result.NeedsRestart = append(p.result.NeedsRestart, "devices["+dc.ID+"] (switched by load shed)")
			}
			kept = append(kept, old)
			p.keys[dc.ID], p.connOf[dc.ID] = g.rl.keys[dc.ID], g.rl.connOf[dc.ID]
			if ck := g.rl.connOf[dc.ID]; ck != "" {
				keptConn[ck] = true
			}
			continue
		}
		p.keys[dc.ID] = key
		if old == nil {
			p.result.Added = append(p.result.Added, dc.ID)
		} else {
			p.result.Changed = append(p.result.Changed, dc.ID)
			p.stop = append(p.stop, old)
		}
	}
	for id, d := range running {
		if seen[id] {
			continue
		}
		if pinned[id] {
			p.result.NeedsRestart = append(p.result.NeedsRestart, "devices["+id+"] (switched by load shed)")
			kept = append(kept, d)
			p.keys[id], p.connOf[id] = g.rl.keys[id], g.rl.connOf[id]
			if ck := g.rl.connOf[id]; ck != "" {
				keptConn[ck] = true
			}
			continue
		}
		p.result.Removed = append(p.result.Removed, id)
		p.stop = append(p.stop, d)
	}
	// A connection a kept device uses is shared with any new device on it
	// (one serialised connection per gateway or serial port); the others
	// are made anew, so a changed timeout or line setting takes effect.
	for ck := range keptConn {
		if c := conns[ck]; c != nil {
			p.conns[ck] = c
		}
	}
	byID := map[string]*device{}
	for _, d := range kept {
		byID[d.cfg.ID] = d
	}
	for i := range cfg.Devices {
		dc := &cfg.Devices[i]
		if dc.Disabled || byID[dc.ID] != nil {
			continue
		}
		n := len(scratch.scheds)
		if err := scratch.addDevice(dc, reg); err != nil {
			scratch.discard(conns)
			return p, err
		}
		byID[dc.ID] = scratch.devices[len(scratch.devices)-1]
		p.start = append(p.start, scratch.scheds[n:]...)
		if dc.Transport != config.TransportSNMP {
			p.connOf[dc.ID] = dc.ConnKey()
		}
	}
	// Config order, then pinned devices gone from the file at the end.
	for i := range cfg.Devices {
		if d := byID[cfg.Devices[i].ID]; d != nil && !cfg.Devices[i].Disabled {
			p.devices = append(p.devices, d)
			delete(byID, cfg.Devices[i].ID)
		}
	}
	for _, d := range kept {
		if byID[d.cfg.ID] != nil {
			p.devices = append(p.devices, d)
		}
	}
	sort.Strings(p.result.Added)
	sort.Strings(p.result.Removed)
	sort.Strings(p.result.Changed)
	p.result.Unchanged = len(p.devices) - len(p.result.Added) - len(p.result.Changed)
	for _, s := range []*[]string{&p.result.Added, &p.result.Removed, &p.result.Changed} {
		if *s == nil {
			*s = []string{}
		}
	}
	devicesChanged := len(p.result.Added)+len(p.result.Removed)+len(p.result.Changed) > 0
	if devicesChanged && g.loadshed != nil && g.cfg.Loadshed != nil {
		// The controller's triggers select and group the devices as they
		// were at start (labels, profiles): a change to a device a
		// trigger selects, before or after, waits for a restart there,
		// though polling and the rules have it at once.
		touched := map[string]bool{}
		for _, ids := range [][]string{p.result.Added, p.result.Removed, p.result.Changed} {
			for _, id := range ids {
				touched[id] = true
			}
		}
		var devs []rules.Device
		for _, d := range append(rulesDevices(g.deviceList()), rulesDevices(p.devices)...) {
			if touched[d.ID] {
				devs = append(devs, d)
			}
		}
		if ids := loadshedSelects(g.cfg.Loadshed, devs); len(ids) > 0 {
			p.result.NeedsRestart = append(p.result.NeedsRestart, "loadshed (trigger devices changed: "+strings.Join(ids, ", ")+")")
		}
	}

	// Rules: rebuilt when the rule set or the devices changed. A trial
	// engine over the new devices proves it builds before anything stops.
	if g.alerts != nil && g.alerts.ruleSet != nil && cfg.RuleSet != nil {
		if devicesChanged || fingerprint(ruleSetView(cfg.RuleSet)) != fingerprint(ruleSetView(cur.RuleSet)) {
			if _, err := rules.NewEngine(cfg.RuleSet, rulesDevices(p.devices), rules.Options{Site: g.cfg.Site, Gateway: g.cfg.Gateway}); err != nil {
				scratch.discard(conns)
				return p, fmt.Errorf("gateway: reload: rules: %w", err)
			}
			p.rules = true
		}
	} else if cfg.RuleSet != nil && g.cfg.RuleSet == nil {
		p.result.NeedsRestart = append(p.result.NeedsRestart, "rules")
	}
	p.result.RulesRebuilt = p.rules

	if fingerprint(authView(&cfg.HTTP)) != fingerprint(authView(&cur.HTTP)) {
		a, err := auth.New(cfg.HTTP.AuthConfig(), g.log.With("component", "http-auth"), nil)
		if err != nil {
			scratch.discard(conns)
			return p, fmt.Errorf("gateway: reload: http: %w", err)
		}
		p.auth = a
		p.result.AuthRebuilt = true
	}
	sp, err := g.planSinks(cfg)
	if err != nil {
		scratch.discard(conns)
		return p, err
	}
	p.sinks = sp
	p.result.Sinks = append([]string{}, sp.summary...)
	p.result.NeedsRestart = append(p.result.NeedsRestart, sp.restart...)
	tp, restart, err := g.planTraps(cfg)
	if err != nil {
		sp.discard()
		scratch.discard(conns)
		return p, err
	}
	p.traps = tp
	p.result.TrapsUpdated = tp != nil
	p.result.NeedsRestart = append(p.result.NeedsRestart, restart...)
	ap, err := g.planAlerting(cfg)
	if err != nil {
		sp.discard()
		scratch.discard(conns)
		return p, err
	}
	p.alerting = ap
	p.result.Sinks = append(p.result.Sinks, ap.summary()...)
	p.result.NeedsRestart = append(p.result.NeedsRestart, ap.needsRestart()...)
	sort.Strings(p.result.NeedsRestart)
	p.result.NeedsRestart = slices.Compact(p.result.NeedsRestart)
	return p, nil
}

// applyReload swaps in what planReload built. Nothing here can fail in a
// way that leaves a half-applied configuration: stopping a schedule and
// closing a connection do not fail, and the rules engine was built once
// already.
func (g *Gateway) applyReload(p *reloadPlan) {
	for _, d := range p.stop {
		g.poller.Remove(d.cfg.ID)
		if c, ok := d.drv.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
	var scheds []pipeline.Schedule
	keep := map[string]bool{}
	for _, d := range p.devices {
		keep[d.cfg.ID] = true
	}
	_, oldScheds, oldConns := g.snapshotDevices()
	for _, s := range oldScheds {
		if keep[s.Source.ID()] && !slices.ContainsFunc(p.stop, func(d *device) bool { return d.cfg.ID == s.Source.ID() }) {
			scheds = append(scheds, s)
		}
	}
	scheds = append(scheds, p.start...)
	g.mu.Lock()
	g.devices, g.scheds, g.conns = p.devices, scheds, p.conns
	g.mu.Unlock()
	// The removed devices' goroutines have returned: a connection no
	// device uses any more can close.
	for k, c := range oldConns {
		if p.conns[k] != c {
			_ = c.Close()
		}
	}
	if p.rules {
		a := g.alerts
		a.mu.Lock()
		a.ruleSet = p.cfg.RuleSet
		a.unidentified = nil
		for _, d := range p.devices {
			if d.cfg.IsAuto() && d.drv.Resolved() == nil {
				a.unidentified = append(a.unidentified, d)
			}
		}
		if e, err := a.newEngine(p.devices); err != nil {
			// Built once in the plan already; only a ledger problem can
			// get here, and the old engine is better than none.
			g.log.Error("reload: rules engine not rebuilt; the previous rules stay", "err", err)
		} else {
			a.engine = e
		}
		a.mu.Unlock()
	}
	if p.auth != nil {
		g.auth.swap(p.auth)
	}
	if err := g.poller.Add(p.start...); err != nil {
		g.log.Error("reload: new schedules not started", "err", err)
	}
	if p.sinks != nil {
		g.applySinks(p.sinks)
	}
	g.applyTraps(p.traps)
	if p.alerting != nil {
		g.applyAlerting(p.alerting)
	}
	g.rl.cur, g.rl.keys, g.rl.connOf = p.cfg, p.keys, p.connOf
}

// discard closes what a refused plan built: the new devices' SNMP
// sessions and the connections made for them (not yet connected; the
// running devices' connections it shares are left alone).
func (scratch *Gateway) discard(running map[string]*mbdrv.Conn) {
	for _, d := range scratch.devices {
		if c, ok := d.drv.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
	for k, c := range scratch.conns {
		if running[k] != c {
			_ = c.Close()
		}
	}
}

// deviceList returns the devices as they are now. The slice is never
// modified in place (a reload swaps in a new one), so callers may range
// over it without holding the lock.
func (g *Gateway) deviceList() []*device {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.devices
}

// snapshotDevices returns the device, schedule and connection lists.
func (g *Gateway) snapshotDevices() ([]*device, []pipeline.Schedule, map[string]*mbdrv.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.devices, g.scheds, g.conns
}

// initKeys fingerprints the devices the gateway was built with, once.
func (g *Gateway) initKeys() {
	if g.rl.keys != nil {
		return
	}
	g.rl.keys, g.rl.connOf = map[string]string{}, map[string]string{}
	for _, d := range g.deviceList() {
		g.rl.keys[d.cfg.ID] = deviceKey(d.cfg, g.cfg.Profiles)
		if d.cfg.Transport != config.TransportSNMP {
			g.rl.connOf[d.cfg.ID] = d.cfg.ConnKey()
		}
	}
}

// deviceKey fingerprints everything a device's driver and schedules are
// built from: every field of its config (secrets by hash, positions
// left out, so moving it in the file is no change), the effective
// defaults it inherits, and its profile; for profile auto, every profile
// of its protocol, any of which identification may pick.
func deviceKey(dc *config.Device, reg *profiles.Registry) string {
	type effective struct {
		Device                    *config.Device
		Timeout, Backoff, MaxBack time.Duration
		Retries, StaleAfter       int
		Intervals                 map[string]time.Duration
		Profiles                  []*profiles.Profile
	}
	e := effective{Device: dc, Timeout: dc.Timeout(), Backoff: dc.Backoff(), MaxBack: dc.MaxBackoff(), Retries: dc.Retries(),
		StaleAfter: dc.StaleAfter(), Intervals: map[string]time.Duration{}}
	if p := dc.ProfileDef(); p != nil {
		e.Profiles = []*profiles.Profile{p}
	} else if dc.IsAuto() && reg != nil {
		for _, p := range reg.List() {
			if p.Protocol == config.Protocol(dc.Transport) {
				e.Profiles = append(e.Profiles, p)
			}
		}
		sort.Slice(e.Profiles, func(i, j int) bool { return e.Profiles[i].Model < e.Profiles[j].Model })
	}
	groups := map[string]bool{config.DefaultGroup: true}
	for _, p := range e.Profiles {
		for gname := range p.GroupNames() {
			groups[gname] = true
		}
	}
	for gname := range groups {
		e.Intervals[gname] = dc.Interval(gname)
	}
	return fingerprint(e)
}

// needsRestart lists the sections of cfg that differ from the ones the
// process started with and that a reload cannot apply.
func (g *Gateway) needsRestart(cfg *config.Config) []string {
	run := g.cfg
	var out []string
	for _, c := range []struct {
		name     string
		was, now any
	}{
		{"site", run.Site, cfg.Site},
		{"gateway", run.Gateway, cfg.Gateway},
		{"state_dir", run.StateDir, cfg.StateDir},
		{"http.listen", run.HTTP.Listen, cfg.HTTP.Listen},
		{"http.tls", run.HTTP.TLS, cfg.HTTP.TLS},
		{"http.history", run.HTTP.History, cfg.HTTP.History},
		{"defaults.stale_after", run.Defaults.StaleAfter, cfg.Defaults.StaleAfter},
		{"loadshed", run.Loadshed, cfg.Loadshed},
	} {
		if fingerprint(c.was) != fingerprint(c.now) {
			out = append(out, c.name)
		}
	}
	return out
}

// loadshedSelects returns the ids of devs that a load-shed policy's
// trigger or restore condition selects, sorted, once each.
func loadshedSelects(ls *config.Loadshed, devs []rules.Device) []string {
	var ids []string
	for _, pol := range ls.Policies {
		for _, r := range []*rules.Rule{pol.Rule, pol.RestoreRule} {
			if r == nil {
				continue
			}
			for i := range devs {
				if r.Select.Matches(&devs[i]) {
					ids = append(ids, devs[i].ID)
				}
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// rulesDevices is the rules engine's view of the devices, as newEngine
// builds it.
func rulesDevices(devices []*device) []rules.Device {
	devs := make([]rules.Device, 0, len(devices))
	for _, d := range devices {
		rd := rules.Device{ID: d.cfg.ID, Profile: d.cfg.Profile, Labels: d.cfg.Labels}
		if p := d.cfg.ProfileDef(); p != nil {
			rd.Class = p.Class
		} else if r := d.drv.Resolved(); r != nil {
			rd.Profile, rd.Class = r.Profile.Model, r.Profile.Class
		}
		devs = append(devs, rd)
	}
	return devs
}

// ruleSetView is what makes two rule sets run the same: their packs (with
// every rule's source) and which rules are disabled.
func ruleSetView(rs *rules.RuleSet) any {
	if rs == nil {
		return nil
	}
	var disabled []string
	for _, p := range rs.Packs() {
		for _, r := range p.Rules {
			if rs.Disabled(r.ID) {
				disabled = append(disabled, r.ID)
			}
		}
	}
	return struct {
		Packs    []*rules.Pack
		Disabled []string
	}{rs.Packs(), disabled}
}

// authView is the part of the http section the authenticator is built
// from.
func authView(h *config.HTTP) any {
	return struct {
		Users      []config.HTTPUser
		Tokens     []config.HTTPToken
		Anonymous  string
		SessionTTL time.Duration
	}{h.Users, h.Tokens, h.Anonymous, h.SessionTTL}
}

// fingerprint is a stable digest of v's exported content: positions in
// the file (strictyaml.Pos) and the names of the files values came from
// are left out, so a value moved in the file is unchanged, and secrets enter by their revealed value's hash, so a
// changed password is a change (json.Marshal alone would see
// "<secret>").
func fingerprint(v any) string {
	b, err := json.Marshal(canon(reflect.ValueOf(v), 0))
	if err != nil {
		// Only for values json cannot encode (a func, a channel): never
		// equal, so the part is rebuilt rather than wrongly kept.
		return fmt.Sprintf("unencodable %p", &b)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

var (
	posType    = reflect.TypeFor[strictyaml.Pos]()
	secretType = reflect.TypeFor[config.Secret]()
)

func canon(v reflect.Value, depth int) any {
	if depth > 32 || !v.IsValid() {
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return canon(v.Elem(), depth+1)
	case reflect.Struct:
		if v.Type() == posType {
			return nil
		}
		if v.Type() == secretType {
			s := v.Interface().(config.Secret)
			sum := sha256.Sum256([]byte(s.Reveal()))
			return "secret:" + hex.EncodeToString(sum[:])
		}
		if v.Type() == reflect.TypeFor[time.Time]() {
			return v.Interface()
		}
		m := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			// File fields record where a value was loaded from, not
			// what it says: a copy of the same file elsewhere is no change.
			if !f.IsExported() || f.Type == posType || f.Name == "File" {
				continue
			}
			m[f.Name] = canon(v.Field(i), depth+1)
		}
		return m
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = canon(v.Index(i), depth+1)
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[fmt.Sprint(k.Interface())] = canon(v.MapIndex(k), depth+1)
		}
		return out
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return nil
	}
	return v.Interface()
}

// authSwitch is the gateway's authenticator, replaceable at runtime: the
// HTTP server's middleware and routes are built once, so they call through
// this to whichever authenticator is current.
type authSwitch struct {
	cur atomic.Pointer[authCurrent]
}

type authCurrent struct {
	a      *auth.Authenticator
	routes *http.ServeMux // its login, logout and whoami routes
}

func newAuthSwitch(a *auth.Authenticator) *authSwitch {
	s := &authSwitch{}
	s.swap(a)
	return s
}

// swap makes a current. Sessions of the previous authenticator are not
// carried over: users log in again.
func (s *authSwitch) swap(a *auth.Authenticator) {
	mux := http.NewServeMux()
	a.Routes(mux)
	s.cur.Store(&authCurrent{a: a, routes: mux})
}

// Middleware is auth.Authenticator.Middleware through the current one.
func (s *authSwitch) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.cur.Load().a.Middleware(next).ServeHTTP(w, r)
	})
}

// Require is auth.Authenticator.Require through the current one.
func (s *authSwitch) Require(role auth.Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.cur.Load().a.Require(role, h).ServeHTTP(w, r)
	})
}

// Routes adds the login, logout and whoami routes, served by the current
// authenticator.
func (s *authSwitch) Routes(mux *http.ServeMux) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.cur.Load().routes.ServeHTTP(w, r) })
	mux.Handle("POST "+auth.LoginPath, h)
	mux.Handle("POST "+auth.LogoutPath, h)
	mux.Handle("GET "+auth.WhoamiPath, h)
}

// Reload metric names.
const (
	metricReloads     = "facgw_config_reloads_total"
	metricLastSuccess = "facgw_config_last_reload_success_timestamp_seconds"
)

// metricsHandler serves /metrics: the gateway's snapshot plus the reload
// metrics.
func (g *Gateway) metricsHandler() http.Handler {
	m := metrics.New(g.metricsSnapshot, g.log)
	m.Registry().MustRegister(reloadCollector{g: g,
		total: prometheus.NewDesc(metricReloads, "Configuration reloads attempted, by result (ok or error).", []string{"result"}, nil),
		last:  prometheus.NewDesc(metricLastSuccess, "When the configuration was last loaded successfully (the start, before any reload).", nil, nil),
	})
	return m.Handler()
}

type reloadCollector struct {
	g           *Gateway
	total, last *prometheus.Desc
}

func (c reloadCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.total; ch <- c.last }

func (c reloadCollector) Collect(ch chan<- prometheus.Metric) {
	rl := &c.g.rl
	rl.statusMu.Lock()
	ok, failed, last := rl.ok, rl.failed, rl.lastSuccess
	rl.statusMu.Unlock()
	if last.IsZero() {
		last = c.g.started
	}
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(ok), "ok")
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(failed), "error")
	ch <- prometheus.MustNewConstMetric(c.last, prometheus.GaugeValue, float64(last.UnixNano())/1e9)
}

package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/pipeline/mqtt"
	"github.com/facgw/facgw/pipeline/notify"
	"github.com/facgw/facgw/pipeline/notify/alertmanager"
	"github.com/facgw/facgw/pipeline/notify/webhook"
)

// Hot reload of the alert delivery paths (issue 8). A reload compares the
// new alerting section with the one in force (alerting.applied) path by
// path, by name:
//
//   - a changed path (any setting, even its kind) keeps its notify.Path and
//     outbox; its Sender is swapped (Path.SetSender), so what is queued
//     goes to the new destination, in order;
//   - an added path gets a new notify.Path with its outbox in
//     <state_dir>/alerts/path-<name>, joins the dispatcher (which first
//     hands it the episodes firing now) and gets its sender goroutine;
//   - a removed path leaves the dispatcher (events are no longer owed to
//     it), its sender stops and its outbox closes; the directory stays;
//   - alerting.mqtt toggles the MQTT alert path over the running brokers;
//   - degraded_after and max_silence are set on the dispatcher and ledger.
//
// Nothing of alerting needs a restart (site and gateway, which SNMP
// notifications carry, are restart-only for the whole gateway).

// alertPathSpec is one configured delivery path other than MQTT.
type alertPathSpec struct {
	name, kind string
	// key fingerprints everything the sender is built from, the CA
	// bundle's content included: a different key is a changed path.
	key   string
	build func() (notify.Sender, error)
}

// alertPathSpecs lists the paths of cfg's alerting section in the order
// buildAlerting starts them: Alertmanager, webhook, SNMP.
func alertPathSpecs(cfg *config.Config, log *slog.Logger) []alertPathSpec {
	ac := cfg.Alerting
	if ac == nil {
		return nil
	}
	var out []alertPathSpec
	for _, am := range ac.Alertmanager {
		out = append(out, alertPathSpec{name: am.Name, kind: "alertmanager", key: pathKey("alertmanager", am, am.CAFile),
			build: func() (notify.Sender, error) {
				return alertmanager.New(alertmanager.Options{URLs: am.URLs, Timeout: am.Timeout, ResendEvery: am.ResendEvery,
					Username: am.Username, Password: am.Password, BearerToken: am.BearerToken, CAFile: am.CAFile, GeneratorURL: am.GeneratorURL})
			}})
	}
	for _, wh := range ac.Webhook {
		out = append(out, alertPathSpec{name: wh.Name, kind: "webhook", key: pathKey("webhook", wh, wh.CAFile),
			build: func() (notify.Sender, error) {
				return webhook.New(webhook.Options{URL: wh.URL, Secret: wh.Secret, Timeout: wh.Timeout, Headers: wh.Headers, CAFile: wh.CAFile})
			}})
	}
	for i := range ac.SNMP {
		sn := &ac.SNMP[i]
		out = append(out, alertPathSpec{name: sn.Name, kind: "snmp", key: pathKey("snmp", sn, ""),
			build: func() (notify.Sender, error) {
				s, err := snmpSender(cfg, sn)
				if err != nil {
					return nil, err
				}
				if id := s.EngineID(); id != "" {
					// The receiver must know the user under this engine id
					// (net-snmp: createUser -e <id> ...).
					log.Info("snmp alert path sends v3 traps from engine id", "path", sn.Name, "engine_id", id)
				}
				return s, nil
			}})
	}
	return out
}

// pathKey fingerprints a path's config entry (secrets by hash, positions
// left out) with its kind and the content of its CA file, so a renewed
// bundle under the same name is a change too (the running path's key is
// the one taken when it was built: alerting.pathKeys).
func pathKey(kind string, entry any, caFile string) string {
	return fingerprint(struct {
		Kind  string
		Entry any
		CA    string
	}{kind, entry, fileHashes(caFile)})
}

// fileHashes fingerprints the contents of the named files (empty names
// skipped), so a certificate renewed in place is a change too.
func fileHashes(paths ...string) string {
	h := sha256.New()
	for _, p := range paths {
		if p == "" {
			continue
		}
		h.Write([]byte(p + "\x00"))
		if b, err := os.ReadFile(p); err != nil {
			h.Write([]byte("unreadable: " + err.Error()))
		} else {
			h.Write(b)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// openAlertPath opens the outbox of path name under the state directory
// and returns the path over sender s, not yet running.
func (g *Gateway) openAlertPath(name, kind string, s notify.Sender) (*notify.Path, error) {
	p, err := notify.NewPath(notify.PathOptions{Name: name, Kind: kind, Dir: filepath.Join(g.cfg.StateDir, "alerts", "path-"+name), Sender: s,
		Log: g.log.With("component", "alert-path", "path", name), Active: g.alerts.ledger.Active, MaxBackoff: alertPathMaxBackoff})
	if err != nil {
		return nil, fmt.Errorf("gateway: alert path %s: %w", name, err)
	}
	return p, nil
}

// alertingPlan is what a reload changes in alert delivery, built without
// touching what runs.
type alertingPlan struct {
	next *config.Alerting  // becomes alerting.applied
	keys map[string]string // becomes alerting.pathKeys
	// changed are running paths that get a new sender.
	changed []pathSwap
	// added are new paths, their outboxes open, not yet running.
	added []*notify.Path
	// removed names running paths to stop and close.
	removed []string
	// mqttOn and mqttOff toggle the MQTT alert path; info is its
	// topics' identity.
	mqttOn, mqttOff bool
	info            mqtt.StatusInfo
	// degradedAfter and maxSilence are set when non-zero.
	degradedAfter, maxSilence time.Duration
	// changes is what summary reports.
	changes []string
}

// pathSwap is a changed path and its new sender.
type pathSwap struct {
	path   *notify.Path
	kind   string
	sender notify.Sender
}

// planAlerting compares cfg's alerting section with the one in force and
// builds the senders of changed paths and the paths (outboxes open) of
// added ones. Nothing running is touched; on error what it opened is
// closed again.
func (g *Gateway) planAlerting(cfg *config.Config) (*alertingPlan, error) {
	a := g.alerts
	a.mu.RLock()
	cur, running, curKeys, mqttRunning := a.applied, a.paths, a.pathKeys, a.mqttPath != nil
	a.mu.RUnlock()
	p := &alertingPlan{next: cfg.Alerting, keys: map[string]string{}}
	byName := map[string]*notify.Path{}
	for _, rp := range running {
		byName[rp.Name()] = rp
	}
	seen := map[string]bool{}
	for _, ps := range alertPathSpecs(cfg, g.log) {
		seen[ps.name] = true
		p.keys[ps.name] = ps.key
		rp := byName[ps.name]
		if rp != nil && curKeys[ps.name] == ps.key {
			continue
		}
		s, err := ps.build()
		if err != nil {
			p.discard()
			return nil, fmt.Errorf("gateway: reload: alert path %s: %w", ps.name, err)
		}
		if rp != nil {
			p.changed = append(p.changed, pathSwap{path: rp, kind: ps.kind, sender: s})
			what := "alerting." + ps.kind + "[" + ps.name + "] changed"
			if was := rp.Kind(); was != ps.kind {
				what += " (was " + was + ")"
			}
			p.changes = append(p.changes, what)
			continue
		}
		np, err := g.openAlertPath(ps.name, ps.kind, s)
		if err != nil {
			p.discard()
			return nil, fmt.Errorf("gateway: reload: %w", err)
		}
		p.added = append(p.added, np)
		p.changes = append(p.changes, "alerting."+ps.kind+"["+ps.name+"] added")
	}
	for _, rp := range running {
		if !seen[rp.Name()] {
			p.removed = append(p.removed, rp.Name())
			p.changes = append(p.changes, "alerting."+rp.Kind()+"["+rp.Name()+"] removed")
		}
	}

	switch want := cfg.Alerting.MQTTAlerts(cfg); {
	case want && !mqttRunning:
		// The path is built at apply, over the brokers running then (a
		// reload may add or remove brokers before it).
		p.mqttOn = true
		prefix := cfg.MQTT.Prefix
		if g.cfg.MQTT != nil {
			prefix = g.cfg.MQTT.Prefix // the running publishers' topics
		}
		p.info = mqtt.StatusInfo{Prefix: prefix, Site: g.cfg.Site, Gateway: g.cfg.Gateway, Version: g.version, Started: g.started}
		if err := p.info.Validate(); err != nil {
			p.discard()
			return nil, fmt.Errorf("gateway: reload: mqtt alert path: %w", err)
		}
		p.changes = append(p.changes, "alerting.mqtt enabled")
	case !want && mqttRunning:
		p.mqttOff = true
		p.changes = append(p.changes, "alerting.mqtt disabled")
	}

	if was, now := effectiveDegraded(cur), effectiveDegraded(cfg.Alerting); was != now {
		p.degradedAfter = now
		p.changes = append(p.changes, fmt.Sprintf("alerting.degraded_after %s -> %s", was, now))
	}
	if was, now := effectiveMaxSilence(cur), effectiveMaxSilence(cfg.Alerting); was != now {
		p.maxSilence = now
		p.changes = append(p.changes, fmt.Sprintf("alerting.max_silence %s -> %s", was, now))
	}
	sort.Strings(p.changes)
	return p, nil
}

// effectiveDegraded is the degraded_after buildAlerting gives the
// dispatcher for section ac.
func effectiveDegraded(ac *config.Alerting) time.Duration {
	if ac == nil || ac.DegradedAfter <= 0 {
		return config.DefaultDegradedAfter
	}
	return ac.DegradedAfter
}

// effectiveMaxSilence is the max_silence buildAlerting gives the ledger
// for section ac.
func effectiveMaxSilence(ac *config.Alerting) time.Duration {
	if ac == nil || ac.MaxSilence <= 0 {
		return config.DefaultMaxSilence
	}
	return ac.MaxSilence
}

// discard closes the outboxes of the paths the plan opened, for a reload
// refused after planAlerting (their directories stay, empty). The senders
// built hold nothing to close.
func (p *alertingPlan) discard() {
	if p == nil {
		return
	}
	for _, np := range p.added {
		_ = np.Close()
	}
	p.added = nil
}

// summary lists what the plan changes in alert delivery, sorted, such as
// "alerting.webhook[ops] changed" or "alerting.alertmanager[am2] added";
// empty when nothing changes.
func (p *alertingPlan) summary() []string {
	return slices.Clone(p.changes)
}

// needsRestart lists the parts of the alerting section a reload cannot
// apply: none. (site and gateway, which the SNMP notifications and the
// degraded-path alert carry, and the mqtt section are the gateway's
// restart-only settings, reported with those.)
func (p *alertingPlan) needsRestart() []string {
	return nil
}

// applyAlerting swaps in what planAlerting built; it cannot fail. Removed
// paths leave the dispatcher first (the events only they owed complete),
// then their senders stop and their outboxes close; changed paths get
// their new sender; added paths join the dispatcher, which first hands
// them the episodes firing now, and their senders start (with
// g.spawnSender, or with the others if Run has not started them yet).
// Apply after the brokers of a reload, so that an enabled MQTT alert path
// is built over the brokers as they will run.
func (g *Gateway) applyAlerting(p *alertingPlan) {
	a := g.alerts
	log := g.log.With("component", "reload")
	if p.degradedAfter > 0 {
		a.disp.SetDegradedAfter(p.degradedAfter)
	}
	if p.maxSilence > 0 {
		a.disp.SetMaxSilence(p.maxSilence)
	}

	var closing []*notify.Path
	for _, name := range p.removed {
		a.disp.RemoveTarget(name)
		a.mu.Lock()
		if i := slices.IndexFunc(a.paths, func(rp *notify.Path) bool { return rp.Name() == name }); i >= 0 {
			closing = append(closing, a.paths[i])
			a.paths = slices.Delete(slices.Clone(a.paths), i, i+1)
		}
		a.mu.Unlock()
	}
	for _, rp := range closing {
		// Stops its Run (the sender goroutine returns) and closes the
		// outbox; undelivered events stay in its directory.
		if err := rp.Close(); err != nil {
			log.Error("reload: removed alert path not closed cleanly", "path", rp.Name(), "err", err)
		}
	}
	if p.mqttOff {
		a.disp.RemoveTarget("mqtt")
		a.mu.Lock()
		a.mqttPath = nil
		a.mu.Unlock()
	}

	for _, c := range p.changed {
		if err := c.path.SetSender(c.kind, c.sender); err != nil {
			log.Error("reload: alert path keeps its previous destination", "path", c.path.Name(), "err", err) // only for a nil sender
		}
	}

	g.mu.Lock()
	ctx, spawn := g.sendCtx, g.spawnSender
	g.mu.Unlock()
	for _, np := range p.added {
		if err := a.disp.AddTarget(np); err != nil {
			// Only a name in use, which the plan excludes.
			log.Error("reload: alert path not added", "path", np.Name(), "err", err)
			_ = np.Close()
			continue
		}
		a.mu.Lock()
		a.paths = append(slices.Clone(a.paths), np)
		a.mu.Unlock()
		if spawn != nil {
			spawn(func() { _ = np.Run(ctx) })
		}
	}
	p.added = nil // owned by the gateway now: discard must not close them

	if p.mqttOn {
		g.enableMQTTAlerts(p.info, log)
	}
	a.mu.Lock()
	a.applied, a.pathKeys = p.next, p.keys
	a.mu.Unlock()
}

// enableMQTTAlerts adds the MQTT alert path over the running brokers.
func (g *Gateway) enableMQTTAlerts(info mqtt.StatusInfo, log *slog.Logger) {
	a := g.alerts
	pubs := g.pub.brokers()
	if len(pubs) == 0 {
		log.Error("reload: alerting.mqtt is on but no MQTT broker runs: alerts do not go over MQTT (configure brokers, or restart)")
		return
	}
	mp, err := mqtt.NewAlertPath(info, pubs...)
	if err != nil {
		log.Error("reload: MQTT alert path not enabled", "err", err) // validated by the plan
		return
	}
	if err := a.disp.AddTarget(mqttTarget{mp}); err != nil {
		log.Error("reload: MQTT alert path not enabled", "err", err)
		return
	}
	a.mu.Lock()
	a.mqttPath = mp
	a.mu.Unlock()
}

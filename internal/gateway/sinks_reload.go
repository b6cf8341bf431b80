package gateway

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/pipeline/influx"
	"github.com/facgw/facgw/pipeline/mqtt"
)

// Reloading the durable destinations (issue 8). Their outboxes are what
// must never be lost over a reload, so a changed destination keeps its
// outbox and only its connection settings change:
//
//   - a broker whose settings changed (url, client_id, credentials, tls,
//     the section's keepalive) reconnects with the new ones: its publisher
//     and outbox stay, what waits there goes to the broker as now
//     configured, in order;
//   - an added broker gets a new publisher and outbox and joins the
//     fan-out (telemetry from each device's next poll, same seq numbering
//     as the other brokers) and the MQTT alert path (the alerts firing
//     now first, so its alerts/active topics are complete);
//   - a removed broker leaves the fan-out and the alert path, its sender
//     stops (cleanly: offline status), its outbox closes; the directory
//     stays on disk with whatever it held;
//   - state_every applies at once;
//   - the history database's settings (url, org, bucket, token,
//     batch_size, flush_interval) apply from its next write; an added
//     influx section starts a sink, a removed one stops it.
//
// The load-shed drain acknowledgement subscribers follow the brokers
// (drainacks.go). What still needs a restart, and is reported so: adding
// or removing the whole mqtt section, its prefix (every topic), and the
// outbox bounds of running destinations.

// sinksPlan is what a reload changes in the durable destinations, built
// without touching what runs.
type sinksPlan struct {
	mqttCfg   *config.MQTT // the section to record as in force, when changed
	mqttApply bool
	reconf    map[string]mqtt.BrokerConfig // running broker -> its new settings
	moved     []string                     // reconfigured brokers whose URL changed
	keys      map[string]string            // brokerKey of each broker of the new section
	added     []*mqtt.Publisher            // opened by the plan, not yet running
	removed   []string
	order     []string // broker names in the new config's order
	every     *time.Duration

	influxCfg    *config.Influx
	influxApply  bool
	influxReconf *influx.Config
	influxAdd    *influx.Sink
	influxRemove bool

	summary []string
	restart []string
}

// planSinks compares cfg's mqtt and influx sections with those in force
// and builds what the change needs. On error it has closed what it opened.
func (g *Gateway) planSinks(cfg *config.Config) (*sinksPlan, error) {
	p := &sinksPlan{reconf: map[string]mqtt.BrokerConfig{}}
	g.pub.mu.RLock()
	curM, curIn := g.pub.mqttCfg, g.pub.influxCfg
	running := map[string]*mqtt.Publisher{}
	for _, pub := range g.pub.pubs {
		running[pub.Name()] = pub
	}
	keys := maps.Clone(g.pub.keys)
	g.pub.mu.RUnlock()
	if err := g.planMQTT(p, curM, cfg.MQTT, running, keys); err != nil {
		p.discard()
		return nil, err
	}
	if err := g.planInflux(p, curIn, cfg.Influx); err != nil {
		p.discard()
		return nil, err
	}
	return p, nil
}

// planMQTT compares the brokers by name; keys are the running brokers'
// brokerKey as applied (their TLS files' contents then).
func (g *Gateway) planMQTT(p *sinksPlan, cur, next *config.MQTT, running map[string]*mqtt.Publisher, keys map[string]string) error {
	start := g.cfg.MQTT
	switch {
	case cur == nil && next == nil:
		return nil
	case start == nil || next == nil:
		// The sequence store and the fan-out are made at start.
		if fingerprint(start) != fingerprint(next) {
			p.restart = append(p.restart, "mqtt (section added or removed)")
		}
		return nil
	}
	if next.Prefix != start.Prefix {
		p.restart = append(p.restart, "mqtt.prefix")
	}
	if fingerprint(next.Outbox) != fingerprint(start.Outbox) {
		p.restart = append(p.restart, "mqtt.outbox (bounds of the running brokers' outboxes; added brokers use the new ones)")
	}
	p.keys = map[string]string{}
	same := fingerprint(cur) == fingerprint(next)
	for _, b := range next.Brokers {
		p.keys[b.Name] = brokerKey(b)
		same = same && keys[b.Name] == p.keys[b.Name]
	}
	if same {
		return nil
	}
	p.mqttCfg, p.mqttApply = next, true
	if fingerprint(cur.StateEvery) != fingerprint(next.StateEvery) && next.StateEvery != nil {
		p.every = next.StateEvery
		p.summary = append(p.summary, "mqtt.state_every")
	}
	keepalive := cur.KeepAlive != next.KeepAlive
	curB := map[string]config.Broker{}
	for _, b := range cur.Brokers {
		curB[b.Name] = b
	}
	for _, b := range next.Brokers {
		p.order = append(p.order, b.Name)
		bc := g.brokerConfig(next, b)
		was, ok := curB[b.Name]
		if ok && running[b.Name] != nil {
			if !keepalive && keys[b.Name] == p.keys[b.Name] {
				continue
			}
			if err := mqtt.CheckBroker(bc, g.pub.info); err != nil {
				return fmt.Errorf("gateway: reload: mqtt broker %s: %w", b.Name, err)
			}
			p.reconf[b.Name] = bc
			if was.URL != b.URL {
				p.moved = append(p.moved, b.Name)
			}
			p.summary = append(p.summary, "mqtt.brokers["+b.Name+"] changed")
			continue
		}
		pub, err := mqtt.New(bc, g.pub.info, g.log.With("component", "mqtt", "broker", b.Name))
		if err != nil {
			return fmt.Errorf("gateway: reload: mqtt broker %s: %w", b.Name, err)
		}
		p.added = append(p.added, pub)
		p.summary = append(p.summary, "mqtt.brokers["+b.Name+"] added")
	}
	for name := range running {
		if !slices.Contains(p.order, name) {
			p.removed = append(p.removed, name)
			p.summary = append(p.summary, "mqtt.brokers["+name+"] removed")
		}
	}
	slices.Sort(p.removed)
	return nil
}

func (g *Gateway) planInflux(p *sinksPlan, cur, next *config.Influx) error {
	if fingerprint(cur) == fingerprint(next) {
		return nil
	}
	p.influxCfg, p.influxApply = next, true
	switch {
	case cur == nil:
		s, err := influx.New(g.influxConfig(next), g.log.With("component", "influx"))
		if err != nil {
			return fmt.Errorf("gateway: reload: influx: %w", err)
		}
		p.influxAdd = s
		p.summary = append(p.summary, "influx added")
	case next == nil:
		p.influxRemove = true
		p.summary = append(p.summary, "influx removed")
	default:
		if fingerprint(cur.Outbox) != fingerprint(next.Outbox) {
			p.restart = append(p.restart, "influx.outbox")
		}
		ic := g.influxConfig(next)
		ic.Outbox = outboxOptions(ic.Outbox.Dir, cur.Outbox)
		if err := influx.CheckConfig(ic); err != nil {
			return fmt.Errorf("gateway: reload: influx: %w", err)
		}
		p.influxReconf = &ic
		p.summary = append(p.summary, "influx changed")
	}
	return nil
}

// brokerKey fingerprints a broker's settings with the contents of its TLS
// files: a certificate renewed in place reconnects the broker.
func brokerKey(b config.Broker) string {
	files := ""
	if t := b.TLS; t != nil {
		files = fileHashes(t.CAFile, t.CertFile, t.KeyFile)
	}
	return fingerprint(struct {
		B     config.Broker
		Files string
	}{b, files})
}

// discard closes what a refused plan opened.
func (p *sinksPlan) discard() {
	if p == nil {
		return
	}
	for _, pub := range p.added {
		_ = pub.Close()
	}
	p.added = nil
	if p.influxAdd != nil {
		_ = p.influxAdd.Close()
		p.influxAdd = nil
	}
}

// applySinks swaps in what planSinks built. Nothing in it can leave the
// destinations half changed: the settings were checked in the plan, the
// outboxes opened there.
func (g *Gateway) applySinks(p *sinksPlan) {
	pb := g.pub
	g.mu.Lock()
	ctx, spawn := g.sendCtx, g.spawnSender
	g.mu.Unlock()
	if p.mqttApply {
		for name, bc := range p.reconf {
			for _, pub := range pb.brokers() {
				if pub.Name() == name {
					if err := pub.Reconfigure(bc); err != nil {
						g.log.Error("reload: broker settings not applied", "broker", name, "err", err)
					}
				}
			}
		}
		byName := map[string]*mqtt.Publisher{}
		var gone []*mqtt.Publisher
		for _, pub := range pb.brokers() {
			byName[pub.Name()] = pub
			if slices.Contains(p.removed, pub.Name()) {
				gone = append(gone, pub)
			}
		}
		for _, pub := range p.added {
			byName[pub.Name()] = pub
		}
		var pubs []*mqtt.Publisher
		var sinks []mqtt.Enqueuer
		for _, name := range p.order {
			if pub := byName[name]; pub != nil {
				pubs = append(pubs, pub)
				sinks = append(sinks, pub)
			}
		}
		// Senders first, so an added broker's outbox drains as soon as
		// it gets messages.
		for _, pub := range p.added {
			spawn(func() { _ = pub.Run(ctx) })
		}
		pb.mu.Lock()
		pb.pubs, pb.mqttCfg, pb.keys = pubs, p.mqttCfg, p.keys
		pb.mu.Unlock()
		if pb.fanout != nil {
			pb.fanout.SetSinks(sinks...)
			if p.every != nil {
				pb.fanout.SetStateEvery(*p.every)
			}
		}
		if len(p.added) > 0 || len(gone) > 0 {
			g.alerts.setBrokers(pubs)
		}
		for _, pub := range pubs {
			if slices.Contains(p.moved, pub.Name()) {
				g.alerts.announce(pub)
			}
		}
		g.syncDrainAcks(p.mqttCfg)
		// Out of the fan-out and the alert path: nothing appends to them
		// any more. Close stops each sender cleanly and closes its outbox.
		for _, pub := range gone {
			if err := pub.Close(); err != nil {
				g.log.Error("reload: removed broker's outbox not closed cleanly", "broker", pub.Name(), "err", err)
			}
		}
	}
	if p.influxApply {
		pb.mu.Lock()
		old, stop, done := pb.influx, pb.influxStop, pb.influxDone
		switch {
		case p.influxAdd != nil:
			pb.influx = p.influxAdd
		case p.influxRemove:
			pb.influx = nil
		}
		pb.influxCfg = p.influxCfg
		pb.mu.Unlock()
		switch {
		case p.influxAdd != nil:
			g.addHistoryToHub()
			pb.runHistory(ctx, p.influxAdd, spawn)
		case p.influxRemove && old != nil:
			if stop != nil {
				stop()
				<-done
			}
			if err := old.Close(); err != nil {
				g.log.Error("reload: removed history sink's outbox not closed cleanly", "err", err)
			}
		case p.influxReconf != nil && old != nil:
			if err := old.Reconfigure(*p.influxReconf); err != nil {
				g.log.Error("reload: history database settings not applied", "err", err)
			}
		}
	}
}

// announce queues the alerts firing now for a broker that now points at
// another server, so its retained alerts/active topics are complete.
func (a *alerting) announce(pub *mqtt.Publisher) {
	a.mu.RLock()
	mp := a.mqttPath
	a.mu.RUnlock()
	if mp == nil {
		return
	}
	if err := mp.Announce(a.alertSnapshot, pub); err != nil {
		a.log.Error("reload: alerts firing now not queued for a moved broker", "broker", pub.Name(), "err", err)
	}
}

// alertSnapshot is what a broker new to the MQTT alert path is told: the
// episodes firing now, and those the recent history shows resolved (their
// retained message cleared, in case the broker's outbox still holds one
// from before it was removed).
func (a *alerting) alertSnapshot() mqtt.Snapshot {
	snap := mqtt.Snapshot{Active: a.ledger.Active()}
	firing := map[string]bool{}
	for _, ev := range snap.Active {
		firing[ev.ID] = true
	}
	seen := map[string]bool{}
	for _, ev := range a.ledger.Recent(0) {
		if ev.State == alert.Resolved && !firing[ev.ID] && !seen[ev.ID] {
			seen[ev.ID] = true
			snap.Resolved = append(snap.Resolved, ev.ID)
		}
	}
	return snap
}

// setBrokers points the MQTT alert path at the brokers now configured.
func (a *alerting) setBrokers(pubs []*mqtt.Publisher) {
	a.mu.RLock()
	mp := a.mqttPath
	a.mu.RUnlock()
	if mp == nil || len(pubs) == 0 {
		return
	}
	if err := mp.SetPublishers(a.alertSnapshot, pubs...); err != nil {
		a.log.Error("reload: alerts firing now not queued for an added broker", "err", err)
	}
}

package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/metrics"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/web"
	"github.com/facgw/facgw/pipeline/influx"
	"github.com/facgw/facgw/pipeline/mqtt"
	"github.com/facgw/facgw/pipeline/outbox"
)

// publishing owns the durable destinations: one MQTT publisher per broker
// (each with its own outbox and sender), the fan-out that gives every
// broker the same (device, seq) messages, and the history sink.
type publishing struct {
	seq    *mqtt.Sequencer
	fanout *mqtt.Fanout
	info   mqtt.StatusInfo

	// The mqtt and influx sections in force (a reload applies changed
	// brokers and database settings; guarded by mu), and whether the
	// history sink is on the hub.
	mqttCfg   *config.MQTT
	influxCfg *config.Influx
	keys      map[string]string // brokerKey of each running broker, as applied
	onHub     bool
	// influxStop ends the history sink's sender (a reload that removes
	// the section); influxDone is closed when it has returned.
	influxStop context.CancelFunc
	influxDone chan struct{}

	// mu guards pubs and influx: a reload adds and removes brokers and
	// replaces the history sink while the gateway runs.
	mu     sync.RWMutex
	pubs   []*mqtt.Publisher
	influx *influx.Sink
}

// brokers returns the publishers of the configured brokers, one per
// broker, in config order. A reload may change the set: callers take a
// fresh copy each time rather than keeping one.
func (p *publishing) brokers() []*mqtt.Publisher {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return slices.Clone(p.pubs)
}

// history returns the history sink, nil without one.
func (p *publishing) history() *influx.Sink {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.influx
}

func outboxOptions(dir string, o config.Outbox) outbox.Options {
	return outbox.Options{Dir: dir, MaxBytes: int64(o.MaxBytes), MaxAge: o.MaxAge, SyncEvery: outbox.DefaultSyncEvery}
}

// brokerConfig is the publisher's configuration of broker b of section m;
// its outbox is <state_dir>/outbox/mqtt-<name>.
func (g *Gateway) brokerConfig(m *config.MQTT, b config.Broker) mqtt.BrokerConfig {
	bc := mqtt.BrokerConfig{
		Name: b.Name, URL: b.URL, ClientID: b.ClientID, Username: b.Username, Password: b.Password.Reveal(),
		KeepAlive: m.KeepAlive,
		Outbox:    outboxOptions(filepath.Join(g.cfg.StateDir, "outbox", "mqtt-"+b.Name), m.Outbox),
	}
	if b.TLS != nil {
		bc.TLS = &mqtt.TLSConfig{CAFile: b.TLS.CAFile, CertFile: b.TLS.CertFile, KeyFile: b.TLS.KeyFile, ServerName: b.TLS.ServerName}
	}
	return bc
}

// influxConfig is the history sink's configuration of section in; its
// outbox is <state_dir>/outbox/influx.
func (g *Gateway) influxConfig(in *config.Influx) influx.Config {
	return influx.Config{
		URL: in.URL, Org: in.Org, Bucket: in.Bucket, Token: in.Token.Reveal(),
		Site: g.cfg.Site, Gateway: g.cfg.Gateway, BatchSize: in.BatchSize, FlushInterval: in.FlushInterval,
		Outbox: outboxOptions(filepath.Join(g.cfg.StateDir, "outbox", "influx"), in.Outbox),
	}
}

// buildPublishing opens the outboxes and the sequence store under the state
// directory. No network I/O happens here.
func (g *Gateway) buildPublishing(version string, started time.Time) error {
	cfg := g.cfg
	p := &publishing{mqttCfg: cfg.MQTT, influxCfg: cfg.Influx}
	g.pub = p
	if m := cfg.MQTT; m != nil {
		seq, err := mqtt.OpenSequencer(filepath.Join(cfg.StateDir, "seq"), g.log.With("component", "seq"))
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		p.seq = seq
		info := mqtt.StatusInfo{Prefix: m.Prefix, Site: cfg.Site, Gateway: cfg.Gateway, Version: version, Started: started}
		p.info = info
		var sinks []mqtt.Enqueuer
		p.keys = map[string]string{}
		for _, b := range m.Brokers {
			p.keys[b.Name] = brokerKey(b)
			pub, err := mqtt.New(g.brokerConfig(m, b), info, g.log.With("component", "mqtt", "broker", b.Name))
			if err != nil {
				return fmt.Errorf("gateway: broker %s: %w", b.Name, err)
			}
			p.pubs = append(p.pubs, pub)
			sinks = append(sinks, pub)
		}
		fan, err := mqtt.NewFanout(info, seq, sinks...)
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		fan.SetStateEvery(*m.StateEvery)
		p.fanout = fan
		g.hub.AddSink("mqtt", byDevice(fan.Publish), g.sinkError)
	}
	if in := cfg.Influx; in != nil {
		sink, err := influx.New(g.influxConfig(in), g.log.With("component", "influx"))
		if err != nil {
			return fmt.Errorf("gateway: influx: %w", err)
		}
		p.influx = sink
		g.addHistoryToHub()
	}
	return nil
}

// addHistoryToHub puts the history sink on the hub, once: it writes to
// whichever sink is current (none after a reload removed the section),
// holding the lock so a sink being removed sees no write after it is
// swapped out.
func (g *Gateway) addHistoryToHub() {
	p := g.pub
	if p.onHub {
		return
	}
	p.onHub = true
	g.hub.AddSink("influx", byDevice(func(dev string, pts []point.Point) error {
		p.mu.RLock()
		defer p.mu.RUnlock()
		if p.influx == nil {
			return nil
		}
		return p.influx.Write(g.classOf(dev), pts)
	}), g.sinkError)
}

// byDevice splits a batch (a poll is one device, a staleness sweep may be
// several) into one call per device, in the order the devices appear.
func byDevice(write func(device string, pts []point.Point) error) func([]point.Point) error {
	return func(pts []point.Point) error {
		var firstErr error
		for start := 0; start < len(pts); {
			end := start + 1
			for end < len(pts) && pts[end].Device == pts[start].Device {
				end++
			}
			if err := write(pts[start].Device, pts[start:end]); err != nil && firstErr == nil {
				firstErr = err
			}
			start = end
		}
		return firstErr
	}
}

func (g *Gateway) sinkError(name string, err error) {
	g.log.Error("durable sink refused a batch", "sink", name, "err", err)
}

// classOf returns a device's profile class ("ups", "battery", ...), the
// measurement its history is written under; "device" until identified.
func (g *Gateway) classOf(id string) string {
	for _, d := range g.deviceList() {
		if d.cfg.ID == id {
			if r := d.drv.Resolved(); r != nil {
				return r.Profile.Class
			}
		}
	}
	return "device"
}

// run starts each destination's sender; they stop when ctx ends.
func (p *publishing) run(ctx context.Context, spawn func(func())) {
	for _, pub := range p.brokers() {
		spawn(func() { _ = pub.Run(ctx) })
	}
	if s := p.history(); s != nil {
		p.runHistory(ctx, s, spawn)
	}
}

// runHistory starts the history sink's sender, stoppable on its own (see
// stopHistory).
func (p *publishing) runHistory(ctx context.Context, s *influx.Sink, spawn func(func())) {
	ctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	p.influxStop, p.influxDone = stop, done
	spawn(func() {
		defer close(done)
		_ = s.Run(ctx)
	})
}

// close publishes the offline status, syncs and closes every outbox and
// the sequence store. Call after the senders and the poller have stopped.
func (p *publishing) close() {
	for _, pub := range p.brokers() {
		_ = pub.Close()
	}
	if s := p.history(); s != nil {
		_ = s.Close()
	}
	if p.seq != nil {
		_ = p.seq.Close()
	}
}

// Destinations implements web.Source.
func (g *Gateway) Destinations() []web.Destination {
	var out []web.Destination
	for _, pub := range g.pub.brokers() {
		s := pub.Stats()
		out = append(out, web.Destination{Kind: "mqtt", Name: s.Name, URL: s.URL, Connected: s.Connected, LastError: s.LastError,
			Outbox: s.Outbox, Sent: s.Sent, Acked: s.Acked, Latency: s.Latency.EWMA})
	}
	g.pub.mu.RLock()
	sink, in := g.pub.influx, g.pub.influxCfg
	g.pub.mu.RUnlock()
	if sink != nil && in != nil {
		s := sink.Stats()
		// Polls the database refused as bad data are gone as surely as
		// those dropped over the outbox bound: count them together.
		ob := s.Outbox
		ob.Dropped += s.Rejected
		out = append(out, web.Destination{Kind: "influx", Name: "history", URL: in.URL, Connected: s.Healthy, LastError: s.LastError,
			Outbox: ob, Sent: s.Outbox.Appended, Acked: s.Outbox.Acked, Latency: s.Latency})
	}
	return out
}

// metricsSnapshot feeds /metrics.
func (g *Gateway) metricsSnapshot() metrics.Snapshot {
	var snap metrics.Snapshot
	now := time.Now()
	for _, d := range g.Destinations() {
		md := metrics.Destination{Kind: d.Kind, Name: d.Name, Connected: d.Connected, OutboxDepth: d.Outbox.Depth, OutboxBytes: d.Outbox.Bytes,
			Dropped: d.Outbox.Dropped, Sent: d.Sent, Acked: d.Acked, Latency: d.Latency}
		if !d.Outbox.Oldest.IsZero() {
			md.OutboxOldestAge = now.Sub(d.Outbox.Oldest)
		}
		snap.Destinations = append(snap.Destinations, md)
	}
	stats := g.poller.Stats()
	sort.Slice(stats, func(i, j int) bool {
		if stats[i].Device != stats[j].Device {
			return stats[i].Device < stats[j].Device
		}
		return stats[i].Group < stats[j].Group
	})
	for _, s := range stats {
		snap.Schedules = append(snap.Schedules, metrics.Schedule{Device: s.Device, Group: s.Group, Cycles: s.Cycles, Overruns: s.Overruns,
			LastDuration: s.LastDuration, BadPoints: s.LastBad})
	}
	return snap
}

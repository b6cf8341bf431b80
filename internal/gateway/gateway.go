// Package gateway assembles a running facgw from a validated config: one
// Modbus connection per address or serial line, one driver per device, the
// poller, the pipeline hub and the HTTP server. cmd/facgw only parses
// flags and signals and calls into here.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	snmpdrv "github.com/facgw/facgw/drivers/snmp"
	"github.com/facgw/facgw/drivers/snmp/trap"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/web"
	"github.com/facgw/facgw/internal/web/auth"
	"github.com/facgw/facgw/pipeline"
	"github.com/facgw/facgw/rules/loadshed"
)

// Options are what a gateway needs besides its config.
type Options struct {
	Log     *slog.Logger
	Version string
	// Demo, set by `facgw run -demo`, lets the dashboard trigger the
	// simulator's scenarios.
	Demo web.Demo
}

// Gateway is a built, not yet started, facgw.
type Gateway struct {
	cfg     *config.Config
	log     *slog.Logger
	version string
	pub     *publishing
	alerts  *alerting
	auth    *authSwitch // the current authenticator; a reload swaps it
	tls     *tls.Config // nil: plain HTTP
	traps   *trap.Listener
	events  events
	// trapSources maps a sender IP to the devices polled at it; a reload
	// replaces it.
	trapSources atomic.Pointer[map[string][]string]
	trapKey     string // what the listener accepts (trapKey); reloads are serialised
	hub         *pipeline.Hub
	poller      *pipeline.Poller
	scheds      []pipeline.Schedule
	devices     []*device
	conns       map[string]*mbdrv.Conn
	started     time.Time
	demo        web.Demo
	loadshed    *loadshed.Controller // nil without a loadshed section

	// mu guards httpAddr, and devices, scheds and conns once Run has
	// started (a reload swaps them; see deviceList).
	mu       sync.Mutex
	httpAddr string
	rl       reloadState
	// sendCtx and spawnSender, set by Run, start a sender goroutine (an
	// MQTT broker's, an alert path's, the history sink's) that drains
	// until sendCtx ends, after polling has stopped. A reload starts the
	// senders of the destinations it adds with them.
	sendCtx     context.Context
	spawnSender func(func())
	// acks are the load-shed drain acknowledgement subscribers (guarded
	// by mu; nil until the controller runs).
	acks *drainAcks
	// running is set once Run has started every part a reload touches.
	running atomic.Bool
}

type device struct {
	cfg *config.Device
	drv driver
}

// driver is what the gateway needs of a protocol driver's device.
type driver interface {
	pipeline.Source
	// Resolved is the profile in use, nil until identified.
	Resolved() *profiles.Resolved
}

var (
	_ driver = (*mbdrv.Device)(nil)
	_ driver = (*snmpdrv.Device)(nil)
)

// New builds a gateway from cfg. It opens the outboxes and sequence store
// in the state directory (replaying what an earlier run left there) but
// does no network I/O. reg must hold every profile the config names
// (config.Load checked that). On error, nothing is left open.
func New(cfg *config.Config, reg *profiles.Registry, opts Options) (*Gateway, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	g := &Gateway{cfg: cfg, log: log, version: opts.Version, conns: map[string]*mbdrv.Conn{}, started: time.Now(), demo: opts.Demo}
	authn, err := auth.New(cfg.HTTP.AuthConfig(), log.With("component", "http-auth"), nil)
	if err != nil {
		return nil, fmt.Errorf("gateway: http: %w", err)
	}
	g.auth = newAuthSwitch(authn)
	if t := cfg.HTTP.TLS; t != nil {
		if g.tls, err = auth.LoadTLS(t.CertFile, t.KeyFile); err != nil {
			return nil, fmt.Errorf("gateway: http: %w", err)
		}
	}
	g.hub = pipeline.NewHub(pipeline.NewState(cfg.Defaults.StaleAfter))
	g.poller = pipeline.NewPoller(g.hub.Publish)
	for i := range cfg.Devices {
		dc := &cfg.Devices[i]
		if dc.Disabled {
			continue
		}
		if err := g.addDevice(dc, reg); err != nil {
			return nil, err
		}
	}
	if err := g.buildTraps(); err != nil {
		return nil, err
	}
	if err := g.buildPublishing(opts.Version, g.started); err != nil {
		g.pub.close()
		return nil, err
	}
	if err := g.buildAlerting(); err != nil {
		g.alerts.close()
		g.pub.close()
		return nil, err
	}
	if err := g.buildLoadshed(); err != nil {
		g.alerts.close()
		g.pub.close()
		return nil, err
	}
	return g, nil
}

// Hub returns the pipeline hub, for consumers that subscribe.
func (g *Gateway) Hub() *pipeline.Hub { return g.hub }

// Schedules returns the poll schedules, for tests.
func (g *Gateway) Schedules() []pipeline.Schedule {
	_, scheds, _ := g.snapshotDevices()
	return scheds
}

// HTTPAddr returns the address the HTTP server listens on once Run has
// started it.
func (g *Gateway) HTTPAddr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.httpAddr
}

// Run polls and serves HTTP until ctx ends. ready is called once the HTTP
// listener is open and polling has started.
//
// On the way out it stops polling first, then the senders, then publishes
// the offline status and closes the outboxes, so everything polled is on
// disk for the next run.
func (g *Gateway) Run(ctx context.Context, ready func()) error {
	defer g.pub.close()
	defer g.alerts.close()
	ln, err := net.Listen("tcp", g.cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("gateway: http: %w", err)
	}
	g.mu.Lock()
	g.httpAddr = ln.Addr().String()
	g.mu.Unlock()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", g.auth.Require(auth.Viewer, g.metricsHandler()))
	mux.Handle("/", web.Handler(g, web.Options{
		Alerting: g.alerts,
		Require:  g.require,
		Who:      who,
		Routes:   g.withLoadshed(g.auth.Routes),
		History:  g.cfg.HTTP.History,
		Demo:     g.demo,
		Log:      g.log.With("component", "http"),
	}))
	srv := &http.Server{Handler: g.auth.Middleware(mux), ReadHeaderTimeout: 5 * time.Second, TLSConfig: g.tls}
	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	spawn(func() {
		serve := srv.Serve
		if srv.TLSConfig != nil {
			serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("http server", "err", err)
		}
	})
	// Senders get their own context: they keep draining while polling
	// winds down, and stop after it.
	sendCtx, stopSend := context.WithCancel(context.Background())
	var senders sync.WaitGroup
	spawnSender := func(f func()) {
		senders.Add(1)
		go func() {
			defer senders.Done()
			f()
		}()
	}
	g.mu.Lock()
	g.sendCtx, g.spawnSender = sendCtx, spawnSender
	g.mu.Unlock()
	g.pub.run(sendCtx, spawnSender)
	g.alerts.run(sendCtx, spawnSender)
	g.startTraps(ctx)
	// A reload may replace the lists as soon as the gateway runs: read
	// them under the lock, once.
	devs, scheds, _ := g.snapshotDevices()
	sweep := sweepPeriod(scheds)
	spawn(func() { g.poller.Run(ctx, scheds) })
	spawn(func() { g.hub.RunSweeper(ctx, sweep) })
	spawn(func() { g.alerts.runTicks(ctx, sweep) })
	spawn(func() { g.runLoadshed(ctx) })
	// From here on a reload may start senders and update the listener.
	g.running.Store(true)
	g.log.Info("facgw running", "site", g.cfg.Site, "gateway", g.cfg.Gateway, "devices", len(devs), "schedules", len(scheds), "http", g.HTTPAddr())
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	// No reload from here on: one in progress finishes first, and none
	// can start a sender once the senders are being waited for.
	g.stopReloads()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	wg.Wait()
	stopSend()
	senders.Wait()
	if g.traps != nil {
		_ = g.traps.Close()
	}
	devices, _, conns := g.snapshotDevices()
	for _, c := range conns {
		_ = c.Close()
	}
	for _, d := range devices {
		if c, ok := d.drv.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
	return nil
}

// require is web.Options.Require over the gateway's authenticator: a
// route for role runs only for a principal holding it.
func (g *Gateway) require(role string, h http.Handler) http.Handler {
	r, err := auth.ParseRole(role)
	if err != nil || r == auth.None {
		panic("gateway: route needs an unknown role " + role)
	}
	return g.auth.Require(r, h)
}

// who is web.Options.Who: the name of the request's principal.
func who(r *http.Request) string {
	p, _ := auth.PrincipalFrom(r.Context())
	return p.Name
}

// sweepPeriod checks staleness at the fastest poll interval, at least
// every 50 ms and at most every second.
func sweepPeriod(scheds []pipeline.Schedule) time.Duration {
	p := time.Second
	for _, s := range scheds {
		p = min(p, s.Interval)
	}
	return max(p, 50*time.Millisecond)
}

// Devices implements web.Source.
func (g *Gateway) Devices() []web.DeviceInfo {
	devices := g.deviceList()
	out := make([]web.DeviceInfo, 0, len(devices))
	for _, d := range devices {
		info := web.DeviceInfo{ID: d.cfg.ID, Profile: d.cfg.Profile, Transport: d.cfg.Transport, Address: d.cfg.Address, Unit: int(d.cfg.Unit), Labels: d.cfg.Labels}
		if d.cfg.Transport == "modbus-rtu" {
			info.Address = d.cfg.Serial.Port
		}
		if r := d.drv.Resolved(); r != nil {
			info.Profile, info.Class, info.Firmware = r.Profile.Model, r.Profile.Class, r.Firmware
			if r.Variant != nil {
				info.Variant = r.Variant.Firmware
			}
		}
		out = append(out, info)
	}
	return out
}

// State implements web.Source.
func (g *Gateway) State() *pipeline.State { return g.hub.State }

// PollStats implements web.Source.
func (g *Gateway) PollStats() []pipeline.Stats { return g.poller.Stats() }

// Started implements web.Source.
func (g *Gateway) Started() time.Time { return g.started }

// Site implements web.Source.
func (g *Gateway) Site() (string, string) { return g.cfg.Site, g.cfg.Gateway }

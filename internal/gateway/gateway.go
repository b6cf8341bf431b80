// Package gateway assembles a running facgw from a validated config: one
// Modbus connection per address or serial line, one driver per device, the
// poller, the pipeline hub and the HTTP server. cmd/facgw only parses
// flags and signals and calls into here.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/web"
	"github.com/facgw/facgw/pipeline"
)

// Gateway is a built, not yet started, facgw.
type Gateway struct {
	cfg     *config.Config
	log     *slog.Logger
	hub     *pipeline.Hub
	poller  *pipeline.Poller
	scheds  []pipeline.Schedule
	devices []*device
	conns   map[string]*mbdrv.Conn
	started time.Time

	mu       sync.Mutex
	httpAddr string
}

type device struct {
	cfg *config.Device
	drv *mbdrv.Device
}

// New builds a gateway from cfg; it does no I/O. reg must hold every
// profile the config names (config.Load checked that).
func New(cfg *config.Config, reg *profiles.Registry, log *slog.Logger) (*Gateway, error) {
	g := &Gateway{cfg: cfg, log: log, conns: map[string]*mbdrv.Conn{}}
	g.hub = pipeline.NewHub(pipeline.NewState(cfg.Defaults.StaleAfter))
	g.poller = pipeline.NewPoller(g.hub.Publish)
	for i := range cfg.Devices {
		dc := &cfg.Devices[i]
		if dc.Disabled {
			continue
		}
		conn := g.conns[dc.ConnKey()]
		if conn == nil {
			if dc.Transport == "modbus-rtu" {
				conn = mbdrv.NewRTUConn(mbdrv.SerialConfig{Port: dc.Serial.Port, Baud: dc.Serial.Baud, DataBits: dc.Serial.DataBits,
					Parity: dc.Serial.Parity, StopBits: dc.Serial.StopBits, Timeout: dc.Timeout()})
			} else {
				conn = mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: dc.Address, Timeout: dc.Timeout()})
			}
			g.conns[dc.ConnKey()] = conn
		}
		dcfg := mbdrv.DeviceConfig{ID: dc.ID, Unit: byte(dc.Unit), Firmware: dc.Firmware, Registry: reg, Only: dc.Points,
			Retries: dc.Retries(), Backoff: dc.Backoff(), MaxBackoff: dc.MaxBackoff()}
		var groups map[string]bool
		if dc.Profile == "auto" {
			dcfg.Auto = true
			// Groups are known only after identification: schedule every
			// group any Modbus profile uses; unknown ones poll nothing.
			groups = map[string]bool{}
			for _, p := range reg.List() {
				for gname := range p.GroupNames() {
					groups[gname] = true
				}
			}
		} else {
			p, ok := reg.Get(dc.Profile)
			if !ok {
				return nil, fmt.Errorf("gateway: device %q: unknown profile %q", dc.ID, dc.Profile)
			}
			dcfg.Profile = p
			groups = p.GroupNames()
		}
		drv := mbdrv.NewDevice(dcfg, conn)
		g.devices = append(g.devices, &device{cfg: dc, drv: drv})
		names := make([]string, 0, len(groups))
		for n := range groups {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, gname := range names {
			iv := dc.Interval(gname)
			// A poll may take up to a timeout per retry of each read; cap it
			// at the larger of its interval and one full retry round so one
			// slow read does not lose the whole group.
			deadline := max(iv, dc.Timeout()*time.Duration(dc.Retries()+1))
			g.scheds = append(g.scheds, pipeline.Schedule{Source: drv, Group: gname, Interval: iv, Deadline: deadline})
		}
	}
	return g, nil
}

// Hub returns the pipeline hub, for consumers that subscribe.
func (g *Gateway) Hub() *pipeline.Hub { return g.hub }

// Schedules returns the poll schedules, for tests.
func (g *Gateway) Schedules() []pipeline.Schedule { return g.scheds }

// HTTPAddr returns the address the HTTP server listens on once Run has
// started it.
func (g *Gateway) HTTPAddr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.httpAddr
}

// Run polls and serves HTTP until ctx ends. ready is called once the HTTP
// listener is open and polling has started.
func (g *Gateway) Run(ctx context.Context, ready func()) error {
	g.started = time.Now()
	ln, err := net.Listen("tcp", g.cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("gateway: http: %w", err)
	}
	g.mu.Lock()
	g.httpAddr = ln.Addr().String()
	g.mu.Unlock()
	srv := &http.Server{Handler: web.Handler(g), ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("http server", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		g.poller.Run(ctx, g.scheds)
	}()
	go func() {
		defer wg.Done()
		g.hub.RunSweeper(ctx, g.sweepPeriod())
	}()
	g.log.Info("facgw running", "site", g.cfg.Site, "gateway", g.cfg.Gateway, "devices", len(g.devices), "schedules", len(g.scheds), "http", g.httpAddr)
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	wg.Wait()
	for _, c := range g.conns {
		_ = c.Close()
	}
	return nil
}

// sweepPeriod checks staleness at the fastest poll interval, at least
// every 50 ms and at most every second.
func (g *Gateway) sweepPeriod() time.Duration {
	p := time.Second
	for _, s := range g.scheds {
		p = min(p, s.Interval)
	}
	return max(p, 50*time.Millisecond)
}

// Devices implements web.Source.
func (g *Gateway) Devices() []web.DeviceInfo {
	out := make([]web.DeviceInfo, 0, len(g.devices))
	for _, d := range g.devices {
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

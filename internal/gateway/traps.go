package gateway

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/facgw/facgw/drivers/snmp/trap"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/snmpagent"
	"github.com/facgw/facgw/internal/web"
)

// maxEvents is how many recent notifications the state endpoint shows.
const maxEvents = 200

// events keeps the most recent notifications, newest last.
type events struct {
	mu   sync.Mutex
	list []web.Event
}

func (e *events) add(ev web.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.list) == maxEvents {
		copy(e.list, e.list[1:])
		e.list = e.list[:maxEvents-1]
	}
	e.list = append(e.list, ev)
}

func (e *events) snapshot() []web.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]web.Event(nil), e.list...)
}

// buildTraps prepares the trap listener: it accepts notifications from
// the polled address of every SNMP device (plus traps.sources), with the
// configured communities and v3 users, and turns each into an event and
// an immediate poll of the sending device.
func (g *Gateway) buildTraps() error {
	if g.cfg.Traps == nil {
		return nil
	}
	tc, bySource, err := g.trapConfig(g.cfg)
	if err != nil {
		return err
	}
	l, err := trap.New(tc, g.onTrap)
	if err != nil {
		return fmt.Errorf("gateway: traps: %w", err)
	}
	g.traps = l
	g.trapSources.Store(&bySource)
	g.trapKey = trapKey(tc)
	return nil
}

// trapKey fingerprints what a listener accepts, to tell whether a reload
// changes it.
func trapKey(tc trap.Config) string {
	tc.Logger = nil
	return fingerprint(tc)
}

// trapConfig is the listener configuration of cfg's traps section and
// SNMP devices, and the devices polled at each sender address.
func (g *Gateway) trapConfig(cfg *config.Config) (trap.Config, map[string][]string, error) {
	t := cfg.Traps
	sources := map[string]string{}
	bySource := map[string][]string{}
	add := func(ip, id string) {
		if _, ok := sources[ip]; !ok {
			sources[ip] = id
		}
		bySource[ip] = append(bySource[ip], id)
	}
	for _, d := range cfg.Devices {
		if d.Transport != config.TransportSNMP || d.Disabled {
			continue
		}
		host, _, err := net.SplitHostPort(d.Address)
		if err != nil {
			continue
		}
		if a, err := netip.ParseAddr(host); err == nil {
			add(a.String(), d.ID)
		} else {
			g.log.Warn("traps: device address is a name, not an IP; list its address under traps.sources", "device", d.ID, "host", host)
		}
	}
	for src, id := range t.Sources {
		if a, err := netip.ParseAddr(src); err == nil {
			add(a.String(), id)
		}
	}
	var comms []string
	for _, c := range t.Communities {
		comms = append(comms, c.Reveal())
	}
	var users []trap.User
	for _, u := range t.Users {
		ap, err := snmpagent.ParseAuthProtocol(u.AuthProtocol)
		if err != nil {
			return trap.Config{}, nil, fmt.Errorf("gateway: traps user %q: %w", u.Name, err)
		}
		user := trap.User{Name: u.Name, AuthProto: ap, AuthPass: u.AuthPassword.Reveal()}
		if u.PrivProtocol != "" {
			pp, err := snmpagent.ParsePrivProtocol(u.PrivProtocol)
			if err != nil {
				return trap.Config{}, nil, fmt.Errorf("gateway: traps user %q: %w", u.Name, err)
			}
			user.PrivProto, user.PrivPass = pp, u.PrivPassword.Reveal()
		}
		users = append(users, user)
	}
	return trap.Config{Listen: t.Listen, Communities: comms, V3Users: users, Sources: sources, Names: t.Names,
		Logger: g.log.With("component", "traps")}, bySource, nil
}

// trapsPlan is a reload's change to the trap listener: new communities,
// users, names and sources (devices added, moved or removed).
type trapsPlan struct {
	cfg      trap.Config
	bySource map[string][]string
	key      string
}

// planTraps checks cfg's traps section against the running listener. The
// listener's address and the section's presence need a restart; the rest
// it can update.
func (g *Gateway) planTraps(cfg *config.Config) (*trapsPlan, []string, error) {
	start, next := g.cfg.Traps, cfg.Traps
	switch {
	case start == nil && next == nil:
		return nil, nil, nil
	case start == nil || next == nil:
		return nil, []string{"traps (section added or removed)"}, nil
	}
	var restart []string
	if next.Listen != start.Listen {
		restart = append(restart, "traps.listen")
	}
	if g.traps == nil {
		// It never bound (the start logged why); a restart tries again.
		return nil, restart, nil
	}
	tc, bySource, err := g.trapConfig(cfg)
	if err != nil {
		return nil, restart, err
	}
	key := trapKey(tc)
	if key == g.trapKey {
		return nil, restart, nil
	}
	// The checks New and Update make, before anything changes.
	if _, err := trap.New(tc, g.onTrap); err != nil {
		return nil, restart, fmt.Errorf("gateway: reload: traps: %w", err)
	}
	return &trapsPlan{cfg: tc, bySource: bySource, key: key}, restart, nil
}

// applyTraps hands the listener its new acceptance; it was checked in
// the plan.
func (g *Gateway) applyTraps(p *trapsPlan) {
	if p == nil || g.traps == nil {
		return
	}
	if err := g.traps.Update(p.cfg); err != nil {
		g.log.Error("reload: trap listener not updated", "err", err)
		return
	}
	g.trapSources.Store(&p.bySource)
	g.trapKey = p.key
}

// onTrap runs on the listener's dispatch goroutine: record, log, and
// re-poll the sender now (a trap is a reason to poll, polling is the
// truth: traps are UDP and get lost).
func (g *Gateway) onTrap(ev trap.Event) {
	ids := g.trapDevices(ev)
	var repolled []string
	for _, id := range ids {
		if g.poller.Trigger(id) {
			repolled = append(repolled, id)
		}
	}
	g.events.add(web.Event{Time: ev.Time.UTC(), Device: strings.Join(ids, ","), Source: ev.Source.String(), Kind: "snmp-trap",
		Name: ev.Name, OID: ev.TrapOID, Inform: ev.Inform, Repolled: len(repolled) > 0})
	g.log.Info("snmp notification", "devices", ids, "name", ev.Name, "oid", ev.TrapOID, "from", ev.Source.String(), "inform", ev.Inform)
}

// trapDevices returns the devices a notification may come from. Several
// agents can share a source address (one management card for several
// units, a NAT, or the simulator on loopback): then the notification's
// family narrows them down by profile class (UPS-MIB traps to UPSes,
// linkDown/linkUp to switches), and if that leaves none or several, all
// of them are re-polled: a poll too many costs little, one too few hides
// an event.
func (g *Gateway) trapDevices(ev trap.Event) []string {
	var ids []string
	if m := g.trapSources.Load(); m != nil {
		ids = (*m)[ev.Source.Addr().Unmap().String()]
	}
	if len(ids) <= 1 {
		if len(ids) == 0 && ev.Device != "" {
			return []string{ev.Device}
		}
		return ids
	}
	class := ""
	switch {
	case strings.HasPrefix(ev.Name, "upsTrap"):
		class = "ups"
	case ev.Name == "linkDown" || ev.Name == "linkUp":
		class = "switch"
	}
	var match []string
	for _, id := range ids {
		if class != "" && g.classOf(id) == class {
			match = append(match, id)
		}
	}
	if len(match) == 0 {
		return ids
	}
	return match
}

// startTraps binds the listener; an error (port taken, no permission for
// 162) is logged and polling goes on without traps.
func (g *Gateway) startTraps(ctx context.Context) {
	if g.traps == nil {
		return
	}
	if err := g.traps.Start(ctx); err != nil {
		g.log.Error("traps: cannot listen; polling continues without traps", "listen", g.cfg.Traps.Listen, "err", err)
		g.traps = nil
		return
	}
	g.log.Info("traps: listening", "addr", g.traps.Addr().String())
}

// TrapAddr returns where the trap listener listens, "" without one.
func (g *Gateway) TrapAddr() string {
	if g.traps == nil {
		return ""
	}
	return g.traps.Addr().String()
}

// Events implements web.Source.
func (g *Gateway) Events() []web.Event { return g.events.snapshot() }

// Package facsim is the facility simulator: it serves the shipped firmware
// profiles from one process, Modbus TCP devices on loopback ports and
// unit ids and SNMP agents on loopback UDP ports, with values that move
// plausibly, and scenarios (utility failure, thermal runaway, fire, CRAC
// failure, a switch uplink going down) and device faults (silence, late
// replies, exceptions or SNMP error statuses, garbage, truncated replies,
// dropped connections) switchable at run time through its HTTP control
// API (Handler) or the Sim's methods. It is the test bed for the
// gateway's rules, load shed and dashboard, and for demos.
//
// A facility file (ParseFacility) lists the devices; Start opens their
// listeners and runs one model per device class (ups, battery, cooling,
// fire, pdu, switch) that advances with the elapsed time. A Modbus device
// writes the model's engineering values through the profile's encoding
// into its registers; an SNMP device serves every point's OID from the
// model's value for that point, inverting the profile's decoding (scale,
// offset, TimeTicks, enum names, true_values), serves table columns row
// by row with their row labels (outlet and port names), keeps an RFC 1628
// alarm table for the contains points, answers SETs of writable points
// (PDU outlet commands) through the model, and sends the notifications a
// real agent would: upsTrapOnBattery, upsTrapAlarmEntryAdded/Removed,
// linkDown/linkUp, to the receivers of the facility file or of
// SetTrapReceivers. Points a model does not drive serve the profile's sim
// value. Tests disable the automatic tick (Options.Manual), fix the random
// seed (Options.Seed) and advance the models with Step, so nothing
// depends on the wall clock.
package facsim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/mbserver"
)

// DefaultTick is the model period when Options.Tick is zero.
const DefaultTick = 200 * time.Millisecond

// maxSubstep bounds one model integration step, in simulated seconds, so
// a large Step or a high Speed integrates the scenarios as finely as real
// time does.
const maxSubstep = 1.0

// Options configures Start. The zero value serves the shipped profiles in
// real time with a random seed.
type Options struct {
	// Registry holds the profiles; nil loads the shipped ones.
	Registry *profiles.Registry
	// Tick is the period of the automatic model step (default 200ms).
	Tick time.Duration
	// Manual disables the automatic step: values move only when Step is
	// called. Tests use it so they never depend on timing.
	Manual bool
	// Speed is simulated seconds per real second (default 1): 10 runs a
	// thermal runaway ten times as fast. It also scales Step.
	Speed float64
	// Seed seeds the models' randomness; 0 picks one (see Sim.Seed). Each
	// device draws from its own stream derived from the seed and its id.
	Seed uint64
	// FreePorts serves every listener (Modbus TCP, and SNMP UDP) on a free
	// port of its loopback host instead of the facility's port, keeping
	// devices that share a Modbus listener together (for tests and
	// in-process demos). Trap receivers keep their addresses.
	FreePorts bool
	// Logger receives the simulator's events; nil discards them.
	Logger *slog.Logger
}

// Sim is a running simulated facility. Its methods are safe for concurrent
// use. Close, or cancelling Start's context, stops it.
type Sim struct {
	opts  Options
	log   *slog.Logger
	seed  uint64
	speed float64

	mu        sync.Mutex
	devices   []*device
	byID      map[string]*device
	listeners []*listener
	in        inputs
	elapsed   float64 // simulated seconds since start

	stop      chan struct{}
	ctx       context.Context // ends at Close: SNMP agents and trap senders
	cancel    context.CancelFunc
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// listener is one Modbus TCP listener with its server and memory, shared
// by the devices behind it.
type listener struct {
	key  string
	addr string
	ln   net.Listener
	mem  *mbserver.Memory
	srv  *mbserver.Server
}

// Start builds the facility's devices from their profiles, opens their
// listeners, serves them and, unless opts.Manual, steps the models every
// opts.Tick until ctx is done or Close is called. It fails on a facility
// that does not fit the profiles (unknown profile, scenario of another
// class, identification that would not match) and when a listener cannot
// be opened.
func Start(ctx context.Context, f *Facility, opts Options) (*Sim, error) {
	if opts.Registry == nil {
		reg, err := profiles.Shipped()
		if err != nil {
			return nil, fmt.Errorf("facsim: %w", err)
		}
		opts.Registry = reg
	}
	if err := f.Validate(opts.Registry); err != nil {
		return nil, err
	}
	if opts.Tick <= 0 {
		opts.Tick = DefaultTick
	}
	if opts.Speed <= 0 {
		opts.Speed = 1
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sim{opts: opts, log: log, seed: opts.Seed, speed: opts.Speed, byID: map[string]*device{}, stop: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.seed == 0 {
		s.seed = rand.Uint64() | 1
	}
	if err := s.build(f); err != nil {
		s.closeListeners()
		return nil, err
	}
	for _, d := range s.devices {
		if d.snmp == nil {
			continue
		}
		s.wg.Add(2)
		go func() {
			defer s.wg.Done()
			if err := d.snmp.agent.Serve(s.ctx, d.snmp.pc); err != nil {
				s.log.Error("facsim: snmp agent stopped", "device", d.spec.ID, "addr", d.snmp.addr, "err", err)
			}
		}()
		go s.sendTraps(s.ctx, d)
	}
	for _, l := range s.listeners {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, mbserver.ErrServerClosed) {
				s.log.Error("facsim: modbus listener stopped", "addr", l.addr, "err", err)
			}
		}()
	}
	if !opts.Manual {
		s.wg.Add(1)
		go s.run()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			go s.Close()
		case <-s.stop:
		}
	}()
	return s, nil
}

// build creates listeners and devices; on error the caller closes the
// listeners opened so far.
func (s *Sim) build(f *Facility) error {
	byKey := map[string]*listener{}
	for i := range f.Devices {
		spec := &f.Devices[i]
		p, _ := s.opts.Registry.Get(spec.Profile) // Validate checked it
		if spec.IsSNMP() {
			d, err := s.buildSNMP(spec, p)
			if err != nil {
				return err
			}
			s.devices = append(s.devices, d)
			s.byID[spec.ID] = d
			continue
		}
		key := spec.listenerKey()
		l := byKey[key]
		if l == nil {
			listen := spec.Listen
			if s.opts.FreePorts {
				host, _, _ := net.SplitHostPort(listen)
				listen = net.JoinHostPort(host, "0")
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("facsim: device %q: %w", spec.ID, err)
			}
			mem := mbserver.NewMemory()
			l = &listener{key: key, addr: ln.Addr().String(), ln: ln, mem: mem, srv: mbserver.NewServer(mem, mbserver.Options{Logger: s.log})}
			byKey[key] = l
			s.listeners = append(s.listeners, l)
			mem.OnWrite(func(unit uint8, t mbserver.Table, addr uint16, count int) { s.onModbusWrite(l, unit, t, addr, count) })
		}
		fw := effectiveFirmware(spec, p)
		res := p.Resolve(fw)
		d := &device{
			spec: spec, res: res, class: p.Class, firmware: fw, sim: s, unit: spec.UnitID(), lst: l,
			scenario: ScenarioNormal, fault: Fault{Kind: FaultNone},
			vals: map[string]any{}, served: map[string]any{},
		}
		if err := d.checkFirmware(); err != nil {
			return err
		}
		d.model = newModel(spec, p.Class, res, s.rng(spec.ID))
		if err := d.mapMemory(); err != nil {
			return err
		}
		if err := d.writeStatic(); err != nil {
			return err
		}
		if objs := d.identification(); objs != nil {
			l.mem.SetDeviceIdentification(d.unit, objs)
			if err := d.checkIdentify(objs); err != nil {
				return err
			}
		} else if err := d.checkIdentify(nil); err != nil {
			return err
		}
		s.devices = append(s.devices, d)
		s.byID[spec.ID] = d
	}
	s.in.detectors = slices.ContainsFunc(s.devices, func(d *device) bool {
		fm, ok := d.model.(*fireModel)
		return ok && fm.detector
	})
	for _, d := range s.devices {
		if d.spec.Scenario != "" {
			if _, err := s.setScenario(d.spec.ID, d.spec.Scenario); err != nil {
				return err
			}
		}
		if d.spec.Fault != "" {
			kind, param, _ := cutParam(d.spec.Fault)
			if err := s.setFault(d.spec.ID, kind, param); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkFirmware verifies the firmware fits the register it is served in.
func (d *device) checkFirmware() error {
	if d.firmware == "" {
		return nil
	}
	for i := range d.res.Points {
		def := &d.res.Points[i]
		if !d.isFirmwarePoint(def) || def.Type != "string" {
			continue
		}
		if len(d.firmware) > 2*def.Length {
			return fmt.Errorf("facsim: device %q: firmware %q is longer than the %d characters of point %q", d.spec.ID, d.firmware, 2*def.Length, def.Name)
		}
	}
	return nil
}

// rng returns the random stream of device id.
func (s *Sim) rng(id string) *rand.Rand {
	return rand.New(rand.NewPCG(s.seed, hashID(id)))
}

func hashID(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// run steps the models every tick by the wall time elapsed.
func (s *Sim) run() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.Tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.Step(now.Sub(last))
			last = now
		}
	}
}

// Step advances every model by dt of real time (dt times Options.Speed of
// simulated time) and serves the new values. Tests call it with
// Options.Manual set.
func (s *Sim) Step(dt time.Duration) {
	if dt <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rest := dt.Seconds() * s.speed
	for rest > 1e-9 {
		h := min(rest, maxSubstep)
		rest -= h
		s.elapsed += h
		for _, d := range s.devices {
			d.model.step(h, &s.in)
		}
		s.in.fire1 = slices.ContainsFunc(s.devices, func(d *device) bool {
			fm, ok := d.model.(*fireModel)
			return ok && fm.fire1()
		})
		for _, d := range s.devices {
			if r, ok := d.model.(reactor); ok {
				r.react(&s.in)
			}
		}
	}
	for _, d := range s.devices {
		if err := d.writeModel(); err != nil {
			s.log.Warn("facsim: serve values", "err", err)
		}
	}
}

// Seed returns the seed in use, to replay a run with Options.Seed.
func (s *Sim) Seed() uint64 { return s.seed }

// Addr returns the address device id is served on: the host:port of its
// Modbus TCP listener, or of its SNMP agent's UDP socket ("" for an
// unknown id).
func (s *Sim) Addr(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.byID[id]; d != nil {
		return d.address()
	}
	return ""
}

// Addrs returns the served address of every device by id (see Addr).
func (s *Sim) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.devices))
	for _, d := range s.devices {
		out[d.spec.ID] = d.address()
	}
	return out
}

// SetScenario switches device id to scenario name. An empty id switches
// every device whose class the scenario applies to, and fails only if
// there is none. Unknown devices and scenarios, and a scenario of another
// class, are errors.
func (s *Sim) SetScenario(id, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.setScenario(id, name)
	return err
}

// setScenario switches and returns the ids of the devices switched. The
// caller holds s.mu.
func (s *Sim) setScenario(id, name string) ([]string, error) {
	sc := scenarioByName(name)
	if sc == nil {
		return nil, fmt.Errorf("facsim: unknown scenario %q (known: %s)", name, scenarioNames(""))
	}
	var targets []*device
	if id != "" {
		d := s.byID[id]
		if d == nil {
			return nil, fmt.Errorf("facsim: unknown device %q", id)
		}
		if !sc.fits(d.class) {
			return nil, fmt.Errorf("facsim: scenario %q does not apply to device %q, a %s device (known for %s: %s)", name, id, d.class, d.class, scenarioNames(d.class))
		}
		targets = []*device{d}
	} else {
		for _, d := range s.devices {
			if sc.fits(d.class) {
				targets = append(targets, d)
			}
		}
		if len(targets) == 0 {
			return nil, fmt.Errorf("facsim: no device of the classes scenario %q applies to (%v)", name, sc.Classes)
		}
	}
	ids := make([]string, len(targets))
	for i, d := range targets {
		now := d.model.setScenario(name, id != "")
		if now != d.scenario || name == ScenarioNormal {
			d.since = s.elapsed
		}
		d.scenario = now
		if err := d.writeModel(); err != nil {
			s.log.Warn("facsim: serve values", "err", err)
		}
		ids[i] = d.spec.ID
		s.log.Info("facsim: scenario", "device", d.spec.ID, "scenario", name)
	}
	return ids, nil
}

// SetFault switches device id to a fault: kind is one of the Fault*
// constants (FaultNone clears) and param its parameter, empty for the
// default (see ParseFault). An SNMP device's agent takes silent, late,
// garbage, truncated and error; a Modbus device every kind but error (see
// FaultKinds). An empty id sets the fault on every device it applies to,
// and fails only if there is none.
func (s *Sim) SetFault(id, kind, param string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setFault(id, kind, param)
}

func (s *Sim) setFault(id, kind, param string) error {
	f, err := ParseFault(kind, param)
	if err != nil {
		return err
	}
	_, err = s.applyFault(id, f)
	return err
}

// applyFault sets f and returns the ids of the devices it was set on. The
// caller holds s.mu.
func (s *Sim) applyFault(id string, f Fault) ([]string, error) {
	var targets []*device
	if id != "" {
		d := s.byID[id]
		if d == nil {
			return nil, fmt.Errorf("facsim: unknown device %q", id)
		}
		if proto := d.res.Profile.Protocol; !f.fits(proto) {
			return nil, fmt.Errorf("facsim: fault %q does not apply to device %q, a %s device (known for %s: %s)", f.Kind, id, proto, proto, faultNames(proto))
		}
		targets = []*device{d}
	} else {
		for _, d := range s.devices {
			if f.fits(d.res.Profile.Protocol) {
				targets = append(targets, d)
			}
		}
		if len(targets) == 0 {
			return nil, fmt.Errorf("facsim: no device fault %q applies to", f.Kind)
		}
	}
	ids := make([]string, len(targets))
	for i, d := range targets {
		d.fault = f
		if d.snmp != nil {
			d.snmp.agent.SetFault(f.agent())
		} else {
			d.lst.srv.SetFault(d.unit, f.server())
		}
		ids[i] = d.spec.ID
		s.log.Info("facsim: fault", "device", d.spec.ID, "fault", f.String())
	}
	return ids, nil
}

// DeviceStatus is a device as the control API shows it.
type DeviceStatus struct {
	ID       string `json:"id"`
	Profile  string `json:"profile"`
	Class    string `json:"class"`
	Protocol string `json:"protocol"` // modbus or snmp
	Firmware string `json:"firmware,omitempty"`
	// Variant is the firmware range of the profile variant served.
	Variant string `json:"variant,omitempty"`
	// Address is the Modbus TCP listener's or the SNMP agent's (UDP)
	// host:port.
	Address string `json:"address"`
	Unit    uint8  `json:"unit,omitempty"` // Modbus only
	// Gateway is the listener's name when devices share it.
	Gateway string `json:"gateway,omitempty"`
	// SNMP is the agent of an SNMP device.
	SNMP     *SNMPStatus `json:"snmp,omitempty"`
	Scenario string      `json:"scenario"`
	// ScenarioSeconds is the simulated time since the scenario started.
	ScenarioSeconds float64 `json:"scenario_seconds"`
	Fault           string  `json:"fault"`
	// Values holds the engineering value of every point served, as a
	// poller decodes it (a reason text for a sentinel).
	Values map[string]any `json:"values"`
}

// SNMPStatus is an SNMP device's agent as the control API shows it, with
// no community or passphrase.
type SNMPStatus struct {
	// Versions the agent answers: "1", "2c" (with a community), "3".
	Versions []string `json:"versions"`
	// Users are the SNMPv3 users.
	Users []SNMPUser `json:"users,omitempty"`
	// EngineID is the SNMPv3 engine id in hex (snmptrapd's createUser -e
	// needs it for v3 traps).
	EngineID string `json:"engine_id"`
	// Traps are the notification receivers, without their community.
	Traps []TrapReceiver `json:"traps"`
	// TrapsSent and TrapFailures count notifications sent and those that
	// could not be sent (or informs not acknowledged).
	TrapsSent    uint64 `json:"traps_sent"`
	TrapFailures uint64 `json:"trap_failures"`
	// Sets and SetsRejected count SET requests and those refused.
	Sets         uint64 `json:"sets"`
	SetsRejected uint64 `json:"sets_rejected"`
}

func (sd *snmpDevice) status() *SNMPStatus {
	st := sd.agent.Stats()
	out := &SNMPStatus{EngineID: fmt.Sprintf("%x", sd.engineID), Users: slices.Clone(sd.spec.Users), Traps: slices.Clone(sd.receivers),
		TrapsSent: st.TrapsSent, TrapFailures: st.NotifyFailures, Sets: st.Sets, SetsRejected: st.SetsRejected}
	if sd.spec.Community != "" || sd.spec.WriteCommunity != "" {
		out.Versions = append(out.Versions, "1", "2c")
	}
	if len(sd.spec.Users) > 0 {
		out.Versions = append(out.Versions, "3")
	}
	if out.Traps == nil {
		out.Traps = []TrapReceiver{}
	}
	for i := range out.Traps {
		out.Traps[i].Community = "" // a secret, as the device's communities
	}
	return out
}

// Devices returns the status of every device, in facility order.
func (s *Sim) Devices() []DeviceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DeviceStatus, len(s.devices))
	for i, d := range s.devices {
		st := DeviceStatus{
			ID: d.spec.ID, Profile: d.res.Profile.Model, Class: d.class, Protocol: d.res.Profile.Protocol, Firmware: d.firmware,
			Address: d.address(), Unit: d.unit, Gateway: d.spec.Gateway, Scenario: d.scenario,
			ScenarioSeconds: round(s.elapsed-d.since, 1), Fault: d.fault.String(),
			Values: make(map[string]any, len(d.served)),
		}
		if d.snmp != nil {
			st.SNMP = d.snmp.status()
		}
		if d.res.Variant != nil {
			st.Variant = d.res.Variant.Firmware
		}
		for k, v := range d.served {
			st.Values[k] = v
		}
		out[i] = st
	}
	return out
}

// Close stops the model tick, the listeners and the SNMP agents, closes
// every client connection and drops the notifications not yet sent. It is
// idempotent and returns nil.
func (s *Sim) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.closeListeners()
	})
	s.wg.Wait()
	return nil
}

func (s *Sim) closeListeners() {
	s.cancel()
	for _, l := range s.listeners {
		l.srv.Close()
		l.ln.Close()
	}
	for _, d := range s.devices {
		if d.snmp != nil {
			d.snmp.pc.Close()
		}
	}
}

// Package modbus polls devices over Modbus TCP and RTU, driven by firmware
// profiles. It knows the protocol, not the devices: a profile's points are
// planned once into the fewest reads (Plan), each poll executes the plan
// on a shared, serialised connection (Conn) and decodes every point
// (DecodeRegisters). Failures become data: a point that could not be read
// is returned with bad quality and a reason, never as an error.
package modbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	mb "github.com/goburrow/modbus"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/backoff"
	"github.com/facgw/facgw/internal/point"
)

// DeviceConfig is what a Device needs; the config package fills it.
type DeviceConfig struct {
	ID       string
	Unit     byte
	Profile  *profiles.Profile // nil with Auto
	Firmware string            // pinned firmware version, or "" to identify
	Auto     bool              // choose the profile by identification
	Registry *profiles.Registry
	Only     []string // poll only these points; empty means all
	Retries  int
	Backoff  time.Duration // first retry backoff inside a poll; doubles
	// MaxBackoff caps how long a device that stopped answering is left
	// alone between polls that try it again.
	MaxBackoff time.Duration
}

// Device polls one Modbus device (one unit id on a Conn). Poll is safe for
// concurrent use by several poll-group goroutines; requests to the shared
// connection are serialised by Conn.
type Device struct {
	cfg  DeviceConfig
	conn *Conn

	mu       sync.Mutex
	res      *profiles.Resolved
	groups   map[string]*groupPlan
	identErr error
	// A dead device is not asked every cycle, so it costs the shared
	// connection little.
	dead backoff.Tracker
}

type groupPlan struct {
	points []profiles.PointDef
	reads  []Read
}

// NewDevice returns a device on conn. No I/O happens until Poll.
func NewDevice(cfg DeviceConfig, conn *Conn) *Device {
	if cfg.Backoff <= 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	return &Device{cfg: cfg, conn: conn}
}

// ID returns the device id.
func (d *Device) ID() string { return d.cfg.ID }

// Resolved returns the profile in use, or nil while it is not yet known
// (profile auto before identification, or variants before the firmware is
// read).
func (d *Device) Resolved() *profiles.Resolved {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.res
}

// Plan returns the reads of one poll group, for tests and `facgw probe`.
func (d *Device) Plan(group string) []Read {
	d.mu.Lock()
	defer d.mu.Unlock()
	if g := d.groups[group]; g != nil {
		return append([]Read(nil), g.reads...)
	}
	return nil
}

func (d *Device) setResolved(r *profiles.Resolved) {
	only := map[string]bool{}
	for _, n := range d.cfg.Only {
		only[n] = true
	}
	d.res = r
	d.groups = map[string]*groupPlan{}
	for _, p := range r.Points {
		if len(only) > 0 && !only[p.Name] {
			continue
		}
		g := d.groups[p.Group]
		if g == nil {
			g = &groupPlan{}
			d.groups[p.Group] = g
		}
		g.points = append(g.points, p)
	}
	for _, g := range d.groups {
		g.reads = Plan(g.points, r.Unreadable, PlanLimits{MaxGap: r.MaxGap, MaxRegs: r.MaxRegs, MaxBits: r.MaxBits})
	}
}

// ensureResolved identifies the device when the profile or its variant is
// not yet known. It returns an error while that fails: polling with the
// wrong register map would report wrong values as good ones.
func (d *Device) ensureResolved(ctx context.Context) error {
	d.mu.Lock()
	done := d.res != nil
	d.mu.Unlock()
	if done {
		return nil
	}
	var res *profiles.Resolved
	switch {
	case d.cfg.Auto:
		id, err := Identify(ctx, d.conn, d.cfg.Unit, d.cfg.Registry)
		if err != nil {
			return err
		}
		res = id.Profile.Resolve(id.Firmware)
	case d.cfg.Firmware != "" || len(d.cfg.Profile.Variants) == 0 || d.cfg.Profile.Identify == nil || d.cfg.Profile.Identify.Firmware == "":
		res = d.cfg.Profile.Resolve(d.cfg.Firmware)
	default:
		fw, err := ReadFirmware(ctx, d.conn, d.cfg.Unit, d.cfg.Profile)
		if err != nil {
			return fmt.Errorf("reading firmware version to choose the profile variant: %w", err)
		}
		res = d.cfg.Profile.Resolve(fw)
	}
	d.mu.Lock()
	d.setResolved(res)
	d.mu.Unlock()
	return nil
}

// Poll reads every point of one poll group once and returns them, each
// with its quality. It never returns an error: an unreachable device yields
// bad points. The points' time is the start of the poll. ctx bounds the
// whole poll; each request is also bounded by the connection timeout.
func (d *Device) Poll(ctx context.Context, group string) []point.Point {
	start := time.Now().UTC()
	if err := d.ensureResolved(ctx); err != nil {
		d.mu.Lock()
		d.identErr = err
		d.mu.Unlock()
		return d.allBad(group, start, "not identified: "+err.Error())
	}
	d.mu.Lock()
	g := d.groups[group]
	if g == nil {
		d.mu.Unlock()
		return nil
	}
	if reason, waiting := d.dead.Waiting(time.Now()); waiting {
		d.mu.Unlock()
		return d.allBad(group, start, reason)
	}
	reads := g.reads
	pts := g.points
	d.mu.Unlock()

	out := make([]point.Point, len(pts))
	for i := range pts {
		out[i] = point.Point{Device: d.cfg.ID, Name: pts[i].Name, Time: start, Kind: pts[i].Kind(), Unit: point.Unit(pts[i].Unit),
			Quality: point.Bad, Reason: point.ReasonNotPolled + ": poll deadline reached first"}
	}
	var split []int
	anyOK, firstErr := false, ""
	for ri, r := range reads {
		err := d.execute(ctx, pts, r, out)
		var me *mb.ModbusError
		if errors.As(err, &me) && me.ExceptionCode == 2 && len(r.Points) > 1 {
			// One unmapped register fails the whole block: read the
			// block's points one by one, and keep them apart from now on.
			split = append(split, ri)
			ok := false
			for _, pi := range r.Points {
				single := Read{Table: r.Table, Start: pts[pi].Address, Count: uint16(pts[pi].Width()), Points: []int{pi}}
				if e := d.execute(ctx, pts, single, out); e == nil {
					ok = true
				}
			}
			if ok {
				anyOK = true
			}
			continue
		}
		if err == nil {
			anyOK = true
		} else if firstErr == "" {
			firstErr = Reason(err)
		}
		if err != nil && !errors.As(err, &me) && ctx.Err() != nil {
			break
		}
	}
	d.mu.Lock()
	if len(split) > 0 {
		d.splitReads(group, split)
	}
	if anyOK || firstErr == "" || isException(firstErr) {
		d.dead.Succeeded()
	} else {
		d.dead.Failed(time.Now(), firstErr, d.cfg.Backoff, d.cfg.MaxBackoff)
	}
	d.mu.Unlock()
	return out
}

func isException(reason string) bool {
	return len(reason) >= len(point.ReasonException) && reason[:len(point.ReasonException)] == point.ReasonException
}

// splitReads replaces the listed reads of a group by one read per point.
func (d *Device) splitReads(group string, idx []int) {
	g := d.groups[group]
	drop := map[int]bool{}
	for _, i := range idx {
		drop[i] = true
	}
	var reads []Read
	for i, r := range g.reads {
		if !drop[i] {
			reads = append(reads, r)
			continue
		}
		for _, pi := range r.Points {
			reads = append(reads, Read{Table: r.Table, Start: g.points[pi].Address, Count: uint16(g.points[pi].Width()), Points: []int{pi}})
		}
	}
	g.reads = reads
}

// functionCode is the read function of each table.
var functionCode = map[string]byte{profiles.Coil: 1, profiles.Discrete: 2, profiles.Holding: 3, profiles.Input: 4}

// execute performs one read with retries and decodes its points into out.
func (d *Device) execute(ctx context.Context, pts []profiles.PointDef, r Read, out []point.Point) error {
	var regs []uint16
	var bits []byte
	var err error
	back := d.cfg.Backoff
	for try := 0; try <= d.cfg.Retries; try++ {
		if try > 0 {
			t := time.NewTimer(back)
			select {
			case <-ctx.Done():
				t.Stop()
				err = fmt.Errorf("%w (poll deadline)", err)
				try = d.cfg.Retries + 1
				continue
			case <-t.C:
			}
			back *= 2
		}
		if ctx.Err() != nil {
			if err == nil {
				err = ctx.Err()
			}
			break
		}
		err = d.conn.do(d.cfg.Unit, functionCode[r.Table], func(c mb.Client) error {
			var b []byte
			var e error
			switch r.Table {
			case profiles.Coil:
				b, e = c.ReadCoils(r.Start, r.Count)
			case profiles.Discrete:
				b, e = c.ReadDiscreteInputs(r.Start, r.Count)
			case profiles.Input:
				b, e = c.ReadInputRegisters(r.Start, r.Count)
			default:
				b, e = c.ReadHoldingRegisters(r.Start, r.Count)
			}
			if e != nil {
				return e
			}
			if profiles.IsBitTable(r.Table) {
				if len(b)*8 < int(r.Count) {
					return &protocolError{fmt.Sprintf("%d bytes for %d bits", len(b), r.Count)}
				}
				bits = b
				return nil
			}
			if len(b) != 2*int(r.Count) {
				return &protocolError{fmt.Sprintf("%d bytes for %d registers", len(b), r.Count)}
			}
			regs = make([]uint16, r.Count)
			for i := range regs {
				regs[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
			}
			return nil
		})
		if !retryable(err) {
			break
		}
	}
	if err != nil {
		reason := Reason(err)
		for _, pi := range r.Points {
			out[pi].Quality, out[pi].Reason = point.Bad, fmt.Sprintf("%s [%s %d]", reason, r.Table, pts[pi].Address)
		}
		return err
	}
	for _, pi := range r.Points {
		def := &pts[pi]
		off := int(def.Address) - int(r.Start)
		if profiles.IsBitTable(r.Table) {
			DecodeBit(def, bits[off/8]&(1<<(off%8)) != 0, &out[pi])
			continue
		}
		DecodeRegisters(def, regs[off:off+def.Width()], &out[pi])
	}
	return nil
}

func (d *Device) allBad(group string, t time.Time, reason string) []point.Point {
	d.mu.Lock()
	defer d.mu.Unlock()
	var pts []profiles.PointDef
	if g := d.groups[group]; g != nil {
		pts = g.points
	} else if d.res == nil && d.cfg.Profile != nil {
		for _, p := range d.cfg.Profile.Points {
			grp := p.Group
			if grp == "" {
				grp = "default"
			}
			if grp == group && (len(d.cfg.Only) == 0 || contains(d.cfg.Only, p.Name)) {
				pts = append(pts, p)
			}
		}
	}
	out := make([]point.Point, len(pts))
	for i := range pts {
		out[i] = point.Point{Device: d.cfg.ID, Name: pts[i].Name, Kind: pts[i].Kind(), Unit: point.Unit(pts[i].Unit), Time: t, Quality: point.Bad, Reason: reason}
	}
	return out
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

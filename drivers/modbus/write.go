package modbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	mb "github.com/goburrow/modbus"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

// ErrNotWritable is returned for a write to a point the profile does not
// mark writable: only those may be written, whatever the config asks.
var ErrNotWritable = errors.New("point is not writable")

// writeFunction is the write function code of each writable table.
var writeFunction = map[string]byte{profiles.Coil: 5, profiles.Holding: 16}

// WritePoint writes value to a point the profile marks writable: a coil
// (any non-zero value is on, function 5) or a holding-register point
// (encoded as the poller decodes it, function 6 or 16; an enum point takes
// its code, a bit point read-modify-writes its register). index must be
// empty: a Modbus point has no rows. It is sent once, never retried here:
// the caller reads the result back (ReadPoint) and decides. ctx bounds
// identification; the write itself is bounded by the connection timeout,
// since goburrow/modbus takes no context.
func (d *Device) WritePoint(ctx context.Context, name, index string, value float64) error {
	def, err := d.writableDef(ctx, name, index)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("modbus: device %q point %q: %w", d.cfg.ID, name, ctx.Err())
	}
	fc, ok := writeFunction[def.Table]
	if !ok {
		return fmt.Errorf("modbus: device %q point %q: table %s cannot be written", d.cfg.ID, name, def.Table)
	}
	if def.Table == profiles.Coil {
		v := uint16(0x0000)
		if value != 0 {
			v = 0xFF00
		}
		err = d.conn.do(d.cfg.Unit, 5, func(c mb.Client) error {
			_, e := c.WriteSingleCoil(def.Address, v)
			return e
		})
	} else {
		var cur []uint16
		if def.Bit != nil {
			// One bit of a shared register: keep the others as they are.
			cur, err = d.readRegisters(def)
			if err != nil {
				return fmt.Errorf("modbus: device %q point %q: read before write: %w", d.cfg.ID, name, err)
			}
		}
		var regs []uint16
		regs, err = EncodeRegisters(def, value, cur)
		if err != nil {
			return fmt.Errorf("modbus: device %q: %w", d.cfg.ID, err)
		}
		b := make([]byte, 2*len(regs))
		for i, r := range regs {
			b[2*i], b[2*i+1] = byte(r>>8), byte(r)
		}
		err = d.conn.do(d.cfg.Unit, fc, func(c mb.Client) error {
			_, e := c.WriteMultipleRegisters(def.Address, uint16(len(regs)), b)
			return e
		})
	}
	if err != nil {
		return fmt.Errorf("modbus: device %q point %q (%s %d): write: %w", d.cfg.ID, name, def.Table, def.Address, err)
	}
	return nil
}

// ReadPoint reads one point now, outside the poll plan, for the read-back
// after a write: the point comes back decoded, with its quality and, when
// the read failed, a bad quality and the reason. index must be empty.
func (d *Device) ReadPoint(ctx context.Context, name, index string) point.Point {
	p := point.Point{Device: d.cfg.ID, Name: name, Time: time.Now().UTC(), Quality: point.Bad}
	if index != "" {
		p.Reason = fmt.Sprintf("modbus point %q has no rows (index %q)", name, index)
		return p
	}
	if err := d.ensureResolved(ctx); err != nil {
		p.Reason = "not identified: " + err.Error()
		return p
	}
	def, ok := d.Resolved().Point(name)
	if !ok {
		p.Reason = fmt.Sprintf("profile has no point %q", name)
		return p
	}
	pts := []profiles.PointDef{*def}
	out := []point.Point{{Device: d.cfg.ID, Name: name, Time: p.Time, Kind: def.Kind(), Unit: point.Unit(def.Unit)}}
	r := Read{Table: def.Table, Start: def.Address, Count: uint16(max(def.Width(), 1)), Points: []int{0}}
	_ = d.execute(ctx, pts, r, out) // a failure is in the point
	return out[0]
}

// writableDef finds a writable point of the resolved profile.
func (d *Device) writableDef(ctx context.Context, name, index string) (*profiles.PointDef, error) {
	if index != "" {
		return nil, fmt.Errorf("modbus: device %q point %q: a Modbus point has no rows (index %q)", d.cfg.ID, name, index)
	}
	if err := d.ensureResolved(ctx); err != nil {
		return nil, fmt.Errorf("modbus: device %q: not identified: %w", d.cfg.ID, err)
	}
	def, ok := d.Resolved().Point(name)
	if !ok {
		return nil, fmt.Errorf("modbus: device %q: profile has no point %q", d.cfg.ID, name)
	}
	if !def.Writable {
		return nil, fmt.Errorf("modbus: device %q point %q: %w", d.cfg.ID, name, ErrNotWritable)
	}
	return def, nil
}

// readRegisters reads the registers of one register point.
func (d *Device) readRegisters(def *profiles.PointDef) ([]uint16, error) {
	var regs []uint16
	n := uint16(def.Width())
	err := d.conn.do(d.cfg.Unit, functionCode[def.Table], func(c mb.Client) error {
		b, e := c.ReadHoldingRegisters(def.Address, n)
		if e != nil {
			return e
		}
		if len(b) != 2*int(n) {
			return &protocolError{fmt.Sprintf("%d bytes for %d registers", len(b), n)}
		}
		regs = make([]uint16, n)
		for i := range regs {
			regs[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		}
		return nil
	})
	return regs, err
}

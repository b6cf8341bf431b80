package snmp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/gosnmp/gosnmp"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

// ErrNotWritable is returned for a SET of a point the profile does not mark
// writable: only those may be written, whatever the config asks.
var ErrNotWritable = errors.New("point is not writable")

// setter is the optional SET ability of a session. gosnmpClient has it;
// the test fakes of client need not, and a Device on one of those refuses
// to write.
type setter interface {
	set(ctx context.Context, pdus []gosnmp.SnmpPDU) (*gosnmp.SnmpPacket, error)
}

var _ setter = (*gosnmpClient)(nil)

func (c *gosnmpClient) set(ctx context.Context, pdus []gosnmp.SnmpPDU) (*gosnmp.SnmpPacket, error) {
	return c.bound(ctx, func() (*gosnmp.SnmpPacket, error) { return c.g.Set(pdus) })
}

// WritePoint SETs value on a point the profile marks writable: a scalar
// (index "") at its oid, or one row of a column (the row's index, the OID
// suffix after the column, such as "3" for outlet 3) at walk.index. An
// integer point is sent as an Integer, a gauge as a Gauge32. The request
// goes once with the device's timeout and retries (a retried SET of the
// same value is harmless: the agent applies a value, not a toggle); the
// caller reads the result back with ReadPoint.
//
// SETs normally need other credentials than polling (a write community or
// a v3 user with write access): build a separate Device for writing, with
// those in its DeviceConfig.
func (d *Device) WritePoint(ctx context.Context, name, index string, value float64) error {
	def, oid, err := d.pointOID(ctx, name, index)
	if err != nil {
		return err
	}
	if !def.Writable {
		return fmt.Errorf("snmp: device %q point %q: %w", d.cfg.ID, name, ErrNotWritable)
	}
	if value != math.Trunc(value) {
		return fmt.Errorf("snmp: device %q point %q: %g is not an integer", d.cfg.ID, name, value)
	}
	pdu := gosnmp.SnmpPDU{Name: oid}
	switch def.Type {
	case "integer":
		if value < math.MinInt32 || value > math.MaxInt32 {
			return fmt.Errorf("snmp: device %q point %q: %g does not fit an Integer32", d.cfg.ID, name, value)
		}
		pdu.Type, pdu.Value = gosnmp.Integer, int(value)
	case "gauge":
		if value < 0 || value > math.MaxUint32 {
			return fmt.Errorf("snmp: device %q point %q: %g does not fit a Gauge32", d.cfg.ID, name, value)
		}
		pdu.Type, pdu.Value = gosnmp.Gauge32, uint32(value)
	default:
		return fmt.Errorf("snmp: device %q point %q: cannot SET a %s point", d.cfg.ID, name, def.Type)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("snmp: device %q point %q: %w", d.cfg.ID, name, err)
	}
	d.reqMu.Lock()
	defer d.reqMu.Unlock()
	if d.cl == nil {
		c, err := d.open(d.cfg)
		if err != nil {
			return fmt.Errorf("snmp: device %q: %w", d.cfg.ID, err)
		}
		d.cl = c
	}
	s, ok := d.cl.(setter)
	if !ok {
		return fmt.Errorf("snmp: device %q: this session cannot SET", d.cfg.ID)
	}
	d.requests.Add(1)
	pkt, err := s.set(ctx, []gosnmp.SnmpPDU{pdu})
	if err != nil {
		return fmt.Errorf("snmp: device %q point %q: set %s: %s", d.cfg.ID, name, oid, Reason(err))
	}
	if pkt.Error != gosnmp.NoError {
		return fmt.Errorf("snmp: device %q point %q: set %s refused: %s", d.cfg.ID, name, oid, statusReason(pkt.Error))
	}
	return nil
}

// ReadPoint GETs one point now, a scalar (index "") or one row of a
// column, and decodes it as a poll would, for the read-back after a
// write. A failure comes back as a bad point with its reason.
func (d *Device) ReadPoint(ctx context.Context, name, index string) point.Point {
	p := point.Point{Device: d.cfg.ID, Name: name, Time: d.now().UTC(), Quality: point.Bad}
	if index != "" {
		p.Name = name + "." + index
	}
	def, oid, err := d.pointOID(ctx, name, index)
	if err != nil {
		p.Reason = err.Error()
		return p
	}
	f := &fetcher{d: d, ctx: ctx}
	vr := f.get([]string{oid})[oid]
	if vr.reason != "" {
		p.Reason = vr.reason
		return p
	}
	decodeValue(def, vr.pdu, &p)
	return p
}

// pointOID finds a point of the resolved profile and the instance OID of
// its row.
func (d *Device) pointOID(ctx context.Context, name, index string) (*profiles.PointDef, string, error) {
	if err := d.ensureResolved(ctx); err != nil {
		return nil, "", fmt.Errorf("snmp: device %q: not identified: %w", d.cfg.ID, err)
	}
	def, ok := d.Resolved().Point(name)
	if !ok {
		return nil, "", fmt.Errorf("snmp: device %q: profile has no point %q", d.cfg.ID, name)
	}
	switch {
	case def.Sensor != "" || def.Contains != "":
		return nil, "", fmt.Errorf("snmp: device %q point %q: a computed point has no single OID", d.cfg.ID, name)
	case def.IsColumn():
		if index == "" || strings.Trim(index, "0123456789.") != "" || strings.HasPrefix(index, ".") || strings.HasSuffix(index, ".") {
			return nil, "", fmt.Errorf("snmp: device %q point %q: a column needs a row index such as \"3\", got %q", d.cfg.ID, name, index)
		}
		return def, def.Walk + "." + index, nil
	case index != "":
		return nil, "", fmt.Errorf("snmp: device %q point %q: a scalar has no rows (index %q)", d.cfg.ID, name, index)
	}
	return def, def.OID, nil
}

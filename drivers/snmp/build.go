package snmp

import (
	"time"

	"github.com/gosnmp/gosnmp"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

// build turns one poll's varbinds into the group's points, in definition
// order, rows in the agent's order. t is the points' time (UTC), now the
// clock reading that times rates.
func (d *Device) build(g *groupPlan, sc map[string]varResult, cols map[string]*colResult, t, now time.Time) []point.Point {
	var uptime uint32
	hasUp := false
	if r, ok := sc[sysUpTimeOID]; ok && r.reason == "" && r.pdu.Type == gosnmp.TimeTicks {
		if v, ok := intValue(r.pdu); ok {
			uptime, hasUp = uint32(v.i), true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]point.Point, 0, len(g.points))
	emit := func(def *profiles.PointDef, p point.Point, raw rawInt, counter bool) {
		out = append(out, p)
		if !def.IsCounter() {
			return
		}
		r := point.Point{Device: p.Device, Name: p.Name + profiles.RateSuffix, Kind: point.Number, Time: t, Quality: point.Bad, Reason: p.Reason}
		if counter {
			bits := uint(32)
			if def.Type == "counter64" {
				bits = 64
			}
			v, reason := d.rate(p.Name, raw.uint64(), bits, now, uptime, hasUp)
			if reason == "" {
				r.Num, r.Quality, r.Reason = v*def.ScaleOr1(), point.Good, ""
			} else {
				r.Reason = reason
			}
		}
		out = append(out, r)
	}
	for i := range g.points {
		def := &g.points[i]
		base := point.Point{Device: d.cfg.ID, Name: def.Name, Kind: def.Kind(), Unit: point.Unit(def.Unit), Time: t}
		switch {
		case def.OID != "":
			p := base
			r := sc[def.OID]
			if r.reason != "" {
				bad(&p, r.reason)
				emit(def, p, rawInt{}, false)
				continue
			}
			raw, ok := decodeValue(def, r.pdu, &p)
			emit(def, p, raw, ok)
		case def.Contains != "":
			p := base
			c := cols[def.Walk]
			if c.reason != "" {
				bad(&p, c.reason)
			} else {
				for _, rw := range c.rows {
					if rw.pdu.Type == gosnmp.ObjectIdentifier && oidText(rw.pdu) == def.Contains {
						p.Num = 1
						break
					}
				}
			}
			out = append(out, p)
		case def.Sensor == profiles.SensorEntity:
			out = append(out, d.entityPoints(def, base, cols)...)
		default:
			d.columnPoints(def, base, cols, emit)
		}
	}
	return out
}

// labelsFor returns the row labels of def (index to label text), from its
// label column, or from the last good walk of that column when this one
// failed, so that points keep their names.
func (d *Device) labelsFor(def *profiles.PointDef, cols map[string]*colResult) map[string]string {
	if def.RowLabel == "" {
		return nil
	}
	c := cols[def.RowLabel]
	if c == nil || c.reason != "" {
		return d.labels[def.RowLabel]
	}
	m := make(map[string]string, len(c.rows))
	for _, r := range c.rows {
		if exceptionReason(r.pdu.Type) == "" {
			m[r.index] = labelText(r.pdu)
		}
	}
	d.labels[def.RowLabel] = m
	return m
}

// columnPoints emits the points of a walked column: one per row, named
// <name>.<row label>.
func (d *Device) columnPoints(def *profiles.PointDef, base point.Point, cols map[string]*colResult, emit func(*profiles.PointDef, point.Point, rawInt, bool)) {
	c := cols[def.Walk]
	if c.reason != "" || len(c.rows) == 0 {
		reason := c.reason
		if reason == "" {
			reason = point.ReasonAbsent + ": the agent has no rows in " + def.Walk
		}
		names := d.rows[def.Name]
		if len(names) == 0 {
			names = []string{def.Name}
		}
		for _, n := range names {
			p := base
			p.Name = n
			bad(&p, reason)
			emit(def, p, rawInt{}, false)
		}
		return
	}
	indexes := make([]string, len(c.rows))
	for i, r := range c.rows {
		indexes[i] = r.index
	}
	names := rowNames(indexes, d.labelsFor(def, cols))
	full := make([]string, len(names))
	for i, r := range c.rows {
		p := base
		p.Name = def.Name + "." + names[i]
		full[i] = p.Name
		raw, ok := decodeValue(def, r.pdu, &p)
		emit(def, p, raw, ok)
	}
	d.rows[def.Name] = full
}

// entityPoints emits the points of a sensor: entity definition: one per
// entPhySensorTable row, named <name>.<entPhysicalName>, with value and
// unit computed from the row's type, scale and precision, and bad quality
// when the sensor's oper status is not ok.
func (d *Device) entityPoints(def *profiles.PointDef, base point.Point, cols map[string]*colResult) []point.Point {
	vals := cols[def.Walk+entValue]
	var out []point.Point
	if vals.reason != "" || len(vals.rows) == 0 {
		reason := vals.reason
		if reason == "" {
			reason = point.ReasonAbsent + ": the agent has no rows in " + def.Walk + entValue
		}
		names := d.rows[def.Name]
		if len(names) == 0 {
			names = []string{def.Name}
		}
		for _, n := range names {
			p := base
			p.Name = n
			bad(&p, reason)
			out = append(out, p)
		}
		return out
	}
	// Each attribute column by row index; a failed attribute walk makes
	// every sensor bad, because its value cannot be scaled.
	attr := map[string]map[string]int64{}
	attrReason := ""
	for _, c := range []string{entType, entScale, entPrecision, entStatus} {
		cr := cols[def.Walk+c]
		m := map[string]int64{}
		if cr.reason != "" && attrReason == "" {
			attrReason = cr.reason
		}
		for _, r := range cr.rows {
			if v, ok := intValue(r.pdu); ok {
				m[r.index] = v.i
			}
		}
		attr[c] = m
	}
	indexes := make([]string, len(vals.rows))
	for i, r := range vals.rows {
		indexes[i] = r.index
	}
	names := rowNames(indexes, d.labelsFor(def, cols))
	full := make([]string, len(names))
	for i, r := range vals.rows {
		p := base
		p.Name = def.Name + "." + names[i]
		full[i] = p.Name
		p.Kind, p.Quality = point.Number, point.Good
		idx := r.index
		typ, okT := attr[entType][idx]
		scale, okS := attr[entScale][idx]
		prec, okP := attr[entPrecision][idx]
		status, okO := attr[entStatus][idx]
		v, okV := intValue(r.pdu)
		switch {
		case exceptionReason(r.pdu.Type) != "":
			bad(&p, exceptionReason(r.pdu.Type))
		case attrReason != "":
			bad(&p, attrReason)
		case !okV || !okT || !okS || !okP:
			bad(&p, point.ReasonDecode+": sensor "+idx+" lacks its value, type, scale or precision")
		default:
			p.Num, p.Unit = entityValue(typ, scale, prec, v.i)
			if okO {
				if reason := entityStatusReason(status); reason != "" {
					bad(&p, reason)
				}
			}
		}
		out = append(out, p)
	}
	d.rows[def.Name] = full
	return out
}

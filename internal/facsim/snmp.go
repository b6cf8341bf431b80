package facsim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"

	snmpdrv "github.com/facgw/facgw/drivers/snmp"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/snmpagent"
)

// OIDs the simulator serves or sends beyond what the profiles name.
const (
	oidSysDescr    = "1.3.6.1.2.1.1.1.0"
	oidSysObjectID = "1.3.6.1.2.1.1.2.0"
	oidSysUpTime   = snmpagent.OIDSysUpTime
	oidSysName     = "1.3.6.1.2.1.1.5.0"

	// RFC 1628 UPS-MIB.
	oidUPSMIB                       = "1.3.6.1.2.1.33.1."
	oidUpsSecondsOnBattery          = "1.3.6.1.2.1.33.1.2.2.0"
	oidUpsEstimatedMinutesRemaining = "1.3.6.1.2.1.33.1.2.3.0"
	oidUpsOutputSource              = "1.3.6.1.2.1.33.1.4.1.0"
	oidUpsAlarmsPresent             = "1.3.6.1.2.1.33.1.6.1.0"
	oidUpsAlarmID                   = "1.3.6.1.2.1.33.1.6.2.1.1"
	oidUpsAlarmDescr                = "1.3.6.1.2.1.33.1.6.2.1.2"
	oidUpsAlarmTime                 = "1.3.6.1.2.1.33.1.6.2.1.3"
	oidUpsAlarmOnBattery            = "1.3.6.1.2.1.33.1.6.3.2"
	oidUpsAlarmTestInProgress       = "1.3.6.1.2.1.33.1.6.3.24"
	oidUpsConfigLowBattTime         = "1.3.6.1.2.1.33.1.9.7.0"
	oidUpsTrapOnBattery             = "1.3.6.1.2.1.33.2.1"
	oidUpsTrapAlarmEntryAdded       = "1.3.6.1.2.1.33.2.3"
	oidUpsTrapAlarmEntryRemoved     = "1.3.6.1.2.1.33.2.4"

	// IF-MIB and the generic SNMPv2 traps.
	oidIfIndex       = "1.3.6.1.2.1.2.2.1.1"
	oidIfAdminStatus = "1.3.6.1.2.1.2.2.1.7"
	oidIfOperStatus  = "1.3.6.1.2.1.2.2.1.8"
	oidLinkDown      = snmpagent.OIDSnmpTraps + ".3"
	oidLinkUp        = snmpagent.OIDSnmpTraps + ".4"

	// ENTITY-SENSOR-MIB entPhySensorEntry columns.
	entType, entScale, entPrecision, entValue, entStatus = ".1", ".2", ".3", ".4", ".5"
)

// onBatteryTrapEvery is how often, in simulated seconds, a UPS on battery
// repeats upsTrapOnBattery (RFC 1628: "once per minute").
const onBatteryTrapEvery = 60.0

// trapQueue bounds the notifications waiting to be sent per device; more
// are dropped (traps are lossy anyway).
const trapQueue = 256

// snmpDevice is the SNMP side of a simulated device: its agent and store,
// and how the profile's points map onto OIDs. Its fields are guarded by
// the Sim's lock, except the agent, the store and the queue, which are
// safe for concurrent use.
type snmpDevice struct {
	spec     *SNMPSpec
	addr     string
	pc       net.PacketConn
	store    *snmpagent.Store
	agent    *snmpagent.Agent
	engineID []byte
	users    map[string]snmpagent.User

	scalars []*scalarSlot
	columns []*columnSlot // walked columns, sensors included
	alarms  []*alarmSlot
	cols    map[string]column // scratch: the model's columns

	receivers []TrapReceiver
	queue     chan notification
	upsMIB    bool // the profile reads RFC 1628: send its traps
	onBattery bool
	lastOnBat float64          // simulated time of the last upsTrapOnBattery
	ifOper    map[string]int64 // last served ifOperStatus by row index
}

// scalarSlot is one instance OID and the points reading it (several
// points may read one OID: an enum and bools through true_values).
type scalarSlot struct {
	oid      string
	defs     []*profiles.PointDef
	writable bool
}

// columnSlot is one walked column and the points reading it; a sensor
// slot (sensor: entity) is a whole entPhySensorTable.
type columnSlot struct {
	walk     string
	defs     []*profiles.PointDef
	group    string // rows are shared by the columns of a group
	label    string // row_label column OID, or ""
	sensor   bool
	writable bool
	rows     []string // row indexes served
}

// alarmSlot is a walked column of alarm OIDs (RFC 1628 upsAlarmDescr)
// and the contains points that look for their alarm in it.
type alarmSlot struct {
	walk   string
	defs   []*profiles.PointDef
	rows   []alarmRow
	nextID int
}

type alarmRow struct {
	id   int
	oid  string
	time uint32 // sysUpTime when raised
}

// rowGroup is the rows of a group of columns: their indexes and labels.
type rowGroup struct {
	indexes []string
	labels  []string // nil: rows are named by index
}

// notification is a trap waiting to be sent to the receivers of the
// moment it was raised.
type notification struct {
	oid       string
	vbs       []snmpagent.Varbind
	receivers []TrapReceiver
}

// defaultEngineID derives a stable engine id from the device id (RFC 3411
// format 4, text, under net-snmp's enterprise 8072).
func defaultEngineID(id string) []byte {
	b := []byte{0x80, 0x00, 0x1f, 0x88, 0x04}
	if len(id) > 27 {
		id = id[:27]
	}
	return append(b, id...)
}

// agentUser converts a facility user to the agent's form.
func agentUser(u SNMPUser) snmpagent.User {
	return snmpagent.User{Name: u.Name, AuthProto: snmpagent.AuthProtocol(u.AuthProtocol), AuthPass: u.AuthPassword,
		PrivProto: snmpagent.PrivProtocol(u.PrivProtocol), PrivPass: u.PrivPassword, ReadOnly: u.ReadOnly}
}

// buildSNMP opens the agent of an SNMP device and serves its profile.
func (s *Sim) buildSNMP(spec *DeviceSpec, p *profiles.Profile) (*device, error) {
	listen := spec.SNMP.Listen
	if s.opts.FreePorts {
		host, _, _ := net.SplitHostPort(listen)
		listen = net.JoinHostPort(host, "0")
	}
	pc, err := net.ListenPacket("udp", listen)
	if err != nil {
		return nil, fmt.Errorf("facsim: device %q: %w", spec.ID, err)
	}
	sd := &snmpDevice{spec: spec.SNMP, addr: pc.LocalAddr().String(), pc: pc, store: snmpagent.NewStore(),
		users: map[string]snmpagent.User{}, cols: map[string]column{}, ifOper: map[string]int64{},
		receivers: slices.Clone(spec.SNMP.Traps), queue: make(chan notification, trapQueue)}
	sd.engineID = defaultEngineID(spec.ID)
	if spec.SNMP.EngineID != "" {
		sd.engineID, _ = snmpagent.ParseEngineID(spec.SNMP.EngineID) // checked by ParseFacility
	}
	cfg := snmpagent.Config{EngineID: sd.engineID, Logger: s.log.With("device", spec.ID)}
	if c := spec.SNMP.Community; c != "" {
		cfg.Communities = []string{c}
	}
	if c := spec.SNMP.WriteCommunity; c != "" {
		cfg.WriteCommunities = []string{c}
	}
	for _, u := range spec.SNMP.Users {
		au := agentUser(u)
		cfg.Users = append(cfg.Users, au)
		sd.users[u.Name] = au
	}
	d := &device{spec: spec, class: p.Class, sim: s, snmp: sd, scenario: ScenarioNormal, fault: Fault{Kind: FaultNone},
		vals: map[string]any{}, served: map[string]any{}}
	if sd.agent, err = snmpagent.New(sd.store, cfg); err != nil {
		pc.Close()
		return nil, fmt.Errorf("facsim: device %q: %w", spec.ID, err)
	}
	d.firmware = effectiveFirmware(spec, p)
	d.res = p.Resolve(d.firmware)
	d.model = newModel(spec, p.Class, d.res, s.rng(spec.ID))
	sd.plan(d.res)
	if err := d.writeStatic(); err != nil {
		pc.Close()
		return nil, err
	}
	// The system group, where the profile does not serve it.
	for oid, v := range map[string]snmpagent.Value{
		oidSysDescr:    snmpagent.OctetString(fmt.Sprintf("facsim %s (%s)", p.Model, p.Product)),
		oidSysObjectID: snmpagent.ObjectIdentifier("1.3.6.1.4.1.8072.3.2.10"),
		oidSysName:     snmpagent.OctetString(spec.ID),
	} {
		if _, ok := sd.store.Get(oid); !ok {
			sd.store.MustSet(oid, v)
		}
	}
	if err := d.checkIdentify(nil); err != nil {
		pc.Close()
		return nil, err
	}
	return d, nil
}

// plan maps the profile's points onto slots.
func (sd *snmpDevice) plan(res *profiles.Resolved) {
	scalars := map[string]*scalarSlot{}
	columns := map[string]*columnSlot{}
	alarms := map[string]*alarmSlot{}
	for i := range res.Points {
		def := &res.Points[i]
		if strings.HasPrefix(def.OID, oidUPSMIB) || strings.HasPrefix(def.Walk, oidUPSMIB) {
			sd.upsMIB = true
		}
		switch {
		case def.OID != "":
			sl := scalars[def.OID]
			if sl == nil {
				sl = &scalarSlot{oid: def.OID}
				scalars[def.OID] = sl
				sd.scalars = append(sd.scalars, sl)
			}
			sl.defs = append(sl.defs, def)
			sl.writable = sl.writable || def.Writable
		case def.Contains != "":
			a := alarms[def.Walk]
			if a == nil {
				a = &alarmSlot{walk: def.Walk, nextID: 1}
				alarms[def.Walk] = a
				sd.alarms = append(sd.alarms, a)
			}
			a.defs = append(a.defs, def)
		default:
			c := columns[def.Walk]
			if c == nil {
				c = &columnSlot{walk: def.Walk, label: def.RowLabel, sensor: def.Sensor == profiles.SensorEntity}
				c.group = def.RowLabel
				if c.group == "" {
					c.group = parentOID(def.Walk)
					if c.sensor {
						c.group = def.Walk
					}
				}
				columns[def.Walk] = c
				sd.columns = append(sd.columns, c)
			}
			c.defs = append(c.defs, def)
			c.writable = c.writable || def.Writable
		}
	}
}

func parentOID(oid string) string {
	if i := strings.LastIndexByte(oid, '.'); i > 0 {
		return oid[:i]
	}
	return oid
}

// rowName is the point name segment the gateway makes of a row.
func rowName(g *rowGroup, i int) string {
	if g.labels != nil && i < len(g.labels) {
		if n := snmpdrv.SanitizeLabel(g.labels[i]); n != "" {
			return n
		}
	}
	return snmpdrv.SanitizeLabel(g.indexes[i])
}

// groups returns the rows of every column group: those of the first
// column of the group the model gives, else one row.
func (sd *snmpDevice) groups() map[string]*rowGroup {
	out := map[string]*rowGroup{}
	for _, c := range sd.columns {
		if out[c.group] != nil {
			continue
		}
		for _, def := range c.defs {
			if col, ok := sd.cols[def.Name]; ok && len(col.vals) > 0 {
				g := &rowGroup{labels: col.labels}
				for i := range col.vals {
					g.indexes = append(g.indexes, strconv.Itoa(i+1))
				}
				out[c.group] = g
				break
			}
		}
	}
	for _, c := range sd.columns {
		if out[c.group] == nil {
			out[c.group] = &rowGroup{indexes: []string{"1"}}
		}
	}
	return out
}

// writeSNMP serves the model's values, and with initial every point
// (static ones included), then raises the notifications the change
// calls for. The caller holds the Sim's lock.
func (d *device) writeSNMP(initial bool) error {
	sd := d.snmp
	clear(d.vals)
	d.model.values(d.vals)
	if _, ok := d.vals["ident.name"]; !ok {
		d.vals["ident.name"] = d.spec.ID // upsIdentName, rPDU2IdentName
	}
	clear(sd.cols)
	if t, ok := d.model.(tabler); ok {
		t.columns(sd.cols)
	}
	now := d.sim.elapsed
	uptime := uint32(math.Mod(math.Round(now*100), 1<<32))
	var errs []error
	set := func(oid string, v snmpagent.Value) {
		if err := sd.store.Set(oid, v); err != nil {
			errs = append(errs, fmt.Errorf("facsim: device %q: %w", d.spec.ID, err))
		}
	}

	groups := sd.groups()
	labelled := map[string]bool{}
	for _, c := range sd.columns {
		g := groups[c.group]
		if c.sensor {
			d.writeSensors(c, g, set)
		} else {
			d.writeColumn(c, g, initial, set)
		}
		if c.label != "" {
			for i, idx := range g.indexes {
				if oid := c.label + "." + idx; !labelled[oid] {
					labelled[oid] = true
					label := idx
					if g.labels != nil && i < len(g.labels) {
						label = g.labels[i]
					}
					set(oid, snmpagent.OctetString(label))
				}
			}
		}
		for _, old := range c.rows {
			if !slices.Contains(g.indexes, old) {
				sd.store.Delete(c.walk + "." + old)
			}
		}
		c.rows = slices.Clone(g.indexes)
	}

	var added, removed []alarmRow
	for _, a := range sd.alarms {
		ad, rm := d.writeAlarms(a, uptime, set)
		if a.walk == oidUpsAlarmDescr {
			added, removed = append(added, ad...), append(removed, rm...)
		}
	}

	for _, sl := range sd.scalars {
		var v snmpagent.Value
		driven := true
		switch {
		case sl.oid == oidSysUpTime:
			v = snmpagent.TimeTicks(uptime)
		case sl.oid == oidUpsAlarmsPresent && slices.ContainsFunc(sd.alarms, func(a *alarmSlot) bool { return a.walk == oidUpsAlarmDescr }):
			n := 0
			for _, a := range sd.alarms {
				if a.walk == oidUpsAlarmDescr {
					n += len(a.rows)
				}
			}
			v = rawSNMP(sl.defs[0], int64(n))
		default:
			v, driven = d.pick(sl.defs, func(def *profiles.PointDef) (any, bool) {
				if d.isFirmwarePoint(def) {
					return nil, false
				}
				x, ok := d.vals[def.Name]
				return x, ok
			})
		}
		if !driven && !initial && sl.writable {
			continue // keep what a manager SET
		}
		if sl.writable && initial {
			def := sl.defs[0]
			if err := sd.store.SetWritable(sl.oid, v, d.setFunc(def, 0)); err != nil {
				errs = append(errs, fmt.Errorf("facsim: device %q point %q: %w", d.spec.ID, def.Name, err))
			}
		} else {
			set(sl.oid, v)
		}
		for _, def := range sl.defs {
			d.served[def.Name] = decodeSNMP(def, v)
		}
	}
	if !slices.ContainsFunc(sd.scalars, func(sl *scalarSlot) bool { return sl.oid == oidSysUpTime }) {
		set(oidSysUpTime, snmpagent.TimeTicks(uptime))
	}
	d.notify(initial, now, added, removed)
	return errors.Join(errs...)
}

// writeColumn serves one walked column, row by row.
func (d *device) writeColumn(c *columnSlot, g *rowGroup, initial bool, set func(string, snmpagent.Value)) {
	sd := d.snmp
	for i, idx := range g.indexes {
		v, driven := d.pick(c.defs, func(def *profiles.PointDef) (any, bool) {
			if col, ok := sd.cols[def.Name]; ok {
				if i < len(col.vals) {
					return col.vals[i], true
				}
				return nil, false
			}
			x, ok := d.vals[def.Name]
			return x, ok
		})
		oid := c.walk + "." + idx
		if c.writable && !driven && !initial && slices.Contains(c.rows, idx) {
			continue // keep what a manager SET
		}
		if c.writable && !slices.Contains(c.rows, idx) {
			if err := sd.store.SetWritable(oid, v, d.setFunc(c.defs[0], i+1)); err != nil {
				d.sim.log.Warn("facsim: serve values", "device", d.spec.ID, "err", err)
			}
		} else {
			set(oid, v)
		}
		for _, def := range c.defs {
			d.served[def.Name+"."+rowName(g, i)] = decodeSNMP(def, v)
		}
	}
}

// writeSensors serves an ENTITY-SENSOR-MIB table: type, scale (units),
// precision, value and oper status of each sensor.
func (d *device) writeSensors(c *columnSlot, g *rowGroup, set func(string, snmpagent.Value)) {
	def := c.defs[0]
	col := d.snmp.cols[def.Name]
	for i, idx := range g.indexes {
		sv := sensorVal{typ: 8, v: 25, prec: 1, ok: true} // a generic temperature
		if i < len(col.vals) {
			if x, ok := col.vals[i].(sensorVal); ok {
				sv = x
			}
		}
		p := math.Pow10(sv.prec)
		raw := int64(math.Round(sv.v * p))
		status := int32(1)
		if !sv.ok {
			status = 2
		}
		set(c.walk+entType+"."+idx, snmpagent.Integer(int32(sv.typ)))
		set(c.walk+entScale+"."+idx, snmpagent.Integer(9))
		set(c.walk+entPrecision+"."+idx, snmpagent.Integer(int32(sv.prec)))
		set(c.walk+entValue+"."+idx, snmpagent.Integer(int32(max(math.MinInt32, min(math.MaxInt32, raw)))))
		set(c.walk+entStatus+"."+idx, snmpagent.Integer(status))
		var served any = float64(raw) / p
		if !sv.ok {
			served = point.ReasonAbsent + ": sensor unavailable (entPhySensorOperStatus 2)"
		}
		d.served[def.Name+"."+rowName(g, i)] = served
	}
}

// writeAlarms serves an alarm table: one row per active alarm, with an id
// that only grows (a new row for every new alarm, as RFC 1628 agents do)
// and, for upsAlarmTable, the sysUpTime it was raised at. It returns the
// rows added and removed.
func (d *device) writeAlarms(a *alarmSlot, uptime uint32, set func(string, snmpagent.Value)) (added, removed []alarmRow) {
	sd := d.snmp
	active := map[string]bool{}
	var order []string
	for _, def := range a.defs {
		v, ok := d.vals[def.Name]
		if !ok {
			v = d.staticValue(def)
		}
		if truthy(v) && !active[def.Contains] {
			active[def.Contains] = true
			order = append(order, def.Contains)
		}
	}
	kept := a.rows[:0:0]
	for _, r := range a.rows {
		if active[r.oid] {
			kept = append(kept, r)
			continue
		}
		removed = append(removed, r)
		sd.store.Delete(a.walk + "." + strconv.Itoa(r.id))
		if a.walk == oidUpsAlarmDescr {
			sd.store.Delete(oidUpsAlarmTime + "." + strconv.Itoa(r.id))
		}
	}
	for _, oid := range order {
		if slices.ContainsFunc(kept, func(r alarmRow) bool { return r.oid == oid }) {
			continue
		}
		r := alarmRow{id: a.nextID, oid: oid, time: uptime}
		a.nextID++
		if a.nextID > math.MaxInt32 {
			a.nextID = 1
		}
		kept = append(kept, r)
		added = append(added, r)
	}
	a.rows = kept
	for _, r := range a.rows {
		id := strconv.Itoa(r.id)
		set(a.walk+"."+id, snmpagent.ObjectIdentifier(r.oid))
		if a.walk == oidUpsAlarmDescr {
			set(oidUpsAlarmTime+"."+id, snmpagent.TimeTicks(r.time))
		}
	}
	for _, def := range a.defs {
		d.served[def.Name] = active[def.Contains]
	}
	return added, removed
}

// setFunc returns the SetFunc of a writable point (row 0 for a scalar):
// the model's command decides, under the Sim's lock, and the device's
// values are served again at once, so the manager's next read sees the
// effect (an outlet off, the PDU's current lower). A model without
// commands takes the value as it is.
func (d *device) setFunc(def *profiles.PointDef, row int) snmpagent.SetFunc {
	return func(_ string, v snmpagent.Value) error {
		s := d.sim
		s.mu.Lock()
		defer s.mu.Unlock()
		cm, ok := d.model.(commander)
		if !ok {
			return nil
		}
		code := v.Int
		if v.Type != gosnmp.Integer {
			code = int64(v.Uint)
		}
		if err := cm.command(def.Name, row, code); err != nil {
			s.log.Info("facsim: set refused", "device", d.spec.ID, "point", def.Name, "row", row, "value", code, "err", err)
			return snmpagent.StatusError(gosnmp.WrongValue)
		}
		s.log.Info("facsim: set", "device", d.spec.ID, "point", def.Name, "row", row, "value", code)
		if err := d.writeModel(); err != nil {
			s.log.Warn("facsim: serve values", "err", err)
		}
		return nil
	}
}

// pick returns the value an OID serves for the points reading it, and
// whether the model drives it: the first point with a model value that is
// not a bool (an enum, a number), else a code that makes every driven
// bool point (true_values) read as the model says, else the static value.
func (d *device) pick(defs []*profiles.PointDef, get func(*profiles.PointDef) (any, bool)) (snmpagent.Value, bool) {
	type want struct {
		def *profiles.PointDef
		b   bool
	}
	var bools []want
	for _, def := range defs {
		v, ok := get(def)
		if !ok {
			continue
		}
		if def.Kind() != point.Bool {
			return d.encodeSNMP(def, v), true
		}
		bools = append(bools, want{def, truthy(v)})
	}
	if len(bools) > 0 {
		var cands []int64
		for _, def := range defs {
			if def.Kind() == point.Bool {
				continue
			}
			if f, ok := toFloat(d.staticValue(def)); ok && def.Sim != nil {
				cands = append(cands, int64(f))
			}
			cands = append(cands, sortedCodes(def.Enum)...)
		}
		for _, w := range bools {
			cands = append(cands, w.def.TrueValues...)
		}
		for c := int64(1); c <= 20; c++ {
			cands = append(cands, c)
		}
		cands = append(cands, 0)
		for _, c := range cands {
			if !slices.ContainsFunc(bools, func(w want) bool { return slices.Contains(w.def.TrueValues, c) != w.b }) {
				return rawSNMP(defs[0], c), true
			}
		}
		return d.encodeSNMP(bools[0].def, bools[0].b), true
	}
	for _, def := range defs {
		if def.Kind() != point.Bool {
			return d.encodeSNMP(def, d.staticValue(def)), false
		}
	}
	for _, def := range defs {
		if def.Sim != nil {
			return d.encodeSNMP(def, def.Sim), false
		}
	}
	return d.encodeSNMP(defs[0], d.staticValue(defs[0])), false
}

func sortedCodes(m map[int64]string) []int64 {
	codes := make([]int64, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	return codes
}

func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case enumVal:
		return x.code != 0
	case absentOr:
		return truthy(x.fallback)
	}
	f, _ := toFloat(v)
	return f != 0
}

// boolCode is the code a lone bool point (true_values) serves for b: its
// first true value, or the smallest positive code that is not one
// (TruthValue false is 2).
func boolCode(def *profiles.PointDef, b bool) int64 {
	if b {
		return def.TrueValues[0]
	}
	for c := int64(1); ; c++ {
		if !slices.Contains(def.TrueValues, c) {
			return c
		}
	}
}

// encodeSNMP converts a model or static value (bool, float64, string,
// enumVal, secs, unitVal, counter, rawVal or absentOr) into the value def
// reads as it: the inverse of the driver's decoding (scale and offset,
// TimeTicks in hundredths, enum names to codes, bools to a true value).
func (d *device) encodeSNMP(def *profiles.PointDef, v any) snmpagent.Value {
	switch def.Type {
	case "string":
		return snmpagent.OctetString(toString(v))
	case "oid":
		s := toString(v)
		if _, err := snmpagent.NormalizeOID(s); err != nil {
			s = "0.0"
		}
		return snmpagent.ObjectIdentifier(s)
	}
	if x, ok := v.(absentOr); ok {
		if len(def.Absent) > 0 {
			return rawSNMP(def, def.Absent[0])
		}
		v = x.fallback
	}
	switch x := v.(type) {
	case rawVal:
		return rawSNMP(def, int64(x))
	case counter:
		if def.Type == "counter64" {
			return snmpagent.Counter64(uint64(x))
		}
		if def.Type == "counter32" {
			return snmpagent.Counter32(uint32(x))
		}
	}
	if len(def.TrueValues) > 0 {
		return rawSNMP(def, boolCode(def, truthy(v)))
	}
	if len(def.Enum) > 0 {
		return rawSNMP(def, int64(d.number(def, v)))
	}
	f := d.number(def, v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		f = 0
	}
	if def.Min != nil {
		f = max(f, *def.Min)
	}
	if def.Max != nil {
		f = min(f, *def.Max)
	}
	x := (f - def.Offset) / def.ScaleOr1()
	if def.Type == "timeticks" {
		x *= 100
	}
	x = math.Round(x)
	if def.Type == "counter64" {
		if x <= 0 {
			return snmpagent.Counter64(0)
		}
		return snmpagent.Counter64(uint64(min(x, math.MaxUint64)))
	}
	return rawSNMP(def, int64(max(math.MinInt64, min(math.MaxInt64, x))))
}

// rawSNMP is the value of raw integer code in def's SNMP type, clamped to
// the type's range (a counter wraps instead).
func rawSNMP(def *profiles.PointDef, raw int64) snmpagent.Value {
	u32 := func() uint32 { return uint32(max(0, min(math.MaxUint32, raw))) }
	switch def.Type {
	case "gauge":
		return snmpagent.Gauge32(u32())
	case "timeticks":
		return snmpagent.TimeTicks(u32())
	case "counter32":
		return snmpagent.Counter32(uint32(raw))
	case "counter64":
		return snmpagent.Counter64(uint64(raw))
	}
	return snmpagent.Integer(int32(max(math.MinInt32, min(math.MaxInt32, raw))))
}

// decodeSNMP decodes a served value as the driver does, for the control
// API: text, a bool, an enum's name, a number, or the reason of a bad
// point.
func decodeSNMP(def *profiles.PointDef, v snmpagent.Value) any {
	switch v.Type {
	case gosnmp.OctetString:
		return strings.Trim(v.Str, "\x00 ")
	case gosnmp.ObjectIdentifier:
		return v.Str
	}
	raw := v.Int
	if v.Type != gosnmp.Integer {
		raw = int64(v.Uint)
	}
	for _, a := range def.Absent {
		if a == raw {
			return fmt.Sprintf("%s: device reports %d (no sensor)", point.ReasonAbsent, a)
		}
	}
	switch {
	case len(def.TrueValues) > 0:
		return slices.Contains(def.TrueValues, raw)
	case len(def.Enum) > 0:
		if n, ok := def.Enum[raw]; ok {
			return n
		}
		return float64(raw)
	}
	f := float64(raw)
	if v.Type == gosnmp.Counter64 {
		f = float64(v.Uint)
	}
	if def.Type == "timeticks" {
		f /= 100
	}
	return round(f*def.ScaleOr1()+def.Offset, 4)
}

// notify raises the notifications a write calls for: RFC 1628's
// upsTrapOnBattery when the UPS goes on battery and every minute of
// simulated time on battery (at most once per write, so once per Step),
// upsTrapAlarmEntryAdded/Removed for alarm rows (not for
// OnBattery, which has its own trap, nor TestInProgress), and IF-MIB
// linkDown/linkUp when an interface's ifOperStatus leaves or reaches up.
// The first (initial) write only records the state.
func (d *device) notify(initial bool, now float64, added, removed []alarmRow) {
	sd := d.snmp
	if sd.upsMIB {
		onBattery := truthy(d.vals["ups.status.on_battery"])
		if v, ok := sd.store.Get(oidUpsOutputSource); ok {
			onBattery = v.Int == 5
		}
		if onBattery && (!sd.onBattery || now-sd.lastOnBat >= onBatteryTrapEvery) {
			if !initial {
				sd.send(oidUpsTrapOnBattery, sd.varbinds(oidUpsEstimatedMinutesRemaining, oidUpsSecondsOnBattery, oidUpsConfigLowBattTime))
			}
			sd.lastOnBat = now
		}
		sd.onBattery = onBattery
		if !initial {
			for _, r := range added {
				if r.oid != oidUpsAlarmOnBattery && r.oid != oidUpsAlarmTestInProgress {
					sd.send(oidUpsTrapAlarmEntryAdded, alarmVarbinds(r))
				}
			}
			for _, r := range removed {
				if r.oid != oidUpsAlarmTestInProgress {
					sd.send(oidUpsTrapAlarmEntryRemoved, alarmVarbinds(r))
				}
			}
		}
	}
	for _, c := range sd.columns {
		if c.walk != oidIfOperStatus {
			continue
		}
		for _, idx := range c.rows {
			v, ok := sd.store.Get(c.walk + "." + idx)
			if !ok {
				continue
			}
			prev, known := sd.ifOper[idx]
			sd.ifOper[idx] = v.Int
			if initial || !known || (prev == 1) == (v.Int == 1) {
				continue
			}
			trap := oidLinkDown
			if v.Int == 1 {
				trap = oidLinkUp
			}
			vbs := []snmpagent.Varbind{{OID: oidIfIndex + "." + idx, Value: snmpagent.Integer(int32(atoi(idx)))}}
			vbs = append(vbs, sd.varbinds(oidIfAdminStatus+"."+idx, oidIfOperStatus+"."+idx)...)
			sd.send(trap, vbs)
		}
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func alarmVarbinds(r alarmRow) []snmpagent.Varbind {
	id := strconv.Itoa(r.id)
	return []snmpagent.Varbind{
		{OID: oidUpsAlarmID + "." + id, Value: snmpagent.Integer(int32(r.id))},
		{OID: oidUpsAlarmDescr + "." + id, Value: snmpagent.ObjectIdentifier(r.oid)},
	}
}

// varbinds returns the served values of oids, leaving out those the
// device does not serve.
func (sd *snmpDevice) varbinds(oids ...string) []snmpagent.Varbind {
	var vbs []snmpagent.Varbind
	for _, oid := range oids {
		if v, ok := sd.store.Get(oid); ok {
			vbs = append(vbs, snmpagent.Varbind{OID: oid, Value: v})
		}
	}
	return vbs
}

// send queues a notification for the current receivers; it never blocks.
func (sd *snmpDevice) send(oid string, vbs []snmpagent.Varbind) {
	if len(sd.receivers) == 0 {
		return
	}
	select {
	case sd.queue <- notification{oid: oid, vbs: vbs, receivers: slices.Clone(sd.receivers)}:
	default:
	}
}

// sendTraps sends the device's queued notifications in order until ctx
// ends.
func (s *Sim) sendTraps(ctx context.Context, d *device) {
	defer s.wg.Done()
	sd := d.snmp
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-sd.queue:
			for _, r := range n.receivers {
				err := sd.agent.SendTrap(ctx, sd.agentReceiver(r), n.oid, n.vbs)
				if err != nil && ctx.Err() == nil {
					s.log.Warn("facsim: trap not sent", "device", d.spec.ID, "trap", n.oid, "to", r.Addr, "err", err)
				} else if err == nil {
					s.log.Debug("facsim: trap sent", "device", d.spec.ID, "trap", n.oid, "to", r.Addr)
				}
			}
		}
	}
}

// agentReceiver converts a receiver to the agent's form. The device sends
// from its agent's address, as a real device does, so a receiver can tell
// devices on 127.0.0.2 and 127.0.0.3 apart.
func (sd *snmpDevice) agentReceiver(r TrapReceiver) snmpagent.Receiver {
	rc := snmpagent.Receiver{Addr: r.Addr, Version: gosnmp.Version2c, Community: r.Community, Inform: r.Inform}
	if rc.Community == "" {
		rc.Community = sd.spec.Community
	}
	switch r.version() {
	case "1":
		rc.Version = gosnmp.Version1
	case "3":
		rc.Version, rc.Community, rc.V3 = gosnmp.Version3, "", sd.users[r.User]
	}
	if r.Inform {
		rc.Timeout, rc.Retries = time.Second, 2
	}
	host, _, _ := net.SplitHostPort(sd.addr)
	rhost, _, _ := net.SplitHostPort(r.Addr)
	if a, b := net.ParseIP(host), net.ParseIP(rhost); a != nil && b != nil && (a.To4() == nil) == (b.To4() == nil) {
		rc.LocalAddr = net.JoinHostPort(host, "0")
	}
	return rc
}

// snmpPointTexts returns the texts an identify expression may match for
// a scalar point of an SNMP device, read back from the store.
func (d *device) snmpPointTexts(def *profiles.PointDef) []string {
	v, ok := d.snmp.store.Get(def.OID)
	if !ok {
		return nil
	}
	switch v.Type {
	case gosnmp.OctetString:
		return []string{strings.Trim(v.Str, "\x00 ")}
	case gosnmp.ObjectIdentifier:
		return []string{v.Str}
	}
	dec := decodeSNMP(def, v)
	raw := v.Int
	if v.Type != gosnmp.Integer {
		raw = int64(v.Uint)
	}
	return []string{fmt.Sprint(dec), strconv.FormatInt(raw, 10)}
}

// checkSysObjectID verifies the served sysObjectID matches the profile's
// identify.sys_object_id.
func (d *device) checkSysObjectID() error {
	id := d.res.Profile.Identify
	if id == nil || id.SysObjectID == "" {
		return nil
	}
	re, err := regexp.Compile(id.SysObjectID)
	if err != nil {
		return fmt.Errorf("facsim: device %q: profile %s identify.sys_object_id: %w", d.spec.ID, d.res.Profile.Model, err)
	}
	v, _ := d.snmp.store.Get(oidSysObjectID)
	if !re.MatchString(v.Str) {
		return fmt.Errorf("facsim: device %q: profile %s identify.sys_object_id %q does not match the served sysObjectID %q (give the profile an ident.sys_object_id point with a matching sim)",
			d.spec.ID, d.res.Profile.Model, id.SysObjectID, v.Str)
	}
	return nil
}

// SetTrapReceivers replaces where SNMP device id sends its notifications
// (an empty id: every SNMP device), for instance to point them at a
// gateway's trap listener started by a test. An empty list stops them.
// Notifications already queued go to the receivers of the moment they
// were raised.
func (s *Sim) SetTrapReceivers(id string, rs []TrapReceiver) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.setTrapReceivers(id, rs)
	return err
}

func (s *Sim) setTrapReceivers(id string, rs []TrapReceiver) ([]string, error) {
	var targets []*device
	if id != "" {
		d := s.byID[id]
		switch {
		case d == nil:
			return nil, fmt.Errorf("facsim: unknown device %q", id)
		case d.snmp == nil:
			return nil, fmt.Errorf("facsim: device %q is a Modbus device and sends no traps", id)
		}
		targets = []*device{d}
	} else {
		for _, d := range s.devices {
			if d.snmp != nil {
				targets = append(targets, d)
			}
		}
		if len(targets) == 0 {
			return nil, errors.New("facsim: the facility has no SNMP device")
		}
	}
	for _, d := range targets {
		users := map[string]bool{}
		for name := range d.snmp.users {
			users[name] = true
		}
		for i := range rs {
			r := rs[i]
			if r.Addr == "" {
				return nil, fmt.Errorf("facsim: device %q: trap receiver %d: addr is required", d.spec.ID, i)
			}
			if errs := r.check(d.snmp.spec, users); len(errs) > 0 {
				msgs := make([]string, len(errs))
				for j, e := range errs {
					msgs[j] = e.Msg
				}
				return nil, fmt.Errorf("facsim: device %q: trap receiver %d: %s", d.spec.ID, i, strings.Join(msgs, "; "))
			}
		}
	}
	ids := make([]string, len(targets))
	for i, d := range targets {
		d.snmp.receivers = slices.Clone(rs)
		ids[i] = d.spec.ID
		s.log.Info("facsim: trap receivers", "device", d.spec.ID, "receivers", len(rs))
	}
	return ids, nil
}

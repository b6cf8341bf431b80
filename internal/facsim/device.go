package facsim

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/mbserver"
	"github.com/facgw/facgw/internal/point"
)

// device is one simulated device: a profile served on one unit id of a
// listener's Memory, with the model that drives it. Its fields are
// guarded by the Sim's lock.
type device struct {
	spec     *DeviceSpec
	res      *profiles.Resolved
	class    string
	firmware string // what the device reports
	sim      *Sim
	unit     uint8
	lst      *listener   // a Modbus device's listener
	snmp     *snmpDevice // an SNMP device's agent
	model    model
	scenario string
	since    float64 // simulated time of the last scenario switch
	fault    Fault
	vals     map[string]any // scratch map for model values
	served   map[string]any // engineering value served, by point name
}

// effectiveFirmware is the firmware a device reports: the facility's, or
// else the sim value of the register its profile reads the firmware from.
func effectiveFirmware(spec *DeviceSpec, p *profiles.Profile) string {
	if spec.Firmware != "" {
		return spec.Firmware
	}
	base := p.Resolve("")
	var names []string
	if p.Identify != nil && p.Identify.Firmware != "" {
		names = append(names, p.Identify.Firmware)
	}
	for _, n := range append(names, "ident.firmware") {
		if def, ok := base.Point(n); ok && def.Sim != nil {
			return fmt.Sprint(def.Sim)
		}
	}
	return ""
}

// isFirmwarePoint reports whether the device's firmware is served in def:
// the point the profile's identify section reads the firmware from, else
// ident.firmware.
func (d *device) isFirmwarePoint(def *profiles.PointDef) bool {
	id := d.res.Profile.Identify
	if id != nil && id.Firmware != "" && id.Firmware != "device_id.revision" {
		return id.Firmware == def.Name
	}
	return def.Name == "ident.firmware"
}

// address is where the device is served: its Modbus listener or its
// SNMP agent.
func (d *device) address() string {
	if d.snmp != nil {
		return d.snmp.addr
	}
	return d.lst.addr
}

func tableOf(name string) mbserver.Table {
	switch name {
	case profiles.Coil:
		return mbserver.Coils
	case profiles.Discrete:
		return mbserver.DiscreteInputs
	case profiles.Input:
		return mbserver.InputRegisters
	}
	return mbserver.HoldingRegisters
}

// mapMemory makes the device's points readable, and the gaps between them
// too, as most devices answer unlisted registers inside a block: a gap of
// up to one maximal read is mapped unless the profile marks it unreadable
// (a client reading there then gets exception 02, as from the device).
func (d *device) mapMemory() error {
	type span struct{ from, to int } // [from, to)
	byTable := map[string][]span{}
	for _, p := range d.res.Points {
		byTable[p.Table] = append(byTable[p.Table], span{int(p.Address), int(p.Address) + max(p.Width(), 1)})
	}
	unreadable := func(table string, from, to int) bool {
		for _, r := range d.res.Unreadable {
			if r.Table == table && from <= int(r.To) && to-1 >= int(r.From) {
				return true
			}
		}
		return false
	}
	for table, spans := range byTable {
		slices.SortFunc(spans, func(a, b span) int { return a.from - b.from })
		maxGap := 125
		if profiles.IsBitTable(table) {
			maxGap = 2000
		}
		merged := []span{spans[0]}
		for _, s := range spans[1:] {
			last := &merged[len(merged)-1]
			if s.from <= last.to || (s.from-last.to <= maxGap && !unreadable(table, last.to, s.from)) {
				last.to = max(last.to, s.to)
				continue
			}
			merged = append(merged, s)
		}
		for _, s := range merged {
			if err := d.lst.mem.Map(d.unit, tableOf(table), uint16(s.from), s.to-s.from); err != nil {
				return fmt.Errorf("facsim: device %q: %w", d.spec.ID, err)
			}
		}
	}
	return nil
}

// staticValue is what a point the model does not drive serves: the
// device's firmware in its firmware register, else the profile's sim
// value, else a neutral zero.
func (d *device) staticValue(def *profiles.PointDef) any {
	if d.isFirmwarePoint(def) && d.firmware != "" {
		if def.Type == "string" {
			return d.firmware
		}
		if f, err := strconv.ParseFloat(d.firmware, 64); err == nil {
			return f
		}
	}
	if def.Sim != nil {
		return def.Sim
	}
	switch def.Kind() {
	case point.String:
		return ""
	case point.Bool:
		return false
	}
	return 0.0
}

// writeStatic serves every point: the model's values where it drives them,
// the static value elsewhere.
func (d *device) writeStatic() error {
	if d.snmp != nil {
		return d.writeSNMP(true)
	}
	clear(d.vals)
	d.model.values(d.vals)
	for i := range d.res.Points {
		def := &d.res.Points[i]
		v, ok := d.vals[def.Name]
		if !ok || d.isFirmwarePoint(def) {
			v = d.staticValue(def)
		}
		if err := d.write(def, v); err != nil {
			return err
		}
	}
	return nil
}

// writeModel serves the model's current values.
func (d *device) writeModel() error {
	if d.snmp != nil {
		return d.writeSNMP(false)
	}
	clear(d.vals)
	d.model.values(d.vals)
	var first error
	for i := range d.res.Points {
		def := &d.res.Points[i]
		v, ok := d.vals[def.Name]
		if !ok || d.isFirmwarePoint(def) {
			continue
		}
		if err := d.write(def, v); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// write encodes v (bool, float64, string, enumVal, secs, rawVal or
// absentOr) for def and stores it in the device's registers.
func (d *device) write(def *profiles.PointDef, v any) error {
	mem, t := d.lst.mem, tableOf(def.Table)
	if profiles.IsBitTable(def.Table) {
		b := d.number(def, v) != 0
		d.served[def.Name] = b
		return mem.SetBits(d.unit, t, def.Address, b)
	}
	var regs []uint16
	var err error
	switch x := v.(type) {
	case absentOr:
		if len(def.Absent) == 0 || def.Bit != nil {
			return d.write(def, x.fallback)
		}
		regs, err = rawRegs(def, def.Absent[0])
	case rawVal:
		regs, err = rawRegs(def, int64(x))
	default:
		switch {
		case def.Type == "string":
			regs, err = mbdrv.EncodeRegisters(def, toString(v), nil)
		case def.Bit != nil:
			var cur []uint16
			cur, err = mem.Registers(d.unit, t, def.Address, uint16(def.Width()))
			if err == nil {
				regs, err = mbdrv.EncodeRegisters(def, d.number(def, v) != 0, cur)
			}
		default:
			regs, err = mbdrv.EncodeRegisters(def, clampValue(def, d.number(def, v)), nil)
		}
	}
	if err != nil {
		return fmt.Errorf("facsim: device %q point %q: %w", d.spec.ID, def.Name, err)
	}
	if err := mem.SetRegisters(d.unit, t, def.Address, regs...); err != nil {
		return fmt.Errorf("facsim: device %q point %q: %w", d.spec.ID, def.Name, err)
	}
	d.served[def.Name] = decodedValue(def, regs)
	return nil
}

// decodedValue decodes registers as a poller would, for the control API.
func decodedValue(def *profiles.PointDef, regs []uint16) any {
	var p point.Point
	mbdrv.DecodeRegisters(def, regs, &p)
	switch {
	case p.Quality != point.Good:
		return p.Reason
	case p.Kind == point.Bool:
		return p.Num != 0
	case p.Kind == point.String:
		return p.Str
	case p.Kind == point.Enum && p.Str != "":
		return p.Str
	}
	return round(p.Num, 4)
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// number converts a model or sim value to the engineering number def
// takes: an enum value to its code, a duration to the point's unit.
func (d *device) number(def *profiles.PointDef, v any) float64 {
	switch x := v.(type) {
	case enumVal:
		if len(def.Enum) > 0 {
			for _, want := range x.names {
				if code, ok := enumCode(def, want); ok {
					return float64(code)
				}
			}
		}
		return float64(x.code)
	case secs:
		if def.Unit == string(point.Minute) {
			return math.Round(float64(x) / 60)
		}
		return float64(x)
	case string:
		if code, ok := enumCode(def, x); ok {
			return float64(code)
		}
	case absentOr:
		return d.number(def, x.fallback)
	case rawVal:
		return float64(x)
	case unitVal:
		if def.Unit == "k"+x.unit {
			return x.v / 1000
		}
		return x.v
	case counter:
		return float64(x)
	}
	f, _ := toFloat(v)
	return f
}

// enumCode finds the code of an enum name, ignoring case and punctuation.
func enumCode(def *profiles.PointDef, name string) (int64, bool) {
	want := normName(name)
	best, found := int64(0), false
	for code, n := range def.Enum {
		if normName(n) == want && (!found || code < best) {
			best, found = code, true
		}
	}
	return best, found
}

func normName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return -1
	}, s)
}

// clampValue keeps a number inside the point's plausible range (a sensor
// saturates) and inside what its register type can hold.
func clampValue(def *profiles.PointDef, f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		f = 0
	}
	if len(def.Enum) > 0 {
		return f
	}
	if def.Min != nil {
		f = max(f, *def.Min)
	}
	if def.Max != nil {
		f = min(f, *def.Max)
	}
	bits := map[string]int{"u16": 16, "s16": 16, "u32": 32, "s32": 32, "u64": 52, "s64": 52}[def.Type]
	if bits == 0 {
		return f
	}
	lo, hi := 0.0, math.Ldexp(1, bits)-1
	if def.Type[0] == 's' {
		lo, hi = -math.Ldexp(1, bits-1), math.Ldexp(1, bits-1)-1
	}
	s := def.ScaleOr1()
	a, b := lo*s+def.Offset, hi*s+def.Offset
	if a > b {
		a, b = b, a
	}
	return max(a, min(b, f))
}

// rawRegs encodes a raw register integer (a sentinel or reason code),
// bypassing scale, offset and range.
func rawRegs(def *profiles.PointDef, raw int64) ([]uint16, error) {
	plain := *def
	plain.Scale, plain.Offset, plain.Enum, plain.Min, plain.Max, plain.Bit = nil, 0, nil, nil, nil, nil
	if plain.Type[0] == 'u' && raw < 0 {
		plain.Type = "s" + plain.Type[1:]
	}
	if plain.Type == "bool" || plain.Type[0] == 'f' {
		plain.Type = map[int]string{1: "s16", 2: "s32", 4: "s64"}[def.Width()]
	}
	if plain.Type[0] == 's' && raw >= 0 && raw >= int64(1)<<(16*def.Width()-1) {
		plain.Type = "u" + plain.Type[1:]
	}
	return mbdrv.EncodeRegisters(&plain, float64(raw), nil)
}

// identification returns the Read Device Identification objects the
// device serves, or nil if its profile says it does not answer them.
func (d *device) identification() map[byte]string {
	p := d.res.Profile
	if !p.Modbus.DeviceID {
		return nil
	}
	product := p.Product
	if v, ok := d.served["ident.model"].(string); ok && v != "" {
		product = v
	}
	return map[byte]string{
		mbserver.ObjVendorName:         p.Vendor,
		mbserver.ObjProductCode:        p.Product,
		mbserver.ObjMajorMinorRevision: d.firmware,
		mbserver.ObjProductName:        product,
		mbserver.ObjModelName:          product,
	}
}

// checkIdentify verifies that what the device serves matches its profile's
// identify section, so profile: auto picks this profile for it.
func (d *device) checkIdentify(objs map[byte]string) error {
	id := d.res.Profile.Identify
	if id == nil {
		return nil
	}
	if d.snmp != nil {
		if err := d.checkSysObjectID(); err != nil {
			return err
		}
	}
	model := d.res.Profile.Model
	names := map[string]byte{"vendor": 0, "product_code": 1, "revision": 2, "vendor_url": 3, "product_name": 4, "model_name": 5, "user_application_name": 6}
	for _, obj := range sortedKeys(id.DeviceID) {
		re, err := regexp.Compile(id.DeviceID[obj])
		if err != nil {
			return fmt.Errorf("facsim: device %q: profile %s identify.device_id.%s: %w", d.spec.ID, model, obj, err)
		}
		got, ok := objs[names[obj]]
		if !ok || !re.MatchString(got) {
			return fmt.Errorf("facsim: device %q: profile %s identify.device_id.%s %q does not match the served %s %q (set the profile's vendor/product or the device's firmware)",
				d.spec.ID, model, obj, id.DeviceID[obj], obj, got)
		}
	}
	for _, name := range sortedKeys(id.Points) {
		re, err := regexp.Compile(id.Points[name])
		if err != nil {
			return fmt.Errorf("facsim: device %q: profile %s identify.points.%s: %w", d.spec.ID, model, name, err)
		}
		cands, err := d.pointTexts(name)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(cands, re.MatchString) {
			return fmt.Errorf("facsim: device %q: profile %s identify.points.%s %q does not match the served %s", d.spec.ID, model, name, id.Points[name], strings.Join(cands, " or "))
		}
	}
	if id.Firmware == "device_id.revision" && d.firmware == "" {
		return fmt.Errorf("facsim: device %q: profile %s reads the firmware from device identification: set the device's firmware", d.spec.ID, model)
	}
	return nil
}

// pointTexts reads a point back from the device's memory and returns the
// texts an identify expression may be matched against: a string's text,
// an enum's name and code, a number as formatted.
func (d *device) pointTexts(name string) ([]string, error) {
	def, ok := d.res.Point(name)
	if !ok {
		return nil, fmt.Errorf("facsim: device %q: profile %s identifies by point %q, which the firmware %q variant lacks", d.spec.ID, d.res.Profile.Model, name, d.firmware)
	}
	if d.snmp != nil {
		return d.snmpPointTexts(def), nil
	}
	var p point.Point
	t := tableOf(def.Table)
	if profiles.IsBitTable(def.Table) {
		bits, err := d.lst.mem.Bits(d.unit, t, def.Address, 1)
		if err != nil {
			return nil, fmt.Errorf("facsim: device %q point %q: %w", d.spec.ID, name, err)
		}
		mbdrv.DecodeBit(def, bits[0], &p)
	} else {
		regs, err := d.lst.mem.Registers(d.unit, t, def.Address, uint16(def.Width()))
		if err != nil {
			return nil, fmt.Errorf("facsim: device %q point %q: %w", d.spec.ID, name, err)
		}
		mbdrv.DecodeRegisters(def, regs, &p)
	}
	switch p.Kind {
	case point.String:
		return []string{p.Str}, nil
	case point.Enum:
		return []string{p.Str, strconv.FormatFloat(p.Num, 'f', -1, 64), p.Format()}, nil
	}
	return []string{p.Format(), strconv.FormatFloat(p.Num, 'f', -1, 64)}, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

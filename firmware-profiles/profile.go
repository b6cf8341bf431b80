// Package profiles loads and validates firmware profiles: YAML register and
// OID maps, one file per device model, with variants chosen by firmware
// version. A profile speaks one protocol: Modbus profiles drive
// drivers/modbus and the facility simulator (cmd/facsim), so every shipped
// Modbus profile is tested by serving it and reading it back; SNMP profiles
// drive drivers/snmp and are tested against a real SNMP agent simulator.
//
// The format is documented in docs/profiles.md. Modbus addresses are always
// 0-based protocol (wire) addresses: holding register "40001" in a vendor
// manual is table holding, address 0. SNMP OIDs are numeric and dotted,
// without a leading dot.
package profiles

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/strictyaml"
)

// Profile is one device model.
type Profile struct {
	// Model is the profile's unique name, used by device configs.
	Model       string `yaml:"model" check:"required"`
	Vendor      string `yaml:"vendor"`
	Product     string `yaml:"product"`
	Class       string `yaml:"class" check:"required"`
	Protocol    string `yaml:"protocol" check:"required"`
	Source      string `yaml:"source" check:"required"`
	Description string `yaml:"description"`

	// Modbus holds the Modbus defaults; an SNMP profile has none.
	Modbus     ModbusSettings `yaml:"modbus"`
	Identify   *Identify      `yaml:"identify"`
	Points     []PointDef     `yaml:"points" check:"required"`
	Unreadable []Range        `yaml:"unreadable"`
	Variants   []Variant      `yaml:"variants"`

	// File is where the profile was loaded from.
	File string `yaml:"-"`
	Pos  strictyaml.Pos
}

// ModbusSettings are per-model protocol defaults.
type ModbusSettings struct {
	// Order is the default word and byte order of multi-register values:
	// ABCD (big-endian, default), CDAB, BADC or DCBA.
	Order string `yaml:"order"`
	// MaxGap is the largest run of unneeded registers (or bits) the planner
	// reads over to save a request. Default 8; 0 via "max_gap: 0" is kept.
	MaxGap *int `yaml:"max_gap"`
	// MaxRegisters caps registers per read (default and protocol limit 125);
	// some devices accept fewer.
	MaxRegisters int `yaml:"max_registers"`
	// MaxBits caps coils or discrete inputs per read (limit 2000).
	MaxBits int `yaml:"max_bits"`
	// DeviceID says the device answers Read Device Identification
	// (0x2B/0x0E).
	DeviceID bool `yaml:"device_id"`
	Pos      strictyaml.Pos
}

// Identify says how profile: auto recognises this model and its firmware.
type Identify struct {
	// DeviceID matches objects of Read Device Identification by regular
	// expression: vendor, product_code, revision, product_name, model_name.
	// Modbus profiles only.
	DeviceID map[string]string `yaml:"device_id"`
	// SysObjectID is a regular expression over the agent's sysObjectID
	// (1.3.6.1.2.1.1.2.0) in dotted numeric form without a leading dot, such
	// as `^1\.3\.6\.1\.4\.1\.318\.1\.3\.4\.` (APC rack PDUs). SNMP profiles
	// only.
	SysObjectID string `yaml:"sys_object_id"`
	// Points match the values of identification points by regular
	// expression (point name to expression). Every entry must match.
	Points map[string]string `yaml:"points"`
	// Firmware names where the firmware version comes from: a point name,
	// or "device_id.revision".
	Firmware string `yaml:"firmware"`
	Pos      strictyaml.Pos
}

// Range is a span of addresses the device does not answer; the planner
// never reads across one.
type Range struct {
	Table string `yaml:"table" check:"required"`
	From  uint16 `yaml:"from" check:"required"`
	To    uint16 `yaml:"to" check:"required"`
	Pos   strictyaml.Pos
}

// Variant overrides or extends points for a firmware version range.
type Variant struct {
	// Firmware is a version range such as ">=2.0 <3.1".
	Firmware    string     `yaml:"firmware" check:"required"`
	Description string     `yaml:"description"`
	Points      []PointDef `yaml:"points"`
	Remove      []string   `yaml:"remove"`
	Unreadable  []Range    `yaml:"unreadable"`
	Pos         strictyaml.Pos

	rng versionRange
}

// PointDef is one point of a profile. Which fields apply depends on the
// profile's protocol: Modbus points name a table, an address and a register
// type; SNMP points name an instance OID (oid) or a table column (walk) and
// an SNMP value type. The loader rejects the other protocol's fields, so
// "required" is checked per protocol by the validator rather than by tags.
type PointDef struct {
	Name        string `yaml:"name" check:"required"`
	Description string `yaml:"description"`
	// Table is coil, discrete, input or holding (Modbus).
	Table   string `yaml:"table"`
	Address uint16 `yaml:"address"`
	// Type is bool, u16, s16, u32, s32, u64, s64, f32, f64 or string for
	// Modbus; integer, gauge, counter32, counter64, timeticks, string or oid
	// for SNMP.
	Type string `yaml:"type"`
	// Length is the register count of a string (Modbus).
	Length int `yaml:"length"`
	// Order overrides the profile's word and byte order (Modbus).
	Order string `yaml:"order"`
	// OID is the instance an SNMP scalar point reads with GET: a scalar's
	// ".0" instance (1.3.6.1.2.1.33.1.2.4.0) or one row of a table.
	OID string `yaml:"oid"`
	// Walk is the table column an SNMP point walks: every row becomes a
	// point named <name>.<row label>. With Sensor it is the table entry
	// whose columns the sensor kind reads.
	Walk string `yaml:"walk"`
	// RowLabel is the column whose value names each row of Walk (ifName,
	// an outlet name); without it the row index names it. Same table
	// index as Walk.
	RowLabel string `yaml:"row_label"`
	// TrueValues turns an integer SNMP value into a bool: true when the
	// value is one of these (TruthValue true(1), upsOutputSource battery(5)).
	TrueValues []int64 `yaml:"true_values"`
	// Contains turns a walked column of OID values into one bool: true
	// while some row holds this OID (an RFC 1628 well-known alarm in
	// upsAlarmDescr), whatever its row index.
	Contains string `yaml:"contains"`
	// Sensor names a computed point kind. "entity" reads the
	// ENTITY-SENSOR-MIB entry Walk (type .1, scale .2, precision .3, value
	// .4, oper status .5) and yields Value x 10^(3(Scale-9)) x 10^-Precision
	// in the unit of the sensor type.
	Sensor string `yaml:"sensor"`
	// Scale multiplies the raw value (default 1), then Offset is added.
	Scale  *float64 `yaml:"scale"`
	Offset float64  `yaml:"offset"`
	// Bit extracts one bit (0 = least significant) of an integer register
	// value; the point is then a bool (Modbus).
	Bit *int `yaml:"bit"`
	// Enum names raw integer codes.
	Enum map[int64]string `yaml:"enum"`
	Unit string           `yaml:"unit"`
	// Group is the poll group (default "default"); device configs set an
	// interval per group so safety points can be polled fast.
	Group string `yaml:"group"`
	// Min and Max bound plausible engineering values: outside is bad
	// quality, reason "out of range".
	Min *float64 `yaml:"min"`
	Max *float64 `yaml:"max"`
	// Absent lists raw values meaning "no sensor" (0xFFFF, -1): bad quality,
	// reason "absent".
	Absent []int64 `yaml:"absent"`
	// AbsentMeans says what an absent value means on this device when it
	// is not "no sensor" (Socomec reports runtime 0xFFFF while on mains);
	// it replaces "no sensor" in the bad point's reason.
	AbsentMeans string `yaml:"absent_means"`
	// Writable marks points the load-shed controller may write.
	Writable bool `yaml:"writable"`
	// Sim is the value the simulator serves when its model of the device
	// class does not drive this point (identification strings, set points).
	Sim any `yaml:"sim"`
	Pos strictyaml.Pos
}

// Tables, in wire order of their read function codes.
const (
	Coil     = "coil"
	Discrete = "discrete"
	Input    = "input"
	Holding  = "holding"
)

// Protocols a profile can speak.
const (
	Modbus = "modbus"
	SNMP   = "snmp"
)

// Protocols lists the known protocols.
var Protocols = []string{Modbus, SNMP}

// SNMP value types of a point. Integer covers Integer32 and enumerations,
// gauge Gauge32/Unsigned32; both accept any 32-bit integer type on the
// wire. Counters must arrive as their own type, because the rate point
// depends on the counter's width. Timeticks (hundredths of a second) are
// delivered in seconds before scale and offset.
var SNMPTypes = []string{"integer", "gauge", "counter32", "counter64", "timeticks", "string", "oid"}

// SensorEntity is the ENTITY-SENSOR-MIB point kind (sensor: entity).
const SensorEntity = "entity"

// Classes of device; rules select devices by class.
var Classes = []string{"ups", "battery", "cooling", "fire", "pdu", "switch", "power", "sensor"}

// Types and their width in registers (0: given by Length; bits for bool on
// coil/discrete tables).
var typeWidth = map[string]int{"bool": 1, "u16": 1, "s16": 1, "u32": 2, "s32": 2, "u64": 4, "s64": 4, "f32": 2, "f64": 4, "string": 0}

// Orders are the word/byte orders of multi-register values.
var Orders = []string{"ABCD", "CDAB", "BADC", "DCBA"}

// IsBitTable reports whether a table holds single bits.
func IsBitTable(table string) bool { return table == Coil || table == Discrete }

// Width returns the number of registers (or bits) the point occupies.
func (p *PointDef) Width() int {
	if IsBitTable(p.Table) {
		return 1
	}
	if p.Type == "string" {
		return p.Length
	}
	return typeWidth[p.Type]
}

// AbsentText says what an absent value means: AbsentMeans, or "no
// sensor".
func (p *PointDef) AbsentText() string {
	if p.AbsentMeans != "" {
		return p.AbsentMeans
	}
	return "no sensor"
}

// ScaleOr1 returns the scale, 1 when unset.
func (p *PointDef) ScaleOr1() float64 {
	if p.Scale == nil {
		return 1
	}
	return *p.Scale
}

// IsColumn reports whether the point walks a table column (SNMP), so it
// expands to one point per row at poll time.
func (p *PointDef) IsColumn() bool { return p.Walk != "" }

// IsCounter reports whether the point is an SNMP counter, which also
// yields a <name>.rate point.
func (p *PointDef) IsCounter() bool { return p.Type == "counter32" || p.Type == "counter64" }

// RateSuffix is appended to a counter point's name for its rate point.
const RateSuffix = ".rate"

// Kind returns the point kind the decoded value has.
func (p *PointDef) Kind() point.Kind {
	switch {
	case p.Type == "bool" || p.Bit != nil || IsBitTable(p.Table) || len(p.TrueValues) > 0 || p.Contains != "":
		return point.Bool
	case p.Type == "string" || p.Type == "oid":
		return point.String
	case len(p.Enum) > 0:
		return point.Enum
	}
	return point.Number
}

// Resolved is a profile with the variant for one firmware version applied:
// what a poller needs.
type Resolved struct {
	Profile    *Profile
	Firmware   string
	Variant    *Variant // nil when no variant applies
	Points     []PointDef
	Unreadable []Range
	Order      string
	MaxGap     int
	MaxRegs    int
	MaxBits    int
}

// Resolve applies the first variant whose range contains firmware. An empty
// firmware selects the base profile. Every resolved point gets its group
// ("default" when unset) and, in a Modbus profile, its word order.
func (p *Profile) Resolve(firmware string) *Resolved {
	r := &Resolved{Profile: p, Firmware: firmware, Order: p.Modbus.Order, MaxGap: 8, MaxRegs: 125, MaxBits: 2000}
	if r.Order == "" {
		r.Order = "ABCD"
	}
	if p.Modbus.MaxGap != nil {
		r.MaxGap = *p.Modbus.MaxGap
	}
	if p.Modbus.MaxRegisters > 0 {
		r.MaxRegs = p.Modbus.MaxRegisters
	}
	if p.Modbus.MaxBits > 0 {
		r.MaxBits = p.Modbus.MaxBits
	}
	r.Points = append([]PointDef(nil), p.Points...)
	r.Unreadable = append([]Range(nil), p.Unreadable...)
	if firmware != "" {
		if v, ok := parseVersion(firmware); ok {
			for i := range p.Variants {
				if p.Variants[i].rng.contains(v) {
					r.Variant = &p.Variants[i]
					break
				}
			}
		}
	}
	if r.Variant != nil {
		r.Points = applyVariant(r.Points, r.Variant)
		r.Unreadable = append(r.Unreadable, r.Variant.Unreadable...)
	}
	for i := range r.Points {
		if r.Points[i].Order == "" && p.Protocol != SNMP {
			r.Points[i].Order = r.Order
		}
		if r.Points[i].Group == "" {
			r.Points[i].Group = "default"
		}
	}
	return r
}

func applyVariant(base []PointDef, v *Variant) []PointDef {
	removed := map[string]bool{}
	for _, n := range v.Remove {
		removed[n] = true
	}
	over := map[string]int{}
	for i, p := range v.Points {
		over[p.Name] = i
	}
	out := make([]PointDef, 0, len(base)+len(v.Points))
	for _, p := range base {
		if removed[p.Name] {
			continue
		}
		if i, ok := over[p.Name]; ok {
			out = append(out, v.Points[i])
			delete(over, p.Name)
			continue
		}
		out = append(out, p)
	}
	for _, p := range v.Points {
		if _, ok := over[p.Name]; ok {
			out = append(out, p)
		}
	}
	return out
}

// Point returns the resolved point definition by name.
func (r *Resolved) Point(name string) (*PointDef, bool) {
	for i := range r.Points {
		if r.Points[i].Name == name {
			return &r.Points[i], true
		}
	}
	return nil, false
}

// Groups returns the sorted poll group names used by the resolved points.
func (r *Resolved) Groups() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range r.Points {
		if !seen[p.Group] {
			seen[p.Group] = true
			out = append(out, p.Group)
		}
	}
	sort.Strings(out)
	return out
}

// PointNames returns every point name any variant of the profile can have,
// as a device config's points: list names them. An SNMP table column is
// one name (the column's, not <name>.<row label>, which exists only at
// poll time); an SNMP counter also has its <name>.rate.
func (p *Profile) PointNames() map[string]bool {
	names := map[string]bool{}
	add := func(pts []PointDef) {
		for _, pt := range pts {
			names[pt.Name] = true
			if pt.IsCounter() {
				names[pt.Name+RateSuffix] = true
			}
		}
	}
	add(p.Points)
	for _, v := range p.Variants {
		add(v.Points)
	}
	return names
}

// GroupNames returns every poll group any variant of the profile uses.
func (p *Profile) GroupNames() map[string]bool {
	g := map[string]bool{}
	add := func(pts []PointDef) {
		for _, pt := range pts {
			if pt.Group == "" {
				g["default"] = true
			} else {
				g[pt.Group] = true
			}
		}
	}
	add(p.Points)
	for _, v := range p.Variants {
		add(v.Points)
	}
	return g
}

// versionRange is a conjunction of comparisons such as ">=2.0 <3.1".
type versionRange []versionCmp

type versionCmp struct {
	op string
	v  []int
}

var versionRE = regexp.MustCompile(`\d+(?:\.\d+)*`)

// parseVersion extracts the first dotted number from a firmware string, so
// "UPS 09.8 (ID18)" is 9.8.
func parseVersion(s string) ([]int, bool) {
	m := versionRE.FindString(s)
	if m == "" {
		return nil, false
	}
	var out []int
	for _, part := range strings.Split(m, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

func compareVersions(a, b []int) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func parseRange(s string) (versionRange, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty version range")
	}
	var out versionRange
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		op := ""
		for _, o := range []string{">=", "<=", ">", "<", "="} {
			if strings.HasPrefix(f, o) {
				op = o
				break
			}
		}
		if op == "" {
			return nil, fmt.Errorf("version range %q: %q needs an operator (>=, >, <=, <, =)", s, f)
		}
		rest := f[len(op):]
		if rest == "" && i+1 < len(fields) {
			// ">= 2.0": the operator and its version were split at a space.
			i++
			rest = fields[i]
		}
		if rest == "" {
			return nil, fmt.Errorf("version range %q: %q needs a version after it", s, f)
		}
		v, ok := parseVersion(rest)
		if !ok || versionRE.FindString(rest) != rest {
			return nil, fmt.Errorf("version range %q: %q is not a version such as 2.10.1", s, rest)
		}
		out = append(out, versionCmp{op, v})
	}
	return out, nil
}

func (r versionRange) contains(v []int) bool {
	for _, c := range r {
		d := compareVersions(v, c.v)
		ok := map[string]bool{">=": d >= 0, ">": d > 0, "<=": d <= 0, "<": d < 0, "=": d == 0}[c.op]
		if !ok {
			return false
		}
	}
	return true
}

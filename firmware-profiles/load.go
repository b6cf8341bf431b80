package profiles

import (
	"embed"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/strictyaml"
)

// shipped holds the profiles that come with facgw; they are compiled into
// the binary so an appliance needs no profile directory to start.
//
//go:embed */*.yaml
var shipped embed.FS

// Registry holds loaded profiles by model name. It is read-only after
// loading and safe for concurrent use.
type Registry struct {
	byModel map[string]*Profile
}

// Shipped loads the profiles compiled into the binary.
func Shipped() (*Registry, error) {
	r := &Registry{byModel: map[string]*Profile{}}
	if err := r.addFS(shipped, "firmware-profiles"); err != nil {
		return nil, err
	}
	return r, nil
}

// AddDir loads every *.yaml file under dir (recursively); a model name that
// is already loaded is replaced, so a site can override a shipped profile.
func (r *Registry) AddDir(dir string) error {
	return r.addFS(os.DirFS(dir), dir)
}

// AddFile loads one profile file.
func (r *Registry) AddFile(file string) (*Profile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	p, errs := Parse(file, data)
	if len(errs) > 0 {
		return nil, errs.Err()
	}
	r.byModel[p.Model] = p
	return p, nil
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byModel: map[string]*Profile{}} }

func (r *Registry) addFS(fsys fs.FS, prefix string) error {
	var errs strictyaml.Errors
	seen := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// The root is named "." and must not count as a hidden directory.
		if d.IsDir() && p != "." && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return fs.SkipDir
		}
		if d.IsDir() || (path.Ext(p) != ".yaml" && path.Ext(p) != ".yml") {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		name := filepath.Join(prefix, filepath.FromSlash(p))
		prof, perrs := Parse(name, data)
		errs = append(errs, perrs...)
		if prof == nil || len(perrs) > 0 {
			return nil
		}
		if other, dup := seen[prof.Model]; dup {
			errs = append(errs, prof.Pos.At("model", "model %q is also defined in %s", prof.Model, other))
			return nil
		}
		seen[prof.Model] = name
		r.byModel[prof.Model] = prof
		return nil
	})
	if err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	return errs.Err()
}

// Get returns a profile by model name.
func (r *Registry) Get(model string) (*Profile, bool) {
	p, ok := r.byModel[model]
	return p, ok
}

// List returns all profiles sorted by model.
func (r *Registry) List() []*Profile {
	out := make([]*Profile, 0, len(r.byModel))
	for _, p := range r.byModel {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}

// Parse decodes and validates one profile. It returns every problem found,
// each naming file:line:col and the field.
func Parse(file string, data []byte) (*Profile, strictyaml.Errors) {
	p := &Profile{File: file}
	errs := strictyaml.Decode(file, data, p)
	// Validate even after decoding problems (a missing model included) so
	// one run reports every mistake; validate copes with a partial profile.
	// A field that failed to decode holds a zero value, so a semantic
	// complaint about the same field would only repeat the first error.
	bad := map[string]bool{}
	for _, e := range errs {
		bad[e.Path] = true
	}
	for _, e := range p.validate() {
		if e.File == "" {
			// Never return an unlocated error, even if a check above
			// forgets to skip an undecoded element.
			e.File = file
		}
		if !bad[e.Path] {
			errs = append(errs, e)
		}
	}
	errs.Sort()
	if len(errs) > 0 && p.Model == "" {
		return nil, errs
	}
	return p, errs
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$`)
var modelRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

func (p *Profile) validate() strictyaml.Errors {
	var errs strictyaml.Errors
	add := func(e *strictyaml.Error) { errs = append(errs, e) }
	proto := p.pointProtocol()
	if p.Model != "" && !modelRE.MatchString(p.Model) {
		add(p.Pos.At("model", "model %q must be lower case letters, digits, '.', '_' or '-'", p.Model))
	}
	if p.Class != "" && !slices.Contains(Classes, p.Class) {
		add(p.Pos.At("class", "unknown class %q (known: %s)", p.Class, strings.Join(Classes, ", ")))
	}
	if p.Protocol != "" && !slices.Contains(Protocols, p.Protocol) {
		add(p.Pos.At("protocol", "unknown protocol %q (known: %s)", p.Protocol, strings.Join(Protocols, ", ")))
	}
	m := &p.Modbus
	if proto == SNMP {
		for _, f := range []string{"modbus", "unreadable"} {
			if p.Pos.Has(f) {
				add(p.Pos.At(f, "%s applies to modbus profiles only, this profile speaks snmp", f))
			}
		}
	} else {
		if m.Order != "" && !slices.Contains(Orders, m.Order) {
			add(m.Pos.At("order", "unknown order %q (known: %s)", m.Order, strings.Join(Orders, ", ")))
		}
		if m.MaxRegisters < 0 || m.MaxRegisters > 125 {
			add(m.Pos.At("max_registers", "must be 1..125, got %d", m.MaxRegisters))
		}
		if m.MaxBits < 0 || m.MaxBits > 2000 {
			add(m.Pos.At("max_bits", "must be 1..2000, got %d", m.MaxBits))
		}
		if m.MaxGap != nil && (*m.MaxGap < 0 || *m.MaxGap > 124) {
			add(m.Pos.At("max_gap", "must be 0..124, got %d", *m.MaxGap))
		}
		for i := range p.Unreadable {
			errs = append(errs, p.Unreadable[i].validate()...)
		}
	}
	if p.Pos.Has("points") && len(p.Points) == 0 {
		add(p.Pos.At("points", "a profile needs at least one point"))
	}
	errs = append(errs, validatePoints(p.Points, p.Unreadable, true, proto)...)
	// base holds the base profile's points only: a variant removes base
	// points, and identification runs before any variant is chosen, so
	// neither may name a point that only a variant adds.
	base := map[string]*PointDef{}
	for i := range p.Points {
		base[p.Points[i].Name] = &p.Points[i]
	}
	for i := range p.Variants {
		v := &p.Variants[i]
		if !decoded(v.Pos) {
			continue
		}
		rng, err := parseRange(v.Firmware)
		if err != nil {
			add(v.Pos.At("firmware", "%v", err))
		}
		v.rng = rng
		for _, n := range v.Remove {
			if base[n] == nil {
				add(v.Pos.At("remove", "removes unknown point %q (not in the base profile)", n))
			}
		}
		if proto == SNMP {
			if v.Pos.Has("unreadable") {
				add(v.Pos.At("unreadable", "unreadable applies to modbus profiles only, this profile speaks snmp"))
			}
			errs = append(errs, validatePoints(v.Points, nil, false, proto)...)
			continue
		}
		for j := range v.Unreadable {
			errs = append(errs, v.Unreadable[j].validate()...)
		}
		errs = append(errs, validatePoints(v.Points, append(slices.Clone(p.Unreadable), v.Unreadable...), false, proto)...)
		errs = append(errs, v.checkKeptPoints(p.Points)...)
	}
	if p.Identify != nil && decoded(p.Identify.Pos) {
		errs = append(errs, p.Identify.validate(proto, m.DeviceID, base)...)
	}
	return errs
}

// pointProtocol returns the protocol whose rules the points follow: the
// declared one or, when it is missing or unknown, snmp if a point names
// oid or walk, so that a misspelt protocol does not bury the file in
// "applies to modbus only" complaints.
func (p *Profile) pointProtocol() string {
	switch p.Protocol {
	case Modbus, SNMP:
		return p.Protocol
	}
	for i := range p.Points {
		if p.Points[i].Pos.Has("oid") || p.Points[i].Pos.Has("walk") {
			return SNMP
		}
	}
	return Modbus
}

// validate checks the identify section of a profile speaking proto; base
// holds the base profile's points by name.
func (id *Identify) validate(proto string, deviceID bool, base map[string]*PointDef) strictyaml.Errors {
	var errs strictyaml.Errors
	add := func(e *strictyaml.Error) { errs = append(errs, e) }
	if proto == SNMP {
		if len(id.DeviceID) > 0 {
			add(id.Pos.At("device_id", "device_id (Modbus Read Device Identification) applies to modbus profiles; an snmp profile matches sys_object_id or points"))
		}
		if id.Firmware == "device_id.revision" {
			add(id.Pos.At("firmware", "device_id.revision applies to modbus profiles; name a base point such as ident.firmware"))
		}
		if id.SysObjectID != "" {
			if _, err := regexp.Compile(id.SysObjectID); err != nil {
				add(id.Pos.At("sys_object_id", "bad regular expression: %v", err))
			}
		}
	} else {
		if id.Pos.Has("sys_object_id") {
			add(id.Pos.At("sys_object_id", "sys_object_id applies to snmp profiles; a modbus profile matches device_id or points"))
		}
		for _, obj := range sortedKeys(id.DeviceID) {
			re := id.DeviceID[obj]
			if !slices.Contains(DeviceIDObjects, obj) {
				add(atKey(id.Pos, "device_id", obj, "unknown identification object %q (known: %s)", obj, strings.Join(DeviceIDObjects, ", ")))
			}
			if _, err := regexp.Compile(re); err != nil {
				add(atKey(id.Pos, "device_id", obj, "bad regular expression: %v", err))
			}
		}
		if (len(id.DeviceID) > 0 || id.Firmware == "device_id.revision") && !deviceID {
			field := "device_id"
			if len(id.DeviceID) == 0 {
				field = "firmware"
			}
			add(id.Pos.At(field, "matching on device identification needs modbus.device_id: true"))
		}
	}
	for _, name := range sortedKeys(id.Points) {
		re := id.Points[name]
		switch pt := base[name]; {
		case pt == nil:
			add(atKey(id.Pos, "points", name, "unknown point %q (identification reads base profile points only)", name))
		case pt.IsColumn():
			add(atKey(id.Pos, "points", name, "point %q walks a table column; identification reads single instances (oid:)", name))
		}
		if _, err := regexp.Compile(re); err != nil {
			add(atKey(id.Pos, "points", name, "bad regular expression: %v", err))
		}
	}
	if fw := id.Firmware; fw != "" && fw != "device_id.revision" {
		switch pt := base[fw]; {
		case pt == nil:
			add(id.Pos.At("firmware", "unknown point %q (a base profile point name or device_id.revision)", fw))
		case pt.IsColumn():
			add(id.Pos.At("firmware", "point %q walks a table column; the firmware version comes from a single instance (oid:)", fw))
		}
	}
	switch {
	case proto == SNMP && id.SysObjectID == "" && len(id.Points) == 0:
		add(id.Pos.At("", "identify needs sys_object_id or points to match"))
	case proto != SNMP && len(id.DeviceID) == 0 && len(id.Points) == 0:
		add(id.Pos.At("", "identify needs device_id or points to match"))
	}
	return errs
}

// decoded reports whether strictyaml decoded the element from a mapping.
// An element that was not a mapping (a null or scalar list item) has no
// position and only zero fields; decoding already reported it.
func decoded(pos strictyaml.Pos) bool { return pos.Line > 0 }

// atKey locates an error at the key field of mapping pos (strictyaml keeps
// positions of a struct's own keys, not of map entries) with the path
// naming the entry: identify.points.ident.model.
func atKey(pos strictyaml.Pos, field, entry, format string, args ...any) *strictyaml.Error {
	e := pos.At(field, format, args...)
	e.Path += "." + entry
	return e
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkKeptPoints reports base points that the variant keeps (neither
// removes nor overrides) but that lie in one of the variant's own
// unreadable ranges: the poller would read a range the device refuses.
func (v *Variant) checkKeptPoints(basePts []PointDef) strictyaml.Errors {
	var errs strictyaml.Errors
	if len(v.Unreadable) == 0 {
		return nil
	}
	changed := map[string]bool{}
	for _, n := range v.Remove {
		changed[n] = true
	}
	for _, pt := range v.Points {
		changed[pt.Name] = true
	}
	for i := range v.Unreadable {
		r := &v.Unreadable[i]
		if !decoded(r.Pos) {
			continue
		}
		for j := range basePts {
			pt := &basePts[j]
			w := pt.Width()
			if !decoded(pt.Pos) || changed[pt.Name] || pt.Table != r.Table || w <= 0 {
				continue
			}
			if int(pt.Address) <= int(r.To) && int(pt.Address)+w-1 >= int(r.From) {
				errs = append(errs, r.Pos.At("from", "unreadable range %d..%d covers point %q (%s %d..%d), which this variant keeps: remove or override it", r.From, r.To, pt.Name, pt.Table, pt.Address, int(pt.Address)+w-1))
			}
		}
	}
	return errs
}

// DeviceIDObjects are the Read Device Identification objects a profile can
// match, by their names in the Modbus spec (object ids 0x00..0x06).
var DeviceIDObjects = []string{"vendor", "product_code", "revision", "vendor_url", "product_name", "model_name", "user_application_name"}

func (r *Range) validate() strictyaml.Errors {
	var errs strictyaml.Errors
	if !decoded(r.Pos) {
		return nil
	}
	if !slices.Contains([]string{Coil, Discrete, Input, Holding}, r.Table) {
		errs = append(errs, r.Pos.At("table", "unknown table %q (known: coil, discrete, input, holding)", r.Table))
	}
	if r.To < r.From {
		errs = append(errs, r.Pos.At("to", "range ends (%d) before it starts (%d)", r.To, r.From))
	}
	return errs
}

// modbusOnly and snmpOnly are the point fields that belong to one protocol;
// the other protocol's points must not have them.
var (
	modbusOnly = []string{"table", "address", "order", "bit", "length"}
	snmpOnly   = []string{"oid", "walk", "row_label", "true_values", "contains", "sensor"}
)

// validatePoints checks the points of a base profile or a variant of a
// profile speaking proto. unreadable are the Modbus ranges that apply.
func validatePoints(pts []PointDef, unreadable []Range, base bool, proto string) strictyaml.Errors {
	var errs strictyaml.Errors
	add := func(e *strictyaml.Error) { errs = append(errs, e) }
	seen := map[string]bool{}
	for i := range pts {
		pt := &pts[i]
		if !decoded(pt.Pos) {
			continue
		}
		if pt.Name != "" && !nameRE.MatchString(pt.Name) {
			add(pt.Pos.At("name", "point name %q must be dotted lower-case words, such as battery.temperature", pt.Name))
		}
		if pt.Name != "" && seen[pt.Name] {
			add(pt.Pos.At("name", "duplicate point %q", pt.Name))
		}
		seen[pt.Name] = true
		if proto == SNMP {
			errs = append(errs, validateSNMPPoint(pt)...)
			continue
		}
		// The Modbus fields are required of Modbus points only, so they
		// are checked here rather than by strictyaml's required tag.
		for _, f := range []string{"table", "address", "type"} {
			if !pt.Pos.Has(f) {
				add(pt.Pos.At(f, "missing required field %q", f))
			}
		}
		for _, f := range snmpOnly {
			if pt.Pos.Has(f) {
				add(pt.Pos.At(f, "%s is an snmp field; this profile speaks modbus", f))
			}
		}
		if pt.Table != "" && !slices.Contains([]string{Coil, Discrete, Input, Holding}, pt.Table) {
			add(pt.Pos.At("table", "unknown table %q (known: coil, discrete, input, holding)", pt.Table))
			continue
		}
		if _, ok := typeWidth[pt.Type]; pt.Type != "" && !ok {
			add(pt.Pos.At("type", "unknown type %q (known: bool, u16, s16, u32, s32, u64, s64, f32, f64, string)", pt.Type))
			continue
		}
		if IsBitTable(pt.Table) && pt.Type != "" && pt.Type != "bool" {
			add(pt.Pos.At("type", "a %s holds single bits: type must be bool, got %q", pt.Table, pt.Type))
		}
		if !IsBitTable(pt.Table) && pt.Type == "bool" && pt.Bit == nil {
			add(pt.Pos.At("type", "a bool in a register table needs bit: N"))
		}
		if pt.Type == "string" && (pt.Length <= 0 || pt.Length > 125) {
			add(pt.Pos.At("length", "a string needs length: registers (1..125)"))
		}
		if pt.Type != "string" && pt.Length != 0 {
			add(pt.Pos.At("length", "length applies only to strings"))
		}
		if pt.Order != "" && !slices.Contains(Orders, pt.Order) {
			add(pt.Pos.At("order", "unknown order %q (known: %s)", pt.Order, strings.Join(Orders, ", ")))
		}
		w := pt.Width()
		if int(pt.Address)+w > 65536 {
			add(pt.Pos.At("address", "point at %d with width %d runs past the last address 65535", pt.Address, w))
		}
		if pt.Bit != nil {
			bits := map[string]int{"bool": 16, "u16": 16, "s16": 16, "u32": 32, "s32": 32, "u64": 64, "s64": 64}[pt.Type]
			if IsBitTable(pt.Table) || bits == 0 || pt.Type == "string" {
				add(pt.Pos.At("bit", "bit extraction needs an integer register type, got %q in %s", pt.Type, pt.Table))
			} else if *pt.Bit < 0 || *pt.Bit >= bits {
				add(pt.Pos.At("bit", "bit %d is outside 0..%d of a %s", *pt.Bit, bits-1, pt.Type))
			}
		}
		if len(pt.Enum) > 0 {
			if pt.Bit != nil || pt.Type == "string" || pt.Type == "bool" || pt.Type == "f32" || pt.Type == "f64" || IsBitTable(pt.Table) {
				add(pt.Pos.At("enum", "enum names apply to integer values only"))
			}
		}
		if pt.Scale != nil && (*pt.Scale == 0 || math.IsNaN(*pt.Scale) || math.IsInf(*pt.Scale, 0)) {
			add(pt.Pos.At("scale", "scale must be a finite non-zero number"))
		}
		if pt.Kind() != point.Number && (pt.Scale != nil || pt.Offset != 0 || pt.Min != nil || pt.Max != nil) {
			field := "scale"
			for _, f := range []string{"scale", "offset", "min", "max"} {
				if pt.Pos.Has(f) {
					field = f
					break
				}
			}
			add(pt.Pos.At(field, "scale, offset, min and max apply to numbers only, this point is a %s", pt.Kind()))
		}
		if pt.AbsentMeans != "" && len(pt.Absent) == 0 {
			add(pt.Pos.At("absent_means", "absent_means needs absent: the raw values it explains"))
		}
		if e := checkAbsent(pt); e != nil {
			add(e)
		}
		if !point.Unit(pt.Unit).Known() {
			add(pt.Pos.At("unit", "unknown unit %q (see docs/units.md)", pt.Unit))
		}
		if pt.Min != nil && pt.Max != nil && *pt.Min > *pt.Max {
			add(pt.Pos.At("min", "min %g is above max %g", *pt.Min, *pt.Max))
		}
		if pt.Group != "" && !nameRE.MatchString(pt.Group) {
			add(pt.Pos.At("group", "group %q must be a lower-case word", pt.Group))
		}
		for _, r := range unreadable {
			if r.Table == pt.Table && int(pt.Address) <= int(r.To) && int(pt.Address)+w-1 >= int(r.From) {
				add(pt.Pos.At("address", "%s %d..%d overlaps the unreadable range %d..%d", pt.Table, pt.Address, int(pt.Address)+w-1, r.From, r.To))
			}
		}
		if base && pt.Name == "" {
			continue
		}
	}
	return errs
}

// checkAbsent reports absent values the decoder could never see: it
// compares them with the integer the register type decodes to, so 0xFFFF
// of an s16 arrives as -1 (an unsigned type also matches the two's
// complement form of a negative entry).
func checkAbsent(pt *PointDef) *strictyaml.Error {
	if len(pt.Absent) == 0 {
		return nil
	}
	if IsBitTable(pt.Table) || pt.Type == "string" || pt.Type == "f32" || pt.Type == "f64" {
		return pt.Pos.At("absent", "absent applies to integer register values, not to a %s in %s", pt.Type, pt.Table)
	}
	bits := map[string]uint{"bool": 16, "u16": 16, "s16": 16, "u32": 32, "s32": 32}[pt.Type]
	if bits == 0 {
		return nil // 64-bit types hold any int64
	}
	lo, hi := -int64(1)<<(bits-1), int64(1)<<(bits-1)-1
	if pt.Type[0] != 's' {
		hi = int64(1)<<bits - 1
	}
	for _, a := range pt.Absent {
		if a < lo || a > hi {
			hint := ""
			if pt.Type[0] == 's' && a > hi && a < int64(1)<<bits {
				hint = fmt.Sprintf(" (0x%X reads as %d there)", a, a-int64(1)<<bits)
			}
			return pt.Pos.At("absent", "absent value %d is outside %d..%d of type %s%s", a, lo, hi, pt.Type, hint)
		}
	}
	return nil
}

// Describe returns a one-line summary of a profile for `facgw profiles`.
func (p *Profile) Describe() string {
	var vs []string
	for _, v := range p.Variants {
		vs = append(vs, v.Firmware)
	}
	s := fmt.Sprintf("%-28s %-8s %-7s %3d points", p.Model, p.Class, p.Protocol, len(p.Points))
	if len(vs) > 0 {
		s += "  variants: " + strings.Join(vs, "; ")
	}
	return s
}

// validateSNMPPoint checks the fields of one point of an SNMP profile.
func validateSNMPPoint(pt *PointDef) strictyaml.Errors {
	var errs strictyaml.Errors
	add := func(e *strictyaml.Error) { errs = append(errs, e) }
	has := pt.Pos.Has
	for _, f := range modbusOnly {
		if has(f) {
			add(pt.Pos.At(f, "%s is a modbus field; an snmp point names oid: (one instance) or walk: (a table column)", f))
		}
	}
	switch {
	case !has("oid") && !has("walk"):
		add(pt.Pos.At("oid", "an snmp point needs oid: (one instance, such as 1.3.6.1.2.1.33.1.2.4.0) or walk: (a table column)"))
	case has("oid") && has("walk"):
		add(pt.Pos.At("walk", "oid and walk exclude each other: oid reads one instance, walk every row of a column"))
	}
	for _, f := range []struct{ key, val string }{{"oid", pt.OID}, {"walk", pt.Walk}, {"row_label", pt.RowLabel}, {"contains", pt.Contains}} {
		if has(f.key) {
			if msg := checkOID(f.val); msg != "" {
				add(pt.Pos.At(f.key, "%s", msg))
			}
		}
	}
	if has("row_label") && !has("walk") {
		add(pt.Pos.At("row_label", "row_label names the rows of a walked column; this point reads one instance"))
	}
	if has("contains") {
		switch {
		case !has("walk"):
			add(pt.Pos.At("contains", "contains looks for a value among the rows of a walked column: needs walk:"))
		case has("type") && pt.Type != "oid":
			add(pt.Pos.At("contains", "contains compares OID values: needs type: oid, got %q", pt.Type))
		case has("row_label"):
			add(pt.Pos.At("row_label", "row_label is unused with contains, which yields one point for the whole column"))
		}
	}
	if has("sensor") {
		if pt.Sensor != SensorEntity {
			add(pt.Pos.At("sensor", "unknown sensor kind %q (known: %s)", pt.Sensor, SensorEntity))
		} else if !has("walk") {
			add(pt.Pos.At("sensor", "sensor: entity walks a table: needs walk: with the table entry, such as 1.3.6.1.2.1.99.1.1.1"))
		}
		// The kind decides type, scale and unit per row, from the
		// sensor's own type, scale and precision columns.
		for _, f := range []string{"type", "scale", "offset", "enum", "true_values", "contains", "absent", "unit", "min", "max"} {
			if has(f) {
				add(pt.Pos.At(f, "sensor: entity takes type, scale and unit from the ENTITY-SENSOR-MIB columns: drop %s", f))
			}
		}
		if pt.Group != "" && !nameRE.MatchString(pt.Group) {
			add(pt.Pos.At("group", "group %q must be a lower-case word", pt.Group))
		}
		return errs
	}
	if !has("type") {
		add(pt.Pos.At("type", "missing required field %q", "type"))
	} else if !slices.Contains(SNMPTypes, pt.Type) {
		hint := ""
		if _, ok := typeWidth[pt.Type]; ok {
			hint = fmt.Sprintf("; %s is a modbus register type", pt.Type)
		}
		add(pt.Pos.At("type", "unknown snmp type %q (known: %s)%s", pt.Type, strings.Join(SNMPTypes, ", "), hint))
		return errs
	}
	integer := pt.Type == "integer" || pt.Type == "gauge"
	if len(pt.Enum) > 0 && !integer {
		add(pt.Pos.At("enum", "enum names apply to integer and gauge values only, this point is a %s", pt.Type))
	}
	if has("true_values") {
		switch {
		case !integer:
			add(pt.Pos.At("true_values", "true_values apply to integer and gauge values only, this point is a %s", pt.Type))
		case len(pt.TrueValues) == 0:
			add(pt.Pos.At("true_values", "true_values needs at least one value"))
		case len(pt.Enum) > 0:
			add(pt.Pos.At("true_values", "true_values and enum exclude each other: the point is either a bool or an enum"))
		}
	}
	if e := checkSNMPAbsent(pt); e != nil {
		add(e)
	}
	if pt.Scale != nil && (*pt.Scale == 0 || math.IsNaN(*pt.Scale) || math.IsInf(*pt.Scale, 0)) {
		add(pt.Pos.At("scale", "scale must be a finite non-zero number"))
	}
	if pt.Kind() != point.Number && (pt.Scale != nil || pt.Offset != 0 || pt.Min != nil || pt.Max != nil) {
		field := "scale"
		for _, f := range []string{"scale", "offset", "min", "max"} {
			if has(f) {
				field = f
				break
			}
		}
		add(pt.Pos.At(field, "scale, offset, min and max apply to numbers only, this point is a %s", pt.Kind()))
	}
	if !point.Unit(pt.Unit).Known() {
		add(pt.Pos.At("unit", "unknown unit %q (see docs/units.md)", pt.Unit))
	}
	if pt.Min != nil && pt.Max != nil && *pt.Min > *pt.Max {
		add(pt.Pos.At("min", "min %g is above max %g", *pt.Min, *pt.Max))
	}
	if pt.Group != "" && !nameRE.MatchString(pt.Group) {
		add(pt.Pos.At("group", "group %q must be a lower-case word", pt.Group))
	}
	return errs
}

// checkOID returns why s is not a numeric dotted OID, or "". Profiles use
// numeric OIDs only: facgw loads no MIB files, so a name cannot be
// resolved, and a leading dot (net-snmp's output style) is refused rather
// than silently dropped so that every OID in a profile reads the same.
func checkOID(s string) string {
	if strings.HasPrefix(s, ".") {
		return fmt.Sprintf("OID %q must not start with a dot: write %s", s, strings.TrimLeft(s, "."))
	}
	if _, ok := ParseOID(s); !ok {
		hint := ""
		if strings.IndexFunc(s, unicode.IsLetter) >= 0 {
			hint = " (MIB names are not resolved: give the numeric OID)"
		}
		return fmt.Sprintf("OID %q is not numeric and dotted, such as 1.3.6.1.2.1.1.3.0%s", s, hint)
	}
	return ""
}

// ParseOID parses a numeric dotted OID without a leading dot, such as
// "1.3.6.1.2.1.1.3.0": at least two arcs, each a decimal uint32 without
// leading zeros, the first 0, 1 or 2 (and the second at most 39 under 0
// and 1, as BER requires).
func ParseOID(s string) ([]uint32, bool) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, false
	}
	out := make([]uint32, len(parts))
	for i, p := range parts {
		if p == "" || len(p) > 10 || (len(p) > 1 && p[0] == '0') {
			return nil, false
		}
		var n uint64
		for _, c := range []byte(p) {
			if c < '0' || c > '9' {
				return nil, false
			}
			n = n*10 + uint64(c-'0')
		}
		if n > math.MaxUint32 {
			return nil, false
		}
		out[i] = uint32(n)
	}
	if out[0] > 2 || (out[0] < 2 && out[1] > 39) {
		return nil, false
	}
	return out, true
}

// checkSNMPAbsent reports absent values an SNMP point's type can never
// carry (Integer32 for integer; unsigned 32 bits for gauge, counter32 and
// timeticks; unsigned 64 bits for counter64).
func checkSNMPAbsent(pt *PointDef) *strictyaml.Error {
	if len(pt.Absent) == 0 {
		return nil
	}
	lo, hi := int64(0), int64(math.MaxUint32)
	switch pt.Type {
	case "string", "oid":
		return pt.Pos.At("absent", "absent applies to integer values, not to a %s", pt.Type)
	case "integer":
		lo, hi = math.MinInt32, math.MaxInt32
	case "counter64":
		hi = math.MaxInt64
	}
	for _, a := range pt.Absent {
		if a < lo || a > hi {
			return pt.Pos.At("absent", "absent value %d is outside %d..%d of snmp type %s", a, lo, hi, pt.Type)
		}
	}
	return nil
}

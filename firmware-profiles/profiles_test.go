package profiles

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/facgw/facgw/internal/point"
)

// shippedProfiles loads the embedded profiles or stops the test.
func shippedProfiles(t testing.TB) []*Profile {
	t.Helper()
	r, err := Shipped()
	if err != nil {
		t.Fatalf("Shipped(): %v", err)
	}
	return r.List()
}

// shippedFiles returns the embedded profile files by path.
func shippedFiles(t testing.TB) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := fs.WalkDir(shipped, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(shipped, p)
		files[p] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// allPoints returns the base points and every variant's points.
func allPoints(p *Profile) []PointDef {
	pts := slices.Clone(p.Points)
	for _, v := range p.Variants {
		pts = append(pts, v.Points...)
	}
	return pts
}

func TestShippedLoad(t *testing.T) {
	files := shippedFiles(t)
	profs := shippedProfiles(t)
	if len(profs) != len(files) {
		t.Fatalf("got %d profiles from %d files", len(profs), len(files))
	}
	for _, p := range profs {
		// Every variant resolves to a valid point set: no duplicates, and
		// nothing inside an unreadable range.
		for i := -1; i < len(p.Variants); i++ {
			pts, unr := p.Points, p.Unreadable
			what := "base"
			if i >= 0 {
				v := &p.Variants[i]
				pts = applyVariant(p.Points, v)
				unr = append(slices.Clone(p.Unreadable), v.Unreadable...)
				what = "variant " + v.Firmware
			}
			if errs := validatePoints(pts, unr, true, p.pointProtocol()); len(errs) > 0 {
				t.Errorf("%s %s: %v", p.Model, what, errs)
			}
		}
		if r := p.Resolve(""); r.Variant != nil || len(r.Points) != len(p.Points) {
			t.Errorf("%s: Resolve(\"\") chose %v with %d points, want the base with %d", p.Model, r.Variant, len(r.Points), len(p.Points))
		}
	}
}

// requiredNames lists, per class, the canonical point names a shipped
// profile must have (in its base or a variant). A class with several sets
// accepts a profile that has every name of any one set.
var requiredNames = map[string][][]string{
	"ups": {{
		"ups.status.online", "ups.status.on_battery", "ups.status.on_bypass",
		"ups.status.fault", "ups.status.input_bad", "ups.status.overload",
		"battery.runtime", "battery.charge", "battery.voltage",
		"ups.output.load", "ups.output.voltage", "ups.output.frequency",
		"ident.model",
	}},
	"battery": {{
		"bms.soc", "bms.soh", "bms.voltage", "bms.current",
		"bms.cell_voltage_max", "bms.cell_voltage_min", "bms.cell_voltage_spread",
		"bms.cell_temp_max", "bms.cell_temp_min", "bms.module_temp_max",
		"bms.offgas_ppm", "bms.h2_ppm", "bms.contactor",
		"bms.alarm.cell_overtemp", "bms.alarm.cell_overvoltage", "bms.alarm.cell_undervoltage",
		"bms.alarm.offgas", "bms.alarm.comms", "bms.alarm.contactor", "bms.alarm.insulation",
		"ident.model", "ident.firmware",
	}},
	"cooling": {{
		"crac.state", "crac.status", "crac.supply_temp", "crac.return_temp",
		"crac.return_humidity", "crac.fan_speed", "crac.compressor",
		"crac.chilled_water_temp", "crac.alarm.high_supply_temp",
		"crac.alarm.unit_fault", "crac.alarm.sensor_fault", "crac.setpoint.return_low",
	}},
	"pdu": {{
		"pdu.outlet.state", "pdu.outlet.command", "pdu.phase.current", "ident.model",
	}, {
		// A Modbus outlet bank: one scalar point per outlet.
		"pdu.outlet.state.1", "pdu.outlet.command.1", "pdu.phase.current", "ident.model",
	}},
	"switch": {{
		"if.oper_status", "if.admin_status", "if.in_octets", "if.out_octets", "ident.model",
	}},
	"fire": {
		{
			"firepanel.alarm", "firepanel.fault", "firepanel.supervisory",
			"firepanel.state", "firepanel.zone1.alarm", "firepanel.zone2.alarm",
			"firepanel.epo_tripped", "ident.model", "ident.firmware",
		},
		{
			"vesda.obscuration", "vesda.level", "vesda.alert", "vesda.action",
			"vesda.fire1", "vesda.fire2", "vesda.airflow_fault", "vesda.fault",
			"vesda.threshold.alert", "vesda.threshold.action",
			"vesda.threshold.fire1", "vesda.threshold.fire2",
			"ident.model", "ident.firmware",
		},
	},
}

func TestShippedCanonicalNames(t *testing.T) {
	for _, p := range shippedProfiles(t) {
		sets, ok := requiredNames[p.Class]
		if !ok {
			t.Errorf("%s: no required names for class %q: add them to requiredNames", p.Model, p.Class)
			continue
		}
		names := p.PointNames()
		var missing [][]string
		for _, set := range sets {
			var m []string
			for _, n := range set {
				if !names[n] {
					m = append(m, n)
				}
			}
			if len(m) == 0 {
				missing = nil
				break
			}
			missing = append(missing, m)
		}
		if len(missing) > 0 {
			t.Errorf("%s (class %s) lacks canonical points: %v", p.Model, p.Class, missing)
		}
	}
}

// canonical gives the kind and the allowed units of canonical names.
var canonical = map[string]struct {
	kind  point.Kind
	units []string
}{
	"battery.runtime":              {point.Number, []string{"s", "min"}},
	"battery.charge":               {point.Number, []string{"%"}},
	"battery.voltage":              {point.Number, []string{"V"}},
	"battery.current":              {point.Number, []string{"A"}},
	"battery.temperature":          {point.Number, []string{"degC"}},
	"ups.output.load":              {point.Number, []string{"%"}},
	"ups.output.voltage":           {point.Number, []string{"V"}},
	"ups.output.frequency":         {point.Number, []string{"Hz"}},
	"ups.input.voltage":            {point.Number, []string{"V"}},
	"ups.input.frequency":          {point.Number, []string{"Hz"}},
	"ups.status.online":            {point.Bool, []string{""}},
	"ups.status.on_battery":        {point.Bool, []string{""}},
	"ups.status.on_bypass":         {point.Bool, []string{""}},
	"ups.status.output_off":        {point.Bool, []string{""}},
	"ups.status.fault":             {point.Bool, []string{""}},
	"ups.status.input_bad":         {point.Bool, []string{""}},
	"ups.status.overload":          {point.Bool, []string{""}},
	"ups.status.test":              {point.Bool, []string{""}},
	"bms.soc":                      {point.Number, []string{"%"}},
	"bms.soh":                      {point.Number, []string{"%"}},
	"bms.voltage":                  {point.Number, []string{"V"}},
	"bms.current":                  {point.Number, []string{"A"}},
	"bms.cell_voltage_max":         {point.Number, []string{"V"}},
	"bms.cell_voltage_min":         {point.Number, []string{"V"}},
	"bms.cell_voltage_spread":      {point.Number, []string{"mV"}},
	"bms.cell_temp_max":            {point.Number, []string{"degC"}},
	"bms.cell_temp_min":            {point.Number, []string{"degC"}},
	"bms.module_temp_max":          {point.Number, []string{"degC"}},
	"bms.offgas_ppm":               {point.Number, []string{"ppm"}},
	"bms.h2_ppm":                   {point.Number, []string{"ppm"}},
	"bms.contactor":                {point.Enum, []string{""}},
	"bms.alarm.cell_overtemp":      {point.Bool, []string{""}},
	"bms.alarm.cell_overvoltage":   {point.Bool, []string{""}},
	"bms.alarm.cell_undervoltage":  {point.Bool, []string{""}},
	"bms.alarm.offgas":             {point.Bool, []string{""}},
	"bms.alarm.comms":              {point.Bool, []string{""}},
	"bms.alarm.contactor":          {point.Bool, []string{""}},
	"bms.alarm.insulation":         {point.Bool, []string{""}},
	"crac.state":                   {point.Enum, []string{""}},
	"crac.status":                  {point.Enum, []string{""}},
	"crac.supply_temp":             {point.Number, []string{"degC"}},
	"crac.return_temp":             {point.Number, []string{"degC"}},
	"crac.return_humidity":         {point.Number, []string{"%RH"}},
	"crac.fan_speed":               {point.Number, []string{"%"}},
	"crac.compressor":              {point.Enum, []string{""}},
	"crac.chilled_water_temp":      {point.Number, []string{"degC"}},
	"crac.alarm.high_supply_temp":  {point.Bool, []string{""}},
	"crac.alarm.unit_fault":        {point.Bool, []string{""}},
	"crac.alarm.sensor_fault":      {point.Bool, []string{""}},
	"crac.setpoint.return_low":     {point.Number, []string{"degC"}},
	"firepanel.alarm":              {point.Bool, []string{""}},
	"firepanel.fault":              {point.Bool, []string{""}},
	"firepanel.supervisory":        {point.Bool, []string{""}},
	"firepanel.state":              {point.Enum, []string{""}},
	"firepanel.epo_tripped":        {point.Bool, []string{""}},
	"vesda.obscuration":            {point.Number, []string{"%obs/m"}},
	"vesda.level":                  {point.Enum, []string{""}},
	"vesda.alert":                  {point.Bool, []string{""}},
	"vesda.action":                 {point.Bool, []string{""}},
	"vesda.fire1":                  {point.Bool, []string{""}},
	"vesda.fire2":                  {point.Bool, []string{""}},
	"vesda.airflow_fault":          {point.Bool, []string{""}},
	"vesda.fault":                  {point.Bool, []string{""}},
	"vesda.threshold.alert":        {point.Number, []string{"%obs/m"}},
	"vesda.threshold.action":       {point.Number, []string{"%obs/m"}},
	"vesda.threshold.fire1":        {point.Number, []string{"%obs/m"}},
	"vesda.threshold.fire2":        {point.Number, []string{"%obs/m"}},
	"ident.firmware":               {point.String, []string{""}},
	"ident.serial":                 {point.String, []string{""}},
	"firepanel.zone1.alarm":        {point.Bool, []string{""}},
	"crac.alarm.external_fire":     {point.Bool, []string{""}},
	"ups.status.shutdown_imminent": {point.Bool, []string{""}},
	"ups.output.source":            {point.Enum, []string{""}},
	"pdu.outlet.state":             {point.Enum, []string{""}},
	"pdu.outlet.command":           {point.Enum, []string{""}},
	"pdu.outlet.current":           {point.Number, []string{"A"}},
	"pdu.phase.current":            {point.Number, []string{"A"}},
	"if.oper_status":               {point.Enum, []string{""}},
	"if.admin_status":              {point.Enum, []string{""}},
	"if.in_octets":                 {point.Number, []string{""}},
	"if.out_octets":                {point.Number, []string{""}},
	"agent.uptime":                 {point.Number, []string{"s"}},
}

func TestShippedCanonicalKindsAndUnits(t *testing.T) {
	for _, p := range shippedProfiles(t) {
		for _, pt := range allPoints(p) {
			want, ok := canonical[pt.Name]
			if !ok {
				continue
			}
			if got := pt.Kind(); got != want.kind {
				t.Errorf("%s %s: kind %s, want %s", p.Model, pt.Name, got, want.kind)
			}
			if !slices.Contains(want.units, pt.Unit) {
				t.Errorf("%s %s: unit %q, want one of %q", p.Model, pt.Name, pt.Unit, want.units)
			}
		}
	}
}

// simText is the text identification matches for a point whose value is
// sim, as point.Point.Format renders it: a string as is, an enum as
// "name (code)", a number with its unit.
func simText(pt *PointDef) (string, bool) {
	if pt.Sim == nil {
		return "", false
	}
	if s, ok := pt.Sim.(string); ok {
		return s, true
	}
	v := point.Point{Kind: pt.Kind(), Unit: point.Unit(pt.Unit)}
	switch x := pt.Sim.(type) {
	case int:
		v.Num = float64(x)
	case float64:
		v.Num = x
	case bool:
		if x {
			v.Num = 1
		}
	}
	if v.Kind == point.Enum {
		v.Str = pt.Enum[int64(v.Num)]
	}
	return v.Format(), true
}

// checkSim reports why a sim value cannot be served by the register type.
func checkSim(pt *PointDef) error {
	switch pt.Kind() {
	case point.String:
		s, ok := pt.Sim.(string)
		if !ok {
			return fmt.Errorf("sim %v is not a string", pt.Sim)
		}
		if pt.Type == "oid" {
			if _, ok := ParseOID(s); !ok {
				return fmt.Errorf("sim %q is not a numeric OID", s)
			}
			return nil
		}
		if isSNMP(pt) {
			// An OCTET STRING (DisplayString) holds up to 255 characters.
			if len(s) > 255 {
				return fmt.Errorf("sim %q is longer than a DisplayString", s)
			}
		} else if len(s) > 2*pt.Length {
			return fmt.Errorf("sim %q is longer than %d registers hold", s, pt.Length)
		}
		for _, r := range s {
			if r < 0x20 || r > 0x7e {
				return fmt.Errorf("sim %q is not printable ASCII", s)
			}
		}
	case point.Bool:
		if _, ok := pt.Sim.(bool); !ok {
			return fmt.Errorf("sim %v is not true or false", pt.Sim)
		}
	case point.Enum:
		v, ok := pt.Sim.(int)
		if !ok {
			return fmt.Errorf("sim %v is not an integer code", pt.Sim)
		}
		if _, ok := pt.Enum[int64(v)]; !ok {
			return fmt.Errorf("sim %d has no enum name", v)
		}
	case point.Number:
		var f float64
		switch v := pt.Sim.(type) {
		case int:
			f = float64(v)
		case float64:
			f = v
		default:
			return fmt.Errorf("sim %v is not a number", pt.Sim)
		}
		raw := (f - pt.Offset) / pt.ScaleOr1()
		if pt.Type == "f32" || pt.Type == "f64" {
			return nil
		}
		if pt.Type == "timeticks" {
			raw *= 100 // hundredths of a second on the wire
		}
		if math.Abs(raw-math.Round(raw)) > 1e-6 {
			return fmt.Errorf("sim %g is raw %g, not an integer at scale %g", f, raw, pt.ScaleOr1())
		}
		var lo, hi float64
		switch {
		case pt.Type == "integer":
			lo, hi = math.MinInt32, math.MaxInt32
		case pt.Type == "counter64":
			lo, hi = 0, math.Ldexp(1, 64)-1
		case isSNMP(pt):
			lo, hi = 0, math.MaxUint32
		default:
			bits := 16 * pt.Width()
			lo, hi = 0.0, math.Ldexp(1, bits)-1
			if pt.Type[0] == 's' {
				lo, hi = -math.Ldexp(1, bits-1), math.Ldexp(1, bits-1)-1
			}
		}
		if raw < lo || raw > hi {
			return fmt.Errorf("sim %g is raw %g, outside a %s", f, raw, pt.Type)
		}
		if (pt.Min != nil && f < *pt.Min) || (pt.Max != nil && f > *pt.Max) {
			return fmt.Errorf("sim %g is outside min/max", f)
		}
	}
	return nil
}

// isSNMP reports whether pt is a point of an SNMP profile.
func isSNMP(pt *PointDef) bool { return pt.OID != "" || pt.Walk != "" }

func TestShippedSimValues(t *testing.T) {
	for _, p := range shippedProfiles(t) {
		for _, pt := range allPoints(p) {
			needs := pt.Name == "ident.model" || pt.Name == "ident.firmware" ||
				strings.Contains(pt.Name, ".setpoint.") || strings.Contains(pt.Name, ".threshold.")
			if pt.Sim == nil {
				if needs {
					t.Errorf("%s %s: needs a sim value the simulator can serve", p.Model, pt.Name)
				}
				continue
			}
			if err := checkSim(&pt); err != nil {
				t.Errorf("%s %s: %v", p.Model, pt.Name, err)
			}
		}
	}
}

// TestShippedIdentify checks that identification recognises the values the
// simulator serves, so profile: auto works against facsim, and that the
// firmware it reads selects the intended variant.
func TestShippedIdentify(t *testing.T) {
	noIdentify := map[string]bool{
		"liebert-icom-crac":   true, // no identification registers known
		"generic-switch-snmp": true, // sysObjectID names the vendor, not "a switch"
	}
	for _, p := range shippedProfiles(t) {
		id := p.Identify
		if id == nil {
			if !noIdentify[p.Model] {
				t.Errorf("%s: no identify section", p.Model)
			}
			continue
		}
		base := p.Resolve("")
		// The agent answers sysObjectID with the sim of the profile's
		// sysObjectID point, so that sys_object_id can match a served
		// profile too.
		if id.SysObjectID != "" {
			var sim string
			for _, pt := range base.Points {
				if pt.OID == sysObjectIDOID {
					sim, _ = pt.Sim.(string)
				}
			}
			if !regexp.MustCompile(id.SysObjectID).MatchString(sim) {
				t.Errorf("%s: identify.sys_object_id %q does not match the sim %q of a %s point", p.Model, id.SysObjectID, sim, sysObjectIDOID)
			}
		}
		for name, expr := range id.Points {
			pt, _ := base.Point(name)
			text, ok := simText(pt)
			if !ok {
				t.Errorf("%s: identify point %s has no sim value", p.Model, name)
				continue
			}
			if !regexp.MustCompile(expr).MatchString(text) {
				t.Errorf("%s: identify.points.%s %q does not match the sim value %q", p.Model, name, expr, text)
			}
		}
		// A simulator answers device identification with the ident
		// strings: product_name and model_name from ident.model, revision
		// from ident.firmware.
		for obj, expr := range id.DeviceID {
			src := map[string]string{"product_name": "ident.model", "model_name": "ident.model", "revision": "ident.firmware"}[obj]
			pt, ok := base.Point(src)
			if !ok {
				t.Errorf("%s: identify.device_id.%s has no %s point to serve it from", p.Model, obj, src)
				continue
			}
			if text, _ := simText(pt); !regexp.MustCompile(expr).MatchString(text) {
				t.Errorf("%s: identify.device_id.%s %q does not match %s sim %q", p.Model, obj, expr, src, text)
			}
		}
		if id.Firmware == "" {
			continue
		}
		fwPoint := id.Firmware
		if fwPoint == "device_id.revision" {
			fwPoint = "ident.firmware"
		}
		pt, ok := base.Point(fwPoint)
		if !ok {
			t.Errorf("%s: firmware source %s has no point", p.Model, fwPoint)
			continue
		}
		fw, _ := simText(pt)
		if _, ok := parseVersion(fw); !ok {
			t.Errorf("%s: firmware sim %q has no version number", p.Model, fw)
		}
		if r := p.Resolve(fw); r.Variant != nil {
			t.Errorf("%s: base firmware sim %q selects variant %q; the base sim should describe the base map", p.Model, fw, r.Variant.Firmware)
		}
		// A variant that overrides the firmware point with its own sim
		// must be the variant that firmware selects.
		for i := range p.Variants {
			v := &p.Variants[i]
			for j := range v.Points {
				if v.Points[j].Name != fwPoint || v.Points[j].Sim == nil {
					continue
				}
				vfw, _ := simText(&v.Points[j])
				if r := p.Resolve(vfw); r.Variant != v {
					t.Errorf("%s: variant %q firmware sim %q selects %v", p.Model, v.Firmware, vfw, r.Variant)
				}
			}
		}
	}
}

// sysObjectIDOID is SNMPv2-MIB sysObjectID.0.
const sysObjectIDOID = "1.3.6.1.2.1.1.2.0"

func TestShippedHeaders(t *testing.T) {
	for path, data := range shippedFiles(t) {
		header := leadingComment(data)
		if header == "" {
			t.Errorf("%s: no header comment", path)
			continue
		}
		p, errs := Parse(path, data)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", path, errs)
		}
		if p.Vendor == "generic" {
			if !strings.Contains(header, "GENERIC MAP DESIGNED BY FACGW") {
				t.Errorf("%s: a generic profile's header must say GENERIC MAP DESIGNED BY FACGW", path)
			}
		} else if !strings.Contains(header, "Source:") {
			t.Errorf("%s: header names no Source:", path)
		}
		if want := p.Model + ".yaml"; filepath.Base(path) != want {
			t.Errorf("%s: file name should be %s", path, want)
		}
	}
}

func leadingComment(data []byte) string {
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			break
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func TestShippedFireIsReadOnly(t *testing.T) {
	for _, p := range shippedProfiles(t) {
		if p.Class != "fire" {
			continue
		}
		for _, pt := range allPoints(p) {
			if pt.Writable {
				t.Errorf("%s %s: fire equipment is never driven, the point must not be writable", p.Model, pt.Name)
			}
		}
	}
}

// TestShippedSafetyGroup checks that fire-relevant points are in the safety
// poll group, so a config can poll them fast.
func TestShippedSafetyGroup(t *testing.T) {
	safety := regexp.MustCompile(`^(bms\.(cell_temp_max|cell_temp_min|module_temp_max|offgas_ppm|h2_ppm|alarm\..*)|firepanel\.(alarm|fault|epo_tripped|state|zone\d+\.alarm)|vesda\.(obscuration|level|alert|action|fire1|fire2|fault|airflow_fault))$`)
	for _, p := range shippedProfiles(t) {
		for _, pt := range allPoints(p) {
			if safety.MatchString(pt.Name) && pt.Group != "safety" {
				t.Errorf("%s %s: group %q, want safety", p.Model, pt.Name, pt.Group)
			}
		}
	}
}

// TestAPCBinaryScales checks the APC map keeps its binary points exact.
func TestAPCBinaryScales(t *testing.T) {
	r, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := r.Get("apc-smart-ups-modbus")
	if !ok {
		t.Fatal("apc-smart-ups-modbus not shipped")
	}
	want := map[string]float64{
		"battery.charge": 1.0 / 512, "battery.voltage": 1.0 / 32, "battery.temperature": 1.0 / 128,
		"ups.output.load": 1.0 / 256, "ups.output.voltage": 1.0 / 64, "ups.output.frequency": 1.0 / 128,
	}
	res := p.Resolve("")
	for name, scale := range want {
		pt, ok := res.Point(name)
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if pt.ScaleOr1() != scale {
			t.Errorf("%s: scale %v, want exactly %v", name, pt.ScaleOr1(), scale)
		}
	}
	for _, pt := range allPoints(p) {
		if frac, _ := math.Frexp(pt.ScaleOr1()); frac != 0.5 {
			t.Errorf("%s: scale %v is not a power of two", pt.Name, pt.ScaleOr1())
		}
	}
}

// badCases pins the exact messages, located by file:line:col and field
// path, for each fixture in testdata/bad.
var badCases = []struct {
	file    string
	nilProf bool // Parse returns no profile (nothing usable decoded)
	want    []string
}{
	{file: "unknown-key.yaml", want: []string{
		`testdata/bad/unknown-key.yaml:6:5: points[0].table: missing required field "table"`,
		`testdata/bad/unknown-key.yaml:7:5: points[0].tabel: unknown field "tabel" (did you mean "table"?)`,
	}},
	{file: "wrong-type.yaml", want: []string{
		`testdata/bad/wrong-type.yaml:6:14: modbus.device_id: want true or false, got "yes"`,
		`testdata/bad/wrong-type.yaml:10:14: points[0].address: want a non-negative integer, got "one-thirty"`,
		`testdata/bad/wrong-type.yaml:12:12: points[0].scale: want a number, got a list`,
		`testdata/bad/wrong-type.yaml:15:14: points[1].address: 70000 is out of range (largest 65535)`,
	}},
	{file: "missing-field.yaml", want: []string{
		`testdata/bad/missing-field.yaml:1:1: source: missing required field "source"`,
		`testdata/bad/missing-field.yaml:5:5: points[0].type: missing required field "type"`,
	}},
	{file: "no-model.yaml", nilProf: true, want: []string{
		`testdata/bad/no-model.yaml:1:1: model: missing required field "model"`,
		`testdata/bad/no-model.yaml:6:5: points[0].table: unknown table "holdng" (known: coil, discrete, input, holding)`,
	}},
	{file: "duplicate-point.yaml", want: []string{
		`testdata/bad/duplicate-point.yaml:10:5: points[1].name: duplicate point "battery.charge"`,
	}},
	{file: "unknown-values.yaml", want: []string{
		`testdata/bad/unknown-values.yaml:7:5: points[0].table: unknown table "holdings" (known: coil, discrete, input, holding)`,
		`testdata/bad/unknown-values.yaml:13:5: points[1].type: unknown type "int16" (known: bool, u16, s16, u32, s32, u64, s64, f32, f64, string)`,
		`testdata/bad/unknown-values.yaml:18:5: points[2].order: unknown order "BACD" (known: ABCD, CDAB, BADC, DCBA)`,
		`testdata/bad/unknown-values.yaml:23:5: points[3].unit: unknown unit "celsius" (see docs/units.md)`,
	}},
	{file: "bit-out-of-range.yaml", want: []string{
		`testdata/bad/bit-out-of-range.yaml:10:5: points[0].bit: bit 16 is outside 0..15 of a u16`,
	}},
	{file: "bool-without-bit.yaml", want: []string{
		`testdata/bad/bool-without-bit.yaml:9:5: points[0].type: a bool in a register table needs bit: N`,
	}},
	{file: "string-without-length.yaml", want: []string{
		`testdata/bad/string-without-length.yaml:6:5: points[0].length: a string needs length: registers (1..125)`,
	}},
	{file: "enum-on-float.yaml", want: []string{
		`testdata/bad/enum-on-float.yaml:10:5: points[0].enum: enum names apply to integer values only`,
	}},
	{file: "unreadable-overlap.yaml", want: []string{
		`testdata/bad/unreadable-overlap.yaml:10:5: points[0].address: holding 126..127 overlaps the unreadable range 27..127`,
	}},
	{file: "absent-means-alone.yaml", want: []string{
		`testdata/bad/absent-means-alone.yaml:6:79: points[0].absent_means: absent_means needs absent: the raw values it explains`,
	}},
	{file: "bad-variant-range.yaml", want: []string{
		`testdata/bad/bad-variant-range.yaml:11:5: variants[0].firmware: version range "2.0": "2.0" needs an operator (>=, >, <=, <, =)`,
		`testdata/bad/bad-variant-range.yaml:12:5: variants[1].firmware: version range ">=2.x": "2.x" is not a version such as 2.10.1`,
		`testdata/bad/bad-variant-range.yaml:13:5: variants[2].firmware: version range ">=2.0 <": "<" needs a version after it`,
	}},
	{file: "variant-remove-unknown.yaml", want: []string{
		`testdata/bad/variant-remove-unknown.yaml:12:5: variants[0].remove: removes unknown point "battery.chrage" (not in the base profile)`,
	}},
	{file: "variant-unreadable-kept.yaml", want: []string{
		`testdata/bad/variant-unreadable-kept.yaml:13:26: variants[0].unreadable[0].from: unreadable range 152..159 covers point "ups.efficiency" (holding 154..154), which this variant keeps: remove or override it`,
	}},
	{file: "identify-unknown-point.yaml", want: []string{
		`testdata/bad/identify-unknown-point.yaml:6:3: identify.points.ident.modle: unknown point "ident.modle" (identification reads base profile points only)`,
		`testdata/bad/identify-unknown-point.yaml:8:3: identify.firmware: unknown point "ident.firmware" (a base profile point name or device_id.revision)`,
	}},
	{file: "identify-variant-point.yaml", want: []string{
		`testdata/bad/identify-variant-point.yaml:8:3: identify.firmware: unknown point "ident.firmware" (a base profile point name or device_id.revision)`,
	}},
	{file: "identify-device-id.yaml", want: []string{
		`testdata/bad/identify-device-id.yaml:6:3: identify.device_id.product_nmae: unknown identification object "product_nmae" (known: vendor, product_code, revision, vendor_url, product_name, model_name, user_application_name)`,
		"testdata/bad/identify-device-id.yaml:6:3: identify.device_id.vendor: bad regular expression: error parsing regexp: missing closing ): `APC(`",
		`testdata/bad/identify-device-id.yaml:6:3: identify.device_id: matching on device identification needs modbus.device_id: true`,
	}},
	// SNMP: the other protocol's fields are refused, each where it is.
	{file: "snmp-modbus-fields.yaml", want: []string{
		`testdata/bad/snmp-modbus-fields.yaml:6:5: points[0].oid: an snmp point needs oid: (one instance, such as 1.3.6.1.2.1.33.1.2.4.0) or walk: (a table column)`,
		`testdata/bad/snmp-modbus-fields.yaml:7:5: points[0].table: table is a modbus field; an snmp point names oid: (one instance) or walk: (a table column)`,
		`testdata/bad/snmp-modbus-fields.yaml:8:5: points[0].address: address is a modbus field; an snmp point names oid: (one instance) or walk: (a table column)`,
		`testdata/bad/snmp-modbus-fields.yaml:9:5: points[0].type: unknown snmp type "u16" (known: integer, gauge, counter32, counter64, timeticks, string, oid); u16 is a modbus register type`,
		`testdata/bad/snmp-modbus-fields.yaml:10:5: points[0].order: order is a modbus field; an snmp point names oid: (one instance) or walk: (a table column)`,
		`testdata/bad/snmp-modbus-fields.yaml:14:5: points[1].bit: bit is a modbus field; an snmp point names oid: (one instance) or walk: (a table column)`,
		`testdata/bad/snmp-modbus-fields.yaml:15:5: points[2].oid: an snmp point needs oid: (one instance, such as 1.3.6.1.2.1.33.1.2.4.0) or walk: (a table column)`,
		`testdata/bad/snmp-modbus-fields.yaml:17:5: points[2].length: length is a modbus field; an snmp point names oid: (one instance) or walk: (a table column)`,
	}},
	{file: "modbus-snmp-fields.yaml", want: []string{
		`testdata/bad/modbus-snmp-fields.yaml:6:5: points[0].table: missing required field "table"`,
		`testdata/bad/modbus-snmp-fields.yaml:6:5: points[0].address: missing required field "address"`,
		`testdata/bad/modbus-snmp-fields.yaml:7:5: points[0].oid: oid is an snmp field; this profile speaks modbus`,
		`testdata/bad/modbus-snmp-fields.yaml:13:5: points[1].walk: walk is an snmp field; this profile speaks modbus`,
		`testdata/bad/modbus-snmp-fields.yaml:14:5: points[1].row_label: row_label is an snmp field; this profile speaks modbus`,
		`testdata/bad/modbus-snmp-fields.yaml:15:5: points[1].true_values: true_values is an snmp field; this profile speaks modbus`,
	}},
	{file: "snmp-bad-oid.yaml", want: []string{
		`testdata/bad/snmp-bad-oid.yaml:6:27: points[0].oid: OID ".1.3.6.1.2.1.1.3.0" must not start with a dot: write 1.3.6.1.2.1.1.3.0`,
		`testdata/bad/snmp-bad-oid.yaml:7:24: points[1].oid: OID "upsBatteryStatus.0" is not numeric and dotted, such as 1.3.6.1.2.1.1.3.0 (MIB names are not resolved: give the numeric OID)`,
		`testdata/bad/snmp-bad-oid.yaml:8:23: points[2].oid: OID "1.3.6.01.2" is not numeric and dotted, such as 1.3.6.1.2.1.1.3.0`,
		`testdata/bad/snmp-bad-oid.yaml:9:23: points[3].oid: OID "1" is not numeric and dotted, such as 1.3.6.1.2.1.1.3.0`,
		`testdata/bad/snmp-bad-oid.yaml:10:25: points[4].oid: OID "3.1.2" is not numeric and dotted, such as 1.3.6.1.2.1.1.3.0`,
		`testdata/bad/snmp-bad-oid.yaml:11:44: points[5].walk: oid and walk exclude each other: oid reads one instance, walk every row of a column`,
		`testdata/bad/snmp-bad-oid.yaml:12:58: points[6].row_label: row_label names the rows of a walked column; this point reads one instance`,
		`testdata/bad/snmp-bad-oid.yaml:13:52: points[7].row_label: OID "ifName" is not numeric and dotted, such as 1.3.6.1.2.1.1.3.0 (MIB names are not resolved: give the numeric OID)`,
		`testdata/bad/snmp-bad-oid.yaml:14:5: points[8].oid: an snmp point needs oid: (one instance, such as 1.3.6.1.2.1.33.1.2.4.0) or walk: (a table column)`,
	}},
	{file: "snmp-types.yaml", want: []string{
		`testdata/bad/snmp-types.yaml:6:52: points[0].type: unknown snmp type "int32" (known: integer, gauge, counter32, counter64, timeticks, string, oid)`,
		`testdata/bad/snmp-types.yaml:7:51: points[1].type: unknown snmp type "s16" (known: integer, gauge, counter32, counter64, timeticks, string, oid); s16 is a modbus register type`,
		`testdata/bad/snmp-types.yaml:8:5: points[2].type: missing required field "type"`,
		`testdata/bad/snmp-types.yaml:9:68: points[3].enum: enum names apply to integer and gauge values only, this point is a string`,
		`testdata/bad/snmp-types.yaml:10:76: points[4].true_values: true_values apply to integer and gauge values only, this point is a counter32`,
		`testdata/bad/snmp-types.yaml:11:73: points[5].true_values: true_values and enum exclude each other: the point is either a bool or an enum`,
		`testdata/bad/snmp-types.yaml:12:70: points[6].true_values: true_values needs at least one value`,
		`testdata/bad/snmp-types.yaml:13:72: points[7].absent: absent value 4294967295 is outside -2147483648..2147483647 of snmp type integer`,
		`testdata/bad/snmp-types.yaml:14:67: points[8].absent: absent applies to integer values, not to a string`,
		`testdata/bad/snmp-types.yaml:15:79: points[9].contains: contains compares OID values: needs type: oid, got "integer"`,
		`testdata/bad/snmp-types.yaml:16:75: points[10].contains: contains looks for a value among the rows of a walked column: needs walk:`,
		`testdata/bad/snmp-types.yaml:17:91: points[11].scale: scale, offset, min and max apply to numbers only, this point is a bool`,
	}},
	{file: "snmp-sensor.yaml", want: []string{
		`testdata/bad/snmp-sensor.yaml:9:5: points[0].type: sensor: entity takes type, scale and unit from the ENTITY-SENSOR-MIB columns: drop type`,
		`testdata/bad/snmp-sensor.yaml:10:5: points[0].scale: sensor: entity takes type, scale and unit from the ENTITY-SENSOR-MIB columns: drop scale`,
		`testdata/bad/snmp-sensor.yaml:11:5: points[0].unit: sensor: entity takes type, scale and unit from the ENTITY-SENSOR-MIB columns: drop unit`,
		`testdata/bad/snmp-sensor.yaml:14:5: points[1].sensor: unknown sensor kind "cisco" (known: entity)`,
		`testdata/bad/snmp-sensor.yaml:17:5: points[2].sensor: sensor: entity walks a table: needs walk: with the table entry, such as 1.3.6.1.2.1.99.1.1.1`,
	}},
	{file: "snmp-identify.yaml", want: []string{
		`testdata/bad/snmp-identify.yaml:6:3: identify.device_id: device_id (Modbus Read Device Identification) applies to modbus profiles; an snmp profile matches sys_object_id or points`,
		"testdata/bad/snmp-identify.yaml:7:3: identify.sys_object_id: bad regular expression: error parsing regexp: missing closing ): `^1\\.3\\.6\\.1\\.4\\.1\\.318\\.(1`",
		`testdata/bad/snmp-identify.yaml:8:3: identify.points.pdu.outlet.state: point "pdu.outlet.state" walks a table column; identification reads single instances (oid:)`,
		`testdata/bad/snmp-identify.yaml:10:3: identify.firmware: device_id.revision applies to modbus profiles; name a base point such as ident.firmware`,
	}},
	{file: "snmp-modbus-sections.yaml", want: []string{
		`testdata/bad/snmp-modbus-sections.yaml:5:1: modbus: modbus applies to modbus profiles only, this profile speaks snmp`,
		`testdata/bad/snmp-modbus-sections.yaml:6:1: unreadable: unreadable applies to modbus profiles only, this profile speaks snmp`,
		`testdata/bad/snmp-modbus-sections.yaml:9:3: identify: identify needs sys_object_id or points to match`,
		`testdata/bad/snmp-modbus-sections.yaml:14:5: variants[0].unreadable: unreadable applies to modbus profiles only, this profile speaks snmp`,
		`testdata/bad/snmp-modbus-sections.yaml:17:9: variants[0].points[0].oid: an snmp point needs oid: (one instance, such as 1.3.6.1.2.1.33.1.2.4.0) or walk: (a table column)`,
		`testdata/bad/snmp-modbus-sections.yaml:17:29: variants[0].points[0].table: table is a modbus field; an snmp point names oid: (one instance) or walk: (a table column)`,
		`testdata/bad/snmp-modbus-sections.yaml:17:45: variants[0].points[0].address: address is a modbus field; an snmp point names oid: (one instance) or walk: (a table column)`,
		`testdata/bad/snmp-modbus-sections.yaml:17:57: variants[0].points[0].type: unknown snmp type "u16" (known: integer, gauge, counter32, counter64, timeticks, string, oid); u16 is a modbus register type`,
	}},
	{file: "modbus-sys-object-id.yaml", want: []string{
		`testdata/bad/modbus-sys-object-id.yaml:6:3: identify.sys_object_id: sys_object_id applies to snmp profiles; a modbus profile matches device_id or points`,
		`testdata/bad/modbus-sys-object-id.yaml:6:3: identify: identify needs device_id or points to match`,
	}},
	// A misspelt protocol is one error: the points' oid keys select the
	// SNMP rules, so they are not also reported as foreign fields.
	{file: "protocol-typo.yaml", want: []string{
		`testdata/bad/protocol-typo.yaml:3:1: protocol: unknown protocol "smnp" (known: modbus, snmp)`,
	}},
	// yaml.v3 reports a tab in the indentation one line early.
	{file: "syntax-error.yaml", nilProf: true, want: []string{
		`testdata/bad/syntax-error.yaml:7:1: syntax error: found a tab character that violates indentation`,
	}},
	{file: "empty.yaml", nilProf: true, want: []string{
		`testdata/bad/empty.yaml:1:1: file is empty`,
	}},
	// Several errors in one file are all reported, in file order.
	{file: "many-errors.yaml", want: []string{
		`testdata/bad/many-errors.yaml:1:1: model: model "Many Errors" must be lower case letters, digits, '.', '_' or '-'`,
		`testdata/bad/many-errors.yaml:6:3: modbus.order: unknown order "ABDC" (known: ABCD, CDAB, BADC, DCBA)`,
		`testdata/bad/many-errors.yaml:7:3: modbus.max_registers: must be 1..125, got 200`,
		`testdata/bad/many-errors.yaml:9:5: points[0].name: point name "Battery.Charge" must be dotted lower-case words, such as battery.temperature`,
		`testdata/bad/many-errors.yaml:13:5: points[0].scale: scale must be a finite non-zero number`,
		`testdata/bad/many-errors.yaml:17:5: points[1].type: a coil holds single bits: type must be bool, got "u16"`,
		`testdata/bad/many-errors.yaml:22:5: points[2].min: min 60 is above max 40`,
		`testdata/bad/many-errors.yaml:24:5: points[2].absent: absent value 65535 is outside -32768..32767 of type s16 (0xFFFF reads as -1 there)`,
		`testdata/bad/many-errors.yaml:30:5: points[3].max: scale, offset, min and max apply to numbers only, this point is a bool`,
	}},
}

func TestParseBad(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range badCases {
		covered[tc.file] = true
		t.Run(strings.TrimSuffix(tc.file, ".yaml"), func(t *testing.T) {
			file := "testdata/bad/" + tc.file
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			p, errs := Parse(file, data)
			if (p == nil) != tc.nilProf {
				t.Errorf("Parse returned profile %v, want nil: %v", p != nil, tc.nilProf)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
			if errs.Err() == nil {
				t.Error("Err() is nil for a bad profile")
			}
		})
	}
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s has no case in badCases", f)
		}
	}
}

func TestParseGood(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.yaml")
	if len(files) == 0 {
		t.Fatal("no good fixtures")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, errs := Parse(f, data)
		if len(errs) > 0 || p == nil {
			t.Errorf("%s: %v", f, errs)
		}
	}
	r := NewRegistry()
	if err := r.AddDir("testdata/good"); err != nil {
		t.Fatalf("AddDir: %v", err)
	}
	if got := len(r.List()); got != len(files) {
		t.Errorf("AddDir loaded %d profiles from %d files", got, len(files))
	}
}

func TestAddDirOverridesShipped(t *testing.T) {
	r, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(shipped, "fire/generic-vesda.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	site := bytes.Replace(data, []byte("product: "), []byte("product: site copy of "), 1)
	if err := os.WriteFile(filepath.Join(dir, "vesda.yaml"), site, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.AddDir(dir); err != nil {
		t.Fatal(err)
	}
	p, _ := r.Get("generic-vesda")
	if !strings.HasPrefix(p.Product, "site copy of ") {
		t.Errorf("AddDir did not replace the shipped profile: product %q", p.Product)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("model: broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = NewRegistry().AddDir(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "broken.yaml")+`:1:1: class: missing required field "class"`) {
		t.Errorf("AddDir error %v does not locate the broken file", err)
	}
}

func loadFixture(t *testing.T, file string) *Profile {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p, errs := Parse(file, data)
	if len(errs) > 0 {
		t.Fatalf("%s: %v", file, errs)
	}
	return p
}

func TestResolve(t *testing.T) {
	p := loadFixture(t, "testdata/good/variants.yaml")
	type pt struct {
		addr  uint16
		scale float64
	}
	tests := []struct {
		firmware string
		variant  string // firmware range of the chosen variant, "" for none
		names    []string
		check    map[string]pt
	}{
		{"", "", []string{"ident.firmware", "ident.model", "battery.charge", "battery.voltage", "ups.old", "ups.status.online"},
			map[string]pt{"battery.voltage": {131, 0.03125}, "battery.charge": {130, 0.001953125}}},
		{"UPS 09.8 (ID18)", ">= 9.0 <10.0", []string{"ident.firmware", "ident.model", "battery.charge", "battery.voltage", "ups.status.online", "ups.new"},
			map[string]pt{"battery.voltage": {132, 0.1}, "ups.new": {150, 1}}},
		{"9", ">= 9.0 <10.0", nil, map[string]pt{"battery.voltage": {132, 0.1}}},
		{"UPS 9.10", ">= 9.0 <10.0", nil, nil}, // 9.10 is after 9.8, not 9.1
		{"10.0", ">=10", []string{"ident.firmware", "ident.model", "battery.charge", "ups.old", "ups.status.online"}, nil},
		{"v10.2.1-rc1", ">=10", nil, nil},
		{"8.99", "<9.0", nil, map[string]pt{"battery.charge": {129, 0.001953125}, "battery.voltage": {131, 0.03125}}},
		{"0", "<9.0", nil, nil},
		{"no version here", "", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.firmware, func(t *testing.T) {
			r := p.Resolve(tc.firmware)
			got := ""
			if r.Variant != nil {
				got = r.Variant.Firmware
			}
			if got != tc.variant {
				t.Fatalf("variant %q, want %q", got, tc.variant)
			}
			if r.Firmware != tc.firmware {
				t.Errorf("Firmware %q, want %q", r.Firmware, tc.firmware)
			}
			if tc.names != nil {
				var names []string
				for _, pt := range r.Points {
					names = append(names, pt.Name)
				}
				if !slices.Equal(names, tc.names) {
					t.Errorf("points %v, want %v", names, tc.names)
				}
			}
			for name, want := range tc.check {
				d, ok := r.Point(name)
				if !ok {
					t.Errorf("no point %s", name)
					continue
				}
				if d.Address != want.addr || d.ScaleOr1() != want.scale {
					t.Errorf("%s at %d scale %v, want %d scale %v", name, d.Address, d.ScaleOr1(), want.addr, want.scale)
				}
			}
			for _, d := range r.Points {
				wantOrder, wantGroup := "CDAB", "default"
				if d.Name == "ups.status.online" {
					wantOrder, wantGroup = "ABCD", "safety"
				}
				if d.Order != wantOrder || d.Group != wantGroup {
					t.Errorf("%s: order %q group %q, want %q %q", d.Name, d.Order, d.Group, wantOrder, wantGroup)
				}
			}
			wantUnr := 1
			if tc.variant == ">= 9.0 <10.0" {
				wantUnr = 2
			}
			if len(r.Unreadable) != wantUnr {
				t.Errorf("%d unreadable ranges, want %d", len(r.Unreadable), wantUnr)
			}
		})
	}
	r := p.Resolve("9.8")
	if r.Order != "CDAB" || r.MaxGap != 0 || r.MaxRegs != 60 || r.MaxBits != 2000 {
		t.Errorf("limits: order %s gap %d regs %d bits %d, want CDAB 0 60 2000", r.Order, r.MaxGap, r.MaxRegs, r.MaxBits)
	}
	if g := r.Groups(); !slices.Equal(g, []string{"default", "safety"}) {
		t.Errorf("Groups() = %v", g)
	}
	// Resolving works on copies: the profile itself is unchanged.
	if p.Points[3].Address != 131 || p.Points[0].Order != "" || p.Points[0].Group != "" || len(p.Unreadable) != 1 {
		t.Error("Resolve modified the profile")
	}
	// Defaults when the profile sets no limits.
	d := loadFixture(t, "testdata/good/unknown-key.yaml").Resolve("")
	if d.Order != "ABCD" || d.MaxGap != 8 || d.MaxRegs != 125 || d.MaxBits != 2000 {
		t.Errorf("defaults: order %s gap %d regs %d bits %d", d.Order, d.MaxGap, d.MaxRegs, d.MaxBits)
	}
}

func TestVersionRange(t *testing.T) {
	tests := []struct {
		rng     string
		version string
		want    bool
	}{
		{">=2.0 <3.1", "2.0", true},
		{">=2.0 <3.1", "3.0.9", true},
		{">=2.0 <3.1", "3.1", false},
		{">=2.0 <3.1", "1.9.9", false},
		{">=2.0,<3.1", "2.5", true},
		{">= 2.0 < 3.1", "3.1.0", false},
		{"=2.1", "2.1.0", true},
		{"=2.1", "2.1.1", false},
		{">1", "1.0", false},
		{">1", "1.0.1", true},
		{"<=2", "2.0.0", true},
		{"<9.0", "UPS 09.8 (ID18)", false},
		{">=9.8", "UPS 09.8 (ID18)", true},
		{">=2.10", "2.9", false},
	}
	for _, tc := range tests {
		rng, err := parseRange(tc.rng)
		if err != nil {
			t.Errorf("parseRange(%q): %v", tc.rng, err)
			continue
		}
		v, ok := parseVersion(tc.version)
		if !ok {
			t.Errorf("parseVersion(%q) failed", tc.version)
			continue
		}
		if got := rng.contains(v); got != tc.want {
			t.Errorf("%q contains %q = %v, want %v", tc.rng, tc.version, got, tc.want)
		}
	}
	for _, s := range []string{"", " ", "2.0", ">=", "=>2.0", ">=2.0beta", "~2"} {
		if _, err := parseRange(s); err == nil {
			t.Errorf("parseRange(%q) accepted a bad range", s)
		}
	}
	if v, ok := parseVersion("UPS 09.8 (ID18)"); !ok || !slices.Equal(v, []int{9, 8}) {
		t.Errorf("parseVersion(UPS 09.8 (ID18)) = %v %v, want [9 8]", v, ok)
	}
	if _, ok := parseVersion("none"); ok {
		t.Error("parseVersion(none) found a version")
	}
}

// TestUnitsDoc keeps docs/units.md listing the whole unit vocabulary.
func TestUnitsDoc(t *testing.T) {
	data, err := os.ReadFile("../docs/units.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range point.Units {
		cell := "`" + string(u.Unit) + "`"
		if u.Unit == point.None {
			cell = "`\"\"`"
		}
		if !bytes.Contains(data, []byte("| "+cell+" |")) {
			t.Errorf("docs/units.md has no table row for unit %s", cell)
		}
	}
}

// TestProfilesDocExamples parses every complete profile (a YAML block with a
// top-level model: key) in docs/profiles.md, so the reference cannot drift
// from the validator.
func TestProfilesDocExamples(t *testing.T) {
	data, err := os.ReadFile("../docs/profiles.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(data, -1)
	n := 0
	for i, b := range blocks {
		if !regexp.MustCompile(`(?m)^model:`).Match(b[1]) {
			continue
		}
		n++
		if _, errs := Parse(fmt.Sprintf("docs/profiles.md block %d", i+1), b[1]); len(errs) > 0 {
			t.Errorf("%v", errs)
		}
	}
	if n == 0 {
		t.Error("docs/profiles.md has no complete profile example")
	}
}

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, must
// locate every error in the named file, and a profile it accepts must
// resolve for every variant.
func FuzzParse(f *testing.F) {
	for _, data := range shippedFiles(f) {
		f.Add(data)
	}
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		files, _ := filepath.Glob(dir + "/*.yaml")
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("model: x\npoints: [{name: a, table: holding, address: 65535, type: u64}]\n"))
	f.Add([]byte("&a {model: m, points: *a}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, errs := Parse("fuzz.yaml", data)
		for _, e := range errs {
			if e.File != "fuzz.yaml" || e.Msg == "" {
				t.Fatalf("unlocated error %#v", e)
			}
		}
		_ = errs.Error()
		if len(errs) > 0 {
			return
		}
		if p == nil {
			t.Fatal("no errors and no profile")
		}
		_ = p.Describe()
		_ = p.PointNames()
		_ = p.GroupNames()
		for _, fw := range []string{"", "1", "9.8", "UPS 99999999999999999999.1"} {
			p.Resolve(fw).Groups()
		}
		for _, v := range p.Variants {
			r := p.Resolve(strings.TrimLeft(v.Firmware, "<>= "))
			for _, pt := range r.Points {
				if (pt.Order == "" && p.Protocol != SNMP) || pt.Group == "" {
					t.Fatalf("resolved point %s without order or group", pt.Name)
				}
			}
		}
	})
}

// TestParseUnnamed checks that validation does not depend on the file
// name: an empty name still gets every semantic check.
func TestParseUnnamed(t *testing.T) {
	data, err := os.ReadFile("testdata/bad/bool-without-bit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, errs := Parse("", data)
	want := `:9:5: points[0].type: a bool in a register table needs bit: N`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("Parse(\"\") = %v, want %s", errs, want)
	}
}

// TestSNMPResolve checks Resolve, PointNames and GroupNames on an SNMP
// profile: columns and counters keep their definition names (rows and
// rates exist at poll time), counters add <name>.rate, no word order is
// set, and variants work as for Modbus.
func TestSNMPResolve(t *testing.T) {
	p := loadFixture(t, "testdata/good/snmp-ups.yaml")
	names := p.PointNames()
	for _, n := range []string{"ups.output.load", "ups.input.line_bads", "ups.input.line_bads.rate", "if.in_octets", "if.in_octets.rate", "switch.sensor", "ups.output.power", "ups.output.power.rate"} {
		if !names[n] {
			t.Errorf("PointNames lacks %s", n)
		}
	}
	for _, n := range []string{"ups.output.load.1", "battery.charge.rate", "ups.output.load.rate"} {
		if names[n] {
			t.Errorf("PointNames has %s", n)
		}
	}
	if g := p.GroupNames(); !g["default"] || !g["inventory"] || !g["safety"] || len(g) != 3 {
		t.Errorf("GroupNames() = %v", g)
	}
	tests := []struct {
		firmware string
		names    []string
		charge   string // type of battery.charge
	}{
		{"", []string{"ident.model", "ident.agent_firmware", "battery.charge", "battery.runtime", "ups.output.source", "ups.status.on_battery", "ups.output.load", "ups.input.line_bads", "ups.alarm.on_battery", "if.in_octets", "switch.sensor"}, "integer"},
		{"v6.2.1", []string{"ident.model", "ident.agent_firmware", "battery.charge", "battery.runtime", "ups.output.source", "ups.status.on_battery", "ups.output.load", "ups.alarm.on_battery", "if.in_octets", "switch.sensor", "ups.output.power"}, "gauge"},
	}
	for _, tc := range tests {
		r := p.Resolve(tc.firmware)
		var got []string
		for _, pt := range r.Points {
			got = append(got, pt.Name)
			if pt.Order != "" {
				t.Errorf("%q: %s has order %q in an snmp profile", tc.firmware, pt.Name, pt.Order)
			}
			if pt.Group == "" {
				t.Errorf("%q: %s has no group", tc.firmware, pt.Name)
			}
		}
		if !slices.Equal(got, tc.names) {
			t.Errorf("%q: points %v, want %v", tc.firmware, got, tc.names)
		}
		if c, _ := r.Point("battery.charge"); c.Type != tc.charge {
			t.Errorf("%q: battery.charge is a %s, want %s", tc.firmware, c.Type, tc.charge)
		}
		if g := r.Groups(); !slices.Equal(g, []string{"default", "inventory", "safety"}) {
			t.Errorf("%q: Groups() = %v", tc.firmware, g)
		}
	}
}

// TestSNMPKinds checks the kind each SNMP point definition produces.
func TestSNMPKinds(t *testing.T) {
	r := loadFixture(t, "testdata/good/snmp-ups.yaml").Resolve("")
	want := map[string]point.Kind{
		"ident.model": point.String, "battery.charge": point.Number, "battery.runtime": point.Number,
		"ups.output.source": point.Enum, "ups.status.on_battery": point.Bool, "ups.output.load": point.Number,
		"ups.input.line_bads": point.Number, "ups.alarm.on_battery": point.Bool, "if.in_octets": point.Number,
		"switch.sensor": point.Number,
	}
	for name, k := range want {
		pt, ok := r.Point(name)
		if !ok {
			t.Errorf("no point %s", name)
			continue
		}
		if got := pt.Kind(); got != k {
			t.Errorf("%s: kind %s, want %s", name, got, k)
		}
	}
	for name, col := range map[string]bool{"battery.charge": false, "ups.output.load": true, "ups.alarm.on_battery": true, "switch.sensor": true} {
		if pt, _ := r.Point(name); pt.IsColumn() != col {
			t.Errorf("%s: IsColumn() = %v, want %v", name, !col, col)
		}
	}
}

func TestParseOID(t *testing.T) {
	tests := []struct {
		in   string
		want []uint32
	}{
		{"1.3.6.1.2.1.1.3.0", []uint32{1, 3, 6, 1, 2, 1, 1, 3, 0}},
		{"0.0", []uint32{0, 0}},
		{"2.999.4294967295", []uint32{2, 999, 4294967295}},
		{"1.3.6.1.4.1.318.1.1.26.9.2.3.1.5", []uint32{1, 3, 6, 1, 4, 1, 318, 1, 1, 26, 9, 2, 3, 1, 5}},
		{"", nil}, {"1", nil}, {".1.3", nil}, {"1.3.", nil}, {"1..3", nil}, {"1.03", nil},
		{"3.1", nil}, {"1.40", nil}, {"1.3.4294967296", nil}, {"1.3.x", nil}, {"1.3.-1", nil}, {"1.3. 6", nil},
	}
	for _, tc := range tests {
		got, ok := ParseOID(tc.in)
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("ParseOID(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
	}
}

// TestAPCSnmpKeepsRFC1628 keeps the APC SNMP profile's copy of the RFC 1628
// points identical to the generic profile (apart from identification,
// which the APC profile reads from PowerNet, and simulator values).
func TestAPCSnmpKeepsRFC1628(t *testing.T) {
	r, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	rfc, _ := r.Get("rfc1628-ups-snmp")
	apc, _ := r.Get("apc-smart-ups-snmp")
	if rfc == nil || apc == nil {
		t.Fatal("rfc1628-ups-snmp or apc-smart-ups-snmp not shipped")
	}
	bound := func(f *float64) string {
		if f == nil {
			return "-"
		}
		return fmt.Sprint(*f)
	}
	key := func(pt PointDef) string {
		return fmt.Sprintf("%s %s %s %s %s %v %s %v %v %v %s %s %s %s %v %v", pt.OID, pt.Walk, pt.RowLabel, pt.Type, pt.Contains,
			pt.TrueValues, pt.Sensor, pt.ScaleOr1(), pt.Offset, pt.Enum, pt.Unit, pt.Group, bound(pt.Min), bound(pt.Max), pt.Absent, pt.Writable)
	}
	ar := apc.Resolve("")
	for _, pt := range rfc.Points {
		if pt.Name == "ident.model" || pt.Name == "ident.firmware" {
			continue
		}
		got, ok := ar.Point(pt.Name)
		if !ok {
			t.Errorf("apc-smart-ups-snmp lacks %s", pt.Name)
			continue
		}
		pt.Group = cmpOr(pt.Group, "default")
		if key(*got) != key(pt) {
			t.Errorf("%s differs:\n apc %s\n rfc %s", pt.Name, key(*got), key(pt))
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestShippedWritableOnlyOutlets keeps writable points to PDU outlets, the
// only thing the load-shed controller may drive.
func TestShippedWritableOnlyOutlets(t *testing.T) {
	n := 0
	for _, p := range shippedProfiles(t) {
		for _, pt := range allPoints(p) {
			if !pt.Writable {
				continue
			}
			n++
			if p.Class != "pdu" || !strings.HasPrefix(pt.Name, "pdu.outlet.") {
				t.Errorf("%s %s: only PDU outlet points may be writable", p.Model, pt.Name)
			}
		}
	}
	if n == 0 {
		t.Error("no shipped profile has a writable outlet point")
	}
}

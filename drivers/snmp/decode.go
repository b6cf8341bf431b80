package snmp

import (
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

// rawInt is an integer varbind value: i for the 32-bit types (Integer32
// is signed, the others unsigned, all fit an int64), u for Counter64.
type rawInt struct {
	i    int64
	u    uint64
	wide bool // Counter64: the value is in u
}

func (r rawInt) float() float64 {
	if r.wide {
		return float64(r.u)
	}
	return float64(r.i)
}

// uint64 returns the value as a counter reading.
func (r rawInt) uint64() uint64 {
	if r.wide {
		return r.u
	}
	return uint64(r.i)
}

// intValue extracts an integer from a varbind of any integer type.
func intValue(v gosnmp.SnmpPDU) (rawInt, bool) {
	switch x := v.Value.(type) {
	case int:
		return rawInt{i: int64(x)}, true
	case int64:
		return rawInt{i: x}, true
	case uint:
		if v.Type == gosnmp.Counter64 {
			return rawInt{u: uint64(x), wide: true}, true
		}
		return rawInt{i: int64(x)}, true
	case uint32:
		return rawInt{i: int64(x)}, true
	case uint64:
		if v.Type == gosnmp.Counter64 {
			return rawInt{u: x, wide: true}, true
		}
		return rawInt{i: int64(x)}, true
	}
	return rawInt{}, false
}

// exceptionReason is the reason for a varbind that carries an SNMPv2
// exception instead of a value, or "".
func exceptionReason(t gosnmp.Asn1BER) string {
	switch t {
	case gosnmp.NoSuchObject:
		return ReasonSNMP + ": noSuchObject"
	case gosnmp.NoSuchInstance:
		return ReasonSNMP + ": noSuchInstance"
	case gosnmp.EndOfMibView:
		return ReasonSNMP + ": endOfMibView"
	case gosnmp.Null:
		return ReasonSNMP + ": the agent returned Null"
	}
	return ""
}

// wantTypes are the wire types each profile type accepts. Integer, gauge
// and timeticks take any 32-bit integer type, because agents disagree on
// Integer32 versus Gauge32 for the same object; counters must arrive as
// themselves, because their width decides where they wrap.
var wantTypes = map[string][]gosnmp.Asn1BER{
	"integer":   {gosnmp.Integer, gosnmp.Gauge32, gosnmp.Uinteger32, gosnmp.Counter32, gosnmp.TimeTicks},
	"gauge":     {gosnmp.Integer, gosnmp.Gauge32, gosnmp.Uinteger32, gosnmp.Counter32, gosnmp.TimeTicks},
	"timeticks": {gosnmp.TimeTicks, gosnmp.Integer, gosnmp.Gauge32, gosnmp.Uinteger32},
	"counter32": {gosnmp.Counter32},
	"counter64": {gosnmp.Counter64},
	"string":    {gosnmp.OctetString},
	"oid":       {gosnmp.ObjectIdentifier},
}

// decodeValue decodes one varbind into p as def says: kind, value, unit,
// quality and reason. It returns the raw integer for counters (ok false
// when p is not a good counter reading).
func decodeValue(def *profiles.PointDef, v gosnmp.SnmpPDU, p *point.Point) (raw rawInt, ok bool) {
	p.Kind, p.Unit = def.Kind(), point.Unit(def.Unit)
	p.Quality, p.Reason, p.Num, p.Str = point.Good, "", 0, ""
	if r := exceptionReason(v.Type); r != "" {
		bad(p, r)
		return raw, false
	}
	if !slices.Contains(wantTypes[def.Type], v.Type) {
		bad(p, fmt.Sprintf("%s: want %s, the agent sent %s", point.ReasonDecode, def.Type, v.Type))
		return raw, false
	}
	switch def.Type {
	case "string":
		p.Str = text(v)
		return raw, false
	case "oid":
		p.Str = oidText(v)
		return raw, false
	}
	raw, ok = intValue(v)
	if !ok {
		bad(p, fmt.Sprintf("%s: %s value of type %T", point.ReasonDecode, v.Type, v.Value))
		return raw, false
	}
	for _, a := range def.Absent {
		if (!raw.wide && a == raw.i) || (raw.wide && a >= 0 && uint64(a) == raw.u) {
			bad(p, fmt.Sprintf("%s: device reports %d (%s)", point.ReasonAbsent, a, def.AbsentText()))
			return raw, false
		}
	}
	switch {
	case len(def.TrueValues) > 0:
		if slices.Contains(def.TrueValues, raw.i) {
			p.Num = 1
		}
		return raw, false
	case len(def.Enum) > 0:
		p.Num, p.Str = float64(raw.i), def.Enum[raw.i]
		return raw, false
	}
	f := raw.float()
	if def.Type == "timeticks" {
		f /= 100
	}
	p.Num = f*def.ScaleOr1() + def.Offset
	checkRange(def, p)
	return raw, def.IsCounter()
}

// text renders an OCTET STRING: printable UTF-8 as itself, trimmed of NULs
// and spaces; anything else (a MAC address, binary) as colon-separated
// hex.
func text(v gosnmp.SnmpPDU) string {
	b, _ := v.Value.([]byte)
	s := strings.Trim(string(b), "\x00 ")
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		h := hex.EncodeToString(b)
		var sb strings.Builder
		for i := 0; i < len(h); i += 2 {
			if i > 0 {
				sb.WriteByte(':')
			}
			sb.WriteString(h[i : i+2])
		}
		return sb.String()
	}
	return s
}

// oidText renders an OBJECT IDENTIFIER value without gosnmp's leading dot.
func oidText(v gosnmp.SnmpPDU) string {
	s, _ := v.Value.(string)
	return strings.TrimPrefix(s, ".")
}

// labelText renders a row label column's value: text, or the number of an
// integer column.
func labelText(v gosnmp.SnmpPDU) string {
	switch v.Type {
	case gosnmp.OctetString:
		return text(v)
	case gosnmp.ObjectIdentifier:
		return oidText(v)
	}
	if r, ok := intValue(v); ok {
		if r.wide {
			return strconv.FormatUint(r.u, 10)
		}
		return strconv.FormatInt(r.i, 10)
	}
	return ""
}

// maxLabel caps the length of a sanitised row label.
const maxLabel = 64

// SanitizeLabel turns a row label (an interface or outlet name, or a row
// index) into a point name segment: lower case a-z, 0-9 and '_', every run
// of other characters one '_', none at either end, at most 64 characters.
// "Gi1/0/1" gives "gi1_0_1", "Outlet 3" "outlet_3", the index "1.2" "1_2".
// It returns "" when nothing is left.
func SanitizeLabel(s string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if under && b.Len() > 0 {
				b.WriteByte('_')
			}
			under = false
			b.WriteRune(r)
			if b.Len() >= maxLabel {
				break
			}
			continue
		}
		under = true
	}
	return b.String()
}

// rowNames names the rows of a column by their labels: SanitizeLabel of
// the label when it has one, else of the index; labels that collide (two
// ports named alike, a label that equals another row's index) get
// "_<index>" appended, so every row keeps a distinct, stable name.
func rowNames(indexes []string, labels map[string]string) []string {
	names := make([]string, len(indexes))
	count := map[string]int{}
	for i, idx := range indexes {
		n := SanitizeLabel(labels[idx])
		if n == "" {
			n = SanitizeLabel(idx)
		}
		names[i] = n
		count[n]++
	}
	// Appending the (unique) index settles every collision within a few
	// rounds: a second round is needed only when a suffixed name equals
	// another row's label, such as "a" at index 1 next to "a_1".
	for round := 0; round < 4; round++ {
		clash := false
		for i, idx := range indexes {
			if count[names[i]] > 1 || names[i] == "" {
				names[i] = strings.Trim(names[i]+"_"+SanitizeLabel(idx), "_")
				clash = true
			}
		}
		if !clash {
			break
		}
		clear(count)
		for _, n := range names {
			count[n]++
		}
	}
	return names
}

// entityUnits are the units of entPhySensorType values (RFC 3433
// EntitySensorDataType; 13 and 14 from CISCO-ENTITY-SENSOR-MIB). cmm
// (cubic metres per minute) is converted to litres per second; other(1),
// unknown(2), truthvalue(12), specialEnum(13) and dBm(14) have no unit in
// facgw's vocabulary.
var entityUnits = map[int64]point.Unit{
	3: point.Volt, 4: point.Volt, 5: point.Ampere, 6: point.Watt, 7: point.Hertz,
	8: point.Celsius, 9: point.PercentRH, 10: point.RPM, 11: point.LitrePerS,
}

// entityValue computes an ENTITY-SENSOR-MIB reading: value x
// 10^(3(scale-9)) x 10^-precision, in the base unit of the sensor type.
// A negative exponent divides, so 2345 at precision 2 is exactly 23.45.
func entityValue(sensorType, scale, precision, value int64) (float64, point.Unit) {
	e := 3*(scale-9) - precision
	v := float64(value)
	if e >= 0 {
		v *= math.Pow10(int(e))
	} else {
		v /= math.Pow10(int(-e))
	}
	switch sensorType {
	case 11: // cmm: m³/min to L/s
		v = v * 1000 / 60
	case 12: // truthvalue: true(1), false(2)
		if value == 1 {
			v = 1
		} else {
			v = 0
		}
	}
	return v, entityUnits[sensorType]
}

// entityStatusReason is the reason for an entPhySensorOperStatus other
// than ok(1).
func entityStatusReason(status int64) string {
	switch status {
	case 1:
		return ""
	case 2:
		return point.ReasonAbsent + ": sensor unavailable (entPhySensorOperStatus 2)"
	case 3:
		return point.ReasonAbsent + ": sensor nonoperational (entPhySensorOperStatus 3)"
	}
	return fmt.Sprintf("%s: entPhySensorOperStatus %d", point.ReasonDecode, status)
}

func checkRange(def *profiles.PointDef, p *point.Point) {
	if (def.Min != nil && p.Num < *def.Min) || (def.Max != nil && p.Num > *def.Max) {
		lo, hi := "-inf", "+inf"
		if def.Min != nil {
			lo = fmt.Sprint(*def.Min)
		}
		if def.Max != nil {
			hi = fmt.Sprint(*def.Max)
		}
		bad(p, fmt.Sprintf("%s: %g outside %s..%s", point.ReasonOutOfRange, p.Num, lo, hi))
	}
}

func bad(p *point.Point, reason string) {
	p.Quality, p.Reason = point.Bad, reason
}

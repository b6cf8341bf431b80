package snmpagent

import (
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"
)

// Value is a typed SNMP value. Type is the BER tag (gosnmp.Integer,
// gosnmp.Counter32, ...); which of the other fields holds the value depends
// on it. Values are comparable with ==; build them with the constructors
// (Integer, Gauge32, ...), which is how a Store expects them.
type Value struct {
	Type gosnmp.Asn1BER
	// Int holds an Integer (Integer32 range).
	Int int64
	// Uint holds a Counter32, Gauge32, TimeTicks (32-bit range) or Counter64.
	Uint uint64
	// Str holds the bytes of an OctetString, the dotted form (no leading
	// dot) of an ObjectIdentifier, or the dotted quad of an IpAddress. For
	// types this package does not model (received in a trap), it holds a
	// printable rendering of the value.
	Str string
}

// Integer returns an Integer (Integer32) value.
func Integer(v int32) Value { return Value{Type: gosnmp.Integer, Int: int64(v)} }

// Gauge32 returns a Gauge32 value.
func Gauge32(v uint32) Value { return Value{Type: gosnmp.Gauge32, Uint: uint64(v)} }

// Counter32 returns a Counter32 value.
func Counter32(v uint32) Value { return Value{Type: gosnmp.Counter32, Uint: uint64(v)} }

// Counter64 returns a Counter64 value (not representable in SNMPv1).
func Counter64(v uint64) Value { return Value{Type: gosnmp.Counter64, Uint: v} }

// TimeTicks returns a TimeTicks value, in hundredths of a second.
func TimeTicks(v uint32) Value { return Value{Type: gosnmp.TimeTicks, Uint: uint64(v)} }

// OctetString returns an OctetString value holding the bytes of s.
func OctetString(s string) Value { return Value{Type: gosnmp.OctetString, Str: s} }

// ObjectIdentifier returns an ObjectIdentifier value. An invalid OID is
// reported when the value is stored or sent.
func ObjectIdentifier(oid string) Value {
	if n, err := NormalizeOID(oid); err == nil {
		oid = n
	}
	return Value{Type: gosnmp.ObjectIdentifier, Str: oid}
}

// IPAddress returns an IpAddress value from a dotted IPv4 address. An
// invalid address is reported when the value is stored or sent.
func IPAddress(ip string) Value { return Value{Type: gosnmp.IPAddress, Str: ip} }

// Validate reports whether v is a well-formed value of one of the types an
// agent serves: Integer, Gauge32, Counter32, Counter64, TimeTicks,
// OctetString, ObjectIdentifier or IpAddress.
func (v Value) Validate() error {
	switch v.Type {
	case gosnmp.Integer:
		if v.Int < math.MinInt32 || v.Int > math.MaxInt32 {
			return fmt.Errorf("snmpagent: Integer %d outside Integer32", v.Int)
		}
	case gosnmp.Gauge32, gosnmp.Counter32, gosnmp.TimeTicks:
		if v.Uint > math.MaxUint32 {
			return fmt.Errorf("snmpagent: %s %d outside 32 bits", v.Type, v.Uint)
		}
	case gosnmp.Counter64, gosnmp.OctetString:
	case gosnmp.ObjectIdentifier:
		if _, err := parseOID(v.Str); err != nil {
			return fmt.Errorf("snmpagent: ObjectIdentifier value: %w", err)
		}
	case gosnmp.IPAddress:
		a, err := netip.ParseAddr(v.Str)
		if err != nil || !a.Is4() {
			return fmt.Errorf("snmpagent: IpAddress %q is not an IPv4 address", v.Str)
		}
	default:
		return fmt.Errorf("snmpagent: unsupported value type %s", v.Type)
	}
	return nil
}

// String renders the value for logs and tests, e.g. "INTEGER: 2" or
// "Gauge32: 230", close to net-snmp's output.
func (v Value) String() string {
	switch v.Type {
	case gosnmp.Integer:
		return "INTEGER: " + strconv.FormatInt(v.Int, 10)
	case gosnmp.Gauge32:
		return "Gauge32: " + strconv.FormatUint(v.Uint, 10)
	case gosnmp.Counter32:
		return "Counter32: " + strconv.FormatUint(v.Uint, 10)
	case gosnmp.Counter64:
		return "Counter64: " + strconv.FormatUint(v.Uint, 10)
	case gosnmp.TimeTicks:
		return "Timeticks: " + strconv.FormatUint(v.Uint, 10)
	case gosnmp.Uinteger32:
		return "UInteger32: " + strconv.FormatUint(v.Uint, 10)
	case gosnmp.OctetString:
		if utf8.ValidString(v.Str) {
			return "STRING: " + strconv.Quote(v.Str)
		}
		return "Hex-STRING: " + hex.EncodeToString([]byte(v.Str))
	case gosnmp.ObjectIdentifier:
		return "OID: " + v.Str
	case gosnmp.IPAddress:
		return "IpAddress: " + v.Str
	case gosnmp.Null:
		return "NULL"
	}
	return v.Type.String() + ": " + v.Str
}

// pdu converts v into the gosnmp varbind that marshals it. v must be valid.
func (v Value) pdu(name string) gosnmp.SnmpPDU {
	p := gosnmp.SnmpPDU{Name: name, Type: v.Type}
	switch v.Type {
	case gosnmp.Integer:
		p.Value = int(v.Int)
	case gosnmp.Gauge32, gosnmp.Counter32, gosnmp.TimeTicks:
		p.Value = uint32(v.Uint)
	case gosnmp.Counter64:
		p.Value = v.Uint
	case gosnmp.OctetString:
		p.Value = []byte(v.Str)
	case gosnmp.ObjectIdentifier:
		p.Value = v.Str
	case gosnmp.IPAddress:
		a, _ := netip.ParseAddr(v.Str)
		b := a.As4()
		p.Value = b[:]
	default:
		p.Type, p.Value = gosnmp.Null, nil
	}
	return p
}

// ValueFromPDU converts a varbind value decoded by gosnmp into a Value,
// copying any bytes (gosnmp's may alias the packet buffer). Types outside
// the ones an agent serves keep their tag, with a printable rendering in
// Str; Null, noSuchObject, noSuchInstance and endOfMibView have no payload.
func ValueFromPDU(p gosnmp.SnmpPDU) Value {
	v := Value{Type: p.Type}
	switch p.Type {
	case gosnmp.Integer:
		if n, ok := p.Value.(int); ok {
			v.Int = int64(n)
		}
	case gosnmp.Counter32, gosnmp.Gauge32, gosnmp.TimeTicks, gosnmp.Counter64, gosnmp.Uinteger32:
		v.Uint = toUint64(p.Value)
	case gosnmp.OctetString, gosnmp.BitString, gosnmp.NsapAddress:
		switch b := p.Value.(type) {
		case []byte:
			v.Str = string(b)
		case string:
			v.Str = b
		}
	case gosnmp.ObjectIdentifier:
		if s, ok := p.Value.(string); ok {
			v.Str = trimDot(s)
		}
	case gosnmp.IPAddress:
		switch a := p.Value.(type) {
		case string:
			v.Str = a
		case []byte:
			v.Str = net.IP(a).String()
		}
	case gosnmp.Null, gosnmp.NoSuchObject, gosnmp.NoSuchInstance, gosnmp.EndOfMibView:
	default:
		if p.Value != nil {
			v.Str = fmt.Sprint(p.Value)
		}
	}
	return v
}

// toUint64 returns the unsigned integer gosnmp decoded (uint, uint32 or
// uint64 depending on the type), or 0.
func toUint64(x any) uint64 {
	switch n := x.(type) {
	case uint:
		return uint64(n)
	case uint32:
		return uint64(n)
	case uint64:
		return n
	case int:
		if n >= 0 {
			return uint64(n)
		}
	}
	return 0
}

func trimDot(s string) string {
	if len(s) > 0 && s[0] == '.' {
		return s[1:]
	}
	return s
}

// Varbind is an OID (dotted, no leading dot) with its value.
type Varbind struct {
	OID   string
	Value Value
}

// String renders the varbind as "OID = TYPE: value".
func (vb Varbind) String() string { return vb.OID + " = " + vb.Value.String() }

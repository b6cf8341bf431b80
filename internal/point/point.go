// Package point defines the one value type every stage of facgw speaks: a
// reading from a device, with its unit, the time of the poll that produced
// it and its quality. Drivers produce points, the pipeline fans them out,
// rules and sinks consume them. Quality travels with every value: a bad or
// stale point still carries its last value for display, but no consumer may
// treat it as a healthy reading.
package point

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Quality says whether a value can be trusted. The zero value is Good only
// for historical reasons of the Go zero value; drivers always set it.
type Quality uint8

const (
	// Good: read from the device in the latest poll and decoded as the
	// profile says.
	Good Quality = iota
	// Stale: not refreshed within the configured number of poll intervals.
	// The value is the last good one, for display only.
	Stale
	// Bad: the latest poll failed for this point; Reason says why.
	Bad
)

var qualityNames = [...]string{Good: "good", Stale: "stale", Bad: "bad"}

// String returns "good", "stale" or "bad".
func (q Quality) String() string {
	if int(q) < len(qualityNames) {
		return qualityNames[q]
	}
	return "quality(" + strconv.Itoa(int(q)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (q Quality) MarshalText() ([]byte, error) { return []byte(q.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (q *Quality) UnmarshalText(b []byte) error {
	for i, n := range qualityNames {
		if n == string(b) {
			*q = Quality(i)
			return nil
		}
	}
	return fmt.Errorf("point: unknown quality %q", b)
}

// Worst returns the worse of two qualities (bad > stale > good), the rule
// for values derived from several inputs.
func Worst(a, b Quality) Quality {
	if a > b {
		return a
	}
	return b
}

// Kind is the type of a point's value.
type Kind uint8

const (
	// Number is a float64 in Num, after scale and offset.
	Number Kind = iota
	// Bool is 0 or 1 in Num.
	Bool
	// Enum is a raw integer code in Num and its name, when the profile
	// knows one, in Str.
	Enum
	// String is text in Str (identification strings, model names).
	String
)

var kindNames = [...]string{Number: "number", Bool: "bool", Enum: "enum", String: "string"}

// String names the kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Reason codes for bad quality. Reason strings start with one of these so
// consumers can group them; the rest of the string is the detail.
const (
	ReasonTimeout    = "timeout"
	ReasonException  = "exception" // e.g. "exception: illegal data address (02)"
	ReasonDecode     = "decode"    // e.g. "decode: f32 is NaN"
	ReasonOutOfRange = "out of range"
	ReasonAbsent     = "absent"     // device reported its "no sensor" sentinel
	ReasonConnection = "connection" // refused, reset, EOF
	ReasonProtocol   = "protocol"   // malformed or mismatched reply
	ReasonStale      = "stale"
	ReasonNotPolled  = "not polled"
)

// Point is one reading. Device and Name identify it; Name is a dotted path
// such as "battery.temperature" or "ups.output.load". Time is the start of
// the poll that produced it, in UTC.
type Point struct {
	Device  string
	Name    string
	Kind    Kind
	Num     float64
	Str     string
	Unit    Unit
	Time    time.Time
	Quality Quality
	// Reason is empty for good points and starts with a Reason* code for
	// bad and stale ones.
	Reason string
}

// Value returns the value as a Go value: float64, bool or string (an enum
// returns its name when known, else its code as float64).
func (p Point) Value() any {
	switch p.Kind {
	case Bool:
		return p.Num != 0
	case String:
		return p.Str
	case Enum:
		if p.Str != "" {
			return p.Str
		}
		return p.Num
	default:
		return p.Num
	}
}

// Format renders the value for people: numbers with up to 3 decimals and
// the unit, enums as "name (code)".
func (p Point) Format() string {
	switch p.Kind {
	case Bool:
		if p.Num != 0 {
			return "true"
		}
		return "false"
	case String:
		return strconv.Quote(p.Str)
	case Enum:
		code := strconv.FormatFloat(p.Num, 'f', -1, 64)
		if p.Str != "" {
			return p.Str + " (" + code + ")"
		}
		return code
	}
	s := strconv.FormatFloat(round3(p.Num), 'f', -1, 64)
	if p.Unit != None {
		s += " " + string(p.Unit)
	}
	return s
}

func round3(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	return math.Round(v*1000) / 1000
}

// MarshalJSON writes {"name","value","unit","time","quality","reason"};
// enums also carry their numeric "code". NaN and infinities, which JSON
// cannot carry, are written as null. See AppendJSON.
func (p Point) MarshalJSON() ([]byte, error) {
	return p.AppendJSON(make([]byte, 0, 128))
}

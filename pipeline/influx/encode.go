package influx

import (
	"bytes"
	"cmp"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/facgw/facgw/internal/point"
)

// ErrMeasurement is returned by [Encoder.Append] for a measurement that line
// protocol cannot carry: empty, or starting with '#' (a comment line).
var ErrMeasurement = errors.New("influx: invalid measurement")

// Encoder turns points into InfluxDB line protocol. It does its own escaping
// (the client library's encoder cannot represent a trailing backslash and
// writes control characters as text), so that every line it produces parses
// back, unambiguously, to the measurement, tags and fields the points say;
// the tests (a strict parser and FuzzEncode) prove it.
//
// The shape of a line:
//
//	<class>,device=<device>,gateway=<gateway>,site=<site> <field>=<value>,... <unix ns>
//
// One line is written per device and poll time; its fields are the points,
// named by the point name with dots replaced by underscores
// ("battery.charge" becomes battery_charge), in key order. Values:
//
//   - Number and Enum: a float (an enum writes its code, not its name).
//   - Bool: true or false.
//   - String: a string field.
//   - A point whose quality is not good writes no value, because a bad or
//     stale point's value is not a reading; it writes the string field
//     <field>_quality="bad" or "stale" instead, so the gap in the history
//     is explained. A good point whose value is NaN or ±Inf (which line
//     protocol cannot carry and which is no reading either) is written as
//     <field>_quality="bad".
//
// Escaping follows the line protocol reference: commas and spaces in the
// measurement; commas, equals signs and spaces in tag keys, tag values and
// field keys; double quotes in field keys and string field values (the
// parsers of InfluxDB and VictoriaMetrics take any unescaped quote in the
// field set as the start of a string); and backslashes everywhere as a
// doubled backslash, so a value ending in a backslash cannot swallow the
// separator after it. Line protocol has no escape for a newline
// outside a string field: a newline or carriage return in a name is written
// as an (escaped) space; in a string field as the two characters \n or \r.
// Invalid UTF-8 is replaced by U+FFFD. Empty tag values are left out (line
// protocol forbids them), points with an empty name are skipped, and a field
// that would be named "time" (which InfluxDB refuses) is named "time_".
//
// An Encoder keeps scratch space between calls to avoid allocations, so it
// is not safe for concurrent use; give each goroutine its own or guard it.
type Encoder struct {
	tags []byte // ",gateway=..,site=.." (escaped); device goes before them
	keys []sortKey
	kbuf []byte // the escaped field keys of keys
}

// sortKey orders a batch's points into lines (device, time) and fields
// (field key, as written); i keeps the input order among points that would
// write the same field, so the last one wins.
type sortKey struct {
	device string
	ns     int64
	k0, k1 int // field key in Encoder.kbuf
	i      int
	good   bool // write the value, not a quality marker
}

// NewEncoder returns an Encoder that tags every line with site and gateway
// (left out when empty).
func NewEncoder(site, gateway string) *Encoder {
	e := &Encoder{}
	// Tags in key order (device < gateway < site), as InfluxDB prefers.
	if gateway != "" {
		e.tags = append(e.tags, ",gateway="...)
		e.tags = appendName(e.tags, gateway, tagName)
	}
	if site != "" {
		e.tags = append(e.tags, ",site="...)
		e.tags = appendName(e.tags, site, tagName)
	}
	return e
}

// Timestamps line protocol can carry: int64 nanoseconds since the epoch.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// Append appends the lines for pts to dst, each ending in '\n', and returns
// the extended buffer. measurement is the devices' profile class ("ups",
// "battery", ...). A point whose Time is zero or outside the range of
// nanosecond timestamps is written at now. If two points of pts would write
// the same field of the same line (same device, time and field key), the
// later one is written. Nothing is appended when no point can be written
// (all names empty).
func (e *Encoder) Append(dst []byte, measurement string, pts []point.Point, now time.Time) ([]byte, error) {
	if measurement == "" || measurement[0] == '#' {
		return dst, ErrMeasurement
	}
	if len(pts) == 0 {
		return dst, nil
	}
	nowNS := now.UnixNano()
	keys, kbuf := e.keys[:0], e.kbuf[:0]
	for i := range pts {
		p := &pts[i]
		if p.Name == "" {
			continue
		}
		ns := nowNS
		if !p.Time.IsZero() && p.Time.After(minTime) && p.Time.Before(maxTime) {
			ns = p.Time.UnixNano()
		}
		good := p.Quality == point.Good && (p.Kind == point.String || !(math.IsNaN(p.Num) || math.IsInf(p.Num, 0)))
		k0 := len(kbuf)
		kbuf = appendFieldKey(kbuf, p.Name, good)
		keys = append(keys, sortKey{device: p.Device, ns: ns, k0: k0, k1: len(kbuf), i: i, good: good})
	}
	e.keys, e.kbuf = keys, kbuf
	// A poll's points are usually one line already; the sort makes lines
	// and field order deterministic whatever the input order.
	slices.SortFunc(keys, func(a, b sortKey) int {
		if c := strings.Compare(a.device, b.device); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ns, b.ns); c != 0 {
			return c
		}
		if c := bytes.Compare(kbuf[a.k0:a.k1], kbuf[b.k0:b.k1]); c != 0 {
			return c
		}
		return a.i - b.i
	})

	for start := 0; start < len(keys); {
		end := start + 1
		for end < len(keys) && keys[end].device == keys[start].device && keys[end].ns == keys[start].ns {
			end++
		}
		dst = e.appendLine(dst, measurement, pts, keys[start:end])
		start = end
	}
	// Do not pin the caller's strings until the next call.
	clear(e.keys)
	return dst, nil
}

// appendLine writes one line for the points of one device and time.
func (e *Encoder) appendLine(dst []byte, measurement string, pts []point.Point, keys []sortKey) []byte {
	dst = appendName(dst, measurement, measurementName)
	if dev := keys[0].device; dev != "" {
		dst = append(dst, ",device="...)
		dst = appendName(dst, dev, tagName)
	}
	dst = append(dst, e.tags...)
	sep := byte(' ')
	for j, k := range keys {
		key := e.kbuf[k.k0:k.k1]
		if j+1 < len(keys) && bytes.Equal(e.kbuf[keys[j+1].k0:keys[j+1].k1], key) {
			continue // a later point writing the same field wins
		}
		dst = append(dst, sep)
		sep = ','
		dst = append(dst, key...)
		dst = append(dst, '=')
		dst = appendValue(dst, &pts[k.i], k.good)
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, keys[0].ns, 10)
	return append(dst, '\n')
}

// appendValue writes a point's value, or its quality when the value is not
// a reading (the key then already ends in "_quality").
func appendValue(dst []byte, p *point.Point, good bool) []byte {
	if !good {
		q := p.Quality
		if q == point.Good { // NaN or Inf
			q = point.Bad
		}
		return appendString(dst, q.String())
	}
	switch p.Kind {
	case point.Bool:
		return strconv.AppendBool(dst, p.Num != 0)
	case point.String:
		return appendString(dst, p.Str)
	default: // Number, Enum (its code) and kinds added later
		return appendFloat(dst, p.Num)
	}
}

// appendFloat writes a finite float the way encoding/json does: plain
// decimals, exponent form only for very small or very large magnitudes.
// Line protocol reads both as floats (integers would need an "i" suffix).
func appendFloat(dst []byte, v float64) []byte {
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.AppendFloat(dst, v, 'e', -1, 64)
	}
	return strconv.AppendFloat(dst, v, 'f', -1, 64)
}

// What a name is, for escaping.
const (
	measurementName = iota
	tagName         // tag key or value
	fieldKey
)

// special marks, per kind of name, the bytes appendName must rewrite.
var special = func() (t [3][256]bool) {
	for k := range t {
		for _, c := range ", \\\n\r" {
			t[k][c] = true
		}
	}
	t[tagName]['='], t[fieldKey]['='] = true, true
	t[fieldKey]['"'], t[fieldKey]['.'] = true, true
	return t
}()

// appendName escapes a measurement, tag key, tag value or field key. Field
// keys also get their dots replaced by underscores.
func appendName(dst []byte, s string, kind int) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	sp := &special[kind]
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !sp[c] {
			continue
		}
		dst = append(dst, s[start:i]...)
		start = i + 1
		switch c {
		case '\n', '\r':
			dst = append(dst, '\\', ' ')
		case '.':
			dst = append(dst, '_')
		default:
			// , space \ in every name; = in tags and field keys; " in field
			// keys, since InfluxDB's and VictoriaMetrics' parsers take any
			// unescaped quote in the field set as the start of a string.
			dst = append(dst, '\\', c)
		}
	}
	return append(dst, s[start:]...)
}

// appendFieldKey writes the field key of a point named name: dots become
// underscores; a point whose value is not written gets the suffix
// "_quality"; and "time", which InfluxDB refuses as a field key, becomes
// "time_".
func appendFieldKey(dst []byte, name string, good bool) []byte {
	dst = appendName(dst, name, fieldKey)
	switch {
	case !good:
		dst = append(dst, "_quality"...)
	case name == "time":
		dst = append(dst, '_')
	}
	return dst
}

// appendString writes a quoted string field value.
func appendString(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// countFields returns the number of lines and fields in line protocol
// written by an Encoder: the sink's count of points written, taken from the
// outbox payload so it survives a restart.
func countFields[T string | []byte](b T) (lines, fields int) {
	const (
		head = iota // measurement and tags
		body        // fields
		tail        // timestamp
	)
	state, quoted := head, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '\\':
			i++ // the escaped byte is never a separator
		case quoted:
			if c == '"' {
				quoted = false
			}
		case c == '\n':
			if state != head {
				lines++
			}
			state = head
		case state == head && c == ' ':
			state = body
			fields++
		case state == body && c == '"':
			quoted = true
		case state == body && c == ',':
			fields++
		case state == body && c == ' ':
			state = tail
		}
	}
	if state != head {
		lines++ // no final newline
	}
	return lines, fields
}

package point

import (
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the point's JSON form to dst: the bytes
// json.Marshal(p) gives, without reflection, since every published message
// encodes every point and reflection was a fifth of the gateway's CPU
// under load (docs/benchmarks.md). The fields are device (omitted when
// empty), name, value, code (enums only), unit (omitted when empty), time,
// quality and reason (omitted when empty). NaN and infinities are null.
func (p Point) AppendJSON(dst []byte) ([]byte, error) {
	if y := p.Time.Year(); y < 0 || y >= 10000 {
		return dst, errors.New("point: time year outside of range [0,9999]")
	}
	dst = append(dst, '{')
	if p.Device != "" {
		dst = append(dst, `"device":`...)
		dst = appendString(dst, p.Device)
		dst = append(dst, ',')
	}
	dst = append(dst, `"name":`...)
	dst = appendString(dst, p.Name)
	dst = append(dst, `,"value":`...)
	switch v := p.Value().(type) {
	case bool:
		dst = strconv.AppendBool(dst, v)
	case string:
		dst = appendString(dst, v)
	case float64:
		dst = appendFloat(dst, v)
	}
	if p.Kind == Enum {
		dst = append(dst, `,"code":`...)
		dst = appendFloat(dst, p.Num)
	}
	if p.Unit != None {
		dst = append(dst, `,"unit":`...)
		dst = appendString(dst, string(p.Unit))
	}
	dst = append(dst, `,"time":"`...)
	dst = p.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","quality":"`...)
	dst = append(dst, p.Quality.String()...)
	dst = append(dst, '"')
	if p.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendString(dst, p.Reason)
	}
	return append(dst, '}'), nil
}

// appendFloat formats as encoding/json does: shortest representation,
// exponent form outside [1e-6, 1e21), null for NaN and infinities.
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json writes it.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does, HTML-safe escaping
// included, so the output is byte for byte the same.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

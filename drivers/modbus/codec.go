package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

// orderSwaps returns whether an order swaps the words of a multi-register
// value and whether it swaps the two bytes inside each register. ABCD is
// the Modbus default (big-endian words, most significant word first).
func orderSwaps(order string) (words, bytes bool) {
	switch order {
	case "CDAB":
		return true, false
	case "BADC":
		return false, true
	case "DCBA":
		return true, true
	}
	return false, false
}

// regsToBytes lays registers out as the bytes A B C D ... of the value,
// most significant first, undoing the device's word and byte order.
func regsToBytes(regs []uint16, order string, dst []byte) []byte {
	ws, bs := orderSwaps(order)
	n := len(regs)
	dst = dst[:0]
	for i := 0; i < n; i++ {
		r := regs[i]
		if ws {
			r = regs[n-1-i]
		}
		hi, lo := byte(r>>8), byte(r)
		if bs {
			hi, lo = lo, hi
		}
		dst = append(dst, hi, lo)
	}
	return dst
}

// bytesToRegs is the inverse of regsToBytes.
func bytesToRegs(b []byte, order string) []uint16 {
	ws, bs := orderSwaps(order)
	n := len(b) / 2
	regs := make([]uint16, n)
	for i := 0; i < n; i++ {
		hi, lo := b[2*i], b[2*i+1]
		if bs {
			hi, lo = lo, hi
		}
		j := i
		if ws {
			j = n - 1 - i
		}
		regs[j] = uint16(hi)<<8 | uint16(lo)
	}
	return regs
}

// DecodeError is a value that could not be turned into a good reading. Its
// Reason starts with a point.Reason* code.
type DecodeError struct {
	Reason string
}

func (e *DecodeError) Error() string { return e.Reason }

// DecodeRegisters decodes a register-table point from exactly Width()
// registers into p (Kind, Num, Str, Unit, Quality and Reason). It never
// panics: a short slice is a decode error.
func DecodeRegisters(def *profiles.PointDef, regs []uint16, p *point.Point) {
	p.Kind = def.Kind()
	p.Unit = point.Unit(def.Unit)
	p.Quality, p.Reason = point.Good, ""
	p.Num, p.Str = 0, ""
	if len(regs) < def.Width() || def.Width() == 0 {
		bad(p, point.ReasonDecode+fmt.Sprintf(": need %d registers, got %d", def.Width(), len(regs)))
		return
	}
	regs = regs[:def.Width()]
	var buf [250]byte
	b := regsToBytes(regs, def.Order, buf[:0])
	if def.Type == "string" {
		p.Str = strings.TrimRight(strings.TrimLeft(string(b), "\x00 "), "\x00 ")
		if !validText(p.Str) {
			bad(p, point.ReasonDecode+": string has non-printable bytes")
		}
		return
	}
	var raw int64
	var f float64
	isFloat := false
	switch def.Type {
	case "u16", "bool":
		raw = int64(binary.BigEndian.Uint16(b))
	case "s16":
		raw = int64(int16(binary.BigEndian.Uint16(b)))
	case "u32":
		raw = int64(binary.BigEndian.Uint32(b))
	case "s32":
		raw = int64(int32(binary.BigEndian.Uint32(b)))
	case "u64", "s64":
		raw = int64(binary.BigEndian.Uint64(b))
	case "f32":
		f, isFloat = float64(math.Float32frombits(binary.BigEndian.Uint32(b))), true
	case "f64":
		f, isFloat = math.Float64frombits(binary.BigEndian.Uint64(b)), true
	default:
		bad(p, point.ReasonDecode+": unknown type "+def.Type)
		return
	}
	if !isFloat {
		for _, a := range def.Absent {
			if a == raw || (def.Type[0] == 'u' && a < 0 && uint64(raw) == uint64(a)&widthMask(def.Type)) {
				bad(p, point.ReasonAbsent+fmt.Sprintf(": device reports %d (%s)", raw, def.AbsentText()))
				return
			}
		}
	}
	switch {
	case def.Bit != nil:
		p.Num = float64((uint64(raw) >> uint(*def.Bit)) & 1)
		return
	case len(def.Enum) > 0:
		p.Num = float64(raw)
		p.Str = def.Enum[raw]
		return
	}
	if isFloat {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			bad(p, point.ReasonDecode+fmt.Sprintf(": %s is %v (wrong word order?)", def.Type, f))
			return
		}
	} else if def.Type == "u64" {
		f = float64(uint64(raw))
	} else {
		f = float64(raw)
	}
	p.Num = f*def.ScaleOr1() + def.Offset
	checkRange(def, p)
}

func widthMask(typ string) uint64 {
	switch typ {
	case "u16":
		return 0xFFFF
	case "u32":
		return 0xFFFFFFFF
	}
	return math.MaxUint64
}

// DecodeBit decodes a coil or discrete input point.
func DecodeBit(def *profiles.PointDef, on bool, p *point.Point) {
	p.Kind, p.Unit, p.Quality, p.Reason, p.Str = point.Bool, point.Unit(def.Unit), point.Good, "", ""
	p.Num = 0
	if on {
		p.Num = 1
	}
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

func validText(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xFFFD {
			return false
		}
	}
	return true
}

// EncodeRegisters turns an engineering value into the registers a device
// would hold for it: the inverse of DecodeRegisters, used by the simulator
// and the load-shed write path. cur holds the current registers and is
// needed for bit points, which change one bit of a shared register. value
// is a float64, bool, int or string.
func EncodeRegisters(def *profiles.PointDef, value any, cur []uint16) ([]uint16, error) {
	w := def.Width()
	if def.Type == "string" {
		s, ok := value.(string)
		if !ok {
			return nil, fmt.Errorf("point %q: want a string, got %T", def.Name, value)
		}
		b := make([]byte, 2*w)
		copy(b, s)
		return bytesToRegs(b, def.Order), nil
	}
	var f float64
	switch v := value.(type) {
	case float64:
		f = v
	case int:
		f = float64(v)
	case int64:
		f = float64(v)
	case bool:
		if v {
			f = 1
		}
	default:
		return nil, fmt.Errorf("point %q: want a number or bool, got %T", def.Name, value)
	}
	b := make([]byte, 2*w)
	if def.Bit != nil {
		if len(cur) < w {
			cur = make([]uint16, w)
		}
		raw := bytesOf(cur[:w], def.Order)
		mask := uint64(1) << uint(*def.Bit)
		if f != 0 {
			raw |= mask
		} else {
			raw &^= mask
		}
		putUint(b, raw)
		return bytesToRegs(b, def.Order), nil
	}
	if len(def.Enum) == 0 && def.Kind() == point.Number {
		f = (f - def.Offset) / def.ScaleOr1()
	}
	switch def.Type {
	case "f32":
		binary.BigEndian.PutUint32(b, math.Float32bits(float32(f)))
	case "f64":
		binary.BigEndian.PutUint64(b, math.Float64bits(f))
	case "s16", "s32", "s64":
		lim := math.Ldexp(1, 16*w-1)
		r := math.Round(f)
		if r < -lim || r > lim-1 {
			return nil, fmt.Errorf("point %q: %g does not fit a %s", def.Name, f, def.Type)
		}
		putUint(b, uint64(int64(r)))
	default:
		lim := math.Ldexp(1, 16*w)
		r := math.Round(f)
		if r < 0 || r > lim-1 {
			return nil, fmt.Errorf("point %q: %g does not fit a %s", def.Name, f, def.Type)
		}
		putUint(b, uint64(r))
	}
	return bytesToRegs(b, def.Order), nil
}

func bytesOf(regs []uint16, order string) uint64 {
	var buf [8]byte
	b := regsToBytes(regs, order, buf[:0])
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

func putUint(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

package modbus

import (
	"math"
	"testing"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

func f64(v float64) *float64 { return &v }
func bitp(v int) *int        { return &v }

func TestDecodeRegisters(t *testing.T) {
	tests := []struct {
		name    string
		def     profiles.PointDef
		regs    []uint16
		want    any
		quality point.Quality
		reason  string
	}{
		{"u16", profiles.PointDef{Type: "u16"}, []uint16{0xFFFE}, 65534.0, point.Good, ""},
		{"s16 negative", profiles.PointDef{Type: "s16"}, []uint16{0xFFFE}, -2.0, point.Good, ""},
		{"s16 scaled binary point", profiles.PointDef{Type: "s16", Scale: f64(1.0 / 128)}, []uint16{0xF380}, -25.0, point.Good, ""},
		{"u16 BADC byte swap", profiles.PointDef{Type: "u16", Order: "BADC"}, []uint16{0x3412}, float64(0x1234), point.Good, ""},
		{"u32 ABCD", profiles.PointDef{Type: "u32", Order: "ABCD"}, []uint16{0x0001, 0x0002}, 65538.0, point.Good, ""},
		{"u32 CDAB", profiles.PointDef{Type: "u32", Order: "CDAB"}, []uint16{0x0002, 0x0001}, 65538.0, point.Good, ""},
		{"s32 ABCD", profiles.PointDef{Type: "s32", Order: "ABCD"}, []uint16{0xFFFF, 0xFFFF}, -1.0, point.Good, ""},
		{"f32 ABCD 123.45", profiles.PointDef{Type: "f32", Order: "ABCD"}, []uint16{0x42F6, 0xE666}, float64(float32(123.45)), point.Good, ""},
		{"f32 CDAB 123.45", profiles.PointDef{Type: "f32", Order: "CDAB"}, []uint16{0xE666, 0x42F6}, float64(float32(123.45)), point.Good, ""},
		{"f32 BADC 123.45", profiles.PointDef{Type: "f32", Order: "BADC"}, []uint16{0xF642, 0x66E6}, float64(float32(123.45)), point.Good, ""},
		{"f32 DCBA 123.45", profiles.PointDef{Type: "f32", Order: "DCBA"}, []uint16{0x66E6, 0xF642}, float64(float32(123.45)), point.Good, ""},
		{"f32 NaN is bad", profiles.PointDef{Type: "f32", Order: "ABCD"}, []uint16{0x7FC0, 0x0000}, math.NaN(), point.Bad, "decode: f32 is NaN (wrong word order?)"},
		{"f64 ABCD", profiles.PointDef{Type: "f64", Order: "ABCD"}, []uint16{0x4059, 0x0000, 0x0000, 0x0000}, 100.0, point.Good, ""},
		{"f64 DCBA", profiles.PointDef{Type: "f64", Order: "DCBA"}, []uint16{0x0000, 0x0000, 0x0000, 0x5940}, 100.0, point.Good, ""},
		{"u64 CDAB", profiles.PointDef{Type: "u64", Order: "CDAB"}, []uint16{0x0004, 0x0003, 0x0002, 0x0001}, float64(0x0001000200030004), point.Good, ""},
		{"s64", profiles.PointDef{Type: "s64", Order: "ABCD"}, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFF6}, -10.0, point.Good, ""},
		{"scale and offset", profiles.PointDef{Type: "u16", Scale: f64(0.1), Offset: -40}, []uint16{650}, 25.0, point.Good, ""},
		{"bit 1 set", profiles.PointDef{Type: "u32", Order: "ABCD", Bit: bitp(1)}, []uint16{0, 0b10}, true, point.Good, ""},
		{"bit 21 clear", profiles.PointDef{Type: "u32", Order: "ABCD", Bit: bitp(21)}, []uint16{0, 0xFFFF}, false, point.Good, ""},
		{"bit 21 set", profiles.PointDef{Type: "u32", Order: "ABCD", Bit: bitp(21)}, []uint16{0x0020, 0}, true, point.Good, ""},
		{"enum named", profiles.PointDef{Type: "u16", Enum: map[int64]string{0: "off", 1: "on", 2: "standby"}}, []uint16{2}, "standby", point.Good, ""},
		{"enum unnamed code", profiles.PointDef{Type: "u16", Enum: map[int64]string{0: "off"}}, []uint16{7}, 7.0, point.Good, ""},
		{"string", profiles.PointDef{Type: "string", Length: 4}, []uint16{0x536D, 0x6172, 0x742D, 0x5550}, "Smart-UP", point.Good, ""},
		{"string NUL padded", profiles.PointDef{Type: "string", Length: 3}, []uint16{0x4142, 0x4300, 0x0000}, "ABC", point.Good, ""},
		{"string BADC", profiles.PointDef{Type: "string", Length: 2, Order: "BADC"}, []uint16{0x4241, 0x4443}, "ABCD", point.Good, ""},
		{"string garbage", profiles.PointDef{Type: "string", Length: 1}, []uint16{0x01FF}, "\x01\xff", point.Bad, "decode: string has non-printable bytes"},
		{"absent u16 sentinel", profiles.PointDef{Type: "u16", Absent: []int64{0xFFFF}}, []uint16{0xFFFF}, 0.0, point.Bad, "absent: device reports 65535 (no sensor)"},
		{"absent -1 on u16", profiles.PointDef{Type: "u16", Absent: []int64{-1}}, []uint16{0xFFFF}, 0.0, point.Bad, "absent: device reports 65535 (no sensor)"},
		{"absent s16 -1", profiles.PointDef{Type: "s16", Absent: []int64{-1}}, []uint16{0xFFFF}, 0.0, point.Bad, "absent: device reports -1 (no sensor)"},
		{"out of range keeps value", profiles.PointDef{Type: "s16", Scale: f64(0.1), Min: f64(-40), Max: f64(150)}, []uint16{6000}, 600.0, point.Bad, "out of range: 600 outside -40..150"},
		{"too few registers", profiles.PointDef{Type: "u32"}, []uint16{1}, 0.0, point.Bad, "decode: need 2 registers, got 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := tt.def
			def.Table = profiles.Holding
			if def.Order == "" {
				def.Order = "ABCD"
			}
			var p point.Point
			DecodeRegisters(&def, tt.regs, &p)
			if p.Quality != tt.quality || p.Reason != tt.reason {
				t.Fatalf("got quality %v reason %q, want %v %q", p.Quality, p.Reason, tt.quality, tt.reason)
			}
			if tt.quality == point.Bad && tt.reason != "" && tt.name != "out of range keeps value" {
				return
			}
			got := p.Value()
			if f, ok := tt.want.(float64); ok && math.IsNaN(f) {
				return
			}
			if got != tt.want {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestEncodeRoundTrip checks EncodeRegisters is the inverse of
// DecodeRegisters for every type and order, as the simulator relies on it.
func TestEncodeRoundTrip(t *testing.T) {
	types := []struct {
		typ   string
		value any
		scale *float64
	}{
		{"u16", 4321.0, nil}, {"s16", -123.0, nil}, {"u32", 3000000000.0, nil}, {"s32", -2000000000.0, nil},
		{"u64", 1e15, nil}, {"s64", -1e15, nil}, {"f32", float64(float32(-12.5)), nil}, {"f64", 230.123456789, nil},
		{"s16", -25.0, f64(1.0 / 128)}, {"u16", 49.8, f64(0.1)},
	}
	for _, order := range profiles.Orders {
		for _, tt := range types {
			def := profiles.PointDef{Name: "x", Table: profiles.Holding, Type: tt.typ, Order: order, Scale: tt.scale}
			regs, err := EncodeRegisters(&def, tt.value, nil)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.typ, order, err)
			}
			var p point.Point
			DecodeRegisters(&def, regs, &p)
			if p.Quality != point.Good || math.Abs(p.Num-tt.value.(float64)) > 1e-9*math.Max(1, math.Abs(p.Num)) {
				t.Errorf("%s %s: got %v (%v %s), want %v", tt.typ, order, p.Num, p.Quality, p.Reason, tt.value)
			}
		}
		def := profiles.PointDef{Name: "s", Table: profiles.Holding, Type: "string", Length: 5, Order: order}
		regs, _ := EncodeRegisters(&def, "Smart-UPS", nil)
		var p point.Point
		DecodeRegisters(&def, regs, &p)
		if p.Str != "Smart-UPS" {
			t.Errorf("string %s: got %q, want %q", order, p.Str, "Smart-UPS")
		}
	}
	// Bits change one bit of a shared register and keep the others.
	def := profiles.PointDef{Name: "b", Table: profiles.Holding, Type: "u32", Order: "CDAB", Bit: bitp(17)}
	regs, _ := EncodeRegisters(&def, true, []uint16{0x00F0, 0x0001})
	if want := []uint16{0x00F0, 0x0003}; regs[0] != want[0] || regs[1] != want[1] {
		t.Errorf("bit set: got %04X, want %04X", regs, want)
	}
	regs, _ = EncodeRegisters(&def, false, regs)
	if want := []uint16{0x00F0, 0x0001}; regs[0] != want[0] || regs[1] != want[1] {
		t.Errorf("bit clear: got %04X, want %04X", regs, want)
	}
	if _, err := EncodeRegisters(&profiles.PointDef{Name: "o", Type: "u16"}, 70000.0, nil); err == nil {
		t.Error("encoding 70000 into a u16 succeeded, want an error")
	}
}

func BenchmarkDecodeRegisters(b *testing.B) {
	defs := []profiles.PointDef{
		{Type: "u16", Scale: f64(0.1), Order: "ABCD"},
		{Type: "f32", Order: "CDAB"},
		{Type: "u32", Order: "ABCD", Bit: bitp(3)},
		{Type: "u16", Order: "ABCD", Enum: map[int64]string{0: "off", 1: "on"}},
	}
	regs := []uint16{0x42F6, 0xE666}
	var p point.Point
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		def := &defs[i%len(defs)]
		DecodeRegisters(def, regs[:def.Width()], &p)
	}
}

func FuzzDecodeRegisters(f *testing.F) {
	f.Add(uint8(0), uint8(0), []byte{0x42, 0xF6, 0xE6, 0x66})
	f.Add(uint8(7), uint8(3), []byte{0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1})
	types := []string{"bool", "u16", "s16", "u32", "s32", "u64", "s64", "f32", "f64", "string"}
	f.Fuzz(func(t *testing.T, ti, oi uint8, data []byte) {
		def := profiles.PointDef{Table: profiles.Holding, Type: types[int(ti)%len(types)], Order: profiles.Orders[int(oi)%4], Length: 3, Min: f64(-1e6), Max: f64(1e6)}
		if def.Type != "string" {
			def.Length = 0
		}
		if def.Type == "bool" {
			def.Bit = bitp(int(ti) % 16)
		}
		regs := make([]uint16, len(data)/2)
		for i := range regs {
			regs[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
		}
		var p point.Point
		DecodeRegisters(&def, regs, &p)
		if p.Quality == point.Good && p.Kind == point.Number && (math.IsNaN(p.Num) || math.IsInf(p.Num, 0)) {
			t.Fatalf("good point with value %v", p.Num)
		}
	})
}

func TestAbsentMeans(t *testing.T) {
	def := profiles.PointDef{Table: profiles.Holding, Type: "u16", Order: "ABCD", Absent: []int64{0xFFFF}, AbsentMeans: "on mains, no runtime estimate", Unit: "min"}
	var p point.Point
	DecodeRegisters(&def, []uint16{0xFFFF}, &p)
	if want := "absent: device reports 65535 (on mains, no runtime estimate)"; p.Quality != point.Bad || p.Reason != want {
		t.Errorf("got %v %q, want bad %q", p.Quality, p.Reason, want)
	}
}

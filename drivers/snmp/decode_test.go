package snmp

import (
	"math"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

func f64(v float64) *float64 { return &v }

func TestDecodeValue(t *testing.T) {
	enum := map[int64]string{1: "other", 3: "normal", 5: "battery"}
	tests := []struct {
		name    string
		def     profiles.PointDef
		pdu     gosnmp.SnmpPDU
		kind    point.Kind
		num     float64
		str     string
		reason  string // "" for good
		counter bool   // decodeValue reports a counter reading
	}{
		{"integer", profiles.PointDef{Type: "integer"}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 42}, point.Number, 42, "", "", false},
		{"integer signed, scale 0.1", profiles.PointDef{Type: "integer", Scale: f64(0.1)}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: -125}, point.Number, -12.5, "", "", false},
		{"integer with offset", profiles.PointDef{Type: "integer", Scale: f64(0.5), Offset: -40}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 100}, point.Number, 10, "", "", false},
		{"integer accepts Gauge32", profiles.PointDef{Type: "integer"}, gosnmp.SnmpPDU{Type: gosnmp.Gauge32, Value: uint(7)}, point.Number, 7, "", "", false},
		{"gauge max", profiles.PointDef{Type: "gauge"}, gosnmp.SnmpPDU{Type: gosnmp.Gauge32, Value: uint(4294967295)}, point.Number, 4294967295, "", "", false},
		{"gauge accepts Integer", profiles.PointDef{Type: "gauge"}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 3}, point.Number, 3, "", "", false},
		{"counter32", profiles.PointDef{Type: "counter32"}, gosnmp.SnmpPDU{Type: gosnmp.Counter32, Value: uint(4294967290)}, point.Number, 4294967290, "", "", true},
		{"counter64 above 2^63", profiles.PointDef{Type: "counter64"}, gosnmp.SnmpPDU{Type: gosnmp.Counter64, Value: uint64(18446744073709551000)}, point.Number, 18446744073709551000, "", "", true},
		{"counter32 refuses Counter64", profiles.PointDef{Type: "counter32"}, gosnmp.SnmpPDU{Type: gosnmp.Counter64, Value: uint64(5)}, point.Number, 0, "", "decode: want counter32, the agent sent Counter64", false},
		{"counter64 refuses Counter32", profiles.PointDef{Type: "counter64"}, gosnmp.SnmpPDU{Type: gosnmp.Counter32, Value: uint(5)}, point.Number, 0, "", "decode: want counter64, the agent sent Counter32", false},
		{"timeticks in seconds", profiles.PointDef{Type: "timeticks", Unit: "s"}, gosnmp.SnmpPDU{Type: gosnmp.TimeTicks, Value: uint32(123456)}, point.Number, 1234.56, "", "", false},
		{"timeticks to minutes", profiles.PointDef{Type: "timeticks", Scale: f64(1.0 / 60)}, gosnmp.SnmpPDU{Type: gosnmp.TimeTicks, Value: uint32(360000)}, point.Number, 60, "", "", false},
		{"string trimmed", profiles.PointDef{Type: "string"}, gosnmp.SnmpPDU{Type: gosnmp.OctetString, Value: []byte(" Smart-UPS 3000\x00\x00")}, point.String, 0, "Smart-UPS 3000", "", false},
		{"string binary as hex", profiles.PointDef{Type: "string"}, gosnmp.SnmpPDU{Type: gosnmp.OctetString, Value: []byte{0x00, 0x1b, 0x21, 0xff}}, point.String, 0, "00:1b:21:ff", "", false},
		{"string refuses Integer", profiles.PointDef{Type: "string"}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 1}, point.String, 0, "", "decode: want string, the agent sent Integer", false},
		{"oid without leading dot", profiles.PointDef{Type: "oid"}, gosnmp.SnmpPDU{Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.4.1.318.1.3.27"}, point.String, 0, "1.3.6.1.4.1.318.1.3.27", "", false},
		{"enum", profiles.PointDef{Type: "integer", Enum: enum}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 5}, point.Enum, 5, "battery", "", false},
		{"enum unnamed code", profiles.PointDef{Type: "integer", Enum: enum}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 4}, point.Enum, 4, "", "", false},
		{"true_values true", profiles.PointDef{Type: "integer", TrueValues: []int64{3, 6, 7}}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 6}, point.Bool, 1, "", "", false},
		{"true_values false", profiles.PointDef{Type: "integer", TrueValues: []int64{3, 6, 7}}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 5}, point.Bool, 0, "", "", false},
		{"absent", profiles.PointDef{Type: "integer", Absent: []int64{-1}}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: -1}, point.Number, 0, "", "absent: device reports -1 (no sensor)", false},
		{"absent counter64", profiles.PointDef{Type: "counter64", Absent: []int64{0}}, gosnmp.SnmpPDU{Type: gosnmp.Counter64, Value: uint64(0)}, point.Number, 0, "", "absent: device reports 0 (no sensor)", false},
		{"out of range", profiles.PointDef{Type: "integer", Min: f64(0), Max: f64(100)}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 250}, point.Number, 250, "", "out of range: 250 outside 0..100", false},
		{"noSuchObject", profiles.PointDef{Type: "integer"}, gosnmp.SnmpPDU{Type: gosnmp.NoSuchObject}, point.Number, 0, "", "snmp: noSuchObject", false},
		{"noSuchInstance", profiles.PointDef{Type: "string"}, gosnmp.SnmpPDU{Type: gosnmp.NoSuchInstance}, point.String, 0, "", "snmp: noSuchInstance", false},
		{"endOfMibView", profiles.PointDef{Type: "integer"}, gosnmp.SnmpPDU{Type: gosnmp.EndOfMibView}, point.Number, 0, "", "snmp: endOfMibView", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p point.Point
			_, counter := decodeValue(&tc.def, tc.pdu, &p)
			if p.Kind != tc.kind {
				t.Errorf("kind %s, want %s", p.Kind, tc.kind)
			}
			want := point.Good
			if tc.reason != "" {
				want = point.Bad
			}
			if p.Quality != want || p.Reason != tc.reason {
				t.Errorf("quality %s reason %q, want %s %q", p.Quality, p.Reason, want, tc.reason)
			}
			if math.Abs(p.Num-tc.num) > 1e-9*math.Max(1, math.Abs(tc.num)) || p.Str != tc.str {
				t.Errorf("value %v %q, want %v %q", p.Num, p.Str, tc.num, tc.str)
			}
			if counter != tc.counter {
				t.Errorf("counter reading %v, want %v", counter, tc.counter)
			}
		})
	}
}

func TestEntityValue(t *testing.T) {
	tests := []struct {
		name                  string
		typ, scale, prec, val int64
		want                  float64
		unit                  point.Unit
	}{
		{"celsius units precision 2", 8, 9, 2, 2345, 23.45, point.Celsius},
		{"celsius units precision 0", 8, 9, 0, 41, 41, point.Celsius},
		{"voltsDC milli", 4, 8, 0, 12034, 12.034, point.Volt},
		{"voltsAC units precision 1", 3, 9, 1, 2301, 230.1, point.Volt},
		{"amperes milli precision 1", 5, 8, 1, 12345, 1.2345, point.Ampere},
		{"watts kilo", 6, 10, 0, 3, 3000, point.Watt},
		{"watts kilo precision 2", 6, 10, 2, 150, 1500, point.Watt},
		{"negative precision", 10, 9, -2, 54, 5400, point.RPM},
		{"micro", 4, 7, 0, 500, 0.0005, point.Volt},
		{"negative value", 8, 9, 1, -55, -5.5, point.Celsius},
		{"percentRH", 9, 9, 1, 455, 45.5, point.PercentRH},
		{"hertz", 7, 9, 2, 5001, 50.01, point.Hertz},
		{"cmm to L/s", 11, 9, 0, 6, 100, point.LitrePerS},
		{"truthvalue true", 12, 9, 0, 1, 1, point.None},
		{"truthvalue false", 12, 9, 0, 2, 0, point.None},
		{"other", 1, 9, 0, 17, 17, point.None},
	}
	for _, tc := range tests {
		got, unit := entityValue(tc.typ, tc.scale, tc.prec, tc.val)
		if got != tc.want || unit != tc.unit {
			t.Errorf("%s: entityValue(%d, %d, %d, %d) = %v %q, want %v %q", tc.name, tc.typ, tc.scale, tc.prec, tc.val, got, unit, tc.want, tc.unit)
		}
	}
	for status, want := range map[int64]string{
		1: "", 2: "absent: sensor unavailable (entPhySensorOperStatus 2)",
		3: "absent: sensor nonoperational (entPhySensorOperStatus 3)", 9: "decode: entPhySensorOperStatus 9",
	} {
		if got := entityStatusReason(status); got != want {
			t.Errorf("entityStatusReason(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestSanitizeLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"GigabitEthernet1/0/1", "gigabitethernet1_0_1"},
		{"Gi1/0/1", "gi1_0_1"},
		{"Outlet 3", "outlet_3"},
		{"  --Server A (PSU 1)--  ", "server_a_psu_1"},
		{"eth0.100", "eth0_100"},
		{"1.2", "1_2"},
		{"7", "7"},
		{"Ünïcode Näme", "n_code_n_me"},
		{"___", ""},
		{"", ""},
		{"CPU Temp °C", "cpu_temp_c"},
		{string(make([]byte, 0)) + "a" + string(make([]rune, 0)) + "b", "ab"},
		{"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"},
	}
	for _, tc := range tests {
		if got := SanitizeLabel(tc.in); got != tc.want {
			t.Errorf("SanitizeLabel(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRowNames(t *testing.T) {
	tests := []struct {
		name    string
		indexes []string
		labels  map[string]string
		want    []string
	}{
		{"by index", []string{"1", "2", "10"}, nil, []string{"1", "2", "10"}},
		{"by label", []string{"1", "2"}, map[string]string{"1": "Gi1/0/1", "2": "Gi1/0/2"}, []string{"gi1_0_1", "gi1_0_2"}},
		{"missing and empty labels fall back to the index", []string{"1", "2", "3"}, map[string]string{"1": "uplink", "3": "--"}, []string{"uplink", "2", "3"}},
		{"duplicates get the index", []string{"1", "2", "3"}, map[string]string{"1": "Server", "2": "server", "3": "web"}, []string{"server_1", "server_2", "web"}},
		{"label equal to another row's index", []string{"1", "2"}, map[string]string{"2": "1"}, []string{"1_1", "1_2"}},
		{"second round", []string{"1", "2", "7"}, map[string]string{"1": "a", "2": "a", "7": "a_1"}, []string{"a_1_1", "a_2", "a_1_7"}},
		{"multi-part index", []string{"1.5", "2.5"}, nil, []string{"1_5", "2_5"}},
	}
	for _, tc := range tests {
		got := rowNames(tc.indexes, tc.labels)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, got, tc.want)
		}
		seen := map[string]bool{}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
				break
			}
			if seen[got[i]] {
				t.Errorf("%s: duplicate name %q", tc.name, got[i])
			}
			seen[got[i]] = true
		}
	}
}

func TestCounterDelta(t *testing.T) {
	tests := []struct {
		name      string
		prev, cur uint64
		bits      uint
		want      uint64
	}{
		{"counter32 step", 100, 350, 32, 250},
		{"counter32 wrap", 4294967290, 10, 32, 16},
		{"counter32 wrap to zero", 4294967295, 0, 32, 1},
		{"counter32 unchanged", 7, 7, 32, 0},
		{"counter64 step", 1 << 40, 1<<40 + 1000, 64, 1000},
		{"counter64 wrap", math.MaxUint64 - 5, 4, 64, 10},
	}
	for _, tc := range tests {
		if got := counterDelta(tc.prev, tc.cur, tc.bits); got != tc.want {
			t.Errorf("%s: counterDelta(%d, %d, %d) = %d, want %d", tc.name, tc.prev, tc.cur, tc.bits, got, tc.want)
		}
	}
}

// TestRate follows one counter series through first reading, steady
// counting, a wrap, an agent restart and a clock that did not move.
func TestRate(t *testing.T) {
	d := NewDevice(DeviceConfig{ID: "x"})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		name   string
		raw    uint64
		bits   uint
		at     time.Duration
		uptime uint32
		want   float64
		reason string
	}{
		{"first reading", 1000, 32, 0, 100, 0, "not polled: a rate needs a second reading"},
		{"steady", 2000, 32, 10 * time.Second, 1100, 100, ""},
		{"wrap", 4294967295, 32, 20 * time.Second, 2100, (4294967295 - 2000) / 10.0, ""},
		{"past the wrap", 95, 32, 30 * time.Second, 3100, 9.6, ""},
		{"agent restarted", 5, 32, 40 * time.Second, 50, 0, "not polled: the agent restarted (sysUpTime went backwards), rate baseline reset"},
		{"after restart", 55, 32, 50 * time.Second, 1050, 5, ""},
		{"no time passed", 60, 32, 50 * time.Second, 1060, 0, "not polled: no time passed since the previous reading"},
	}
	for _, s := range steps {
		got, reason := d.rate("c", s.raw, s.bits, t0.Add(s.at), s.uptime, true)
		if reason != s.reason || math.Abs(got-s.want) > 1e-9 {
			t.Errorf("%s: rate %v %q, want %v %q", s.name, got, reason, s.want, s.reason)
		}
	}
	// Without sysUpTime a decrease counts as a wrap.
	d.rate("n", 10, 64, t0, 0, false)
	if got, reason := d.rate("n", 5, 64, t0.Add(time.Second), 0, false); reason != "" || got != float64(math.MaxUint64-4) {
		t.Errorf("counter64 without uptime: %v %q", got, reason)
	}
}

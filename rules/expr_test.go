package rules

import (
	"math"
	"testing"
	"time"
)

func TestPreprocess(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"seconds", "rate(x, 30s) > 1", "rate(x, 30.0) > 1"},
		{"minutes and hours", "age(x) > 5m || age(y) > 1h", "age(x) > 300.0 || age(y) > 3600.0"},
		{"milliseconds", "x < 250ms", "x < 0.25"},
		{"compound", "x > 1h30m", "x > 5400.0"},
		{"fractions", "x > 1.5m", "x > 90.0"},
		{"not in strings", `point("a.30s") == '5m' && x == "1h"`, `point("a.30s") == '5m' && x == "1h"`},
		{"escaped quotes in strings", `x == "a\"5m" || y > 5m`, `x == "a\"5m" || y > 300.0`},
		{"not inside names", "zone1s.alarm || x.l1m > 2", "zone1s.alarm || x.l1m > 2"},
		{"not hex", "x == 0x5", "x == 0x5"},
		{"not glued to a name", "x > 5mm", "x > 5mm"},
		{"plain numbers stay", "x > 5 && y < 2.5", "x > 5 && y < 2.5"},
		{"after an operator without spaces", "x>5s&&y<1m", "x>5.0&&y<60.0"},
		{"unterminated string", `x == "5m`, `x == "5m`},
		{"non-ASCII text", `x == "°C" && y > 5s`, `x == "°C" && y > 5.0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := preprocess(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("preprocess(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestRateIsRobust: the rate is the least-squares slope, so a steady rise
// reads as itself and a single glitch barely moves it.
func TestRateIsRobust(t *testing.T) {
	ms := int64(time.Millisecond)
	tests := []struct {
		name     string
		value    func(i int) float64 // sample i of 241, 250 ms apart (60 s)
		min, max float64
	}{
		{"flat", func(i int) float64 { return 25 }, 0, 0},
		{"10 degC/min", func(i int) float64 { return 25 + float64(i)*0.25/60*10 }, 9.999, 10.001},
		{"a 5 degC glitch in the last sample", func(i int) float64 {
			if i == 240 {
				return 30
			}
			return 25
		}, 0, 0.2},
		{"a 5 degC glitch in the first sample", func(i int) float64 {
			if i == 0 {
				return 20
			}
			return 25
		}, 0, 0.2},
		{"0.1 degC quantisation steps around a steady value", func(i int) float64 { return 25 + 0.1*float64(i%2) }, -0.05, 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRing(60 * int64(time.Second))
			for i := 0; i <= 240; i++ {
				r.push(int64(i)*250*ms, tt.value(i))
			}
			got, ok := r.window(opRate, 60*int64(time.Second), 61*int64(time.Second))
			if !ok || got < tt.min || got > tt.max {
				t.Errorf("got %v (known %v), want %v..%v degC/min", got, ok, tt.min, tt.max)
			}
		})
	}
}

func TestRing(t *testing.T) {
	s := int64(time.Second)
	r := newRing(10 * s)
	for i := int64(0); i <= 20; i++ {
		r.push(i*s, float64(i))
	}
	// Pruned to 10 s before the newest sample: 11..20 are left.
	if first, _ := r.at(0); r.n != 10 || first != 11*s {
		t.Errorf("after pruning: got %d samples from %ds, want 10 from 11s", r.n, first/s)
	}
	r.push(20*s, 99) // not newer: ignored
	r.push(15*s, 99) // older: ignored
	if _, v := r.at(r.n - 1); v != 20 {
		t.Errorf("a repeated time replaced the sample: got %v, want 20", v)
	}
	tests := []struct {
		name  string
		op    windowOp
		now   int64
		d     int64
		want  float64
		known bool
	}{
		{"rate over 5s", opRate, 20 * s, 5 * s, 60, true}, // 16..20: +4 in 4 s = 60/min
		{"delta", opDelta, 20 * s, 5 * s, 4, true},
		{"min", opMin, 20 * s, 5 * s, 16, true},
		{"max at an earlier time", opMax, 17 * s, 5 * s, 17, true},
		{"avg", opAvg, 20 * s, 3 * s, 19, true},
		{"one sample: no rate", opRate, 20 * s, s, math.NaN(), false},
		{"samples cover under half the window: no rate", opRate, 20 * s, 30 * s, math.NaN(), false}, // 11..20: 9 s of 30

		{"one sample: a max", opMax, 20 * s, s, 20, true},
		{"nothing in the window", opAvg, 100 * s, 5 * s, math.NaN(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := r.window(tt.op, tt.now, tt.d)
			if ok != tt.known || (ok && math.Abs(got-tt.want) > 1e-9*math.Max(1, math.Abs(tt.want))) {
				t.Errorf("got %v, %v; want %v, %v", got, ok, tt.want, tt.known)
			}
		})
	}
}

// TestRingCap: the ring never holds more than ringCap samples.
func TestRingCap(t *testing.T) {
	r := newRing(int64(24 * time.Hour))
	for i := range ringCap + 100 {
		r.push(int64(i)*int64(time.Second), float64(i))
	}
	first, _ := r.at(0)
	if r.n != ringCap || first != 100*int64(time.Second) {
		t.Errorf("got %d samples from %d, want %d from the 100th", r.n, first, ringCap)
	}
	if got, ok := r.window(opMin, int64(ringCap+100)*int64(time.Second), int64(24*time.Hour)); !ok || got != 100 {
		t.Errorf("min over the kept samples: got %v, want 100", got)
	}
}

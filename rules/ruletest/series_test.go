package ruletest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/facgw/facgw/internal/point"
)

// render writes samples back compactly: numbers, words, _ bad stale.
func render(s []sample, k point.Kind) string {
	var out []string
	for _, x := range s {
		switch x.kind {
		case noSample:
			out = append(out, "_")
		case badSample:
			out = append(out, "bad")
		case staleSample:
			out = append(out, "stale")
		default:
			switch k {
			case point.Bool:
				out = append(out, fmt.Sprint(x.num == 1))
			case point.String:
				out = append(out, x.str)
			default:
				out = append(out, fmt.Sprint(x.num))
			}
		}
	}
	return strings.Join(out, " ")
}

func TestParseSeries(t *testing.T) {
	tests := []struct {
		in, want string
		kind     point.Kind
	}{
		{"1 2 3", "1 2 3", point.Number},
		{"-2+4x3", "-2 2 6 10", point.Number},
		{"1-2x4", "1 -1 -3 -5 -7", point.Number},
		{"1x4", "1 1 1 1 1", point.Number},
		{"1 x4", "1 1 1 1 1", point.Number},
		{"0x5 120x2", "0 0 0 0 0 0 120 120 120", point.Number},
		{"0.5+0.25x2", "0.5 0.75 1", point.Number},
		{"1e3 -1.5", "1000 -1.5", point.Number},
		{"1 _x3 2", "1 _ _ _ 2", point.Number},
		{"_ bad stale", "_ bad stale", point.Number},
		{"badx2 stale x2", "bad bad stale stale", point.Number},
		{"false x2 true", "false false false true", point.Bool},
		{"truex1", "true true", point.Bool},
		{"charging x1 discharging", "charging charging discharging", point.String},
		{"  1   2  ", "1 2", point.Number},
		{"x3 on", "x3 on", point.String}, // a lone x3 with nothing before it is a word
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, k, err := parseSeries(tt.in)
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if got := render(s, k); got != tt.want || k != tt.kind {
				t.Errorf("got %q (%s), want %q (%s)", got, k, tt.want, tt.kind)
			}
		})
	}
}

func TestParseSeriesErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "the series is empty"},
		{"_x0", "the series is empty"},
		{"1 true", `"true" is a bool, but the series holds numbers`},
		{"on 1", `"1" is a number, but the series holds strings`},
		{"1+2", `"1+2": a step needs a count, such as 1+2x10`},
		{"1x100001", "the repeat count must be at most 100000"},
		{"1x99999 2x99999", "the series is longer than 100000 samples"},
		{"0x1F", `"0x1F" is not a value`},
		{"NaN", `"NaN" is not a value`},
		{"Inf", `"Inf" is not a value`},
		{"1..2", `"1..2" is not a value`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, _, err := parseSeries(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want %q", err, tt.want)
			}
		})
	}
}

// FuzzSeries: the parser never panics, never exceeds its bound, and what
// it accepts has one kind.
func FuzzSeries(f *testing.F) {
	for _, s := range []string{"0x5 120x20", "-2+4x3", "false x25", "1 _x3 stale bad", "on off x2", "1e3-2.5x4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, k, err := parseSeries(s)
		if err != nil {
			return
		}
		if len(out) == 0 || len(out) > maxSamples {
			t.Fatalf("%q: got %d samples", s, len(out))
		}
		for _, x := range out {
			if x.kind == valueSample && k == point.String && x.str == "" {
				t.Fatalf("%q: a string sample without text", s)
			}
		}
	})
}

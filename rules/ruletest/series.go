package ruletest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/facgw/facgw/internal/point"
)

// sampleKind is what one step of a series holds.
type sampleKind uint8

const (
	noSample sampleKind = iota // "_": nothing at this step
	valueSample
	badSample   // "bad": a failed read (reason timeout)
	staleSample // "stale": the sweeper marked the point stale
)

// sample is one step of a series.
type sample struct {
	kind sampleKind
	num  float64
	str  string
}

// maxSamples bounds a series, so a typo such as 1x100000000 is an error
// rather than an out-of-memory.
const maxSamples = 100000

var (
	repeatRE = regexp.MustCompile(`^(.*?)x([0-9]+)$`)
	wordRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	standRE  = regexp.MustCompile(`^x[0-9]+$`)
)

// parseSeries expands the series notation (docs/rules.md, "Rule tests"):
//
//	a          one value: a number, true, false, or a word (an enum name)
//	a+bxN      N+1 values a, a+b, ..., a+N*b; a-bxN counts down
//	axN        a repeated N+1 times (a+0xN); also written "a xN"
//	_          no sample at this step; _xN: N steps without one
//	bad        a failed read; badxN: N of them
//	stale      the point marked stale; stalexN: N of them
//
// It returns the samples and the point kind (Number, Bool or String) the
// values have; mixing kinds in one series is an error.
func parseSeries(s string) ([]sample, point.Kind, error) {
	var toks []string
	for _, f := range strings.Fields(s) {
		if standRE.MatchString(f) && len(toks) > 0 && !repeatRE.MatchString(toks[len(toks)-1]) {
			toks[len(toks)-1] += f
			continue
		}
		toks = append(toks, f)
	}
	var (
		out  []sample
		kind point.Kind
		set  bool
	)
	setKind := func(k point.Kind, tok string) error {
		if set && k != kind {
			return fmt.Errorf("%q is a %s, but the series holds %ss", tok, k, kind)
		}
		kind, set = k, true
		return nil
	}
	for _, tok := range toks {
		base, n, repeat := tok, 0, false
		if m := repeatRE.FindStringSubmatch(tok); m != nil && m[1] != "" {
			v, err := strconv.Atoi(m[2])
			if err != nil || v > maxSamples {
				return nil, 0, fmt.Errorf("%q: the repeat count must be at most %d", tok, maxSamples)
			}
			base, n, repeat = m[1], v, true
		}
		count := func(k int) error {
			if len(out)+k > maxSamples {
				return fmt.Errorf("the series is longer than %d samples", maxSamples)
			}
			return nil
		}
		switch base {
		case "_", "bad", "stale":
			// These cannot count up, so xN means N steps, as promtool's _xN.
			k := map[string]sampleKind{"_": noSample, "bad": badSample, "stale": staleSample}[base]
			if !repeat {
				n = 1
			}
			if err := count(n); err != nil {
				return nil, 0, err
			}
			for i := 0; i < n; i++ {
				out = append(out, sample{kind: k})
			}
			continue
		case "true", "false":
			if err := setKind(point.Bool, tok); err != nil {
				return nil, 0, err
			}
			v := 0.0
			if base == "true" {
				v = 1
			}
			if err := count(n + 1); err != nil {
				return nil, 0, err
			}
			for i := 0; i <= n; i++ {
				out = append(out, sample{kind: valueSample, num: v})
			}
			continue
		}
		if a, b, step, ok := parseNumbers(base); ok {
			if err := setKind(point.Number, tok); err != nil {
				return nil, 0, err
			}
			if step && !repeat {
				return nil, 0, fmt.Errorf("%q: a step needs a count, such as %sx10", tok, base)
			}
			if err := count(n + 1); err != nil {
				return nil, 0, err
			}
			for i := 0; i <= n; i++ {
				out = append(out, sample{kind: valueSample, num: a + float64(i)*b})
			}
			continue
		}
		if wordRE.MatchString(base) {
			if err := setKind(point.String, tok); err != nil {
				return nil, 0, err
			}
			if err := count(n + 1); err != nil {
				return nil, 0, err
			}
			for i := 0; i <= n; i++ {
				out = append(out, sample{kind: valueSample, str: base})
			}
			continue
		}
		return nil, 0, fmt.Errorf("%q is not a value (want a number, true, false, a word, a+bxN, axN, _, bad or stale)", tok)
	}
	if len(out) == 0 {
		return nil, 0, fmt.Errorf("the series is empty")
	}
	return out, kind, nil
}

// number is a decimal number as the series notation writes it (no hex,
// no Inf or NaN: a series describes readings).
const number = `(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?`

var numbersRE = regexp.MustCompile(`^([+-]?` + number + `)(?:([+-])(` + number + `))?$`)

// parseNumbers parses "a", or "a+b" and "a-b" (step set); a may be
// negative ("-2+4").
func parseNumbers(s string) (a, b float64, step, ok bool) {
	m := numbersRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, false, false
	}
	a, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, 0, false, false
	}
	if m[2] != "" {
		if b, err = strconv.ParseFloat(m[3], 64); err != nil {
			return 0, 0, false, false
		}
		if m[2] == "-" {
			b = -b
		}
	}
	return a, b, m[2] != "", true
}

package rules

import (
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
)

// TestFunctions evaluates one condition of device d1 after some batches
// and compares the three-valued result.
func TestFunctions(t *testing.T) {
	s := time.Second
	tests := []struct {
		name    string
		when    string
		batches []batch
		want    tri
	}{
		// Point references.
		{"number", "x.n > 5", []batch{{0, "d1", pts(num("x.n", 10))}}, isTrue},
		{"number false", "x.n > 5", []batch{{0, "d1", pts(num("x.n", 1))}}, isFalse},
		{"bad number is unknown", "x.n > 5", []batch{{0, "d1", pts(bad(num("x.n", 10), "timeout"))}}, unknown},
		{"stale number is unknown", "x.n > 5", []batch{{0, "d1", pts(stale(num("x.n", 10)))}}, unknown},
		{"missing number is unknown", "x.n > 5 || x.other", []batch{{0, "d1", pts(boolean("x.other", false))}}, unknown},
		{"bool", "x.b", []batch{{0, "d1", pts(boolean("x.b", true))}}, isTrue},
		{"enum by name", `x.e == "discharging"`, []batch{{0, "d1", pts(enum("x.e", "discharging", 2))}}, isTrue},
		{"enum without a name is its code", `x.e == 7`, []batch{{0, "d1", pts(enum("x.e", "", 7))}}, isTrue},
		{"string", `x.s startsWith "Generic"`, []batch{{0, "d1", pts(text("x.s", "Generic BMS"))}}, isTrue},
		{"in", `x.e in ["charging", "discharging"]`, []batch{{0, "d1", pts(enum("x.e", "charging", 1))}}, isTrue},
		{"point() for a row", `point("if.oper_status.uplink-1") == "down"`, []batch{{0, "d1", pts(enum("if.oper_status.uplink-1", "down", 2))}}, isTrue},
		{"let", `let t = x.n; t > 5 && t < 20`, []batch{{0, "d1", pts(num("x.n", 10))}}, isTrue},
		{"ternary", `x.b ? x.n > 5 : x.n < 5`, []batch{{0, "d1", pts(boolean("x.b", false), num("x.n", 3))}}, isTrue},
		{"ternary on unknown", `x.b ? true : x.n < 5`, []batch{{0, "d1", pts(bad(boolean("x.b", false), "timeout"), num("x.n", 3))}}, unknown},
		{"the latest reading counts", "x.n > 5", []batch{{0, "d1", pts(num("x.n", 10))}, {s, "d1", pts(num("x.n", 1))}}, isFalse},
		{"builtins", "abs(x.n) > 5 && max(x.n, 0) == 0", []batch{{0, "d1", pts(num("x.n", -10))}}, isTrue},

		// Durations are seconds.
		{"duration literal", "x.n > 1m", []batch{{0, "d1", pts(num("x.n", 61))}}, isTrue},
		{"duration literal is 60", "x.n > 1m", []batch{{0, "d1", pts(num("x.n", 60))}}, isFalse},
		{"compound duration", "x.n == 1h30m", []batch{{0, "d1", pts(num("x.n", 5400))}}, isTrue},
		{"milliseconds", "x.n == 250ms", []batch{{0, "d1", pts(num("x.n", 0.25))}}, isTrue},
		{"duration()", `x.n == duration("2m")`, []batch{{0, "d1", pts(num("x.n", 120))}}, isTrue},

		// Quality functions never make the result unknown.
		{"good of good", "good(x.n)", []batch{{0, "d1", pts(num("x.n", 1))}}, isTrue},
		{"good of bad", "good(x.n)", []batch{{0, "d1", pts(bad(num("x.n", 1), "timeout"))}}, isFalse},
		{"bad of bad", "bad(x.n)", []batch{{0, "d1", pts(bad(num("x.n", 1), "timeout"))}}, isTrue},
		{"stale of stale", "stale(x.n) && !bad(x.n)", []batch{{0, "d1", pts(stale(num("x.n", 1)))}}, isTrue},
		{"missing", "missing(x.n) && !good(x.n)", []batch{{0, "d1", pts(num("x.other", 1))}}, isTrue},
		{"quality", `quality(x.n) == "bad" && quality(x.m) == "missing" && quality(x.o) == "stale" && quality(x.p) == "good"`,
			[]batch{{0, "d1", pts(bad(num("x.n", 1), "timeout"), stale(num("x.o", 1)), num("x.p", 1))}}, isTrue},
		{"age since the last good sample", "age(x.n) == 10",
			[]batch{{0, "d1", pts(num("x.n", 1))}, {10 * s, "d1", pts(bad(num("x.n", 1), "timeout"))}}, isTrue},
		{"age of a point never good is infinite", "age(x.n) > 1e12",
			[]batch{{0, "d1", pts(bad(num("x.n", 1), "timeout"))}}, isTrue},
		{"age against a duration", "age(x.n) > 5s",
			[]batch{{0, "d1", pts(num("x.n", 1))}, {6 * s, "d1", pts(bad(num("x.n", 1), "timeout"))}}, isTrue},

		// Windows.
		{"rate per minute", "rate(x.n, 60s) == 20",
			[]batch{{0, "d1", pts(num("x.n", 10))}, {30 * s, "d1", pts(num("x.n", 20))}}, isTrue},
		{"rate needs two samples", "rate(x.n, 60s) > 0", []batch{{0, "d1", pts(num("x.n", 10))}}, unknown},
		{"rate skips bad samples", "rate(x.n, 60s) == 20",
			[]batch{{0, "d1", pts(num("x.n", 10))}, {10 * s, "d1", pts(bad(num("x.n", 99), "timeout"))}, {30 * s, "d1", pts(num("x.n", 20))}}, isTrue},
		{"rate of a bad latest reading uses the good ones", "rate(x.n, 60s) == 20",
			[]batch{{0, "d1", pts(num("x.n", 10))}, {30 * s, "d1", pts(num("x.n", 20))}, {40 * s, "d1", pts(bad(num("x.n", 0), "timeout"))}}, isTrue},
		{"rate over the window only", "rate(x.n, 60s) == 0",
			[]batch{{0, "d1", pts(num("x.n", 100))}, {40 * s, "d1", pts(num("x.n", 10))}, {70 * s, "d1", pts(num("x.n", 10))}}, isTrue},
		{"rate of an old window is unknown", "rate(x.n, 10s) > 0",
			[]batch{{0, "d1", pts(num("x.n", 1))}, {5 * s, "d1", pts(num("x.n", 2))}, {60 * s, "d1", pts(num("x.n", 3), num("x.other", 1))}}, unknown},
		{"delta", "delta(x.n, 1m) == -5",
			[]batch{{0, "d1", pts(num("x.n", 10))}, {20 * s, "d1", pts(num("x.n", 7))}, {40 * s, "d1", pts(num("x.n", 5))}}, isTrue},
		{"delta needs two samples", "delta(x.n, 1m) == 0", []batch{{0, "d1", pts(num("x.n", 10))}}, unknown},
		{"min_over", "min_over(x.n, 1m) == 3",
			[]batch{{0, "d1", pts(num("x.n", 10))}, {20 * s, "d1", pts(num("x.n", 3))}, {40 * s, "d1", pts(num("x.n", 5))}}, isTrue},
		{"max_over drops samples older than the window", "max_over(x.n, 60s) == 20",
			[]batch{{0, "d1", pts(num("x.n", 100))}, {40 * s, "d1", pts(num("x.n", 10))}, {70 * s, "d1", pts(num("x.n", 20))}}, isTrue},
		{"avg_over", "avg_over(x.n, 1m) == 6",
			[]batch{{0, "d1", pts(num("x.n", 10))}, {20 * s, "d1", pts(num("x.n", 3))}, {40 * s, "d1", pts(num("x.n", 5))}}, isTrue},
		{"avg_over of one sample", "avg_over(x.n, 1m) == 10", []batch{{0, "d1", pts(num("x.n", 10))}}, isTrue},
		{"window of only bad samples is unknown", "avg_over(x.n, 1m) > 0",
			[]batch{{0, "d1", pts(bad(num("x.n", 10), "timeout"))}}, unknown},
		{"windows over bools count 1 for true", "avg_over(x.b, 1m) == 0.5",
			[]batch{{0, "d1", pts(boolean("x.b", true))}, {s, "d1", pts(boolean("x.b", false))}}, isTrue},
		{"windows over enums use the code", "max_over(x.e, 1m) == 4",
			[]batch{{0, "d1", pts(enum("x.e", "overload", 4))}, {s, "d1", pts(enum("x.e", "normal", 2))}}, isTrue},
		{"a window of a string has no samples", "max_over(x.s, 1m) > 0",
			[]batch{{0, "d1", pts(text("x.s", "abc"))}}, unknown},

		// Voting.
		{"count_true", "count_true(x.a, x.b, x.c, x.d) == 1",
			[]batch{{0, "d1", pts(boolean("x.a", true), bad(boolean("x.b", true), "timeout"), boolean("x.c", false))}}, isTrue},
		{"count_true of a stale true", "count_true(x.a) == 0", []batch{{0, "d1", pts(stale(boolean("x.a", true)))}}, isTrue},
		{"count_bad", "count_bad(x.a, x.b, x.c, x.d) == 3",
			[]batch{{0, "d1", pts(boolean("x.a", true), bad(boolean("x.b", true), "timeout"), stale(boolean("x.c", false)))}}, isTrue},

		// Device-level functions.
		{"unreachable: every point timed out", "unreachable()",
			[]batch{{0, "d1", pts(bad(num("x.n", 0), "timeout"), bad(num("x.m", 0), "connection: refused"))}}, isTrue},
		{"unreachable: stale", "unreachable()",
			[]batch{{0, "d1", pts(stale(num("x.n", 0)), bad(num("x.m", 0), "protocol: short reply"))}}, isTrue},
		{"unreachable: a gateway says the device is silent", "unreachable()",
			[]batch{{0, "d1", pts(bad(num("x.n", 0), "exception: gateway target device failed to respond (0B)"))}}, isTrue},
		{"an exception reply is an answer", "unreachable()",
			[]batch{{0, "d1", pts(bad(num("x.n", 0), "timeout"), bad(num("x.m", 0), "exception: illegal data address (02)"))}}, isFalse},
		{"an absent sensor is an answer", "unreachable()",
			[]batch{{0, "d1", pts(bad(num("x.n", 0), "timeout"), bad(num("x.m", 0), "absent: device reports 65535 (no sensor)"))}}, isFalse},
		{"one good point is reachable", "unreachable()",
			[]batch{{0, "d1", pts(bad(num("x.n", 0), "timeout"), num("x.m", 0))}}, isFalse},
		{"a point that recovers", "unreachable()",
			[]batch{{0, "d1", pts(bad(num("x.n", 0), "timeout"))}, {s, "d1", pts(num("x.n", 0))}}, isFalse},
		{"stale_count and bad_count count every point of the device", "stale_count() == 2 && bad_count() == 1",
			[]batch{{0, "d1", pts(stale(num("x.n", 0)), stale(num("x.m", 0)), bad(num("x.o", 0), "timeout"), num("x.p", 1))}}, isTrue},
		{"counts follow the latest quality", "stale_count() == 0 && bad_count() == 0",
			[]batch{{0, "d1", pts(stale(num("x.n", 0)), bad(num("x.o", 0), "timeout"))}, {s, "d1", pts(num("x.n", 1), num("x.o", 1))}}, isTrue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, rulePack(t, "when: '"+tt.when+"'"))
			for _, b := range tt.batches {
				feed(e, b)
			}
			got, err := whenNow(t, e, "d1")
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if got != tt.want {
				t.Errorf("%s: got %s, want %s", tt.when, got, tt.want)
			}
		})
	}
}

func pts(p ...point.Point) []point.Point { return p }

// TestKleene checks && || ! and their word forms against the truth tables
// of three-valued logic, with each operand true, false or unknown (a bad
// bool point).
func TestKleene(t *testing.T) {
	vals := map[string]point.Point{
		"t": boolean("v.t", true),
		"f": boolean("v.f", false),
		"u": bad(boolean("v.u", true), "timeout"),
	}
	tv := map[string]tri{"t": isTrue, "f": isFalse, "u": unknown}
	or := func(a, b tri) tri {
		switch {
		case a == isTrue || b == isTrue:
			return isTrue
		case a == unknown || b == unknown:
			return unknown
		}
		return isFalse
	}
	and := func(a, b tri) tri {
		switch {
		case a == isFalse || b == isFalse:
			return isFalse
		case a == unknown || b == unknown:
			return unknown
		}
		return isTrue
	}
	not := func(a tri) tri {
		return map[tri]tri{isTrue: isFalse, isFalse: isTrue, unknown: unknown}[a]
	}
	type tc struct {
		expr string
		want tri
	}
	var tests []tc
	for _, a := range []string{"t", "f", "u"} {
		tests = append(tests, tc{"!v." + a, not(tv[a])}, tc{"not v." + a, not(tv[a])})
		for _, b := range []string{"t", "f", "u"} {
			tests = append(tests,
				tc{"v." + a + " || v." + b, or(tv[a], tv[b])},
				tc{"v." + a + " or v." + b, or(tv[a], tv[b])},
				tc{"v." + a + " && v." + b, and(tv[a], tv[b])},
				tc{"v." + a + " and v." + b, and(tv[a], tv[b])},
				tc{"!(v." + a + " || v." + b + ")", not(or(tv[a], tv[b]))},
				// Nested: the unknown of one operand must not leak into
				// the other's decision.
				tc{"(v." + a + " && v.t) || (v." + b + " && v.t)", or(tv[a], tv[b])},
				tc{"(v." + a + " || v.f) && (v." + b + " || v.f)", and(tv[a], tv[b])},
			)
		}
	}
	// Comparisons inside the operands.
	tests = append(tests,
		tc{"v.u || x.n > 50", isTrue},  // x.n = 120
		tc{"v.f || x.m > 50", unknown}, // x.m bad
		tc{"x.m > 50 && v.f", isFalse},
		tc{"x.m > 50 || x.n > 50", isTrue},
		tc{"x.gone > 50 || x.n > 50", isTrue}, // x.gone never seen
		tc{"!(x.m > 50) || v.t", isTrue},
	)
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e := newEngine(t, rulePack(t, "when: '"+tt.expr+"'"))
			feed(e, batch{0, "d1", []point.Point{vals["t"], vals["f"], vals["u"], num("x.n", 120), bad(num("x.m", 120), "timeout")}})
			got, err := whenNow(t, e, "d1")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestRuntimeTypeErrors: a condition that misuses a good value fails (and
// is logged by the engine as unknown); one that misuses an unknown value
// is simply unknown.
func TestRuntimeTypeErrors(t *testing.T) {
	tests := []struct {
		name    string
		when    string
		pts     []point.Point
		want    tri
		wantErr bool
	}{
		{"number used as a bool", "x.n || x.b", pts(num("x.n", 1), boolean("x.b", false)), unknown, true},
		{"! of a number", "!x.n", pts(num("x.n", 1)), unknown, true},
		{"string compared with a number", "x.s > 5", pts(text("x.s", "abc")), unknown, true},
		{"missing point compared", "x.gone > 5", pts(num("x.n", 1)), unknown, false},
		{"missing point negated", "!x.gone", pts(num("x.n", 1)), unknown, false},
		{"a bool condition that is a number at run time", "x.n", pts(num("x.n", 1)), unknown, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, rulePack(t, "when: '"+tt.when+"'"))
			feed(e, batch{0, "d1", tt.pts})
			got, err := whenNow(t, e, "d1")
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("got %s, error %v; want %s, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

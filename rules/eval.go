package rules

import (
	"fmt"
	"math"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/facgw/facgw/internal/point"
)

// tri is a three-valued result: a condition can be true, false or unknown
// (it read a bad, stale or missing point, or a window without samples).
type tri int8

const (
	unknown tri = iota
	isFalse
	isTrue
)

func (t tri) String() string { return [...]string{"unknown", "false", "true"}[t] }

// evaluator is what one goroutine needs to evaluate: a VM and an env,
// reused from a pool so evaluation allocates little.
type evaluator struct {
	vm     vm.VM
	env    *env
	local  []*instance
	groups []*instance
}

func newEvaluator() *evaluator { return &evaluator{env: newEnv()} }

// run evaluates a program for an instance at now.
func (ev *evaluator) run(in *instance, p *program, now time.Time) (tri, error) {
	e := ev.env
	e.in, e.now = in, now.UnixNano()
	e.unknown = false
	e.flags = e.flags[:0]
	e.pend = e.pend[:0]
	out, err := ev.vm.Run(p.prog, e)
	e.in = nil
	if err != nil {
		if e.unknown {
			// An unknown input made a later operation fail (a missing
			// point has no value to compare): the result is unknown,
			// which is what it would have been anyway.
			return unknown, nil
		}
		return unknown, err
	}
	if e.unknown {
		return unknown, nil
	}
	b, ok := out.(bool)
	if !ok {
		return unknown, fmt.Errorf("the condition gave %T %v, not true or false", out, out)
	}
	if b {
		return isTrue, nil
	}
	return isFalse, nil
}

// env is the expression environment. Its exported fields are the
// functions the patched expressions call (see expr.go), bound to the env's
// own methods once, when the env is made: expr calls a function-typed
// field directly, but an env method only through reflection, which cost
// four fifths of the evaluation time (BenchmarkFeed). Nothing else of the
// env is visible to rules. One env serves one evaluation at a time; the
// functions see the instance being evaluated through it.
//
// Unknown inputs: a read of a point that is not good sets unknown and
// returns a stand-in value (the point's last value, or NaN if never seen)
// so evaluation goes on; the result of an evaluation with unknown set is
// unknown. The K* functions implement && || ! with Kleene's three-valued
// logic on top: a || b is true when either side is good and true, even if
// the other is unknown.
type env struct {
	Ref                       func(slot any) any
	Good, Bad, Stale, Missing func(slot int) bool
	Quality                   func(slot int) string
	Age                       func(slot int) float64
	Rate, Delta               func(args ...any) any
	MinOver, MaxOver, AvgOver func(args ...any) any
	CountTrue, CountBad       func(args ...any) any
	Unreachable               func() bool
	StaleCount, BadCount      func() int
	KPush                     func() int
	KOrL, KOrR, KAndL, KAndR  func(mark, v any) bool
	KNot                      func(v any) any
	KCond                     func(v any) bool
	RefM                      func(slot, member any) any
	Members                   func() []int
	KMember                   func(mark int, v any) bool
	Firing                    func(ref int) bool

	in      *instance
	alerts  AlertState // where firing() reads; nil: unknown
	now     int64
	unknown bool
	flags   []bool    // unknown flags saved by KPush
	pend    []pending // left operands waiting for their right operand
}

func newEnv() *env {
	e := &env{}
	e.Ref = e.ref
	e.Good, e.Bad, e.Stale, e.Missing = e.good, e.bad, e.stale, e.missing
	e.Quality, e.Age = e.quality, e.age
	e.Rate, e.Delta, e.MinOver, e.MaxOver, e.AvgOver = e.rate, e.delta, e.minOver, e.maxOver, e.avgOver
	e.CountTrue, e.CountBad = e.countTrue, e.countBad
	e.Unreachable, e.StaleCount, e.BadCount = e.unreachable, e.staleCount, e.badCount
	e.KPush = e.kPush
	e.KOrL, e.KOrR, e.KAndL, e.KAndR = e.kOrL, e.kOrR, e.kAndL, e.kAndR
	e.KNot, e.KCond = e.kNot, e.kCond
	e.RefM, e.Members, e.KMember = e.refM, e.members, e.kMember
	e.Firing = e.firing
	return e
}

type pending struct {
	v   any
	unk bool
}

// missingValue stands in for a point never seen. NaN, not nil: a number
// compares with it without an error (false), so "x.gone > 50 || x.n > 50"
// still decides on x.n. Boxed once.
var missingValue any = math.NaN()

// member returns the point states of a slot: one per member device.
func (e *env) member(slot int) []*pstate {
	return e.in.pts[e.in.rule.refs.slotIdx[slot]]
}

// ref is a point reference: the latest value of the point. For a group
// instance a bool is true if good and true on any device, false if good on
// some and true on none; a number is the highest good value; a string the
// first good device's value.
func (e *env) ref(slot any) any {
	ps := e.member(slot.(int))
	if len(ps) == 1 {
		p := ps[0]
		if !p.seen {
			e.unknown = true
			return missingValue
		}
		if p.p.Quality != point.Good {
			e.unknown = true
		}
		return p.val
	}
	var (
		out      any
		stand    any
		anyGood  bool
		anyTrue  bool
		maxNum   = math.Inf(-1)
		numeric  bool
		gotFirst bool
	)
	for _, p := range ps {
		if !p.seen {
			continue
		}
		if stand == nil {
			stand = p.val
		}
		if p.p.Quality != point.Good {
			continue
		}
		anyGood = true
		switch v := p.val.(type) {
		case bool:
			anyTrue = anyTrue || v
			out = anyTrue
		case float64:
			numeric = true
			maxNum = max(maxNum, v)
		default:
			if !gotFirst {
				out, gotFirst = v, true
			}
		}
	}
	if !anyGood {
		e.unknown = true
		if stand == nil {
			return missingValue
		}
		return stand
	}
	if numeric {
		return maxNum
	}
	return out
}

// refM is a point reference inside count_devices: the latest value of the
// point on one member of the instance (an index into its members).
func (e *env) refM(slot, member any) any {
	ps := e.member(slot.(int))
	i, _ := member.(int)
	if i < 0 || i >= len(ps) {
		e.unknown = true
		return missingValue
	}
	p := ps[i]
	if !p.seen {
		e.unknown = true
		return missingValue
	}
	if p.p.Quality != point.Good {
		e.unknown = true
	}
	return p.val
}

// members lists the member indexes of the instance, for count_devices.
func (e *env) members() []int { return e.in.memberIdx }

// kMember ends one member's condition in count_devices: it counts when
// true on good data only, and the member's unknown flag goes no further.
func (e *env) kMember(_ int, v any) bool {
	unk := e.pop()
	return !unk && v == true
}

// groupQuality is the best quality over the members: a group sees a point
// if any member does.
func groupQuality(ps []*pstate) string {
	best := "missing"
	for _, p := range ps {
		if q := qualityOf(p); qualityRank(q) > qualityRank(best) {
			best = q
		}
	}
	return best
}

func qualityRank(q string) int {
	switch q {
	case "good":
		return 3
	case "stale":
		return 2
	case "bad":
		return 1
	}
	return 0
}

func qualityOf(p *pstate) string {
	if !p.seen {
		return "missing"
	}
	return p.p.Quality.String()
}

// quality is quality(x): "good", "stale", "bad" or "missing".
func (e *env) quality(slot int) string {
	ps := e.member(slot)
	if len(ps) == 1 {
		return qualityOf(ps[0])
	}
	return groupQuality(ps)
}

// good is good(x).
func (e *env) good(slot int) bool { return e.quality(slot) == "good" }

// bad is bad(x): the latest reading failed.
func (e *env) bad(slot int) bool { return e.quality(slot) == "bad" }

// stale is stale(x): not refreshed in time.
func (e *env) stale(slot int) bool { return e.quality(slot) == "stale" }

// missing is missing(x): never seen since the engine started.
func (e *env) missing(slot int) bool { return e.quality(slot) == "missing" }

// age is age(x): seconds since the last good sample (of any member), +Inf
// if there never was one.
func (e *env) age(slot int) float64 {
	var last int64
	for _, p := range e.member(slot) {
		last = max(last, p.lastGood)
	}
	if last == 0 {
		return math.Inf(1)
	}
	return float64(e.now-last) / 1e9
}

func (e *env) window(op windowOp, args []any) any {
	ps := e.member(args[0].(int))
	d := int64(args[1].(float64) * 1e9)
	best, ok := math.Inf(-1), false
	for _, p := range ps {
		if p.ring == nil {
			continue
		}
		if v, vok := p.ring.window(op, e.now, d); vok {
			best, ok = max(best, v), true
		}
	}
	if !ok {
		e.unknown = true
		return math.NaN()
	}
	return best
}

// rate is rate(x, d): change per minute over the window.
func (e *env) rate(args ...any) any { return e.window(opRate, args) }

// delta is delta(x, d): last minus first sample in the window.
func (e *env) delta(args ...any) any { return e.window(opDelta, args) }

// minOver is min_over(x, d).
func (e *env) minOver(args ...any) any { return e.window(opMin, args) }

// maxOver is max_over(x, d).
func (e *env) maxOver(args ...any) any { return e.window(opMax, args) }

// avgOver is avg_over(x, d).
func (e *env) avgOver(args ...any) any { return e.window(opAvg, args) }

// countTrue is count_true(a, b, ...): how many of the points are good and
// true now (in a group: on any device). A bad input never votes.
func (e *env) countTrue(args ...any) any {
	n := 0
	for _, a := range args {
		for _, p := range e.member(a.(int)) {
			if p.seen && p.p.Quality == point.Good && p.val == true {
				n++
				break
			}
		}
	}
	return n
}

// countBad is count_bad(a, b, ...): how many of the points are bad, stale
// or missing (in a group: good on no device).
func (e *env) countBad(args ...any) any {
	n := 0
	for _, a := range args {
		if e.quality(a.(int)) != "good" {
			n++
		}
	}
	return n
}

// unreachable is unreachable(): the device has points and none is good
// for want of an answer. In a group: every member is unreachable.
func (e *env) unreachable() bool {
	for _, d := range e.in.members {
		if !d.unreachable() {
			return false
		}
	}
	return true
}

// staleCount is stale_count(): the device's stale points (a group: all
// members').
func (e *env) staleCount() int {
	n := 0
	for _, d := range e.in.members {
		n += d.nStale
	}
	return n
}

// badCount is bad_count(): the device's bad points (a group: all
// members').
func (e *env) badCount() int {
	n := 0
	for _, d := range e.in.members {
		n += d.nBad
	}
	return n
}

// firing is firing("pack/name") and firing_any("pack/name"): whether
// that rule's alert fires in the instance's scope (anywhere for
// firing_any), as the AlertState says; unknown when it cannot tell.
func (e *env) firing(ref int) bool {
	v, known := firingOf(e.alerts, &e.in.rule.refs.firing[ref], e.in)
	if !known {
		e.unknown = true
	}
	return v
}

// kPush starts an operand of && or ||: it saves the unknown flag so the
// operand's own unknown-ness can be seen.
func (e *env) kPush() int {
	e.flags = append(e.flags, e.unknown)
	e.unknown = false
	return 0
}

// pop ends an operand: it returns whether the operand was unknown and
// restores the flag of the enclosing expression.
func (e *env) pop() bool {
	unk := e.unknown
	n := len(e.flags) - 1
	e.unknown = e.flags[n]
	e.flags = e.flags[:n]
	return unk
}

func checkBool(op string, v any, unk bool) {
	if _, ok := v.(bool); !ok && !unk {
		panic(fmt.Sprintf("%s needs true or false on both sides, got %T %v", op, v, v))
	}
}

// kOrL takes the left operand of ||: true (the result) when it is good and
// true; otherwise it keeps it for KOrR and returns false.
func (e *env) kOrL(_ any, v any) bool {
	unk := e.pop()
	if !unk && v == true {
		return true
	}
	checkBool("||", v, unk)
	e.pend = append(e.pend, pending{v, unk})
	return false
}

// kOrR combines the kept left operand with the right one.
func (e *env) kOrR(_ any, v any) bool {
	unk := e.pop()
	n := len(e.pend) - 1
	l := e.pend[n]
	e.pend = e.pend[:n]
	if !unk && v == true {
		return true
	}
	checkBool("||", v, unk)
	if l.unk || unk {
		e.unknown = true
	}
	return false
}

// kAndL takes the left operand of &&: true (meaning: the result is false)
// when it is good and false; otherwise it keeps it for KAndR.
func (e *env) kAndL(_ any, v any) bool {
	unk := e.pop()
	if !unk && v == false {
		return true
	}
	checkBool("&&", v, unk)
	e.pend = append(e.pend, pending{v, unk})
	return false
}

// kAndR combines the kept left operand with the right one.
func (e *env) kAndR(_ any, v any) bool {
	unk := e.pop()
	n := len(e.pend) - 1
	l := e.pend[n]
	e.pend = e.pend[:n]
	if !unk && v == false {
		return false
	}
	checkBool("&&", v, unk)
	if l.unk || unk {
		e.unknown = true
		return false
	}
	return true
}

// kNot is !x; the negation of an unknown is unknown (the flag is already
// set), with false standing in for it.
func (e *env) kNot(v any) any {
	if b, ok := v.(bool); ok {
		return !b
	}
	if e.unknown {
		return false
	}
	panic(fmt.Sprintf("! needs true or false, got %T %v", v, v))
}

// kCond is the condition of c ? a : b.
func (e *env) kCond(v any) bool {
	if b, ok := v.(bool); ok {
		return b
	}
	if e.unknown {
		return false
	}
	panic(fmt.Sprintf("the condition of ?: needs true or false, got %T %v", v, v))
}

package rules

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/facgw/facgw/internal/strictyaml"
)

// How an expression becomes a program:
//
//  1. Duration literals (30s, 5m, 250ms) are replaced by their value in
//     seconds outside string literals, because expr's lexer has no such
//     token. The replacements are recorded so error positions point into
//     the text the operator wrote.
//  2. expr parses the text; a Visitor (patcher) rewrites the tree:
//     identifier chains (bms.cell_temp_max) and point("...") become calls
//     of env.Ref(slot); the rule functions become calls of env functions
//     with slot numbers instead of values; &&, || and ! become three-valued
//     (Kleene) logic over unknown inputs (see eval.go).
//  3. expr type-checks and compiles against the env struct. The program is
//     run per evaluation on a pooled VM with a pooled env: nothing is built
//     per evaluation.

// program is one compiled expression.
type program struct {
	src   string // as written
	prog  *vm.Program
	slots []int // the slots this expression reads, by value or by name
	// device is set when the expression calls a device-level function
	// (unreachable, stale_count, bad_count): any point of the device can
	// change its result.
	device bool
	// alerts is set when the expression calls firing() or firing_any():
	// another rule's alert can change its result.
	alerts bool
}

// readsPoints reports whether evaluating the program depends on points.
func (p *program) readsPoints() bool { return len(p.slots) > 0 || p.device }

// refTable numbers the point names a rule reads. While compiling, every
// occurrence of a name gets its own slot (a chain a.b.c is patched one
// member at a time, so a slot's name grows); finish maps slots to the
// sorted unique names.
type refTable struct {
	slotNames []string
	slotWin   []time.Duration // window length, for rate(x, d) and the like
	slotField []string        // when, clear, summary or description

	// After finish:
	names   []string        // unique names, sorted
	slotIdx []int           // slot -> index into names
	window  []time.Duration // per name: longest window any function uses
	inExpr  []bool          // per name: read by when or clear (not only templates)
	field   []string        // per name: the first field that reads it
	device  bool            // the rule calls a device-level function
	byName  map[string]int
	// firing lists the rules read with firing() and firing_any().
	firing   []firingRef
	finished bool
}

func newRefTable() *refTable { return &refTable{} }

// slot adds an occurrence of a name.
func (t *refTable) slot(name, field string) int {
	t.slotNames = append(t.slotNames, name)
	t.slotWin = append(t.slotWin, 0)
	t.slotField = append(t.slotField, field)
	return len(t.slotNames) - 1
}

// finish assigns the unique names.
func (t *refTable) finish() {
	if t.finished {
		return
	}
	t.finished = true
	t.byName = map[string]int{}
	uniq := map[string]bool{}
	for _, n := range t.slotNames {
		uniq[n] = true
	}
	for n := range uniq {
		t.names = append(t.names, n)
	}
	sort.Strings(t.names)
	for i, n := range t.names {
		t.byName[n] = i
	}
	t.window = make([]time.Duration, len(t.names))
	t.inExpr = make([]bool, len(t.names))
	t.field = make([]string, len(t.names))
	t.slotIdx = make([]int, len(t.slotNames))
	for s, n := range t.slotNames {
		i := t.byName[n]
		t.slotIdx[s] = i
		t.window[i] = max(t.window[i], t.slotWin[s])
		f := t.slotField[s]
		if f == "when" || f == "clear" {
			t.inExpr[i] = true
		}
		if t.field[i] == "" || fieldRank(f) < fieldRank(t.field[i]) {
			t.field[i] = f
		}
	}
}

func fieldRank(f string) int {
	return map[string]int{"when": 0, "clear": 1, "summary": 2, "description": 3}[f]
}

// Functions of the rule language, as written in rules. The names map to
// env fields.
var ruleFuncs = map[string]struct {
	method string
	kind   funcKind
}{
	"good":          {"Good", quality1},
	"bad":           {"Bad", quality1},
	"stale":         {"Stale", quality1},
	"missing":       {"Missing", quality1},
	"quality":       {"Quality", quality1},
	"age":           {"Age", quality1},
	"rate":          {"Rate", window2},
	"delta":         {"Delta", window2},
	"min_over":      {"MinOver", window2},
	"max_over":      {"MaxOver", window2},
	"avg_over":      {"AvgOver", window2},
	"count_true":    {"CountTrue", voting},
	"count_bad":     {"CountBad", voting},
	"count_devices": {"", perDevice},
	"unreachable":   {"Unreachable", device0},
	"stale_count":   {"StaleCount", device0},
	"bad_count":     {"BadCount", device0},
	"point":         {"Ref", pointName},
	"duration":      {"", durationLit},
	"firing":        {"Firing", alertState},
	"firing_any":    {"Firing", alertState},
}

type funcKind int

const (
	quality1 funcKind = iota
	window2
	voting
	device0
	pointName
	durationLit
	perDevice
	alertState
)

// funcNames lists the rule functions and the expr builtins a rule may call,
// for did-you-mean.
var funcNames = func() []string {
	var out []string
	for n := range ruleFuncs {
		out = append(out, n)
	}
	out = append(out, "abs", "ceil", "floor", "round", "max", "min", "len", "int", "float", "string", "lower", "upper", "trim", "hasPrefix", "hasSuffix")
	sort.Strings(out)
	return out
}()

// disabledBuiltins read the wall clock or shadow a rule function: rules see
// point time only, so a replay gives the alerts the live gateway gave.
var disabledBuiltins = []string{"now", "date", "timezone", "duration"}

// maxWindow bounds window lengths: the ring of samples behind a window is
// bounded in length too (ringCap), and a window over hours belongs in the
// time-series database, not on the polling path.
const maxWindow = 24 * time.Hour

// compileExpr compiles a condition. field ("when" or "clear") is recorded
// with the point names for Check.
func compileExpr(src string, refs *refTable, field string) (*program, error) {
	pre, spans, err := preprocess(src)
	if err != nil {
		return nil, err
	}
	p := &patcher{refs: refs, field: field, firstSlot: len(refs.slotNames)}
	if tree, perr := parseForScan(pre); perr == nil {
		p.scan(tree)
	}
	opts := []expr.Option{
		expr.Env(&env{}),
		expr.AsBool(),
		expr.DisableIfOperator(),
		expr.Patch(p),
	}
	for _, b := range disabledBuiltins {
		opts = append(opts, expr.DisableBuiltin(b))
	}
	prog, cerr := expr.Compile(pre, opts...)
	if len(p.errs) > 0 {
		// The patcher's complaint is about what the operator wrote; expr's
		// would be about the patched tree.
		return nil, locate(src, spans, p.errs[0].loc, p.errs[0].msg)
	}
	for _, f := range p.firingAt {
		refs.firing[f.idx].at = where(src, spans, f.loc)
	}
	for s := p.firstSlot; s < len(refs.slotNames); s++ {
		if loc, ok := p.bare[s]; ok {
			if err := checkPointName(refs.slotNames[s]); err != nil {
				return nil, locate(src, spans, loc, err.Error())
			}
		}
	}
	if cerr != nil {
		var fe *file.Error
		if errors.As(cerr, &fe) {
			return nil, locate(src, spans, fe.Location, fe.Message)
		}
		return nil, cerr
	}
	if what := notBool(prog.Node()); what != "" {
		return nil, locate(src, spans, prog.Node().Location(), "the condition must give true or false, not "+what)
	}
	out := &program{src: src, prog: prog, device: p.device, alerts: p.alerts}
	for s := p.firstSlot; s < len(refs.slotNames); s++ {
		out.slots = append(out.slots, s)
	}
	if p.device {
		refs.device = true
	}
	return out, nil
}

// locate words an error at a rune offset of the preprocessed source as a
// position in the source as written.
func locate(src string, spans []span, loc file.Location, msg string) error {
	return fmt.Errorf("%s%s", strings.TrimSpace(msg), where(src, spans, loc))
}

// where names a rune offset of the preprocessed source as a position in
// the source as written: " (column 9 of the expression)".
func where(src string, spans []span, loc file.Location) string {
	off := loc.From
	for i := len(spans) - 1; i >= 0; i-- {
		s := spans[i]
		if off >= s.newFrom+s.newLen {
			off += s.oldLen - s.newLen
			continue
		}
		if off >= s.newFrom {
			off = s.oldFrom
		}
	}
	line, col := 1, 1
	i := 0
	for _, r := range src {
		if i == off {
			break
		}
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
		i++
	}
	if strings.Contains(strings.TrimSpace(src), "\n") {
		return fmt.Sprintf(" (line %d, column %d of the expression)", line, col)
	}
	return fmt.Sprintf(" (column %d of the expression)", col)
}

// notBool names what a condition gives when the checker could not tell
// (values of points and windows are typed at run time) but the shape of
// the expression can: "bms.x + 1" or "rate(x, 1m)" is a number.
func notBool(n ast.Node) string {
	switch n := n.(type) {
	case *ast.BinaryNode:
		switch n.Operator {
		case "+", "-", "*", "/", "%", "**", "^":
			return "a number"
		}
	case *ast.UnaryNode:
		if n.Operator == "-" || n.Operator == "+" {
			return "a number"
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			switch id.Value {
			case "Rate", "Delta", "MinOver", "MaxOver", "AvgOver", "CountTrue", "CountBad":
				return "a number"
			}
		}
	}
	return ""
}

// span records one replaced duration literal, in runes.
type span struct{ oldFrom, oldLen, newFrom, newLen int }

var durationRE = regexp.MustCompile(`^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+`)

// preprocess replaces duration literals outside string literals by their
// value in seconds. A literal must start at a token boundary and not run
// into an identifier: "zone1s" and "0x5s" are left alone.
func preprocess(src string) (string, []span, error) {
	var b strings.Builder
	var spans []span
	runeOld, runeNew := 0, 0
	i := 0
	prevIdent := false // the previous rune continues an identifier or number
	for i < len(src) {
		c := src[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j < len(src) {
				j++
			}
			j = min(j, len(src))
			n := utf8.RuneCountInString(src[i:j])
			b.WriteString(src[i:j])
			runeOld += n
			runeNew += n
			i = j
			prevIdent = false
			continue
		case c >= '0' && c <= '9' && !prevIdent:
			m := durationRE.FindString(src[i:])
			end := i + len(m)
			if m != "" && (end >= len(src) || !isIdentByte(src[end])) {
				d, err := time.ParseDuration(m)
				if err != nil {
					return "", nil, fmt.Errorf("bad duration %q: %v", m, err)
				}
				lit := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
				if !strings.Contains(lit, ".") {
					lit += ".0"
				}
				spans = append(spans, span{oldFrom: runeOld, oldLen: len(m), newFrom: runeNew, newLen: len(lit)})
				b.WriteString(lit)
				runeOld += len(m)
				runeNew += len(lit)
				i = end
				prevIdent = true
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(src[i:])
		b.WriteRune(r)
		runeOld++
		runeNew++
		i += size
		prevIdent = isIdentByte(c) || c == '.'
	}
	return b.String(), spans, nil
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c == '#' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// parseForScan parses without patching, for the patcher's pre-scan of
// callees and let-variables, with the options Compile gets so both see
// the same tree.
func parseForScan(src string) (*ast.Node, error) {
	c := conf.CreateNew()
	c.DisableIfOperator = true
	for _, b := range disabledBuiltins {
		c.Disabled[b] = true
	}
	tree, err := parser.ParseWithConfig(src, c)
	if err != nil {
		return nil, err
	}
	return &tree.Node, nil
}

// exprError is a problem the patcher found, at a node.
type exprError struct {
	loc file.Location
	msg string
}

// patcher rewrites the parsed tree (see the top of this file). ast.Walk
// visits children before their parent, which is what makes chains work:
// in a.b.c the identifier a becomes Ref(slot) first, then each member
// access around it extends the slot's name.
type patcher struct {
	refs      *refTable
	field     string
	firstSlot int
	// callees are the identifiers in call position and vars the names
	// declared with let: neither is a point.
	callees map[string]bool
	vars    map[string]bool
	// refCalls maps a Ref call made by the patcher to its slot.
	refCalls map[*ast.CallNode]int
	// bare slots were written as identifier chains, not point("..."):
	// their names are checked once the chain is complete.
	bare   map[int]file.Location
	device bool
	// alerts is set by firing() and firing_any(); firingAt locates the
	// references this expression added.
	alerts   bool
	firingAt []struct {
		idx int
		loc file.Location
	}
	errs []exprError
}

// scan records callees and let-variables of the unpatched tree. The
// callee set is by name: a point whose chain starts with a function name
// (rate.x) cannot be written bare; point("rate.x") still works.
func (p *patcher) scan(root *ast.Node) {
	p.callees = map[string]bool{}
	p.vars = map[string]bool{}
	ast.Walk(root, scanner{p})
}

type scanner struct{ p *patcher }

func (s scanner) Visit(n *ast.Node) {
	switch n := (*n).(type) {
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			s.p.callees[id.Value] = true
		}
	case *ast.VariableDeclaratorNode:
		s.p.vars[n.Name] = true
	}
}

func (p *patcher) errorf(n ast.Node, format string, args ...any) {
	p.errs = append(p.errs, exprError{loc: n.Location(), msg: fmt.Sprintf(format, args...)})
}

// refCall makes env.Ref(slot) for a new occurrence of name.
func (p *patcher) refCall(at ast.Node, name string) *ast.CallNode {
	s := p.refs.slot(name, p.field)
	c := &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: "Ref"},
		Arguments: []ast.Node{&ast.IntegerNode{Value: s}},
	}
	c.SetLocation(at.Location())
	c.Callee.SetLocation(at.Location())
	c.Arguments[0].SetLocation(at.Location())
	if p.refCalls == nil {
		p.refCalls = map[*ast.CallNode]int{}
	}
	p.refCalls[c] = s
	return c
}

// methodCall makes a call of an env function.
func methodCall(at ast.Node, method string, args ...ast.Node) *ast.CallNode {
	c := &ast.CallNode{Callee: &ast.IdentifierNode{Value: method}, Arguments: args}
	c.SetLocation(at.Location())
	c.Callee.SetLocation(at.Location())
	for _, a := range args {
		if a.Location() == (file.Location{}) {
			a.SetLocation(at.Location())
		}
	}
	return c
}

func intNode(at ast.Node, v int) ast.Node {
	n := &ast.IntegerNode{Value: v}
	n.SetLocation(at.Location())
	return n
}

// slotOf returns the slot of a point reference passed to a function by
// name (good(x)): the function gets the slot, not the value, so reading it
// never makes the condition unknown.
func (p *patcher) slotOf(fn string, i int, n ast.Node) (int, bool) {
	c, ok := n.(*ast.CallNode)
	s, isRef := p.refCalls[c]
	if !ok || !isRef {
		p.errorf(n, "%s: argument %d must be a point name such as bms.cell_temp_max or point(\"if.oper_status.uplink-1\"), not %s", fn, i+1, p.describe(n))
		return 0, false
	}
	return s, true
}

var pointNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$`)

// Visit implements ast.Visitor.
func (p *patcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if p.callees[n.Value] || p.vars[n.Value] {
			return
		}
		if strings.HasPrefix(n.Value, "$") {
			p.errorf(n, "%s is not available in rules", n.Value)
			return
		}
		c := p.refCall(n, n.Value)
		if p.bare == nil {
			p.bare = map[int]file.Location{}
		}
		p.bare[p.refCalls[c]] = n.Location()
		*node = c

	case *ast.MemberNode:
		c, ok := n.Node.(*ast.CallNode)
		s, isRef := p.refCalls[c]
		prop, isName := n.Property.(*ast.StringNode)
		if !ok || !isRef || !isName || n.Method || n.Optional {
			return
		}
		p.refs.slotNames[s] += "." + prop.Value
		*node = c

	case *ast.ChainNode:
		// Optional chaining (a?.b) is not a point name.
		p.errorf(n, "?. is not supported in rules")

	case *ast.CallNode:
		p.call(node, n)

	case *ast.UnaryNode:
		if n.Operator == "!" || n.Operator == "not" {
			*node = methodCall(n, "KNot", n.Node)
		}

	case *ast.BinaryNode:
		var left, right, short string
		switch n.Operator {
		case "||", "or":
			left, right, short = "KOrL", "KOrR", "true"
		case "&&", "and":
			left, right, short = "KAndL", "KAndR", "false"
		default:
			return
		}
		// l || r  becomes  KOrL(KPush(), l) ? true : KOrR(KPush(), r):
		// function arguments are evaluated in order, so KPush saves the
		// unknown flag before each operand and the K function sees
		// whether that operand alone was unknown. The conditional keeps
		// the short circuit.
		exp1 := &ast.BoolNode{Value: short == "true"}
		exp1.SetLocation(n.Location())
		cond := &ast.ConditionalNode{
			Ternary: true,
			Cond:    methodCall(n, left, methodCall(n.Left, "KPush"), n.Left),
			Exp1:    exp1,
			Exp2:    methodCall(n, right, methodCall(n.Right, "KPush"), n.Right),
		}
		cond.SetLocation(n.Location())
		*node = cond

	case *ast.ConditionalNode:
		n.Cond = methodCall(n.Cond, "KCond", n.Cond)
	}
}

// call checks a function call and turns a rule function into its env
// function.
func (p *patcher) call(node *ast.Node, n *ast.CallNode) {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok {
		if m, ok := n.Callee.(*ast.MemberNode); ok {
			if prop, ok := m.Property.(*ast.StringNode); ok {
				p.errorf(n, "unknown function %q%s", prop.Value, strictyaml.DidYouMean(prop.Value, funcNames))
				return
			}
		}
		p.errorf(n, "this call is not supported in rules")
		return
	}
	f, known := ruleFuncs[id.Value]
	if !known {
		p.errorf(n, "unknown function %q%s", id.Value, strictyaml.DidYouMeanOr(id.Value, funcNames))
		return
	}
	args := n.Arguments
	wantArgs := func(k int) bool {
		if len(args) != k {
			p.errorf(n, "%s takes %d argument%s, got %d", id.Value, k, plural(k), len(args))
			return false
		}
		return true
	}
	switch f.kind {
	case pointName:
		if !wantArgs(1) {
			return
		}
		s, ok := args[0].(*ast.StringNode)
		if !ok {
			p.errorf(n, "point takes a point name in quotes, such as point(\"if.oper_status.uplink-1\")")
			return
		}
		if s.Value == "" || strings.ContainsAny(s.Value, " \t\r\n") || strings.HasPrefix(s.Value, ".") || strings.HasSuffix(s.Value, ".") {
			p.errorf(n, "point(%q): not a point name", s.Value)
			return
		}
		*node = p.refCall(n, s.Value)

	case durationLit:
		if !wantArgs(1) {
			return
		}
		s, ok := args[0].(*ast.StringNode)
		if !ok {
			p.errorf(n, "duration takes a duration in quotes, such as duration(\"30s\")")
			return
		}
		d, err := time.ParseDuration(s.Value)
		if err != nil {
			p.errorf(n, "duration(%q): want a duration such as 30s, 5m or 250ms", s.Value)
			return
		}
		fn := &ast.FloatNode{Value: d.Seconds()}
		fn.SetLocation(n.Location())
		*node = fn

	case quality1:
		if !wantArgs(1) {
			return
		}
		if s, ok := p.slotOf(id.Value, 0, args[0]); ok {
			*node = methodCall(n, f.method, intNode(n, s))
		}

	case window2:
		if !wantArgs(2) {
			return
		}
		s, ok := p.slotOf(id.Value, 0, args[0])
		if !ok {
			return
		}
		var secs float64
		switch w := args[1].(type) {
		case *ast.FloatNode:
			secs = w.Value
		case *ast.IntegerNode:
			secs = float64(w.Value)
		default:
			p.errorf(args[1], "%s: the window must be a duration such as 60s or 5m, not %s", id.Value, p.describe(args[1]))
			return
		}
		d := time.Duration(secs * float64(time.Second))
		if secs <= 0 || math.IsNaN(secs) || d > maxWindow {
			p.errorf(args[1], "%s: the window must be a duration above 0 and at most %s", id.Value, maxWindow)
			return
		}
		p.refs.slotWin[s] = max(p.refs.slotWin[s], d)
		w := &ast.FloatNode{Value: secs}
		w.SetLocation(args[1].Location())
		*node = methodCall(n, f.method, intNode(n, s), w)

	case voting:
		if len(args) == 0 {
			p.errorf(n, "%s takes one or more point names", id.Value)
			return
		}
		out := make([]ast.Node, len(args))
		for i, a := range args {
			s, ok := p.slotOf(id.Value, i, a)
			if !ok {
				return
			}
			out[i] = intNode(a, s)
		}
		*node = methodCall(n, f.method, out...)

	case device0:
		if !wantArgs(0) {
			return
		}
		p.device = true
		*node = methodCall(n, f.method)

	case perDevice:
		if !wantArgs(1) {
			return
		}
		p.countDevices(node, n, args[0])

	case alertState:
		if !wantArgs(1) {
			return
		}
		s, ok := args[0].(*ast.StringNode)
		if !ok {
			p.errorf(n, "%s takes a rule id in quotes, such as %s(\"fire/confirmed-fire\")", id.Value, id.Value)
			return
		}
		pack, name, cut := strings.Cut(s.Value, "/")
		if !cut || !packRE.MatchString(pack) || !nameRE.MatchString(name) {
			p.errorf(n, "%s(%q): not a rule id; want \"pack/name\", such as \"fire/confirmed-fire\"", id.Value, s.Value)
			return
		}
		i, added := p.refs.firingRef(s.Value, id.Value == "firing_any", p.field)
		if added {
			p.firingAt = append(p.firingAt, struct {
				idx int
				loc file.Location
			}{i, n.Location()})
		}
		p.alerts = true
		*node = methodCall(n, f.method, intNode(n, i))
	}
}

// countDevices turns count_devices(cond) into expr's
//
//	count(Members(), {KMember(KPush(), cond')})
//
// where cond' reads each point of the member # alone (RefM(slot, #)), not
// the group's aggregate. KPush/KMember give each member its own unknown
// flag: a member whose inputs are bad, stale or missing does not count,
// and does not make the whole condition unknown (as a bad input never
// votes in count_true).
func (p *patcher) countDevices(node *ast.Node, n *ast.CallNode, cond ast.Node) {
	ok := true
	ast.Walk(&cond, memberRefs{p: p, ok: &ok})
	if !ok {
		return
	}
	body := methodCall(n, "KMember", methodCall(n, "KPush"), cond)
	pred := &ast.PredicateNode{Node: body}
	pred.SetLocation(n.Location())
	b := &ast.BuiltinNode{Name: "count", Arguments: []ast.Node{methodCall(n, "Members"), pred}}
	b.SetLocation(n.Location())
	*node = b
}

// memberRefs rewrites the point references of a count_devices condition
// to read one member's value, and refuses the functions that see the
// group (windows, quality tests, voting): inside, a condition is about one
// device's latest values.
type memberRefs struct {
	p  *patcher
	ok *bool
}

func (m memberRefs) Visit(node *ast.Node) {
	c, isCall := (*node).(*ast.CallNode)
	if !isCall {
		return
	}
	id, _ := c.Callee.(*ast.IdentifierNode)
	if id == nil {
		return
	}
	switch id.Value {
	case "Ref":
		ptr := &ast.PointerNode{}
		ptr.SetLocation(c.Location())
		*node = methodCall(c, "RefM", c.Arguments[0], ptr)
	case "KPush", "KOrL", "KOrR", "KAndL", "KAndR", "KNot", "KCond":
	case "Members", "KMember", "RefM":
		m.p.errorf(c, "count_devices cannot be nested")
		*m.ok = false
	default:
		m.p.errorf(c, "count_devices: the condition may read points, compare and combine them, not call %s", id.Value)
		*m.ok = false
	}
}

// describe names an argument for an error message: a literal as written,
// a point by its name, anything else as "an expression" (the patched
// tree's text would show the patcher's rewriting, not what was written).
func (p *patcher) describe(n ast.Node) string {
	switch n := n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.StringNode, *ast.BoolNode, *ast.NilNode:
		return n.String()
	case *ast.CallNode:
		if s, ok := p.refCalls[n]; ok {
			return "the point " + p.refs.slotNames[s]
		}
	}
	return "an expression"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// checkPointName reports a bare name that cannot be a point name (an
// upper-case letter: likely a typo of a function or a Go-ism such as
// True). point("...") names are exempt: SNMP row labels are free text.
func checkPointName(name string) error {
	if pointNameRE.MatchString(name) {
		return nil
	}
	return fmt.Errorf("unknown name %q: point names are lower-case, such as bms.cell_temp_max", name)
}

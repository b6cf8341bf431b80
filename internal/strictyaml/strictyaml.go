// Package strictyaml decodes YAML into Go structs strictly and reports every
// problem at once, each located by file, line, column and field path
// ("devices[3].unit"). facgw's config, firmware profiles and (later) rule
// files all go through it, so an engineer fixing a file sees all mistakes in
// one run instead of one per attempt.
//
// Decoding walks the yaml.v3 node tree against the target's reflect type:
// unknown keys, wrong types, missing required fields (tag `check:"required"`)
// and duplicate keys are errors. A struct field of type Pos is filled with
// the position of the mapping it was decoded from, so later semantic checks
// (duplicate ids, unknown profile names) can point at the right line.
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is one located problem.
type Error struct {
	File      string
	Line, Col int
	Path      string
	Msg       string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	if e.Path != "" {
		b.WriteString(": ")
		b.WriteString(e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Errors collects located problems. It is an error only when non-empty; use
// Err to turn it into a plain error value.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Err returns nil for no errors and the sorted list otherwise.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	es.Sort()
	return es
}

// Sort orders errors by file, line and column.
func (es Errors) Sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Unwrap lets errors.As find individual errors.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Pos is where a mapping was found, with the positions of its keys and of
// everything below them. Put a field `Pos strictyaml.Pos` in a struct to
// receive it.
type Pos struct {
	File      string
	Line, Col int
	Path      string
	keys      map[string][2]int
	// paths holds the positions of the keys of nested mappings and the
	// items of lists too, by path relative to this mapping ("unit",
	// "serial.baud", "poll.safety", "points[2]"), for AtPath.
	paths map[string][2]int
}

// At returns an error located at this mapping's key field (or at the
// mapping itself when the key is absent), with the path extended by field.
func (p Pos) At(field string, format string, args ...any) *Error {
	e := &Error{File: p.File, Line: p.Line, Col: p.Col, Path: p.Path, Msg: fmt.Sprintf(format, args...)}
	if field != "" {
		e.Path = join(p.Path, field)
		if lc, ok := p.keys[field]; ok {
			e.Line, e.Col = lc[0], lc[1]
		}
	}
	return e
}

// AtPath is At for a path below the mapping, such as "serial.baud",
// "poll.safety" or "points[2]": the error is located at that key (a list
// item at the item), or at the mapping itself when the path is absent.
func (p Pos) AtPath(path string, format string, args ...any) *Error {
	e := p.At("", format, args...)
	if path != "" {
		e.Path = join(p.Path, path)
		if lc, ok := p.paths[path]; ok {
			e.Line, e.Col = lc[0], lc[1]
		}
	}
	return e
}

// Has reports whether the mapping had the key.
func (p Pos) Has(field string) bool { _, ok := p.keys[field]; return ok }

// Unmarshaler is implemented by types that decode themselves from a scalar
// or node; the returned error message is located by the caller.
type Unmarshaler interface {
	UnmarshalYAMLNode(n *yaml.Node) error
}

var (
	posType      = reflect.TypeOf(Pos{})
	durationType = reflect.TypeOf(time.Duration(0))
	unmarshalerT = reflect.TypeOf((*Unmarshaler)(nil)).Elem()
	nodeType     = reflect.TypeOf(yaml.Node{})
)

// Decode parses data (named file in messages) into out, a pointer to a
// struct, and returns every problem found. Decoding continues past errors so
// the caller still gets a best-effort value.
//
// A file holds one YAML document: a second one ("---") is an error rather
// than silently ignored.
func Decode(file string, data []byte, out any) Errors {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return Errors{syntaxError(file, err)}
	}
	if len(doc.Content) == 0 {
		return Errors{{File: file, Line: 1, Col: 1, Msg: "file is empty"}}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		return Errors{syntaxError(file, err)}
	default:
		return Errors{{File: file, Line: extra.Line, Col: extra.Column, Msg: "a file holds one YAML document, found a second"}}
	}
	d := &decoder{file: file}
	d.value(doc.Content[0], reflect.ValueOf(out).Elem(), "")
	return d.errs
}

// syntaxError turns yaml.v3's "yaml: line 3: ..." into a located error.
func syntaxError(file string, err error) *Error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	e := &Error{File: file, Msg: "syntax error: " + msg}
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.Index(rest, ":"); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				e.Line, e.Col = n, 1
				e.Msg = "syntax error: " + strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return e
}

type decoder struct {
	file string
	errs Errors
	// scopes are the Pos path maps of the structs being decoded, outermost
	// first, each with the path of its mapping.
	scopes []scope
	// expanding holds the anchored nodes whose aliases are being decoded,
	// so an alias inside its own anchor ("&a {sub: *a}") is an error and
	// not endless recursion.
	expanding map[*yaml.Node]bool
}

type scope struct {
	path  string
	paths map[string][2]int
}

// record notes the position of the key or item at path in every enclosing
// struct's Pos, keeping the first when a path repeats.
func (d *decoder) record(path string, n *yaml.Node) {
	for _, s := range d.scopes {
		rel := strings.TrimPrefix(path[len(s.path):], ".")
		if _, ok := s.paths[rel]; rel != "" && !ok {
			s.paths[rel] = [2]int{n.Line, n.Column}
		}
	}
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Col: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		if d.expanding[n.Alias] {
			d.errorf(n, path, "alias *%s is inside its own anchor", n.Value)
			return
		}
		n = n.Alias
	}
	if n.Anchor != "" && !d.expanding[n] {
		if d.expanding == nil {
			d.expanding = map[*yaml.Node]bool{}
		}
		d.expanding[n] = true
		defer delete(d.expanding, n)
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerT) {
		if err := v.Addr().Interface().(Unmarshaler).UnmarshalYAMLNode(n); err != nil {
			d.errorf(n, path, "%s", err.Error())
		}
		return
	}
	if v.Type() == durationType {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "want a duration such as 250ms or 30s, got %s", kindName(n))
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil || dur < 0 {
			d.errorf(n, path, "want a duration such as 250ms or 30s, got %s", kindName(n))
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Tag == "!!null" {
			return
		}
		nv := reflect.New(v.Type().Elem())
		d.value(n, nv.Elem(), path)
		v.Set(nv)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if n.Tag == "!!null" {
				return
			}
			d.errorf(n, path, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			d.record(ip, c)
			d.value(c, s.Index(i), ip)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return
			}
			d.errorf(n, path, "want a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if seen[k.Value] {
				d.errorf(k, join(path, k.Value), "duplicate key %q", k.Value)
				continue
			}
			seen[k.Value] = true
			d.record(join(path, k.Value), k)
			kv := reflect.New(v.Type().Key()).Elem()
			d.value(k, kv, path)
			ev := reflect.New(v.Type().Elem()).Elem()
			d.value(val, ev, join(path, k.Value))
			m.SetMapIndex(kv, ev)
		}
		v.Set(m)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.scalar(n, v, path)
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	t := v.Type()
	type fieldInfo struct {
		index    int
		required bool
	}
	fields := map[string]fieldInfo{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Type == posType {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = fieldInfo{index: i, required: f.Tag.Get("check") == "required"}
		names = append(names, name)
	}
	pos := Pos{File: d.file, Line: n.Line, Col: n.Column, Path: path, keys: map[string][2]int{}, paths: map[string][2]int{}}
	d.scopes = append(d.scopes, scope{path: path, paths: pos.paths})
	defer func() { d.scopes = d.scopes[:len(d.scopes)-1] }()
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := join(path, k.Value)
		if _, dup := pos.keys[k.Value]; dup {
			d.errorf(k, fp, "duplicate key %q", k.Value)
			continue
		}
		pos.keys[k.Value] = [2]int{k.Line, k.Column}
		d.record(fp, k)
		fi, ok := fields[k.Value]
		if !ok {
			d.errorf(k, fp, "unknown field %q%s", k.Value, DidYouMeanOr(k.Value, names))
			continue
		}
		d.value(val, v.Field(fi.index), fp)
	}
	for _, name := range names {
		fi := fields[name]
		if _, ok := pos.keys[name]; fi.required && !ok {
			d.errorf(n, join(path, name), "missing required field %q", name)
		}
	}
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Type == posType && t.Field(i).IsExported() {
			v.Field(i).Set(reflect.ValueOf(pos))
		}
	}
}

// DidYouMean proposes the known name closest to a mistyped one, or "". A
// name that starts like the typo counts as close, so a truncated model
// name ("apc-smart-up") still finds "apc-smart-ups-modbus".
func DidYouMean(got string, names []string) string {
	best, bestScore := "", 0
	for _, n := range names {
		score := distance(got, n)
		if len(got) >= 4 && len(n) > len(got) {
			score = min(score, distance(got, n[:len(got)])+1)
		}
		if best == "" || score < bestScore || (score == bestScore && n < best) {
			best, bestScore = n, score
		}
	}
	if best == "" || bestScore > max(2, len(got)/4) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// DidYouMeanOr is DidYouMean, listing every name when none is close.
func DidYouMeanOr(got string, names []string) string {
	if s := DidYouMean(got, names); s != "" {
		return s
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "want %s, got %s", typeWord(v.Kind()), kindName(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		if n.Tag == "!!null" {
			d.errorf(n, path, "want a string, got nothing")
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, ok := map[string]bool{"true": true, "false": false}[n.Value]
		if !ok || n.Tag != "!!bool" {
			d.errorf(n, path, "want true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || n.Tag != "!!int" {
			d.errorf(n, path, "want an integer, got %s", kindName(n))
			return
		}
		if v.OverflowInt(i) {
			d.errorf(n, path, "%d is out of range", i)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || n.Tag != "!!int" {
			d.errorf(n, path, "want a non-negative integer, got %s", kindName(n))
			return
		}
		if v.OverflowUint(u) {
			d.errorf(n, path, "%d is out of range (largest %d)", u, uint64(math.MaxUint64)>>(64-v.Type().Bits()))
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		var err error
		switch n.Tag {
		case "!!int":
			var i int64
			i, err = strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
			f = float64(i)
		case "!!float":
			err = n.Decode(&f)
		default:
			err = errors.New("not a number")
		}
		if err != nil {
			d.errorf(n, path, "want a number, got %s", kindName(n))
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(n, path, "internal: cannot decode into %s", v.Type())
	}
}

func typeWord(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return "an integer"
	}
}

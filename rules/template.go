package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/facgw/facgw/internal/point"
)

// templateData is what summary and description templates see.
type templateData struct {
	// Device is the device id (empty for a group instance).
	Device string
	// Group names a group instance ("room=b3"); empty per device.
	Group string
	// Rule is the rule id, "pack/name".
	Rule string
	// Labels are the device's labels (a group's shared ones) merged with
	// the rule's, the rule's winning.
	Labels map[string]string
}

// templateFuncs are the functions templates call, bound per rendering to
// the instance. The ones given at parse time only let the parse succeed.
var templateFuncs = template.FuncMap{
	"value":   func(string) string { return "missing" },
	"quality": func(string) string { return "missing" },
}

// parseTemplate parses a summary or description and records the point
// names it reads. It also executes it once on placeholder data, so a
// mistake such as {{ .Devcie }} is an error when the file is loaded, not
// when the alert fires.
func parseTemplate(field, text string, refs *refTable) (*template.Template, error) {
	t, err := template.New(field).Option("missingkey=zero").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, templateError(err)
	}
	var names []string
	var walkErr error
	walkTemplate(t.Tree.Root, func(fn string, args []parse.Node) {
		if len(args) != 1 {
			walkErr = fmt.Errorf("%s takes one point name, such as %s \"bms.offgas_ppm\"", fn, fn)
			return
		}
		s, ok := args[0].(*parse.StringNode)
		if !ok {
			walkErr = fmt.Errorf("%s takes a point name in quotes, such as %s \"bms.offgas_ppm\"", fn, fn)
			return
		}
		names = append(names, s.Text)
	})
	if walkErr != nil {
		return nil, walkErr
	}
	var b strings.Builder
	if err := t.Execute(&b, templateData{Device: "device", Rule: "pack/rule", Labels: map[string]string{}}); err != nil {
		return nil, templateError(err)
	}
	for _, n := range names {
		refs.slot(n, field)
	}
	return t, nil
}

// templateError drops text/template's "template: summary:1:" prefix down
// to the position, which the caller locates in the file.
func templateError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "template: ")
	msg = strings.ReplaceAll(msg, "in type rules.templateData", "(known: .Device, .Group, .Rule, .Labels)")
	return fmt.Errorf("template: %s", msg)
}

// walkTemplate calls fn for every call of value or quality.
func walkTemplate(n parse.Node, fn func(string, []parse.Node)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkTemplate(c, fn)
		}
	case *parse.ActionNode:
		walkTemplate(n.Pipe, fn)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walkTemplate(c, fn)
		}
	case *parse.CommandNode:
		if len(n.Args) > 0 {
			if id, ok := n.Args[0].(*parse.IdentifierNode); ok && (id.Ident == "value" || id.Ident == "quality") {
				fn(id.Ident, n.Args[1:])
			}
		}
		for _, a := range n.Args {
			walkTemplate(a, fn)
		}
	case *parse.IfNode:
		walkTemplate(n.Pipe, fn)
		walkTemplate(n.List, fn)
		walkTemplate(n.ElseList, fn)
	case *parse.RangeNode:
		walkTemplate(n.Pipe, fn)
		walkTemplate(n.List, fn)
		walkTemplate(n.ElseList, fn)
	case *parse.WithNode:
		walkTemplate(n.Pipe, fn)
		walkTemplate(n.List, fn)
		walkTemplate(n.ElseList, fn)
	}
}

// render executes a template for an instance. The caller holds the
// instance's locks. It never fails: a template error at run time (which
// the load-time execution should have caught) yields a text that says so.
func (e *Engine) render(in *instance, t *templateT) string {
	if t == nil {
		return ""
	}
	data := templateData{Rule: in.rule.ID, Labels: in.labels}
	if in.group {
		data.Group = in.key
	} else {
		data.Device = in.key
	}
	var b strings.Builder
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		c, err := t.Clone()
		if err != nil {
			return err
		}
		c.Funcs(template.FuncMap{
			"value":   func(name string) string { return in.valueText(name) },
			"quality": func(name string) string { return in.qualityText(name) },
		})
		return c.Execute(&b, data)
	}()
	if err != nil {
		e.log.Warn("rules: template failed", "rule", in.rule.ID, "instance", in.key, "template", t.Name(), "err", err)
		return fmt.Sprintf("%s on %s (template error: %v)", in.rule.ID, in.key, err)
	}
	return b.String()
}

// templateT is a parsed template.
type templateT = template.Template

// valueText is value "name": the value with its unit, or what is wrong
// with it. For a group, each member that has seen the point.
func (in *instance) valueText(name string) string {
	i, ok := in.rule.refs.byName[name]
	if !ok {
		return "missing"
	}
	if !in.group {
		return pointText(in.pts[i][0])
	}
	var parts []string
	for j, ps := range in.pts[i] {
		if ps.seen {
			parts = append(parts, in.members[j].dev.ID+": "+pointText(ps))
		}
	}
	if len(parts) == 0 {
		return "missing"
	}
	return strings.Join(parts, ", ")
}

// qualityText is quality "name".
func (in *instance) qualityText(name string) string {
	i, ok := in.rule.refs.byName[name]
	if !ok {
		return "missing"
	}
	return groupQuality(in.pts[i])
}

func pointText(ps *pstate) string {
	switch {
	case !ps.seen:
		return "missing"
	case ps.p.Quality == point.Stale:
		return "stale"
	case ps.p.Quality == point.Bad:
		if ps.p.Reason == "" {
			return "bad"
		}
		return "bad (" + ps.p.Reason + ")"
	}
	s := formatValue(&ps.p)
	if ps.p.Unit != point.None && (ps.p.Kind == point.Number) {
		s += " " + string(ps.p.Unit)
	}
	return s
}

// formatValue renders a value without its unit: numbers with up to three
// decimals, enums as their name (or code), strings as they are.
func formatValue(p *point.Point) string {
	switch p.Kind {
	case point.Bool:
		return strconv.FormatBool(p.Num != 0)
	case point.String:
		return p.Str
	case point.Enum:
		if p.Str != "" {
			return p.Str
		}
	}
	v := p.Num
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		v = math.Round(v*1000) / 1000
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

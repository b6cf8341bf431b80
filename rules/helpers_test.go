package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/point"
)

// t0 is the time of the first batch in engine tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Point constructors for tests; feed sets device and time.
func num(name string, v float64) point.Point {
	return point.Point{Name: name, Kind: point.Number, Num: v}
}

func boolean(name string, v bool) point.Point {
	p := point.Point{Name: name, Kind: point.Bool}
	if v {
		p.Num = 1
	}
	return p
}

func enum(name, s string, code float64) point.Point {
	return point.Point{Name: name, Kind: point.Enum, Str: s, Num: code}
}

func text(name, s string) point.Point {
	return point.Point{Name: name, Kind: point.String, Str: s}
}

func bad(p point.Point, reason string) point.Point {
	p.Quality, p.Reason = point.Bad, reason
	return p
}

func stale(p point.Point) point.Point {
	p.Quality, p.Reason = point.Stale, "stale: not refreshed for 3s"
	return p
}

// batch is what one poll of one device delivers.
type batch struct {
	at  time.Duration
	dev string
	pts []point.Point
}

// feed sends a batch to the engine at t0+at and returns its events.
func feed(e *Engine, b batch) []alert.Event {
	pts := make([]point.Point, len(b.pts))
	for i, p := range b.pts {
		p.Device, p.Time = b.dev, t0.Add(b.at)
		pts[i] = p
	}
	return e.Feed(pts)
}

// rulePack makes a one-rule pack from the rule's YAML fields (without
// name, class, severity and summary, which get defaults unless given).
func rulePack(t testing.TB, fields string) *RuleSet {
	t.Helper()
	src := "pack: t\nrules:\n  - name: r\n"
	for _, l := range strings.Split(strings.TrimSpace(fields), "\n") {
		src += "    " + l + "\n"
	}
	for _, def := range []string{"class: fire", "severity: major", "summary: 'r on {{ .Device }}{{ .Group }}'"} {
		key := strings.SplitN(def, ":", 2)[0] + ":"
		if !strings.HasPrefix(strings.TrimSpace(fields), key) && !strings.Contains(fields, "\n"+key) {
			src += "    " + def + "\n"
		}
	}
	p, err := Load("t.yaml", []byte(src))
	if err != nil {
		t.Fatalf("rule does not load:\n%s\n%v", src, err)
	}
	rs, err := NewRuleSet(p)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func newEngine(t testing.TB, rs *RuleSet, devs ...Device) *Engine {
	t.Helper()
	if len(devs) == 0 {
		devs = []Device{{ID: "d1", Class: "battery", Profile: "generic-liion-bms"}}
	}
	e, err := NewEngine(rs, devs, Options{Site: "site-1", Gateway: "gw-1"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// whenNow evaluates the when of rule r's instance key at the instance's
// last evaluation time, with nothing changed.
func whenNow(t testing.TB, e *Engine, key string) (tri, error) {
	t.Helper()
	for _, in := range e.all {
		if in.key != key {
			continue
		}
		if in.group {
			lockGroup(in)
			defer unlockGroup(in)
		} else {
			in.members[0].mu.Lock()
			defer in.members[0].mu.Unlock()
		}
		ev := newEvaluator()
		return ev.run(in, in.rule.when, in.now)
	}
	t.Fatalf("no instance %q", key)
	return unknown, nil
}

// eventString is how tests compare events: "kind rule@instance at".
func eventString(ev alert.Event) string {
	s := fmt.Sprintf("%s %s@%s %s", ev.Kind, ev.Rule, ev.Instance(), ev.At.Sub(t0))
	if ev.SupervisionLost {
		s += " lost"
	}
	return s
}

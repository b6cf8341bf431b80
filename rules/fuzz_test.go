package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/strictyaml"
)

// FuzzLoad: Load never panics, every error is located, and a pack that
// loads can be evaluated, on good and bad data, without panicking.
func FuzzLoad(f *testing.F) {
	for _, pattern := range []string{"testdata/packs/*.yaml", "testdata/bad/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("pack: p\nrules:\n  - {name: r, class: fire, severity: info, when: 'a.b || !c.d && e.f > 5s', summary: '{{ value \"a.b\" }}'}\n"))
	f.Add([]byte("pack: p\nrules:\n  - {name: r, class: fire, severity: info, group_by: [room], when: 'count_true(a.b, c.d) >= 2 ? rate(e.f, 1m) > 1 : unreachable()', summary: s}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load("fuzz.yaml", data)
		if err != nil {
			var es strictyaml.Errors
			if !errors.As(err, &es) {
				t.Fatalf("got %T %v, want strictyaml.Errors", err, err)
			}
			for _, e := range es {
				// yaml.v3 gives some syntax errors (an unexpected end of
				// stream) without a line.
				if e.File != "fuzz.yaml" || (e.Line <= 0 && !strings.HasPrefix(e.Msg, "syntax error")) {
					t.Fatalf("unlocated error %q", e)
				}
			}
			return
		}
		rs, err := NewRuleSet(p)
		if err != nil {
			t.Fatal(err)
		}
		var devs []Device
		for _, c := range []string{"battery", "ups", "fire", "cooling"} {
			devs = append(devs, Device{ID: "d-" + c, Class: c, Labels: map[string]string{"room": "a"}})
		}
		e, err := NewEngine(rs, devs, Options{})
		if err != nil {
			return // select.devices naming devices we did not make
		}
		for i, q := range []point.Quality{point.Good, point.Bad, point.Stale, point.Good} {
			for _, d := range devs {
				var batch []point.Point
				for _, r := range rs.Rules() {
					for j, name := range r.Points() {
						p := point.Point{Device: d.ID, Name: name, Time: t0.Add(time.Duration(i) * time.Second), Quality: q}
						switch j % 3 {
						case 0:
							p.Kind, p.Num = point.Number, float64(i*j)
						case 1:
							p.Kind, p.Num = point.Bool, float64(i%2)
						default:
							p.Kind, p.Str = point.Enum, "on"
						}
						if q != point.Good {
							p.Reason = "timeout"
						}
						batch = append(batch, p)
					}
				}
				e.Feed(batch)
			}
			e.Tick(t0.Add(time.Duration(i) * time.Second))
		}
		e.Instances()
	})
}

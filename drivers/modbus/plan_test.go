package modbus

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	profiles "github.com/facgw/facgw/firmware-profiles"
)

var update = flag.Bool("update", false, "rewrite golden files")

func pt(name, table string, addr uint16, typ string) profiles.PointDef {
	p := profiles.PointDef{Name: name, Table: table, Address: addr, Type: typ, Order: "ABCD"}
	if typ == "string" {
		p.Length = 8
	}
	return p
}

func renderPlan(reads []Read, pts []profiles.PointDef) string {
	var b strings.Builder
	for _, r := range reads {
		var names []string
		for _, i := range r.Points {
			names = append(names, pts[i].Name)
		}
		fmt.Fprintf(&b, "%s: %s\n", r, strings.Join(names, " "))
	}
	return b.String()
}

func TestPlanGolden(t *testing.T) {
	cases := []struct {
		name       string
		points     []profiles.PointDef
		unreadable []profiles.Range
		lim        PlanLimits
	}{
		{"contiguous", []profiles.PointDef{pt("a", "holding", 0, "u32"), pt("b", "holding", 2, "u16"), pt("c", "holding", 3, "f32")}, nil, PlanLimits{MaxGap: 0}},
		{"gap bridged", []profiles.PointDef{pt("a", "holding", 0, "u16"), pt("b", "holding", 9, "u16")}, nil, PlanLimits{MaxGap: 8}},
		{"gap too wide", []profiles.PointDef{pt("a", "holding", 0, "u16"), pt("b", "holding", 10, "u16")}, nil, PlanLimits{MaxGap: 8}},
		{"tables never mix", []profiles.PointDef{pt("h", "holding", 5, "u16"), pt("i", "input", 5, "u16"), pt("c", "coil", 5, "bool"), pt("d", "discrete", 6, "bool")}, nil, PlanLimits{MaxGap: 100}},
		{"unreadable range splits", []profiles.PointDef{pt("a", "holding", 0, "u16"), pt("b", "holding", 6, "u16")}, []profiles.Range{{Table: "holding", From: 3, To: 3}}, PlanLimits{MaxGap: 8}},
		{"unreadable in another table ignored", []profiles.PointDef{pt("a", "holding", 0, "u16"), pt("b", "holding", 6, "u16")}, []profiles.Range{{Table: "input", From: 3, To: 3}}, PlanLimits{MaxGap: 8}},
		{"125 register limit", func() []profiles.PointDef {
			var out []profiles.PointDef
			for i := 0; i < 130; i++ {
				out = append(out, pt(fmt.Sprintf("r%03d", i), "input", uint16(i), "u16"))
			}
			return out
		}(), nil, PlanLimits{MaxGap: 8}},
		{"device limit 16", []profiles.PointDef{pt("a", "holding", 0, "u16"), pt("b", "holding", 15, "u16"), pt("c", "holding", 16, "u16")}, nil, PlanLimits{MaxGap: 8, MaxRegs: 16}},
		{"2000 bit limit", []profiles.PointDef{pt("a", "coil", 0, "bool"), pt("b", "coil", 1999, "bool"), pt("c", "coil", 2000, "bool")}, nil, PlanLimits{MaxGap: 3000}},
		{"bits sharing a register", []profiles.PointDef{
			{Name: "on_battery", Table: "holding", Address: 0, Type: "u32", Bit: bitp(2), Order: "ABCD"},
			{Name: "online", Table: "holding", Address: 0, Type: "u32", Bit: bitp(1), Order: "ABCD"},
			pt("runtime", "holding", 128, "u32"), pt("charge", "holding", 130, "u16"),
		}, []profiles.Range{{Table: "holding", From: 27, To: 127}}, PlanLimits{MaxGap: 200}},
		{"string and unordered input", []profiles.PointDef{pt("z", "holding", 40, "u16"), pt("model", "holding", 30, "string"), pt("a", "holding", 10, "u16")}, nil, PlanLimits{MaxGap: 12}},
		{"point wider than gap fits", []profiles.PointDef{pt("a", "holding", 0, "f64"), pt("b", "holding", 2, "u16")}, nil, PlanLimits{MaxGap: 0}},
	}
	var all strings.Builder
	for _, c := range cases {
		reads := Plan(c.points, c.unreadable, c.lim)
		fmt.Fprintf(&all, "== %s\n%s", c.name, renderPlan(reads, c.points))
		// Invariants, whatever the golden file says.
		covered := map[int]bool{}
		for _, r := range reads {
			limit := 125
			if c.lim.MaxRegs > 0 {
				limit = c.lim.MaxRegs
			}
			if profiles.IsBitTable(r.Table) {
				limit = 2000
			}
			if int(r.Count) > limit || r.Count == 0 {
				t.Errorf("%s: read %s has count outside 1..%d", c.name, r, limit)
			}
			for _, u := range c.unreadable {
				if u.Table == r.Table && int(r.Start) <= int(u.To) && int(r.Start)+int(r.Count)-1 >= int(u.From) {
					t.Errorf("%s: read %s crosses unreadable %d..%d", c.name, r, u.From, u.To)
				}
			}
			for _, i := range r.Points {
				p := c.points[i]
				if p.Table != r.Table || p.Address < r.Start || int(p.Address)+p.Width() > int(r.Start)+int(r.Count) {
					t.Errorf("%s: point %s not inside read %s", c.name, p.Name, r)
				}
				covered[i] = true
			}
		}
		if len(covered) != len(c.points) {
			t.Errorf("%s: %d of %d points planned", c.name, len(covered), len(c.points))
		}
	}
	golden := filepath.Join("testdata", "plan.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(all.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestPlanGolden -update)", err)
	}
	if all.String() != string(want) {
		t.Errorf("plan differs from %s (run with -update if intended):\ngot:\n%s\nwant:\n%s", golden, all.String(), want)
	}
}

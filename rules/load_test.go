package rules

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/strictyaml"
)

// head is a valid rule's fields up to when; tests append their own.
const head = `pack: fire
rules:
  - name: r
    class: fire
    severity: major
    summary: s
`

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // every error line, in order
	}{
		{
			name: "unknown and missing fields",
			src:  "pack: fire\nrules:\n  - name: r\n    class: fire\n    severity: major\n    wehn: 'x.y'\n",
			want: []string{
				`f.yaml:3:5: rules[0].when: missing required field "when"`,
				`f.yaml:3:5: rules[0].summary: missing required field "summary"`,
				`f.yaml:6:5: rules[0].wehn: unknown field "wehn" (did you mean "when"?)`,
			},
		},
		{
			name: "class, severity, missing and name",
			src:  "pack: fire\nrules:\n  - name: Offgas_1\n    class: fier\n    severity: critcal\n    missing: maybe\n    when: x.y\n    summary: s\n",
			want: []string{
				`f.yaml:3:5: rules[0].name: rule name "Offgas_1" must be lower-case letters and digits separated by single dashes`,
				`f.yaml:4:5: rules[0].class: unknown class "fier" (did you mean "fire"?)`,
				`f.yaml:5:5: rules[0].severity: unknown severity "critcal" (did you mean "critical"?)`,
				`f.yaml:6:5: rules[0].missing: want hold or fire, got "maybe"`,
			},
		},
		{
			name: "the gateway class is not for rules",
			src:  "pack: fire\nrules:\n  - name: r\n    class: gateway\n    severity: info\n    when: x.y\n    summary: s\n",
			want: []string{`f.yaml:4:5: rules[0].class: unknown class "gateway" (known: fire, power, cooling, network, data-quality)`},
		},
		{
			name: "selection and grouping",
			src:  head + "    when: x.y\n    select: {class: batery, devices: [a, a]}\n    group_by: [room, room, 'not a label']\n    labels: {'bad label': x}\n",
			want: []string{
				`f.yaml:8:14: rules[0].select.class: unknown device class "batery" (did you mean "battery"?)`,
				`f.yaml:8:42: rules[0].select.devices[1]: device "a" is listed twice`,
				`f.yaml:9:22: rules[0].group_by[1]: label "room" is listed twice`,
				`f.yaml:9:28: rules[0].group_by[2]: "not a label" is not a label name`,
				`f.yaml:10:14: rules[0].labels.bad label: "bad label" is not a label name`,
			},
		},
		{
			name: "duplicate rule names",
			src:  head + "    when: x.y\n  - name: r\n    class: fire\n    severity: major\n    summary: s\n    when: x.z\n",
			want: []string{`f.yaml:8:5: rules[1].name: rule name "r" is also used by rules[0]`},
		},
		{
			name: "expression syntax error with its column",
			src:  head + "    when: 'bms.x > '\n",
			want: []string{`f.yaml:7:5: rules[0].when: unexpected token EOF (column 8 of the expression)`},
		},
		{
			name: "column after a duration literal is the column as written",
			src:  head + "    when: 'rate(bms.x, 250ms) > 5 && foo(bms.x)'\n",
			want: []string{`f.yaml:7:5: rules[0].when: unknown function "foo" (did you mean "floor"?) (column 27 of the expression)`},
		},
		{
			name: "line and column in a multi-line expression",
			src:  head + "    when: |\n      bms.x > 5 &&\n        rat(bms.y, 1m) > 2\n",
			want: []string{`f.yaml:7:5: rules[0].when: unknown function "rat" (did you mean "rate"?) (line 2, column 3 of the expression)`},
		},
		{
			name: "a quality function needs a point name",
			src:  head + "    when: 'good(bms.x + 1) || count_true(bms.y, 3)'\n",
			want: []string{`f.yaml:7:5: rules[0].when: good: argument 1 must be a point name such as bms.cell_temp_max or point("if.oper_status.uplink-1"), not an expression (column 12 of the expression)`},
		},
		{
			name: "a voting function needs point names",
			src:  head + "    when: 'count_true(bms.y, 3) > 1'\n",
			want: []string{`f.yaml:7:5: rules[0].when: count_true: argument 2 must be a point name such as bms.cell_temp_max or point("if.oper_status.uplink-1"), not 3 (column 19 of the expression)`},
		},
		{
			name: "a window needs a duration",
			src:  head + "    when: 'rate(bms.x, bms.y) > 1'\n",
			want: []string{`f.yaml:7:5: rules[0].when: rate: the window must be a duration such as 60s or 5m, not the point bms.y (column 13 of the expression)`},
		},
		{
			name: "a window of at most a day",
			src:  head + "    when: 'max_over(bms.x, 25h) > 1'\n",
			want: []string{`f.yaml:7:5: rules[0].when: max_over: the window must be a duration above 0 and at most 24h0m0s (column 17 of the expression)`},
		},
		{
			name: "wrong argument count",
			src:  head + "    when: 'unreachable(bms.x)'\n",
			want: []string{`f.yaml:7:5: rules[0].when: unreachable takes 0 arguments, got 1 (column 1 of the expression)`},
		},
		{
			name: "the wall clock is not available",
			src:  head + "    when: 'bms.x > now()'\n",
			want: []string{`f.yaml:7:5: rules[0].when: unknown function "now"`},
		},
		{
			name: "an upper-case name is no point",
			src:  head + "    when: 'bms.x > 1 && True'\n",
			want: []string{`f.yaml:7:5: rules[0].when: unknown name "True": point names are lower-case, such as bms.cell_temp_max (column 14 of the expression)`},
		},
		{
			name: "a bad duration",
			src:  head + "    when: 'bms.x > duration(\"5 minutes\")'\n",
			want: []string{`f.yaml:7:5: rules[0].when: duration("5 minutes"): want a duration such as 30s, 5m or 250ms (column 9 of the expression)`},
		},
		{
			name: "a number is no condition",
			src:  head + "    when: 'rate(bms.x, 1m)'\n",
			want: []string{`f.yaml:7:5: rules[0].when: the condition must give true or false, not a number (column 1 of the expression)`},
		},
		{
			name: "a typed non-bool is no condition",
			src:  head + "    when: 'age(bms.x)'\n",
			want: []string{`f.yaml:7:5: rules[0].when: expected bool, but got float64`},
		},
		{
			name: "count_devices takes a plain condition",
			src:  head + "    when: 'count_devices(rate(bms.x, 60s) > 1) >= 2'\n",
			want: []string{`f.yaml:7:5: rules[0].when: count_devices: the condition may read points, compare and combine them, not call Rate (column 15 of the expression)`},
		},
		{
			name: "count_devices cannot be nested",
			src:  head + "    when: 'count_devices(count_devices(bms.x) > 0) >= 2'\n",
			want: []string{`f.yaml:7:5: rules[0].when: count_devices cannot be nested (column 15 of the expression)`},
		},
		{
			name: "a condition that reads no point",
			src:  head + "    when: '1 > 0'\n",
			want: []string{`f.yaml:7:5: rules[0].when: the condition reads no point and no alert (firing()), so nothing would ever evaluate it`},
		},
		{
			name: "firing takes a rule id in quotes",
			src:  head + "    when: 'firing(fire.confirmed)'\n",
			want: []string{`f.yaml:7:5: rules[0].when: firing takes a rule id in quotes, such as firing("fire/confirmed-fire") (column 1 of the expression)`},
		},
		{
			name: "firing of something that is no rule id",
			src:  head + "    when: 'bms.x > 1 || firing_any(\"confirmed-fire\")'\n",
			want: []string{`f.yaml:7:5: rules[0].when: firing_any("confirmed-fire"): not a rule id; want "pack/name", such as "fire/confirmed-fire" (column 14 of the expression)`},
		},
		{
			name: "a rule cannot read its own alert",
			src:  head + "    when: 'bms.x > 1 && !firing(\"fire/r\")'\n",
			want: []string{`f.yaml:7:5: rules[0].when: firing: a rule cannot read its own alert (column 15 of the expression)`},
		},
		{
			name: "firing is not a per-device condition",
			src:  head + "    when: 'count_devices(firing(\"fire/x\")) > 1'\n",
			want: []string{`f.yaml:7:5: rules[0].when: count_devices: the condition may read points, compare and combine them, not call Firing (column 15 of the expression)`},
		},
		{
			name: "template mistakes",
			src:  "pack: fire\nrules:\n  - name: r\n    class: fire\n    severity: major\n    when: x.y\n    summary: '{{ .Devcie }}'\n    description: '{{ value .Device }}'\n",
			want: []string{
				`f.yaml:7:5: rules[0].summary: template: summary:1:3: executing "summary" at <.Devcie>: can't evaluate field Devcie (known: .Device, .Group, .Rule, .Labels)`,
				`f.yaml:8:5: rules[0].description: value takes a point name in quotes, such as value "bms.offgas_ppm"`,
			},
		},
		{
			name: "template syntax",
			src:  "pack: fire\nrules:\n  - name: r\n    class: fire\n    severity: major\n    when: x.y\n    summary: '{{ value \"x\" '\n",
			want: []string{`f.yaml:7:5: rules[0].summary: template: summary:1: unclosed action`},
		},
		{
			name: "empty values",
			src:  "pack: fire\nrules:\n  - name: r\n    class: fire\n    severity: major\n    when: ''\n    clear: ' '\n    summary: ''\n",
			want: []string{
				`f.yaml:6:5: rules[0].when: when is empty`,
				`f.yaml:7:5: rules[0].clear: clear is empty; leave it out to clear when the condition is false`,
				`f.yaml:8:5: rules[0].summary: summary is empty`,
			},
		},
		{
			name: "pack name",
			src:  "pack: Fire\nrules: []\n",
			want: []string{`f.yaml:1:1: pack: pack name "Fire" must be lower-case letters, digits and dashes`},
		},
		{
			name: "not a mapping",
			src:  "pack: fire\nrules:\n  - 5\n",
			want: []string{`f.yaml:3:5: rules[0]: want a mapping, got "5"`},
		},
		{
			name: "empty file",
			src:  "",
			want: []string{`f.yaml:1:1: file is empty`},
		},
		{
			name: "a second document",
			src:  "pack: fire\nrules: []\n---\npack: x\n",
			want: []string{`f.yaml:3:1: a file holds one YAML document, found a second`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load("f.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("got pack %v, want errors %q", p, tt.want)
			}
			var es strictyaml.Errors
			if !errors.As(err, &es) {
				t.Fatalf("got %T %v, want strictyaml.Errors", err, err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Error())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors:\n%s\nwant %d:\n%s", len(got), strings.Join(got, "\n"), len(tt.want), strings.Join(tt.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("error %d: got\n%s\nwant\n%s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestLoadBadFixtures loads testdata/bad/*.yaml: each file's comments
// "# want: TEXT" list the errors it must give (as substrings, in order).
func TestLoadBadFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures in testdata/bad")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			_, err = Load(f, data)
			if err == nil {
				t.Fatalf("got no error, want %q", want)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(want) {
				t.Fatalf("got %d errors:\n%s\nwant %d: %q", len(got), err, len(want), want)
			}
			for i := range want {
				if !strings.Contains(got[i], want[i]) {
					t.Errorf("error %d: got %q, want it to contain %q", i, got[i], want[i])
				}
			}
		})
	}
}

func TestLoadGood(t *testing.T) {
	set, err := LoadFiles("testdata/packs/fire.yaml", "testdata/packs/power.yaml", "testdata/packs/quality.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := set.PackNames(), []string{"dq", "fire", "power"}; !slices.Equal(got, want) {
		t.Errorf("packs: got %v, want %v", got, want)
	}
	var r *Rule
	for _, x := range set.Rules() {
		if x.ID == "fire/liion-offgas" {
			r = x
		}
	}
	if r == nil {
		t.Fatal("no fire/liion-offgas")
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"severity", r.Severity, alert.Critical},
		{"missing", r.Missing, MissingFire},
		{"for", r.For, 10 * time.Second},
		{"keep_firing_for", r.KeepFiringFor, 5 * time.Second},
		{"select.class", r.Select.Class, "battery"},
		{"labels", r.Labels["team"], "facilities"},
		{"file", r.File, "testdata/packs/fire.yaml"},
		{"points", strings.Join(r.Points(), ","), "bms.alarm.offgas,bms.offgas_ppm"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	for _, x := range set.Rules() {
		if x.ID == "power/on-battery" && x.Missing != MissingHold {
			t.Errorf("power/on-battery missing: got %q, want the default %q", x.Missing, MissingHold)
		}
	}
}

func TestLoadFilesErrors(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	b := filepath.Join(dir, "b.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(a, []byte(head+"    when: x.y\n"), 0o644)
	os.WriteFile(b, []byte(head+"    when: x.z\n"), 0o644)
	os.WriteFile(bad, []byte(head+"    when: 'x.y >'\n    bogus: 1\n"), 0o644)
	_, err := LoadFiles(a, b, bad, filepath.Join(dir, "absent.yaml"))
	if err == nil {
		t.Fatal("got no error")
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{
		filepath.Join(dir, "absent.yaml") + ": cannot read",
		b + `:1:1: pack: pack "fire" is also defined in ` + a,
		bad + ":7:5: rules[0].when: unexpected token EOF",
		bad + `:8:5: rules[0].bogus: unknown field "bogus"`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors:\n%s\nwant %d", len(got), err, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d: got %q, want prefix %q", i, got[i], want[i])
		}
	}
}

// TestShipped loads the packs compiled into the binary; with no pack
// files yet (only the README) the set is empty, not an error.
func TestShippedEmbed(t *testing.T) {
	set, err := Shipped()
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	ids := map[string]bool{}
	for _, r := range set.Rules() {
		if ids[r.ID] {
			t.Errorf("rule %s twice", r.ID)
		}
		ids[r.ID] = true
		if !strings.HasPrefix(r.File, "rules/packs/") {
			t.Errorf("rule %s: file %q, want it under rules/packs/", r.ID, r.File)
		}
	}
}

func TestMergeAndDisable(t *testing.T) {
	fire, err := LoadFiles("testdata/packs/fire.yaml")
	if err != nil {
		t.Fatal(err)
	}
	power, err := LoadFiles("testdata/packs/power.yaml")
	if err != nil {
		t.Fatal(err)
	}
	both, err := fire.Merge(power)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(both.Rules()); got != len(fire.Rules())+len(power.Rules()) {
		t.Errorf("merged rules: got %d, want %d", got, len(fire.Rules())+len(power.Rules()))
	}
	if _, err := both.Merge(fire); err == nil || !strings.Contains(err.Error(), `pack "fire" is also defined in testdata/packs/fire.yaml`) {
		t.Errorf("merging a pack twice: got %v, want a duplicate pack error", err)
	}

	tests := []struct {
		name    string
		ids     []string
		wantErr string
		gone    []string
	}{
		{name: "one rule", ids: []string{"fire/liion-offgas"}, gone: []string{"fire/liion-offgas"}},
		{name: "a pack", ids: []string{"power/*"}, gone: []string{"power/on-battery", "power/runtime-low", "power/ups-unreachable"}},
		{name: "a typo", ids: []string{"fire/liion-ofgas"}, wantErr: `rules: disable: no rule "fire/liion-ofgas" (did you mean "fire/liion-offgas"?)`},
		{name: "an unknown pack", ids: []string{"powr/*"}, wantErr: `rules: disable: no pack "powr" (did you mean "power"?)`},
		{name: "nothing is disabled on error", ids: []string{"fire/cross-zone", "nope/x"}, wantErr: `no rule "nope/x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, _ := fire.Merge(power)
			before := len(set.Rules())
			err := set.Disable(tt.ids...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want %q", err, tt.wantErr)
				}
				if got := len(set.Rules()); got != before {
					t.Errorf("rules after a failed Disable: got %d, want %d", got, before)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range tt.gone {
				if !set.Disabled(id) {
					t.Errorf("%s: got enabled, want disabled", id)
				}
				for _, r := range set.Rules() {
					if r.ID == id {
						t.Errorf("Rules() still lists %s", id)
					}
				}
			}
			if got, want := len(set.Rules()), before-len(tt.gone); got != want {
				t.Errorf("rules: got %d, want %d", got, want)
			}
			// A disabled rule gets no instances.
			e, err := NewEngine(set, []Device{{ID: "bms-1", Class: "battery", Profile: "generic-liion-bms"}, {ID: "ups-1", Class: "ups"}}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range e.Rules() {
				if slices.Contains(tt.gone, r.ID) {
					t.Errorf("engine runs disabled rule %s", r.ID)
				}
			}
		})
	}
}

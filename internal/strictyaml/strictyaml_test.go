package strictyaml

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type serialT struct {
	Port string `yaml:"port" check:"required"`
	Baud int    `yaml:"baud"`
	Pos  Pos
}

type deviceT struct {
	ID      string                   `yaml:"id" check:"required"`
	Unit    uint8                    `yaml:"unit"`
	Timeout time.Duration            `yaml:"timeout"`
	Poll    map[string]time.Duration `yaml:"poll"`
	Points  []string                 `yaml:"points"`
	Serial  *serialT                 `yaml:"serial"`
	Off     bool                     `yaml:"disabled"`
	Word    upper                    `yaml:"word"`
	Pos     Pos
}

type fileT struct {
	Site    string    `yaml:"site" check:"required"`
	Devices []deviceT `yaml:"devices"`
	Pos     Pos
}

// upper accepts only upper-case scalars, to test Unmarshaler errors.
type upper string

func (u *upper) UnmarshalYAMLNode(n *yaml.Node) error {
	if n.Value != strings.ToUpper(n.Value) {
		return errors.New("want upper case")
	}
	*u = upper(n.Value)
	return nil
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{
			name: "all problems at once",
			in: `site: x
devices:
  - id: a
    unti: 3
    unit: 300
    timeout: 5
  - unit: 1
    disabled: yes
    word: abc
    poll: {fast: 1s, fast: 2s}
`,
			want: []string{
				`t.yaml:4:5: devices[0].unti: unknown field "unti" (did you mean "unit"?)`,
				`t.yaml:5:11: devices[0].unit: 300 is out of range (largest 255)`,
				`t.yaml:6:14: devices[0].timeout: want a duration such as 250ms or 30s, got "5"`,
				`t.yaml:7:5: devices[1].id: missing required field "id"`,
				`t.yaml:8:15: devices[1].disabled: want true or false, got "yes"`,
				`t.yaml:9:11: devices[1].word: want upper case`,
				`t.yaml:10:22: devices[1].poll.fast: duplicate key "fast"`,
			},
		},
		{
			name: "unknown field without a near name lists the known ones",
			in:   "site: x\nzzzzzz: 1\n",
			want: []string{`t.yaml:2:1: zzzzzz: unknown field "zzzzzz" (known: site, devices)`},
		},
		{
			name: "duplicate struct key",
			in:   "site: x\nsite: y\n",
			want: []string{`t.yaml:2:1: site: duplicate key "site"`},
		},
		{
			name: "null duration",
			in:   "site: x\ndevices:\n  - id: a\n    timeout:\n",
			want: []string{`t.yaml:4:13: devices[0].timeout: want a duration such as 250ms or 30s, got nothing`},
		},
		{
			name: "syntax error",
			in:   "site: x\n  bad: [\n",
			want: []string{`t.yaml:2:1: syntax error: mapping values are not allowed in this context`},
		},
		{
			name: "empty file",
			in:   "# only a comment\n",
			want: []string{`t.yaml:1:1: file is empty`},
		},
		{
			name: "second document",
			in:   "site: x\n---\nsite: y\n",
			want: []string{`t.yaml:2:1: a file holds one YAML document, found a second`},
		},
		{
			name: "syntax error in a second document",
			in:   "site: x\n---\nsite: [\n",
			want: []string{`t.yaml:3:1: syntax error: did not find expected node content`},
		},
		{
			name: "top level not a mapping",
			in:   "- a\n",
			want: []string{`t.yaml:1:1: want a mapping, got a list`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f fileT
			errs := Decode("t.yaml", []byte(tt.in), &f)
			errs.Sort()
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLeadingDocumentMarker(t *testing.T) {
	var f fileT
	if errs := Decode("t.yaml", []byte("---\nsite: x\n"), &f); len(errs) > 0 {
		t.Fatalf("got %v, want no errors", errs)
	}
	if f.Site != "x" {
		t.Errorf("got site %q, want x", f.Site)
	}
}

func TestPosAtPath(t *testing.T) {
	in := `site: x
devices:
  - id: a
    poll:
      safety: 250ms
    points: [a.b, c.d]
    serial:
      port: /dev/ttyS0
      baud: 9600
`
	var f fileT
	if errs := Decode("t.yaml", []byte(in), &f); len(errs) > 0 {
		t.Fatal(errs)
	}
	d := f.Devices[0]
	tests := []struct {
		pos   Pos
		field string
		want  string
	}{
		{d.Pos, "id", "t.yaml:3:5: devices[0].id: m"},
		{d.Pos, "poll.safety", "t.yaml:5:7: devices[0].poll.safety: m"},
		{d.Pos, "points[1]", "t.yaml:6:19: devices[0].points[1]: m"},
		{d.Pos, "serial.baud", "t.yaml:9:7: devices[0].serial.baud: m"},
		{d.Serial.Pos, "baud", "t.yaml:9:7: devices[0].serial.baud: m"},
		{d.Serial.Pos, "", "t.yaml:8:7: devices[0].serial: m"},
		{d.Pos, "unit", "t.yaml:3:5: devices[0].unit: m"}, // absent: the mapping
		{f.Pos, "devices[0].points[0]", "t.yaml:6:14: devices[0].points[0]: m"},
	}
	for _, tt := range tests {
		if got := tt.pos.AtPath(tt.field, "m").Error(); got != tt.want {
			t.Errorf("AtPath(%q): got %q, want %q", tt.field, got, tt.want)
		}
	}
	// At and Has keep to the mapping's own keys.
	compat := []struct{ field, want string }{
		{"id", "t.yaml:3:5: devices[0].id: m"},
		{"serial", "t.yaml:7:5: devices[0].serial: m"},
		{"serial.baud", "t.yaml:3:5: devices[0].serial.baud: m"},
		{"", "t.yaml:3:5: devices[0]: m"},
	}
	for _, tt := range compat {
		if got := d.Pos.At(tt.field, "m").Error(); got != tt.want {
			t.Errorf("At(%q): got %q, want %q", tt.field, got, tt.want)
		}
	}
	if !d.Pos.Has("serial") || d.Pos.Has("serial.baud") || d.Pos.Has("unit") {
		t.Errorf("Has: got serial %v, serial.baud %v, unit %v, want true false false", d.Pos.Has("serial"), d.Pos.Has("serial.baud"), d.Pos.Has("unit"))
	}
}

type recursive struct {
	Name string     `yaml:"name"`
	Sub  *recursive `yaml:"sub"`
}

func TestAliasInsideItsAnchor(t *testing.T) {
	var r recursive
	done := make(chan Errors)
	go func() { done <- Decode("t.yaml", []byte("&a {name: x, sub: *a}\n"), &r) }()
	select {
	case errs := <-done:
		want := `t.yaml:1:19: sub: alias *a is inside its own anchor`
		if errs.Error() != want {
			t.Errorf("got %q, want %q", errs.Error(), want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("decoding a self-referencing alias did not end")
	}
}

func TestAliasReuseIsFine(t *testing.T) {
	var f fileT
	in := "site: x\ndevices:\n  - &d {id: a, points: &p [x.y]}\n  - {id: b, points: *p}\n  - *d\n"
	if errs := Decode("t.yaml", []byte(in), &f); len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(f.Devices) != 3 || f.Devices[1].Points[0] != "x.y" || f.Devices[2].ID != "a" {
		t.Errorf("got %+v, want aliases expanded", f.Devices)
	}
}

func TestErrorsErrSorted(t *testing.T) {
	es := Errors{{File: "b", Line: 1}, {File: "a", Line: 9, Col: 2}, {File: "a", Line: 9, Col: 1}}
	err := es.Err()
	var got Errors
	if !errors.As(err, &got) {
		t.Fatalf("errors.As: got false for %T", err)
	}
	if got[0].Col != 1 || got[1].Col != 2 || got[2].File != "b" {
		t.Errorf("got order %v, want a:9:1, a:9:2, b", got)
	}
	if (Errors{}).Err() != nil {
		t.Error("empty Errors: got non-nil Err, want nil")
	}
}

func TestDidYouMean(t *testing.T) {
	models := []string{"apc-smart-ups-modbus", "vertiv-liebert-icom", "eaton-9px", "test-ups-modbus"}
	tests := []struct{ got, want string }{
		{"apc-smart-up", ` (did you mean "apc-smart-ups-modbus"?)`},
		{"apc-smrt-ups", ` (did you mean "apc-smart-ups-modbus"?)`},
		{"eaton-9pz", ` (did you mean "eaton-9px"?)`},
		{"vertiv-liebert-icon", ` (did you mean "vertiv-liebert-icom"?)`},
		{"schneider-galaxy", ``},
		{"ups", ``},
	}
	for _, tt := range tests {
		if s := DidYouMean(tt.got, models); s != tt.want {
			t.Errorf("DidYouMean(%q): got %q, want %q", tt.got, s, tt.want)
		}
	}
}

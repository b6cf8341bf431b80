package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/facgw/facgw/internal/strictyaml"
)

// secretsCfg stands in for the sections that will hold secrets (MQTT
// brokers, API tokens) until they exist.
type secretsCfg struct {
	MQTT struct {
		User     string `yaml:"user"`
		Password Secret `yaml:"password"`
		Pos      strictyaml.Pos
	} `yaml:"mqtt"`
	Tokens []Secret          `yaml:"tokens"`
	Named  map[string]Secret `yaml:"named"`
	Opt    *Secret           `yaml:"opt"`
	Pos    strictyaml.Pos
}

// loadSecrets decodes and resolves like Parse does.
func loadSecrets(t *testing.T, file, in string) (*secretsCfg, []string, []string) {
	t.Helper()
	var c secretsCfg
	errs := strictyaml.Decode(file, []byte(in), &c)
	var warns strictyaml.Errors
	resolveSecrets(reflect.ValueOf(&c), "", file, filepath.Dir(file), &errs, &warns)
	errs.Sort()
	warns.Sort()
	str := func(es strictyaml.Errors) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Error())
		}
		return out
	}
	return &c, str(errs), str(warns)
}

func TestSecretForms(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "facgw.yaml")
	for name, content := range map[string]string{"pass": "s3cret-file\n", "crlf": "s3cret-crlf\r\n", "empty": "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("FACGW_TEST_SECRET", "s3cret-env")
	t.Setenv("FACGW_TEST_EMPTY", "")

	tests := []struct {
		name   string
		in     string
		want   string // revealed mqtt.password on success
		source string
		errs   []string
		warns  []string
	}{
		{name: "env", in: "mqtt: {password: {env: FACGW_TEST_SECRET}}", want: "s3cret-env", source: "env FACGW_TEST_SECRET"},
		{name: "absolute file", in: "mqtt: {password: {file: " + filepath.Join(dir, "pass") + "}}", want: "s3cret-file", source: "file " + filepath.Join(dir, "pass")},
		{name: "relative file, trailing CRLF dropped", in: "mqtt: {password: {file: crlf}}", want: "s3cret-crlf", source: "file crlf"},
		{name: "block style", in: "mqtt:\n  password:\n    env: FACGW_TEST_SECRET\n", want: "s3cret-env", source: "env FACGW_TEST_SECRET"},
		{name: "literal warns", in: "mqtt: {password: hunter2}", want: "hunter2", source: "literal",
			warns: []string{file + ":1:18: mqtt.password: secret written in the config file, use {env: NAME} or {file: PATH}"}},
		{name: "absent", in: "mqtt: {user: x}", want: "", source: ""},
		{name: "env unset", in: "mqtt:\n  password: {env: FACGW_TEST_UNSET_VARIABLE}\n",
			errs: []string{file + ":2:19: mqtt.password: environment variable FACGW_TEST_UNSET_VARIABLE is not set"}},
		{name: "env empty", in: "mqtt: {password: {env: FACGW_TEST_EMPTY}}",
			errs: []string{file + ":1:24: mqtt.password: environment variable FACGW_TEST_EMPTY is empty"}},
		{name: "file missing", in: "mqtt: {password: {file: nope}}",
			errs: []string{file + ":1:25: mqtt.password: cannot read secret file: open " + filepath.Join(dir, "nope") + ": no such file or directory"}},
		{name: "file empty", in: "mqtt: {password: {file: empty}}",
			errs: []string{file + ":1:25: mqtt.password: secret file " + filepath.Join(dir, "empty") + " is empty"}},
		{name: "null", in: "mqtt: {password: }",
			errs: []string{file + ":1:18: mqtt.password: want {env: NAME}, {file: PATH} or a string, got nothing"}},
		{name: "list", in: "mqtt: {password: [a]}",
			errs: []string{file + ":1:18: mqtt.password: want {env: NAME}, {file: PATH} or a string, got a list"}},
		{name: "empty mapping", in: "mqtt: {password: {}}",
			errs: []string{file + ":1:18: mqtt.password: want {env: NAME}, {file: PATH} or a string, got an empty mapping"}},
		{name: "both", in: "mqtt: {password: {env: A, file: b}}",
			errs: []string{file + ":1:18: mqtt.password: give one of env or file, not both"}},
		{name: "unknown key", in: "mqtt: {password: {pass: hunter2}}",
			errs: []string{file + `:1:18: mqtt.password: unknown key "pass" (want env or file)`}},
		{name: "empty env", in: `mqtt: {password: {env: ""}}`,
			errs: []string{file + ":1:18: mqtt.password: env needs a variable name"}},
		{name: "file not a string", in: `mqtt: {password: {file: [a]}}`,
			errs: []string{file + ":1:18: mqtt.password: file needs a path"}},
		{name: "bad variable name", in: `mqtt: {password: {env: "1 BAD"}}`,
			errs: []string{file + `:1:18: mqtt.password: env "1 BAD" is not a variable name`}},
		{name: "every secret is found", in: "tokens: [{env: FACGW_TEST_UNSET_A}]\nnamed: {x: {env: FACGW_TEST_UNSET_B}}\nopt: {env: FACGW_TEST_UNSET_C}\n",
			errs: []string{
				file + ":1:16: tokens[0]: environment variable FACGW_TEST_UNSET_A is not set",
				file + ":2:18: named.x: environment variable FACGW_TEST_UNSET_B is not set",
				file + ":3:12: opt: environment variable FACGW_TEST_UNSET_C is not set",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, errs, warns := loadSecrets(t, file, tt.in)
			if strings.Join(errs, "\n") != strings.Join(tt.errs, "\n") {
				t.Errorf("got errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(tt.errs, "\n"))
			}
			if strings.Join(warns, "\n") != strings.Join(tt.warns, "\n") {
				t.Errorf("got warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(tt.warns, "\n"))
			}
			if len(tt.errs) > 0 {
				for _, e := range errs {
					if strings.Contains(e, "hunter2") {
						t.Errorf("error %q reveals the secret", e)
					}
				}
				return
			}
			if got := c.MQTT.Password.Reveal(); got != tt.want {
				t.Errorf("Reveal: got %q, want %q", got, tt.want)
			}
			if got := c.MQTT.Password.Source(); got != tt.source {
				t.Errorf("Source: got %q, want %q", got, tt.source)
			}
			if got := c.MQTT.Password.IsSet(); got != (tt.source != "") {
				t.Errorf("IsSet: got %v, want %v", got, tt.source != "")
			}
		})
	}
}

// TestSecretNeverPrints prints a secret every way a log line or API answer
// might, directly and nested, and looks for the value.
func TestSecretNeverPrints(t *testing.T) {
	const value = "hunter2-do-not-print"
	t.Setenv("FACGW_TEST_SECRET", value)
	c, errs, _ := loadSecrets(t, "x.yaml", "mqtt: {user: bob, password: {env: FACGW_TEST_SECRET}}\ntokens: [{env: FACGW_TEST_SECRET}]\nnamed: {a: {env: FACGW_TEST_SECRET}}\n")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := c.MQTT.Password
	if s.Reveal() != value {
		t.Fatalf("Reveal: got %q, want %q", s.Reveal(), value)
	}
	type hidden struct {
		name string
		pass Secret // unexported: fmt prints it without calling methods
	}
	values := map[string]any{
		"secret":         s,
		"pointer":        &s,
		"config":         c,
		"config value":   *c,
		"unexported":     hidden{"x", s},
		"unexported ptr": &hidden{"x", s},
		"slice":          []Secret{s},
		"map":            map[string]Secret{"k": s},
		"any slice":      []any{s, &s},
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T"} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
				t.Errorf("%s with %s: got %q, which reveals the secret", name, verb, out)
			}
		}
		if out := fmt.Sprint(v) + fmt.Sprintln(v); strings.Contains(out, value) {
			t.Errorf("%s with Sprint: got %q", name, out)
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Errorf("%s: json: %v", name, err)
		}
		if strings.Contains(string(j), value) {
			t.Errorf("%s: json: got %s", name, j)
		}
		y, err := yaml.Marshal(v)
		if err == nil && strings.Contains(string(y), value) {
			t.Errorf("%s: yaml: got %s", name, y)
		}
		var buf bytes.Buffer
		for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
			l := slog.New(h)
			l.Info("msg", "v", v)
			l.Info("msg", slog.Any("v", v), slog.Group("g", "v", v))
			l.Info(fmt.Sprintf("%v", v))
		}
		if strings.Contains(buf.String(), value) {
			t.Errorf("%s: slog: got %s", name, buf.String())
		}
	}
	for _, tt := range []struct{ got, want string }{
		{fmt.Sprintf("%v", s), Redacted},
		{fmt.Sprintf("%#v", s), Redacted},
		{s.String(), Redacted},
		{s.GoString(), Redacted},
		{mustJSON(t, s), Redacted},
		{mustText(t, s), Redacted},
		{s.LogValue().String(), Redacted},
		{fmt.Sprintf("%+v", c.MQTT), "{User:bob Password:<secret> Pos:" + fmt.Sprintf("%+v", c.MQTT.Pos) + "}"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return s
}

func mustText(t *testing.T, s Secret) string {
	t.Helper()
	b, err := s.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNewSecret(t *testing.T) {
	s := NewSecret("v")
	if s.Reveal() != "v" || !s.IsSet() || s.String() != Redacted {
		t.Errorf("NewSecret: got reveal %q set %v string %q, want v true %s", s.Reveal(), s.IsSet(), s.String(), Redacted)
	}
	var zero Secret
	if zero.Reveal() != "" || zero.IsSet() || zero.String() != Redacted {
		t.Errorf("zero Secret: got reveal %q set %v string %q, want \"\" false %s", zero.Reveal(), zero.IsSet(), zero.String(), Redacted)
	}
}

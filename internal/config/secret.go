package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/facgw/facgw/internal/strictyaml"
)

// Redacted is what a Secret prints as, however it is printed.
const Redacted = "<secret>"

// Secret is a password or token. In YAML it is written as
//
//	password: {env: FACGW_MQTT_PASS}       # from the environment
//	password: {file: /etc/facgw/mqtt.pass} # from a file (one trailing newline dropped)
//	password: hunter2                      # accepted, but Load warns
//
// and resolved when the config is loaded: an unset variable or unreadable
// file is a located error then, not a failed login later. A relative file
// is relative to the config file's directory.
//
// The value never prints: fmt (every verb), encoding/json, encoding/text,
// yaml and log/slog all give Redacted; only Reveal returns it. The value
// sits two pointers deep so that even a Secret in an unexported field,
// which fmt prints field by field without calling its methods (and with a
// wrong verb dumps one pointer level), shows only an address.
type Secret struct {
	p *secretData
}

type secretData struct {
	value *string
	// kind is "env", "file" or "literal"; ref is the variable or path.
	kind, ref string
	// line and col locate the value in the file, for resolution errors.
	line, col int
}

// NewSecret returns a Secret holding value, for tests and code that builds
// configs without a file.
func NewSecret(value string) Secret {
	return Secret{p: &secretData{value: &value, kind: "literal"}}
}

// Reveal returns the secret value; call it only where the value is sent.
func (s Secret) Reveal() string {
	if s.p == nil || s.p.value == nil {
		return ""
	}
	return *s.p.value
}

// IsSet reports whether the file gave the secret (or NewSecret made it).
func (s Secret) IsSet() bool { return s.p != nil }

// Source says where the value came from without revealing it, such as
// "env FACGW_MQTT_PASS", "file /etc/facgw/mqtt.pass" or "literal"; "" when
// unset.
func (s Secret) Source() string {
	switch {
	case s.p == nil:
		return ""
	case s.p.kind == "literal":
		return "literal"
	}
	return s.p.kind + " " + s.p.ref
}

// String returns Redacted.
func (s Secret) String() string { return Redacted }

// GoString returns Redacted, for %#v.
func (s Secret) GoString() string { return Redacted }

// Format prints Redacted for every fmt verb and flag.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// MarshalJSON returns Redacted as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText returns Redacted.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalYAML returns Redacted, so a dumped config shows no secrets.
func (s Secret) MarshalYAML() (any, error) { return Redacted, nil }

// LogValue returns Redacted, for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

var (
	_ fmt.Stringer           = Secret{}
	_ fmt.GoStringer         = Secret{}
	_ fmt.Formatter          = Secret{}
	_ slog.LogValuer         = Secret{}
	_ strictyaml.Unmarshaler = (*Secret)(nil)
)

const secretForms = "want {env: NAME}, {file: PATH} or a string"

var envRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// UnmarshalYAMLNode implements strictyaml.Unmarshaler. It checks the form
// only; Load resolves the value once the whole file is decoded. Messages
// never quote a literal value.
func (s *Secret) UnmarshalYAMLNode(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return errors.New(secretForms + ", got nothing")
	case n.Kind == yaml.ScalarNode:
		v := n.Value
		s.p = &secretData{value: &v, kind: "literal", line: n.Line, col: n.Column}
		return nil
	case n.Kind == yaml.SequenceNode:
		return errors.New(secretForms + ", got a list")
	case n.Kind != yaml.MappingNode:
		return errors.New(secretForms)
	case len(n.Content) == 0:
		return errors.New(secretForms + ", got an empty mapping")
	case len(n.Content) > 2:
		return errors.New("give one of env or file, not both")
	}
	k, v := n.Content[0], n.Content[1]
	if k.Value != "env" && k.Value != "file" {
		return fmt.Errorf("unknown key %q (want env or file)", k.Value)
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" || v.Value == "" {
		return fmt.Errorf("%s needs a %s", k.Value, map[string]string{"env": "variable name", "file": "path"}[k.Value])
	}
	if k.Value == "env" && !envRE.MatchString(v.Value) {
		return fmt.Errorf("env %q is not a variable name", v.Value)
	}
	s.p = &secretData{kind: k.Value, ref: v.Value, line: v.Line, col: v.Column}
	return nil
}

// resolve fills in the value from the environment or the file; it returns
// a warning or an error message.
func (d *secretData) resolve(dir string) (warning, problem string) {
	switch d.kind {
	case "literal":
		return "secret written in the config file, use {env: NAME} or {file: PATH}", ""
	case "env":
		v, ok := os.LookupEnv(d.ref)
		switch {
		case !ok:
			return "", fmt.Sprintf("environment variable %s is not set", d.ref)
		case v == "":
			return "", fmt.Sprintf("environment variable %s is empty", d.ref)
		}
		d.value = &v
	case "file":
		path := d.ref
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Sprintf("cannot read secret file: %v", err)
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if v == "" {
			return "", fmt.Sprintf("secret file %s is empty", path)
		}
		d.value = &v
	}
	return "", ""
}

var (
	secretType = reflect.TypeOf(Secret{})
	posType    = reflect.TypeOf(strictyaml.Pos{})
)

// resolveSecrets finds every Secret in v, following the YAML field names
// to build paths, and resolves it: errors go to errs, warnings to warns.
// Sections added later get their secrets resolved without further code.
func resolveSecrets(v reflect.Value, path, file, dir string, errs, warns *strictyaml.Errors) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			resolveSecrets(v.Elem(), path, file, dir, errs, warns)
		}
	case reflect.Struct:
		if v.Type() == secretType {
			s := v.Interface().(Secret)
			if s.p == nil {
				return
			}
			warning, problem := s.p.resolve(dir)
			at := func(msg string) *strictyaml.Error {
				return &strictyaml.Error{File: file, Line: s.p.line, Col: s.p.col, Path: path, Msg: msg}
			}
			if warning != "" {
				*warns = append(*warns, at(warning))
			}
			if problem != "" {
				*errs = append(*errs, at(problem))
			}
			return
		}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" || f.Type == posType {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			resolveSecrets(v.Field(i), joinPath(path, name), file, dir, errs, warns)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			resolveSecrets(v.Index(i), fmt.Sprintf("%s[%d]", path, i), file, dir, errs, warns)
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			resolveSecrets(v.MapIndex(k), joinPath(path, fmt.Sprint(k)), file, dir, errs, warns)
		}
	}
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

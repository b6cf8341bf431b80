package snmp

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzParseURL checks that ParseURL never panics, never repeats a secret
// in an error, and returns a config with defaults filled.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"snmp://127.0.0.1:161?version=2c&community=public",
		"snmp://u@h:1?version=3&auth=SHA-256&authpass=abcdefgh1&priv=AES&privpass=abcdefgh2&level=authPriv",
		"snmp://u:p@h", "snmp://h?x=1", "snmp://[::1]:99999", "%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		cfg, err := ParseURL(raw)
		if err != nil {
			// Names, the host and non-secret values are shown by design;
			// a secret's value must not be, unless it also appears there.
			if u, perr := url.Parse(raw); perr == nil {
				q := u.Query()
				// What the message may show anyway: the host, the path, the
				// parameter names given and the list of known ones (a
				// privpass "evel" is in "level").
				visible := u.Host + " " + u.Path + " " + strings.Join(urlParams, ", ")
				for k, vs := range q {
					visible += " " + k
					if !slices.Contains(secretParams, k) && slices.Contains(urlParams, k) {
						visible += " " + strings.Join(vs, " ") + " " + url.QueryEscape(strings.Join(vs, " "))
					}
				}
				// The message quotes the URL with its secrets redacted: a
				// secret may match the quoted text by accident (community
				// "0?co" in "0?community=<secret>"), so check the quoted
				// URL for redaction and the rest of the message for values.
				msg := err.Error()
				if before, rest, ok := strings.Cut(msg, `device url "`); ok {
					quoted, after, _ := strings.Cut(rest, `"`)
					if qu, qerr := url.Parse(quoted); qerr == nil {
						for _, k := range secretParams {
							for _, v := range qu.Query()[k] {
								if v != "<secret>" {
									t.Fatalf("quoted url shows %s %q: %v", k, v, err)
								}
							}
						}
					}
					msg = before + after
				}
				for _, k := range secretParams {
					for _, v := range q[k] {
						if len(v) >= 4 && !strings.Contains(visible, v) && strings.Contains(msg, v) {
							t.Fatalf("error shows %s %q: %v", k, v, err)
						}
					}
				}
			}
			return
		}
		if cfg.Target == "" || cfg.Port == 0 || cfg.MaxVarbinds <= 0 || cfg.Timeout <= 0 {
			t.Fatalf("incomplete config %+v", cfg)
		}
	})
}

// FuzzRowNames checks that row names are always distinct, non-empty and
// valid point name segments, whatever the labels.
func FuzzRowNames(f *testing.F) {
	f.Add("1", "Gi1/0/1", "2", "gi1_0_1", "3", "")
	f.Add("1", "a", "2", "a", "7", "a_1")
	f.Fuzz(func(t *testing.T, i1, l1, i2, l2, i3, l3 string) {
		idx := []string{i1, i2, i3}
		if i1 == i2 || i2 == i3 || i1 == i3 || SanitizeLabel(i1) == "" || SanitizeLabel(i2) == "" || SanitizeLabel(i3) == "" {
			return // indexes of a real table are distinct numbers
		}
		if SanitizeLabel(i1) == SanitizeLabel(i2) || SanitizeLabel(i2) == SanitizeLabel(i3) || SanitizeLabel(i1) == SanitizeLabel(i3) {
			return
		}
		names := rowNames(idx, map[string]string{i1: l1, i2: l2, i3: l3})
		seen := map[string]bool{}
		for _, n := range names {
			if n == "" || seen[n] || strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
				t.Fatalf("rowNames(%q) = %q", idx, names)
			}
			seen[n] = true
		}
	})
}

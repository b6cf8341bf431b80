package snmp

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url  string
		want DeviceConfig
	}{
		{"snmp://10.0.0.21", DeviceConfig{ID: "10.0.0.21", Target: "10.0.0.21", Port: 161, Version: "2c", Community: "public"}},
		{"snmp://127.0.0.1:16100?version=1&community=private&timeout=250ms&retries=0",
			DeviceConfig{ID: "127.0.0.1", Target: "127.0.0.1", Port: 16100, Version: "1", Community: "private", Timeout: 250 * time.Millisecond}},
		{"snmp://ups-a.example:161?version=2c&community=public&max_varbinds=10&max_repetitions=25",
			DeviceConfig{ID: "ups-a.example", Target: "ups-a.example", Port: 161, Version: "2c", Community: "public", MaxVarbinds: 10, MaxRepetitions: 25}},
		{"snmp://facgw@127.0.0.1:161?version=3&auth=SHA-256&authpass=authpass123&priv=AES-256&privpass=privpass123&level=authPriv",
			DeviceConfig{ID: "127.0.0.1", Target: "127.0.0.1", Port: 161, Version: "3",
				V3: V3Config{User: "facgw", AuthProto: "SHA-256", AuthPass: "authpass123", PrivProto: "AES-256", PrivPass: "privpass123", SecurityLevel: "authPriv"}}},
		{"snmp://mon@[::1]:1161?auth=sha256&authpass=authpass123&context=ups",
			DeviceConfig{ID: "::1", Target: "::1", Port: 1161, Version: "3", V3: V3Config{User: "mon", AuthProto: "sha256", AuthPass: "authpass123", ContextName: "ups"}}},
	}
	for _, tc := range tests {
		got, err := ParseURL(tc.url)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.url, err)
			continue
		}
		want := tc.want
		if want.Timeout == 0 {
			want.Timeout = DefaultTimeout
		}
		if !strings.Contains(tc.url, "retries=") {
			want.Retries = DefaultRetries
		}
		want = want.withDefaults()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseURL(%q)\n got  %+v\n want %+v", tc.url, got, want)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct{ url, want string }{
		{"modbus-tcp://10.0.0.1:502", `device url "modbus-tcp://10.0.0.1:502": scheme must be snmp`},
		{"snmp:///dev/x", `device url "snmp:///dev/x": want snmp://[user@]host[:port][?parameters]`},
		{"snmp://h:0", `device url "snmp://h:0": port "0" must be 1..65535`},
		{"snmp://h?versoin=2c", `device url "snmp://h?versoin=<secret>": unknown parameter "versoin" (did you mean "version"?)`},
		{"snmp://u@h?authpas=longenough", `device url "snmp://u@h?authpas=<secret>": unknown parameter "authpas" (did you mean "authpass"?)`},
		{"snmp://h?colour=blue", `device url "snmp://h?colour=<secret>": unknown parameter "colour" (known: version, community, auth, authpass, priv, privpass, level, context, timeout, retries, max_varbinds, max_repetitions)`},
		{"snmp://h?version=4", `device url "snmp://h?version=4": version "4" must be 1, 2c or 3`},
		{"snmp://h?version=2c&authpass=x", `device url "snmp://h?authpass=<secret>&version=2c": authpass applies to version 3 only`},
		{"snmp://u@h?version=2c", `device url "snmp://u@h?version=2c": a user applies to version 3 only`},
		{"snmp://u@h?community=secret1", `device url "snmp://u@h?community=<secret>": community applies to versions 1 and 2c; version 3 uses a user`},
		{"snmp://u:pw@h", `device url "snmp://u:xxxxx@h": give v3 passphrases as authpass= and privpass=, not in the user part`},
		{"snmp://u@h?auth=SHA-1024&authpass=longenough", `device url "snmp://u@h?auth=SHA-1024&authpass=<secret>": authentication protocol "SHA-1024" (want MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512)`},
		{"snmp://u@h?authpass=short", `device url "snmp://u@h?authpass=<secret>": the authentication passphrase needs at least 8 characters`},
		{"snmp://u@h?authpass=longenough&privpass=alsolong1&priv=3DES", `device url "snmp://u@h?authpass=<secret>&priv=3DES&privpass=<secret>": privacy protocol "3DES" (want DES, AES, AES-192, AES-256, AES-192C or AES-256C)`},
		{"snmp://u@h?level=authPriv&authpass=longenough", `device url "snmp://u@h?authpass=<secret>&level=authPriv": the privacy passphrase needs at least 8 characters`},
		{"snmp://u@h?level=paranoid", `device url "snmp://u@h?level=paranoid": security level "paranoid" (want noAuthNoPriv, authNoPriv or authPriv)`},
		{"snmp://h?timeout=soon", `device url "snmp://h?timeout=soon": timeout="soon" is not a duration such as 500ms`},
		{"snmp://h?retries=-1", `device url "snmp://h?retries=-1": retries="-1" must be an integer 0..10`},
	}
	for _, tc := range tests {
		_, err := ParseURL(tc.url)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParseURL(%q)\n got  %v\n want %s", tc.url, err, tc.want)
		}
		for _, secret := range []string{"secret1", "longenough", "alsolong1", "pw@"} {
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("ParseURL(%q) error shows a secret: %v", tc.url, err)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	p := mustProfile(t, testProfile)
	tests := []struct {
		cfg  DeviceConfig
		want string
	}{
		{DeviceConfig{ID: "a", Target: "h", Profile: p}, ""},
		{DeviceConfig{ID: "a", Target: "h", Version: "v1", Profile: p}, ""},
		{DeviceConfig{ID: "a", Profile: p}, `snmp: device "a" has no target`},
		{DeviceConfig{ID: "a", Target: "h"}, `snmp: device "a" has no profile`},
		{DeviceConfig{ID: "a", Target: "h", Auto: true}, `snmp: device "a": profile auto needs a profile registry`},
		{DeviceConfig{ID: "a", Target: "h", Version: "2", Profile: p}, `snmp: version "2" (want 1, 2c or 3)`},
		{DeviceConfig{ID: "a", Target: "h", Version: "3", Profile: p}, `snmp: version 3 needs a user`},
		{DeviceConfig{ID: "a", Target: "h", Version: "3", V3: V3Config{User: "u", AuthPass: "longenough", PrivPass: "x"}, Profile: p},
			`snmp: the privacy passphrase needs at least 8 characters`},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("Validate(%+v) = %q, want %q", tc.cfg, got, tc.want)
		}
	}
}

// TestConfigPrintsNoSecret keeps communities and passphrases out of any
// printed form of a config.
func TestConfigPrintsNoSecret(t *testing.T) {
	cfg := DeviceConfig{ID: "a", Target: "h", Port: 161, Version: "3", Community: "commsecret",
		V3: V3Config{User: "u", AuthProto: "SHA", AuthPass: "authsecret", PrivProto: "AES", PrivPass: "privsecret"}}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{cfg, cfg.V3, &cfg} {
			out := fmt.Sprintf(format, v)
			for _, secret := range []string{"commsecret", "authsecret", "privsecret"} {
				if strings.Contains(out, secret) {
					t.Errorf("%s of %T shows %s: %s", format, v, secret, out)
				}
			}
		}
	}
}

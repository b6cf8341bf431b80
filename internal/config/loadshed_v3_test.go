package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// v3Loadshed turns good.yaml's rPDU2 into an SNMPv3 device (a read-only
// polling user) with a v3 write user for the load shed; the passphrases
// come from the environment.
func v3Loadshed(t *testing.T) string {
	t.Helper()
	for k, v := range map[string]string{
		"LS_POLL_AUTH": "poll-auth-pass", "LS_POLL_PRIV": "poll-priv-pass",
		"LS_WRITE_AUTH": "write-auth-secret-1", "LS_WRITE_PRIV": "write-priv-secret-2",
	} {
		t.Setenv(k, v)
	}
	good, err := os.ReadFile("testdata/loadshed/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data := string(good)
	for _, r := range [][2]string{
		{`address: 127.0.0.1:16162, snmp: {version: 2c, community: public}}`,
			`address: 127.0.0.1:16162, snmp: {version: "3", user: poller, auth_protocol: SHA-256, auth_password: {env: LS_POLL_AUTH}, priv_protocol: AES, priv_password: {env: LS_POLL_PRIV}}}`},
		{"    - {device: pdu-a1, community: private}",
			"    - device: pdu-a1\n      v3: {user: shedder, auth_protocol: sha-256, auth_password: {env: LS_WRITE_AUTH}, priv_protocol: aes-256, priv_password: {env: LS_WRITE_PRIV}}"},
	} {
		if !strings.Contains(data, r[0]) {
			t.Fatalf("the good file has no %q", r[0])
		}
		data = strings.Replace(data, r[0], r[1], 1)
	}
	return data
}

func TestLoadshedWriteUser(t *testing.T) {
	cfg, err := Parse("testdata/loadshed/good.yaml", []byte(v3Loadshed(t)), shippedRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	u, ok := cfg.Loadshed.WriteUser("pdu-a1")
	if !ok {
		t.Fatal("WriteUser(pdu-a1): got none, want the v3 write user")
	}
	tests := []struct{ name, got, want string }{
		{"user", u.User, "shedder"},
		{"default security level", u.SecurityLevel, "authPriv"},
		{"auth protocol normalised", u.AuthProtocol, "SHA-256"},
		{"priv protocol normalised", u.PrivProtocol, "AES-256"},
		{"auth passphrase", u.AuthPassword.Reveal(), "write-auth-secret-1"},
		{"priv passphrase", u.PrivPassword.Reveal(), "write-priv-secret-2"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if _, ok := cfg.Loadshed.Credential("pdu-a1"); ok {
		t.Error("Credential(pdu-a1): got a community, want none (the device has a v3 write user)")
	}
	for _, w := range cfg.Warnings {
		if strings.Contains(w.Error(), "write user") {
			t.Errorf("warning: got %v, want none about the write user", w)
		}
	}
	// The passphrases never print: fmt, JSON, slog.
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "cred", cfg.Loadshed.WriteCredentials[0], "user", u)
	js, _ := json.Marshal(cfg.Loadshed.WriteCredentials)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v", u, u, *u), string(js), logged.String()} {
		if strings.Contains(out, "write-auth-secret-1") || strings.Contains(out, "write-priv-secret-2") {
			t.Errorf("printed write user: got %s, want the passphrases redacted", out)
		}
	}
}

// TestLoadshedWriteUserBad: each mistake in a v3 write user comes back
// located at its field, as a polling user's would.
func TestLoadshedWriteUserBad(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"no user", "v3: {user: shedder, ", "v3: {",
			`good.yaml:23:11: loadshed.write_credentials[0].v3.user: SNMP v3 needs a user`},
		{"unknown auth protocol", "auth_protocol: sha-256, auth_password: {env: LS_WRITE_AUTH}", "auth_protocol: sha-265, auth_password: {env: LS_WRITE_AUTH}",
			`good.yaml:23:27: loadshed.write_credentials[0].v3.auth_protocol: unknown protocol "sha-265" (known: MD5, SHA,`},
		{"short passphrase", "auth_password: {env: LS_WRITE_AUTH}", "auth_password: {env: LS_SHORT}",
			`loadshed.write_credentials[0].v3.auth_password: auth_password must be at least 8 characters (RFC 3414)`},
		{"unset variable", "priv_password: {env: LS_WRITE_PRIV}", "priv_password: {env: LS_UNSET_FOR_TEST}",
			`LS_UNSET_FOR_TEST`},
		{"authPriv without priv", ", priv_protocol: aes-256, priv_password: {env: LS_WRITE_PRIV}}", "}",
			`loadshed.write_credentials[0].v3.priv_protocol: security level authPriv needs priv_protocol`},
		{"priv at authNoPriv", "v3: {user: shedder, ", "v3: {user: shedder, security_level: authNoPriv, ",
			`loadshed.write_credentials[0].v3.priv_protocol: priv_protocol and priv_password do not apply at security level authNoPriv`},
		{"unknown security level", "v3: {user: shedder, ", "v3: {user: shedder, security_level: authpriv, ",
			`loadshed.write_credentials[0].v3.security_level: unknown security level "authpriv" (did you mean "authPriv"?)`},
		{"unknown key", "v3: {user: shedder, ", "v3: {user: shedder, max_varbinds: 5, ",
			`loadshed.write_credentials[0].v3.max_varbinds: unknown field "max_varbinds"`},
		{"community and v3", "    - device: pdu-a1\n", "    - device: pdu-a1\n      community: private\n",
			`loadshed.write_credentials[0].v3: give community: (SNMP v1/v2c) or v3: (an SNMPv3 user), not both`},
		{"community for a v3 device", "    - device: pdu-a1\n      v3: {user: shedder, auth_protocol: sha-256, auth_password: {env: LS_WRITE_AUTH}, priv_protocol: aes-256, priv_password: {env: LS_WRITE_PRIV}}",
			"    - {device: pdu-a1, community: private}",
			`loadshed.write_credentials[0].community: device "pdu-a1" speaks SNMP v3: give a v3 write user (v3:), not a community`},
		{"v3 user for a v2c device", "    - device: pdu-a1\n", "    - device: ups-c\n      v3: {user: x, security_level: noAuthNoPriv}\n    - device: pdu-a1\n",
			`loadshed.write_credentials[0].v3: device "ups-c" speaks SNMP v2c: give a write community (community:), not a v3 user`},
		{"neither", "    - device: pdu-a1\n", "    - device: ups-c\n    - device: pdu-a1\n",
			`loadshed.write_credentials[0]: write credentials need community: (SNMP v1/v2c) or v3: (an SNMPv3 user)`},
		{"not an SNMP device", "    - device: pdu-a1\n", "    - {device: outlets-lab, community: private}\n    - device: pdu-a1\n",
			`loadshed.write_credentials[0].device: device "outlets-lab" is not polled over SNMP (transport modbus-tcp)`},
		{"twice", "    - device: pdu-a1\n", "    - device: pdu-a1\n      v3: {user: other, security_level: noAuthNoPriv}\n    - device: pdu-a1\n",
			`loadshed.write_credentials[1].device: device "pdu-a1" has write credentials twice`},
		{"unknown device", "    - device: pdu-a1\n", "    - {device: pdu-a2, community: private}\n    - device: pdu-a1\n",
			`loadshed.write_credentials[0].device: unknown device "pdu-a2" (did you mean "pdu-a1"?)`},
	}
	t.Setenv("LS_SHORT", "short")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := v3Loadshed(t)
			if !strings.Contains(good, tt.old) {
				t.Fatalf("the v3 file has no %q", tt.old)
			}
			data := strings.Replace(good, tt.old, tt.new, 1)
			_, err := Parse("testdata/loadshed/good.yaml", []byte(data), shippedRegistry(t))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
			for _, s := range []string{"write-auth-secret-1", "write-priv-secret-2"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error: got %v, want no passphrase in it", err)
				}
			}
		})
	}
}

// A v3 load target without a write user loads (SETs go out as the polling
// user) with a warning at the load.
func TestLoadshedV3WithoutWriteUserWarns(t *testing.T) {
	data := strings.Replace(v3Loadshed(t), "    - device: pdu-a1\n      v3: {user: shedder, auth_protocol: sha-256, auth_password: {env: LS_WRITE_AUTH}, priv_protocol: aes-256, priv_password: {env: LS_WRITE_PRIV}}", "    []", 1)
	data = strings.Replace(data, "  write_credentials:\n    []", "  write_credentials: []", 1)
	cfg, err := Parse("testdata/loadshed/good.yaml", []byte(data), shippedRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, w := range cfg.Warnings {
		if strings.Contains(w.Error(), `loadshed.loads[2].device: SNMP v3 device "pdu-a1" has no v3 write user`) && strings.Contains(w.Error(), `polling user "poller"`) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("warnings: got %v, want one about pdu-a1's missing write user, at its first load", cfg.Warnings)
	}
}

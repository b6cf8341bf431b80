package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/web/auth"
)

const httpHead = "site: lab\ngateway: gw-1\ndevices:\n  - {id: a, profile: test-ups-modbus, transport: modbus-tcp, address: \"h:502\"}\n"

// httpWarnings returns the warnings about the http section.
func httpWarnings(cfg *Config) []string {
	var out []string
	for _, w := range cfg.Warnings {
		if strings.HasPrefix(w.Path, "http") {
			out = append(out, w.Error())
		}
	}
	return out
}

func TestHTTPDefaults(t *testing.T) {
	for _, in := range []string{httpHead, httpHead + "http: {listen: \"127.0.0.1:9000\"}\n"} {
		cfg, err := Parse("x.yaml", []byte(in), testRegistry(t))
		if err != nil {
			t.Fatal(err)
		}
		h := cfg.HTTP
		ac := h.AuthConfig()
		checks := []struct {
			what      string
			got, want any
		}{
			{"session_ttl", h.SessionTTL, 12 * time.Hour},
			{"anonymous", h.Anonymous, "viewer"},
			{"tls", h.TLS == nil, true},
			{"auth anonymous", ac.Anonymous, auth.Viewer},
			{"auth secure cookie", ac.SecureCookie, false},
			{"auth session TTL", ac.SessionTTL, 12 * time.Hour},
			{"no users", len(ac.Users) + len(ac.Tokens), 0},
			{"no warnings", len(httpWarnings(cfg)), 0},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%q: %s: got %v, want %v", in[len(httpHead):], c.what, c.got, c.want)
			}
		}
	}
}

// TestHTTPGoodExample loads testdata/good/http-auth.yaml and checks that
// what the gateway gets from it builds an Authenticator and a TLS config.
func TestHTTPGoodExample(t *testing.T) {
	cfg, err := Load("testdata/good/http-auth.yaml", testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.HTTP
	if want := filepath.Join("testdata", "good", "http", "server.crt"); h.TLS.CertFile != want {
		t.Errorf("cert_file: got %q, want %q (relative to the config)", h.TLS.CertFile, want)
	}
	ac := h.AuthConfig()
	checks := []struct {
		what      string
		got, want any
	}{
		{"anonymous", ac.Anonymous, auth.None},
		{"secure cookie with tls", ac.SecureCookie, true},
		{"session TTL", ac.SessionTTL, 8 * time.Hour},
		{"users", len(ac.Users), 2},
		{"second user", ac.Users[1].Name + " " + ac.Users[1].Role.String(), "lee.engineer engineer"},
		{"token from its file", ac.Tokens[0].Token, "bms-integration-test-token-0123456789abcdef"},
		{"token role", ac.Tokens[0].Role, auth.Viewer},
		{"no http warnings", strings.Join(httpWarnings(cfg), "\n"), ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	if _, err := auth.New(ac, nil, nil); err != nil {
		t.Errorf("auth.New with the loaded config: %v", err)
	}
	if _, err := auth.LoadTLS(h.TLS.CertFile, h.TLS.KeyFile); err != nil {
		t.Errorf("auth.LoadTLS with the loaded config: %v", err)
	}
	if s := strings.Join([]string{cfg.HTTP.Tokens[0].Token.String(), cfg.Warnings.Error()}, " "); strings.Contains(s, "bms-integration-test-token") {
		t.Errorf("the token shows in %q", s)
	}
}

func TestHTTPTokenFromEnv(t *testing.T) {
	t.Setenv("FACGW_TEST_HTTP_TOKEN", strings.Repeat("t", 40))
	in := httpHead + "http:\n  tokens:\n    - {name: script, role: engineer, token: {env: FACGW_TEST_HTTP_TOKEN}}\n"
	cfg, err := Parse("x.yaml", []byte(in), testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	ac := cfg.HTTP.AuthConfig()
	if len(ac.Tokens) != 1 || ac.Tokens[0].Token != strings.Repeat("t", 40) || ac.Tokens[0].Role != auth.Engineer {
		t.Errorf("got tokens %+v, want script, engineer, the variable's value", ac.Tokens)
	}
}

// writePair writes a self-signed certificate valid until notAfter and its
// key into dir.
func writePair(t *testing.T, dir, name string, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "facgw config test"},
		NotBefore:    notAfter.Add(-48 * time.Hour),
		NotAfter:     notAfter,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestHTTPTLSFiles(t *testing.T) {
	dir := t.TempDir()
	later := time.Now().Add(24 * time.Hour)
	writePair(t, dir, "good", later)
	writePair(t, dir, "other", later)
	expired := time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC)
	writePair(t, dir, "old", expired)
	if err := os.WriteFile(filepath.Join(dir, "garbage.crt"), []byte("not pem\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not der")})
	if err := os.WriteFile(filepath.Join(dir, "bad-der.crt"), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	// The certificate after a key in one file is found.
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "good.key"))
	certPEM, _ := os.ReadFile(filepath.Join(dir, "good.crt"))
	if err := os.WriteFile(filepath.Join(dir, "both.pem"), append(keyPEM, certPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "facgw.yaml")
	tests := []struct {
		name, tls string
		errs      []string
		warns     []string
	}{
		{"a pair", "{cert_file: good.crt, key_file: good.key}", nil, nil},
		{"key and certificate in one file", "{cert_file: both.pem, key_file: both.pem}", nil, nil},
		{"absolute paths", "{cert_file: " + filepath.Join(dir, "good.crt") + ", key_file: " + filepath.Join(dir, "good.key") + "}", nil, nil},
		{"missing files", "{cert_file: none.crt, key_file: none.key}", []string{
			file + ":6:9: http.tls.cert_file: cert_file: open " + filepath.Join(dir, "none.crt") + ": no such file or directory",
			file + ":6:30: http.tls.key_file: key_file: open " + filepath.Join(dir, "none.key") + ": no such file or directory",
		}, nil},
		{"keys of another certificate", "{cert_file: good.crt, key_file: other.key}", []string{
			file + ":6:30: http.tls.key_file: key_file " + filepath.Join(dir, "other.key") + " does not go with cert_file: private key does not match public key",
		}, nil},
		{"not PEM", "{cert_file: garbage.crt, key_file: good.key}", []string{
			file + ":6:9: http.tls.cert_file: cert_file " + filepath.Join(dir, "garbage.crt") + " holds no PEM CERTIFICATE",
		}, nil},
		{"key as certificate", "{cert_file: good.key, key_file: good.key}", []string{
			file + ":6:9: http.tls.cert_file: cert_file " + filepath.Join(dir, "good.key") + " holds no PEM CERTIFICATE",
		}, nil},
		{"certificate as key", "{cert_file: good.crt, key_file: good.crt}", []string{
			file + ":6:30: http.tls.key_file: key_file " + filepath.Join(dir, "good.crt") + " does not go with cert_file: found a certificate rather than a key in the PEM for the private key",
		}, nil},
		{"not a certificate inside", "{cert_file: bad-der.crt, key_file: good.key}", []string{
			file + ":6:9: http.tls.cert_file: cert_file " + filepath.Join(dir, "bad-der.crt") + ": x509: malformed certificate",
		}, nil},
		{"expired", "{cert_file: old.crt, key_file: old.key}", nil, []string{
			file + ":6:9: http.tls.cert_file: certificate " + filepath.Join(dir, "old.crt") + " expired on 2020-01-02",
		}},
		{"empty path", "{cert_file: \"\", key_file: good.key}", []string{
			file + ":6:9: http.tls.cert_file: cert_file must not be empty",
		}, nil},
		{"key_file left out", "{cert_file: good.crt}", []string{
			file + ":6:8: http.tls.key_file: missing required field \"key_file\"",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := httpHead + "http:\n  tls: " + tt.tls + "\n"
			cfg, err := Parse(file, []byte(in), testRegistry(t))
			var errs, warns []string
			if err != nil {
				errs = messages(err)
			} else {
				warns = httpWarnings(cfg)
			}
			if strings.Join(errs, "\n") != strings.Join(tt.errs, "\n") {
				t.Errorf("got errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(tt.errs, "\n"))
			}
			if strings.Join(warns, "\n") != strings.Join(tt.warns, "\n") {
				t.Errorf("got warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(tt.warns, "\n"))
			}
		})
	}
}

// TestHTTPExposure checks the warnings for a server reachable beyond the
// machine.
func TestHTTPExposure(t *testing.T) {
	const user = "  users: [{name: kim, role: operator, password_hash: \"$2a$10$g36BRIkO2GxUV6HvxXtZK.t.oAjq0ewgvtFpy2dFj2B6nPpFpbxTS\"}]\n"
	dir := t.TempDir()
	writePair(t, dir, "s", time.Now().Add(24*time.Hour))
	file := filepath.Join(dir, "facgw.yaml")
	tests := []struct {
		name, http string
		want       []string
	}{
		{"loopback, anonymous viewer", "  listen: 127.0.0.1:8080\n" + user, nil},
		{"localhost", "  listen: localhost:8080\n" + user, nil},
		{"IPv6 loopback", "  listen: \"[::1]:8080\"\n" + user, nil},
		{"any address, anonymous viewer", "  listen: 0.0.0.0:8080\n", []string{
			file + ":6:3: http.anonymous: listening on 0.0.0.0:8080 with anonymous: viewer lets anyone who reaches it read the facility's state; set anonymous: none",
		}},
		{"every interface with users, no tls", "  listen: \":8080\"\n  anonymous: none\n" + user, []string{
			file + ":6:3: http.listen: listening on :8080 (every interface) without tls: passwords, session cookies and tokens cross the network in clear text",
		}},
		{"LAN address, tls, anonymous none", "  listen: 10.0.0.5:8443\n  anonymous: none\n  tls: {cert_file: s.crt, key_file: s.key}\n" + user, nil},
		{"LAN address, no users, anonymous none", "  listen: 10.0.0.5:8080\n  anonymous: none\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(file, []byte(httpHead+"http:\n"+tt.http), testRegistry(t))
			if err != nil {
				t.Fatal(err)
			}
			if got := httpWarnings(cfg); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestHTTPSettings(t *testing.T) {
	tests := []struct {
		name, http string
		want       []string
	}{
		{"anonymous none", "  anonymous: none\n", nil},
		{"anonymous engineer", "  anonymous: engineer\n", []string{
			`x.yaml:6:3: http.anonymous: anonymous must be viewer or none, got "engineer": changing state always needs a user or token`}},
		{"anonymous typo", "  anonymous: veiwer\n", []string{
			`x.yaml:6:3: http.anonymous: anonymous must be viewer or none, got "veiwer" (did you mean "viewer"?)`}},
		{"anonymous empty", "  anonymous: \"\"\n", []string{
			`x.yaml:6:3: http.anonymous: anonymous must be viewer or none, got ""`}},
		{"session_ttl bounds", "  session_ttl: 1m\n", nil},
		{"session_ttl too long", "  session_ttl: 721h\n", []string{
			`x.yaml:6:3: http.session_ttl: session_ttl must be 1m..720h (30 days), got 721h0m0s`}},
		{"session_ttl zero", "  session_ttl: 0s\n", []string{
			`x.yaml:6:3: http.session_ttl: session_ttl must be 1m..720h (30 days), got 0s`}},
		{"token with a literal value is a warning, not an error", "  tokens: [{name: t, role: viewer, token: " + strings.Repeat("k", 32) + "}]\n", nil},
		{"user names are case-sensitive and unique", "  users:\n    - {name: Kim, role: viewer, password_hash: \"$2a$10$g36BRIkO2GxUV6HvxXtZK.t.oAjq0ewgvtFpy2dFj2B6nPpFpbxTS\"}\n    - {name: kim, role: viewer, password_hash: \"$2a$10$g36BRIkO2GxUV6HvxXtZK.t.oAjq0ewgvtFpy2dFj2B6nPpFpbxTS\"}\n", nil},
		{"empty name", "  users: [{name: \"\", role: viewer, password_hash: \"$2a$10$g36BRIkO2GxUV6HvxXtZK.t.oAjq0ewgvtFpy2dFj2B6nPpFpbxTS\"}]\n", []string{
			`x.yaml:6:12: http.users[0].name: name must not be empty`}},
		{"unknown key", "  user: []\n", []string{
			`x.yaml:6:3: http.user: unknown field "user" (did you mean "users"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(httpHead+"http:\n"+tt.http), testRegistry(t))
			var got []string
			if err != nil {
				got = messages(err)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

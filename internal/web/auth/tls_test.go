package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/testpeer"
)

// writeCert makes a throwaway self-signed certificate for 127.0.0.1 and
// localhost and writes it and its key as PEM files in dir.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "facgw test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
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
	return certFile, keyFile, cert
}

// tlsServer serves h over TLS from LoadTLS on 127.0.0.1 and returns it
// with a client that trusts its certificate only.
func tlsServer(t *testing.T, h http.Handler) (*httptest.Server, *http.Client, string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, cert := writeCert(t, dir, "server")
	cfg, err := LoadTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = cfg
	// The refused handshakes are the point of some tests, not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 30 * time.Second}
	return srv, client, certFile
}

func TestLoadTLS(t *testing.T) {
	srv, client, _ := tlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.ServerName+" "+tls.VersionName(r.TLS.Version))
	}))
	// httptest serves on 127.0.0.1: the IP SAN is what is verified.
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("server at %s, want https://127.0.0.1", srv.URL)
	}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET over TLS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), " TLS 1.3") {
		t.Errorf("got %d %q, want 200 over TLS 1.3", resp.StatusCode, body)
	}

	tests := []struct {
		name     string
		min, max uint16
		wantErr  bool
	}{
		{"TLS 1.2", tls.VersionTLS12, tls.VersionTLS12, false},
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, false},
		{"TLS 1.1 refused", tls.VersionTLS10, tls.VersionTLS11, true},
		{"TLS 1.0 refused", tls.VersionTLS10, tls.VersionTLS10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := client.Transport.(*http.Transport).TLSClientConfig.Clone()
			cfg.MinVersion, cfg.MaxVersion = tt.min, tt.max
			conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), cfg)
			if conn != nil {
				conn.Close()
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("handshake: got error %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestLoadTLSErrors(t *testing.T) {
	dir := t.TempDir()
	certA, keyA, _ := writeCert(t, dir, "a")
	_, keyB, _ := writeCert(t, dir, "b")
	tests := []struct {
		name, cert, key string
		want            string
		wantNotExist    bool
	}{
		{"key of another certificate", certA, keyB, "private key does not match public key", false},
		{"missing certificate", filepath.Join(dir, "none.crt"), keyA, "no such file", true},
		{"missing key", certA, filepath.Join(dir, "none.key"), "no such file", true},
		{"key as certificate", keyA, keyA, "failed to find certificate PEM data", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadTLS(tt.cert, tt.key)
			if err == nil {
				t.Fatalf("got %v, want an error", cfg)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "auth: tls certificate "+tt.cert+" and key "+tt.key+": ") || !strings.Contains(msg, tt.want) {
				t.Errorf("got %q, want the file names and %q", msg, tt.want)
			}
			if errors.Is(err, fs.ErrNotExist) != tt.wantNotExist {
				t.Errorf("errors.Is(err, fs.ErrNotExist): got %v, want %v", !tt.wantNotExist, tt.wantNotExist)
			}
		})
	}
}

// TestSessionOverTLS runs a login, an action and a logout through a real
// HTTP client with a cookie jar over TLS: the Secure __Host- cookie must
// come back to the server.
func TestSessionOverTLS(t *testing.T) {
	cfg := testConfig(t)
	cfg.SecureCookie = true
	cfg.Anonymous = None
	e := newEnv(t, cfg)
	srv, client, _ := tlsServer(t, e.h)
	jar := newJar(t)
	client.Jar = jar
	post := func(path, body, csrf string) *http.Response {
		t.Helper()
		r, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Origin", srv.URL) // as a browser sends it
		if csrf != "" {
			r.Header.Set(CSRFHeader, csrf)
		}
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	r, _ := http.NewRequest("POST", srv.URL+LoginPath, strings.NewReader(loginBody("kim", kimPassword)))
	r.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	var login LoginResponse
	if err := json.NewDecoder(resp.Body).Decode(&login); err != nil || resp.StatusCode != 200 {
		t.Fatalf("login: got %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	steps := []struct {
		name, path, csrf string
		want             int
	}{
		{"action with the cookie and CSRF token", operatorPath, login.CSRFToken, 200},
		{"action with the cookie, without CSRF token", operatorPath, "", 403},
		{"engineer action", engineerPath, login.CSRFToken, 403},
		{"logout", LogoutPath, login.CSRFToken, 204},
		{"action after logout", operatorPath, login.CSRFToken, 401},
	}
	for _, s := range steps {
		if got := post(s.path, "", s.csrf).StatusCode; got != s.want {
			t.Errorf("%s: got %d, want %d", s.name, got, s.want)
		}
	}
}

// TestCurlIntegration drives the API with curl, a client that is not Go's,
// over TLS: its cookie jar must keep and send the __Host- Secure cookie,
// and it must not get a TLS 1.1 connection.
func TestCurlIntegration(t *testing.T) {
	testpeer.Require(t, "curl", "curl")
	cfg := testConfig(t)
	cfg.SecureCookie = true
	cfg.Anonymous = None
	e := newEnv(t, cfg)
	srv, _, certFile := tlsServer(t, e.h)
	jar := filepath.Join(t.TempDir(), "cookies.txt")
	curl := func(args ...string) (string, error) {
		t.Helper()
		base := []string{"--silent", "--show-error", "--max-time", "20", "--cacert", certFile, "--cookie", jar, "--cookie-jar", jar, "--write-out", "\n%{http_code}"}
		out, err := exec.Command("curl", append(base, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	status := func(out string) string { return out[strings.LastIndex(out, "\n")+1:] }

	out, err := curl("-H", "Content-Type: application/json", "--data", loginBody("lee", leePassword), srv.URL+LoginPath)
	if err != nil || status(out) != "200" {
		t.Fatalf("login: %v\n%s", err, out)
	}
	var login LoginResponse
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "\n")]), &login); err != nil {
		t.Fatalf("login answer %q: %v", out, err)
	}
	if b, _ := os.ReadFile(jar); !strings.Contains(string(b), "__Host-facgw_session") || !strings.Contains(string(b), "#HttpOnly_127.0.0.1") {
		t.Errorf("curl's cookie jar lacks the HttpOnly __Host- session cookie:\n%s", b)
	}
	steps := []struct {
		name   string
		args   []string
		status string
	}{
		{"whoami", []string{srv.URL + WhoamiPath}, "200"},
		{"engineer action", []string{"-X", "POST", "-H", CSRFHeader + ": " + login.CSRFToken, srv.URL + engineerPath}, "200"},
		{"engineer action without CSRF token", []string{"-X", "POST", srv.URL + engineerPath}, "403"},
		{"engineer action from another origin", []string{"-X", "POST", "-H", CSRFHeader + ": " + login.CSRFToken, "-H", "Origin: https://evil.example", srv.URL + engineerPath}, "403"},
		{"logout", []string{"-X", "POST", "-H", CSRFHeader + ": " + login.CSRFToken, srv.URL + LogoutPath}, "204"},
		{"whoami after logout", []string{srv.URL + WhoamiPath}, "401"},
		{"token", []string{"-H", "Authorization: Bearer " + viewerToken, srv.URL + readPath}, "200"},
	}
	for _, s := range steps {
		out, err := curl(s.args...)
		if err != nil || status(out) != s.status {
			t.Errorf("%s: got %v\n%s\nwant status %s", s.name, err, out, s.status)
		}
	}
	if out, err := curl("--tls-max", "1.1", srv.URL+WhoamiPath); err == nil {
		t.Errorf("TLS 1.1: got a connection, want a handshake failure:\n%s", out)
	}
}

package config

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"strings"
	"time"

	"github.com/facgw/facgw/internal/strictyaml"
	"github.com/facgw/facgw/internal/web/auth"
)

// HTTP configures the API and dashboard server: where it listens, TLS, and
// who may do what (see docs/api.md, Authentication).
type HTTP struct {
	// Listen is host:port to listen on. Default DefaultListen; port 0 picks
	// a free port.
	Listen string `yaml:"listen"`
	// TLS, when set, serves HTTPS with this certificate.
	TLS *HTTPTLS `yaml:"tls"`
	// SessionTTL is how long a dashboard login lasts. Default
	// DefaultSessionTTL.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// Users are people who log in on the dashboard.
	Users []HTTPUser `yaml:"users"`
	// Tokens are for machines and scripts (Authorization: Bearer).
	Tokens []HTTPToken `yaml:"tokens"`
	// Anonymous is what a request without credentials may do: "viewer" or
	// "none". Default "viewer": reading is open on the loopback default.
	Anonymous string `yaml:"anonymous"`
	// History is how many recent samples the dashboard keeps per point for
	// its charts, in memory (16 bytes each). Default DefaultHistory; 0
	// keeps none.
	History int            `yaml:"history"`
	Pos     strictyaml.Pos `json:"-"`
}

// HTTPTLS names the server's certificate and key, PEM files. Relative paths
// are relative to the config file's directory.
type HTTPTLS struct {
	CertFile string         `yaml:"cert_file" check:"required"`
	KeyFile  string         `yaml:"key_file" check:"required"`
	Pos      strictyaml.Pos `json:"-"`
}

// HTTPUser is a person with a role and a bcrypt password hash (made with
// `facgw passwd`).
type HTTPUser struct {
	Name         string         `yaml:"name" check:"required"`
	Role         string         `yaml:"role" check:"required"`
	PasswordHash string         `yaml:"password_hash" check:"required"`
	Pos          strictyaml.Pos `json:"-"`
}

// HTTPToken is a bearer token with a role.
type HTTPToken struct {
	Name  string         `yaml:"name" check:"required"`
	Role  string         `yaml:"role" check:"required"`
	Token Secret         `yaml:"token" check:"required"`
	Pos   strictyaml.Pos `json:"-"`
}

// Defaults of the http section.
const (
	DefaultSessionTTL = auth.DefaultSessionTTL
	DefaultAnonymous  = "viewer"
	// DefaultHistory samples per point: 2 minutes at a 1 s poll, 10 at
	// 5 s. 12 000 points with full rings take 23 MB; raise it where memory
	// allows longer charts.
	DefaultHistory = 120
	// MaxHistory bounds http.history so a typo cannot exhaust memory.
	MaxHistory = 100000
)

// AuthConfig returns the auth package's configuration for this section of
// a loaded Config, with the tokens revealed.
func (h *HTTP) AuthConfig() auth.Config {
	// Load has checked every role, so ParseRole cannot fail here; a role
	// that somehow does parses as None, which New refuses.
	role := func(s string) auth.Role { r, _ := auth.ParseRole(s); return r }
	cfg := auth.Config{
		Anonymous:    role(h.Anonymous),
		SessionTTL:   h.SessionTTL,
		SecureCookie: h.TLS != nil,
	}
	for _, u := range h.Users {
		cfg.Users = append(cfg.Users, auth.User{Name: u.Name, Role: role(u.Role), PasswordHash: u.PasswordHash})
	}
	for _, t := range h.Tokens {
		cfg.Tokens = append(cfg.Tokens, auth.Token{Name: t.Name, Role: role(t.Role), Token: t.Token.Reveal()})
	}
	return cfg
}

// http checks the http section and fills in its defaults.
func (c *checker) http() {
	top, h := c.cfg.Pos, &c.cfg.HTTP
	at := func(field, format string, args ...any) *strictyaml.Error {
		return subAt(top, h.Pos, "http", field, format, args...)
	}
	if msg := checkHostPort(h.Listen, false); msg != "" {
		c.add(at("listen", "listen address %q: %s", h.Listen, msg))
	}
	if !h.Pos.Has("session_ttl") {
		h.SessionTTL = DefaultSessionTTL
	} else if h.SessionTTL < time.Minute || h.SessionTTL > 30*24*time.Hour {
		c.add(at("session_ttl", "session_ttl must be 1m..720h (30 days), got %s", h.SessionTTL))
	}
	switch {
	case !h.Pos.Has("anonymous"):
		h.Anonymous = DefaultAnonymous
	case h.Anonymous == "viewer" || h.Anonymous == "none":
	case h.Anonymous == "operator" || h.Anonymous == "engineer":
		c.add(at("anonymous", "anonymous must be viewer or none, got %q: changing state always needs a user or token", h.Anonymous))
	default:
		c.add(at("anonymous", "anonymous must be viewer or none, got %q%s", h.Anonymous, strictyaml.DidYouMean(h.Anonymous, []string{"viewer", "none"})))
	}
	if !h.Pos.Has("history") {
		h.History = DefaultHistory
	} else if h.History < 0 || h.History > MaxHistory {
		c.add(at("history", "history must be 0..%d samples per point, got %d", MaxHistory, h.History))
	}
	if h.TLS != nil {
		c.httpTLS(h.TLS)
	}
	c.principals(h)
	c.exposure(h)
}

// httpTLS checks that the certificate and key files exist, the certificate
// parses, and the key belongs to it, so a bad pair stops `facgw check`
// rather than the server at start.
func (c *checker) httpTLS(t *HTTPTLS) {
	p := t.Pos
	read := func(field string, f *string) []byte {
		if *f == "" {
			if p.Has(field) {
				c.add(p.At(field, "%s must not be empty", field))
			}
			return nil
		}
		*f = c.path(*f)
		b, err := os.ReadFile(*f)
		if err != nil {
			c.add(p.At(field, "%s: %v", field, err))
			return nil
		}
		return b
	}
	certPEM, keyPEM := read("cert_file", &t.CertFile), read("key_file", &t.KeyFile)
	if certPEM == nil {
		return
	}
	var block *pem.Block
	for rest := certPEM; ; {
		block, rest = pem.Decode(rest)
		if block == nil || block.Type == "CERTIFICATE" {
			break
		}
	}
	if block == nil {
		c.add(p.At("cert_file", "cert_file %s holds no PEM CERTIFICATE", t.CertFile))
		return
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		c.add(p.At("cert_file", "cert_file %s: %v", t.CertFile, err))
		return
	}
	if keyPEM == nil {
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		c.add(p.At("key_file", "key_file %s does not go with cert_file: %s", t.KeyFile, strings.TrimPrefix(err.Error(), "tls: ")))
		return
	}
	// An expired certificate still loads, but every browser refuses it;
	// say so now rather than after the next restart.
	if now := time.Now(); now.After(cert.NotAfter) {
		c.warn(p.At("cert_file", "certificate %s expired on %s", t.CertFile, cert.NotAfter.UTC().Format(time.DateOnly)))
	}
}

// principals checks the users and tokens: names unique across both, roles,
// password hashes and token lengths.
func (c *checker) principals(h *HTTP) {
	type first struct {
		line int
		kind string
	}
	names := map[string]first{}
	name := func(p strictyaml.Pos, kind, n string) {
		switch {
		case n == "":
			c.notEmpty(p, "name", n)
		case !auth.ValidName(n):
			c.add(p.At("name", "%s name %q must be 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", kind, n))
		default:
			if f, dup := names[n]; dup {
				c.add(p.At("name", "duplicate name %q (first at line %d, a %s): users and tokens share one set of names", n, f.line, f.kind))
				return
			}
			names[n] = first{p.At("name", "").Line, kind}
		}
	}
	role := func(p strictyaml.Pos, r string) {
		if r == "" || r == "none" {
			c.add(p.At("role", "role must be viewer, operator or engineer, got %q", r))
			return
		}
		if _, err := auth.ParseRole(r); err != nil {
			c.add(p.At("role", "unknown role %q%s", r, strictyaml.DidYouMeanOr(r, auth.RoleNames)))
		}
	}
	for i := range h.Users {
		u := &h.Users[i]
		name(u.Pos, "user", u.Name)
		if u.Pos.Has("role") {
			role(u.Pos, u.Role)
		}
		if u.Pos.Has("password_hash") {
			if _, err := auth.CheckHash(u.PasswordHash); err != nil {
				c.add(u.Pos.At("password_hash", "%v", err))
			}
		}
	}
	tokens := map[[sha256.Size]byte]int{}
	for i := range h.Tokens {
		t := &h.Tokens[i]
		name(t.Pos, "token", t.Name)
		if t.Pos.Has("role") {
			role(t.Pos, t.Role)
		}
		v := t.Token.Reveal()
		if v == "" {
			// Unset, or not resolved: already reported.
			continue
		}
		// The length is not printed: it is a fact about the secret.
		if len(v) < auth.MinTokenLength {
			c.add(t.Pos.At("token", "token is shorter than %d characters; make one with: openssl rand -hex 32", auth.MinTokenLength))
			continue
		}
		sum := sha256.Sum256([]byte(v))
		if line, dup := tokens[sum]; dup {
			c.add(t.Pos.At("token", "token is the same as the one at line %d: each token names one holder", line))
			continue
		}
		tokens[sum] = t.Pos.At("token", "").Line
	}
}

// exposure warns about settings that are fine on loopback and not beyond:
// anyone who reaches the port reads the facility, or passwords cross the
// network in clear.
func (c *checker) exposure(h *HTTP) {
	host, _, err := net.SplitHostPort(h.Listen)
	if err != nil || isLoopback(host) {
		return
	}
	where := h.Listen
	if host == "" {
		where += " (every interface)"
	}
	at := func(field, format string, args ...any) *strictyaml.Error {
		return subAt(c.cfg.Pos, h.Pos, "http", field, format, args...)
	}
	if h.Anonymous == "viewer" {
		c.warn(at("anonymous", "listening on %s with anonymous: viewer lets anyone who reaches it read the facility's state; set anonymous: none", where))
	}
	if h.TLS == nil && (len(h.Users) > 0 || len(h.Tokens) > 0) {
		c.warn(at("listen", "listening on %s without tls: passwords, session cookies and tokens cross the network in clear text", where))
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Package auth authenticates and authorizes requests to facgw's HTTP API:
// people log in with a name and a bcrypt-hashed password and get a session
// cookie, machines send a bearer token, and everyone else is anonymous.
// Each principal has a role, viewer < operator < engineer, and handlers
// wrapped in Require refuse lower roles.
//
// Browsers send cookies on their own, so a session is an ambient
// credential: every state-changing request made with one must carry the
// session's CSRF token in X-CSRF-Token, and cross-origin state-changing
// requests are refused whatever their credential. Bearer tokens are never
// sent by a browser unasked, so they need no CSRF token.
//
// Failed logins are rate limited per client address and per user name, and
// logged; a locked-out attempt is answered 429 without checking the
// password. Sessions live in memory: a restart logs everyone out, which on
// an appliance is acceptable and avoids keeping session secrets on disk.
//
// The package knows nothing of the config file: the gateway fills a Config
// from it, so the package can be tested alone.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Role is what a principal may do. Roles are ordered: each includes the
// ones below it.
type Role int

// The roles. None is the zero value and grants nothing; it is only
// meaningful as Config.Anonymous, where it makes every request need
// credentials.
const (
	// None may do nothing.
	None Role = iota
	// Viewer reads state, events and alerts.
	Viewer
	// Operator also acknowledges and silences alerts.
	Operator
	// Engineer also arms, disarms and inhibits.
	Engineer
)

var roleNames = [...]string{None: "none", Viewer: "viewer", Operator: "operator", Engineer: "engineer"}

// RoleNames are the names of the roles a user or token can have, lowest
// first.
var RoleNames = []string{"viewer", "operator", "engineer"}

// ParseRole returns the role named s: "viewer", "operator", "engineer", or
// "none" (for Config.Anonymous).
func ParseRole(s string) (Role, error) {
	for r, n := range roleNames {
		if n == s {
			return Role(r), nil
		}
	}
	return None, fmt.Errorf("auth: unknown role %q (viewer, operator, engineer or none)", s)
}

// String returns the role's name, as ParseRole reads it.
func (r Role) String() string {
	if r < None || int(r) >= len(roleNames) {
		return "role(" + strconv.Itoa(int(r)) + ")"
	}
	return roleNames[r]
}

// MarshalText writes the role's name, so it reads well in JSON.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a role name.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// How a principal was identified.
const (
	ViaToken     = "token"
	ViaSession   = "session"
	ViaAnonymous = "anonymous"
)

// AnonymousName is the name of an unauthenticated principal.
const AnonymousName = "anonymous"

// Principal is who made a request: a user logged in with a session, a
// token's holder, or anonymous.
type Principal struct {
	// Name is the user's or token's name from the config, or
	// AnonymousName.
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Via is ViaToken, ViaSession or ViaAnonymous.
	Via string `json:"via"`
}

// Authenticated reports whether the principal presented credentials.
func (p Principal) Authenticated() bool { return p.Via == ViaToken || p.Via == ViaSession }

type principalKey struct{}

type sessionKey struct{}

// NewContext returns ctx carrying p, as Middleware stores it. Handlers
// tested without Middleware can use it to act as someone.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal Middleware stored in ctx. It reports
// false when there is none: the request had no credentials and anonymous
// access is off, or Middleware did not run.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// User is a person who logs in on the dashboard.
type User struct {
	Name string
	Role Role
	// PasswordHash is a bcrypt hash of cost MinHashCost or more, as
	// HashPassword makes.
	PasswordHash string
}

// Token is a bearer token for a machine or script.
type Token struct {
	Name string
	Role Role
	// Token is the token itself, at least MinTokenLength characters.
	Token string
}

// Config is what an Authenticator is built from.
type Config struct {
	Users  []User
	Tokens []Token
	// Anonymous is the role of requests without credentials: None (the
	// zero value, so a forgotten setting fails closed) or Viewer. Nothing
	// that changes state may be anonymous.
	Anonymous Role
	// SessionTTL is how long a login lasts; 0 means DefaultSessionTTL.
	// Sessions do not slide: a user logs in again after SessionTTL.
	SessionTTL time.Duration
	// SecureCookie marks the session cookie Secure (and names it with the
	// __Host- prefix); set it when the server speaks TLS.
	SecureCookie bool

	// minHashCost replaces MinHashCost when set. Only this package's tests
	// set it: under the race detector one bcrypt comparison of cost 10
	// takes about a second, and the tests make dozens.
	minHashCost int
}

// Limits and defaults.
const (
	DefaultSessionTTL = 12 * time.Hour
	// MinTokenLength is the shortest bearer token accepted: 32 characters
	// from a generator are beyond guessing at any request rate.
	MinTokenLength = 32
	// MaxFailures failed logins in a row lock out the client address or
	// user name for LockoutBase, doubling with each further failure up to
	// LockoutMax.
	MaxFailures = 5
	LockoutBase = 30 * time.Second
	LockoutMax  = 15 * time.Minute
	// ForgetAfter is how long a client address or name must stay quiet
	// (no failure, no lockout running) before its failures are forgotten.
	ForgetAfter = 15 * time.Minute
)

// Paths of the endpoints Routes registers.
const (
	LoginPath  = "/api/v1/login"
	LogoutPath = "/api/v1/logout"
	WhoamiPath = "/api/v1/whoami"
)

// CSRFHeader carries a session's CSRF token on state-changing requests.
const CSRFHeader = "X-CSRF-Token"

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidName reports whether name can be a user or token name: 1 to 64
// letters, digits, '.', '_', '@' and '-', starting with a letter or digit.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Authenticator identifies the principal of each request, checks roles,
// and serves login, logout and whoami. It is safe for concurrent use and
// starts no goroutines: expired sessions and forgotten failures are swept
// as requests come in.
type Authenticator struct {
	log          *slog.Logger
	now          func() time.Time
	users        map[string]User
	tokens       []tokenEntry
	anonymous    Role
	ttl          time.Duration
	secureCookie bool
	cookieName   string
	// dummy is a hash compared against for unknown names, so an unknown
	// name costs the same time as a wrong password; made on first use.
	dummy func() []byte
	// bcryptSlots bounds concurrent bcrypt comparisons to one per CPU:
	// each burns a CPU for up to a quarter of a second at cost 12, and a
	// login flood must not starve polling.
	bcryptSlots chan struct{}
	cop         *http.CrossOriginProtection
	limits      *limiter

	mu       sync.Mutex
	sessions map[[sha256.Size]byte]*session
}

type tokenEntry struct {
	name string
	role Role
	sum  [sha256.Size]byte
}

// New checks cfg and returns an Authenticator. log receives the login and
// failure records; now is the clock (time.Now when nil), injectable so
// tests can expire sessions and lockouts.
func New(cfg Config, log *slog.Logger, now func() time.Time) (*Authenticator, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	a := &Authenticator{
		log:          log,
		now:          now,
		users:        map[string]User{},
		anonymous:    cfg.Anonymous,
		ttl:          cfg.SessionTTL,
		secureCookie: cfg.SecureCookie,
		cookieName:   "facgw_session",
		bcryptSlots:  make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		cop:          http.NewCrossOriginProtection(),
		limits:       newLimiter(now),
		sessions:     map[[sha256.Size]byte]*session{},
	}
	if a.secureCookie {
		// Browsers only accept a __Host- cookie that is Secure, has Path=/
		// and no Domain, so no sibling host or plain-HTTP page can plant
		// or overwrite it.
		a.cookieName = "__Host-facgw_session"
	}
	var errs []error
	switch {
	case a.ttl == 0:
		a.ttl = DefaultSessionTTL
	case a.ttl < 0:
		errs = append(errs, fmt.Errorf("auth: session TTL %s is negative", a.ttl))
	}
	if a.anonymous != None && a.anonymous != Viewer {
		errs = append(errs, fmt.Errorf("auth: anonymous role must be none or viewer, got %s: changing state needs authentication", a.anonymous))
	}
	seen := map[string]bool{}
	name := func(kind, n string, r Role) bool {
		switch {
		case !ValidName(n):
			errs = append(errs, fmt.Errorf("auth: %s name %q must be 1-64 letters, digits, '.', '_', '@' or '-'", kind, n))
		case seen[n]:
			errs = append(errs, fmt.Errorf("auth: %s name %q is used twice (names are unique across users and tokens)", kind, n))
		case r < Viewer || r > Engineer:
			errs = append(errs, fmt.Errorf("auth: %s %q: role must be viewer, operator or engineer, got %s", kind, n, r))
		default:
			seen[n] = true
			return true
		}
		return false
	}
	minCost := MinHashCost
	if cfg.minHashCost > 0 {
		minCost = cfg.minHashCost
	}
	// The dummy hash costs as much as the dearest real one, so an unknown
	// name takes no less time than a known one.
	maxCost := DefaultHashCost
	if len(cfg.Users) > 0 {
		maxCost = minCost
	}
	for _, u := range cfg.Users {
		if !name("user", u.Name, u.Role) {
			continue
		}
		cost, err := checkHash(u.PasswordHash, minCost)
		if err != nil {
			errs = append(errs, fmt.Errorf("auth: user %q: %w", u.Name, err))
			continue
		}
		maxCost = max(maxCost, cost)
		a.users[u.Name] = u
	}
	sums := map[[sha256.Size]byte]string{}
	for _, t := range cfg.Tokens {
		if !name("token", t.Name, t.Role) {
			continue
		}
		if len(t.Token) < MinTokenLength {
			errs = append(errs, fmt.Errorf("auth: token %q is shorter than %d characters", t.Name, MinTokenLength))
			continue
		}
		sum := sha256.Sum256([]byte(t.Token))
		if other, dup := sums[sum]; dup {
			errs = append(errs, fmt.Errorf("auth: token %q is the same as token %q", t.Name, other))
			continue
		}
		sums[sum] = t.Name
		a.tokens = append(a.tokens, tokenEntry{name: t.Name, role: t.Role, sum: sum})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	a.dummy = sync.OnceValue(func() []byte { return dummyHash(maxCost) })
	a.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.log.Warn("auth: cross-origin request refused",
			"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	return a, nil
}

// Middleware identifies the principal of each request and stores it in the
// request's context (see PrincipalFrom), then calls next. It answers
// itself, without calling next, when:
//
//   - a state-changing request (not GET, HEAD or OPTIONS) comes from
//     another origin (Sec-Fetch-Site, or Origin not matching Host): 403;
//   - the Authorization header is not a valid bearer token: 401 (a wrong
//     credential is an error, not a silent fall back to anonymous, so a
//     script with a revoked token learns of it);
//   - a bearer token comes from a client address locked out after failed
//     attempts: 429 with Retry-After;
//   - a state-changing request authenticated by session cookie lacks the
//     session's CSRF token in X-CSRF-Token: 403. Login is exempt (it has
//     its own checks) so a browser holding a stale cookie can log in.
//
// A session cookie that is unknown or expired is ignored: the request is
// anonymous, as browsers keep sending cookies the server forgot.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return a.cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); h != "" {
			p, ok := a.bearer(w, r, h)
			if !ok {
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
			return
		}
		if s := a.sessionFrom(r); s != nil {
			if unsafeMethod(r.Method) && r.URL.Path != LoginPath && !s.csrfOK(r.Header.Get(CSRFHeader)) {
				a.log.Warn("auth: CSRF token missing or wrong", "user", s.name, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
				writeError(w, http.StatusForbidden, "missing or wrong "+CSRFHeader+" header")
				return
			}
			ctx := context.WithValue(NewContext(r.Context(), Principal{Name: s.name, Role: s.role, Via: ViaSession}), sessionKey{}, s)
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		if a.anonymous != None {
			r = r.WithContext(NewContext(r.Context(), Principal{Name: AnonymousName, Role: a.anonymous, Via: ViaAnonymous}))
		}
		next.ServeHTTP(w, r)
	}))
}

// bearer checks an Authorization header; it answers the request itself and
// returns false when the header does not identify a principal.
func (a *Authenticator) bearer(w http.ResponseWriter, r *http.Request, header string) (Principal, bool) {
	scheme, tok, _ := strings.Cut(header, " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		a.unauthorized(w, "Authorization must be: Bearer <token>")
		return Principal{}, false
	}
	ipKey := clientKey(r.RemoteAddr)
	if wait := a.limits.lockedFor(ipKey); wait > 0 {
		a.logRefused(ipKey, "", r, wait)
		tooMany(w, wait)
		return Principal{}, false
	}
	// Hashing both sides makes every comparison 32 bytes long, so the
	// time taken says nothing about a token's length; every configured
	// token is compared so it says nothing about which one nearly matched.
	sum := sha256.Sum256([]byte(tok))
	match := -1
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].sum[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		a.logFailure(r, "", "invalid token", ipKey)
		a.unauthorized(w, "invalid token")
		return Principal{}, false
	}
	t := a.tokens[match]
	return Principal{Name: t.name, Role: t.role, Via: ViaToken}, true
}

// Require returns a handler that calls h only for principals of at least
// role. It answers 401 (with WWW-Authenticate: Bearer) when the request is
// not authenticated and anonymous access does not suffice, and 403 when
// the principal's role is too low. It relies on Middleware having run;
// without it every request is unauthenticated. role must be Viewer,
// Operator or Engineer: Require(None, ...) panics, as a handler that needs
// no role should not be wrapped.
func (a *Authenticator) Require(role Role, h http.Handler) http.Handler {
	if role < Viewer || role > Engineer {
		panic(fmt.Sprintf("auth: Require(%s): want viewer, operator or engineer", role))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		switch {
		case !ok || (!p.Authenticated() && p.Role < role):
			a.unauthorized(w, fmt.Sprintf("authentication required (%s or above)", role))
		case p.Role < role:
			a.log.Info("auth: role too low", "user", p.Name, "role", p.Role, "want", role, "method", r.Method, "path", r.URL.Path)
			writeError(w, http.StatusForbidden, fmt.Sprintf("%s needs role %s or above, %s is %s", r.URL.Path, role, p.Name, p.Role))
		default:
			h.ServeHTTP(w, r)
		}
	})
}

func (a *Authenticator) unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="facgw"`)
	writeError(w, http.StatusUnauthorized, msg)
}

func tooMany(w http.ResponseWriter, wait time.Duration) {
	secs := int64((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many failed attempts, try again in %ds", secs))
}

// logFailure records a failed attempt against each key and logs it, and
// the start of a lockout if one began.
func (a *Authenticator) logFailure(r *http.Request, user, reason string, keys ...string) {
	attrs := []any{"remote", r.RemoteAddr, "reason", reason}
	if user != "" {
		attrs = append([]any{"user", user}, attrs...)
	}
	a.log.Warn("auth: authentication failed", attrs...)
	for _, k := range keys {
		if n, lock := a.limits.fail(k); lock > 0 {
			a.log.Warn("auth: locked out after failed attempts", "key", k, "failures", n, "for", lock.String(), "remote", r.RemoteAddr)
		}
	}
}

// logRefused logs an attempt refused by a lockout, once per lockout per
// key, so a flood of attempts does not flood the log.
func (a *Authenticator) logRefused(key, user string, r *http.Request, wait time.Duration) {
	if a.limits.firstRefusal(key) {
		attrs := []any{"key", key, "remote", r.RemoteAddr, "retry_after", wait.Round(time.Second).String()}
		if user != "" {
			attrs = append(attrs, "user", user)
		}
		a.log.Warn("auth: attempt refused while locked out (further ones are not logged)", attrs...)
	}
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// clientKey returns the limiter key of a client address: the IP, or for
// IPv6 its /64, since one host usually holds a whole /64 and could
// otherwise rotate addresses to dodge the limit.
func clientKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return "addr " + host
	case ip.To4() != nil:
		return "addr " + ip.To4().String()
	}
	return "addr " + ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

func nameKey(name string) string { return "user " + name }

type errorDoc struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorDoc{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

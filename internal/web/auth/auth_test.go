package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Passwords and tokens of the test users. The log is searched for each of
// them: none may ever appear in it.
const (
	kimPassword   = "kim-correct-horse-7"
	leePassword   = "lee-battery-staple-9"
	parkPassword  = "park-tr0ub4dor-and-3"
	viewerToken   = "viewer-token-0123456789abcdefghijklmnop"
	operatorToken = "operator-token-0123456789abcdefghijklmn"
	wrongToken    = "wrong-token-0123456789abcdefghijklmnopq"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer collects log output from concurrent handlers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log lines containing every one of subs.
func (l *logBuffer) lines(subs ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// assertNoSecrets fails when the log holds any of the secrets.
func (l *logBuffer) assertNoSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	log := l.String()
	for _, s := range append(secrets, kimPassword, leePassword, parkPassword, viewerToken, operatorToken, wrongToken) {
		if s != "" && strings.Contains(log, s) {
			t.Errorf("log contains the secret %q:\n%s", s, log)
		}
	}
}

// hashes caches the low-cost hashes of the test passwords: each costs a
// bcrypt run, slow under the race detector.
var (
	hashesOnce sync.Once
	hashes     map[string]string
)

func testHash(t *testing.T, pw string) string {
	t.Helper()
	hashesOnce.Do(func() {
		hashes = map[string]string{}
		for _, p := range []string{kimPassword, leePassword, parkPassword} {
			h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
			if err != nil {
				panic(err)
			}
			hashes[p] = string(h)
		}
	})
	h, ok := hashes[pw]
	if !ok {
		t.Fatalf("no test hash for %q", pw)
	}
	return h
}

// testConfig has an operator (kim), an engineer (lee), a viewer (park) and
// two tokens.
func testConfig(t *testing.T) Config {
	return Config{
		Users: []User{
			{Name: "kim", Role: Operator, PasswordHash: testHash(t, kimPassword)},
			{Name: "lee", Role: Engineer, PasswordHash: testHash(t, leePassword)},
			{Name: "park", Role: Viewer, PasswordHash: testHash(t, parkPassword)},
		},
		Tokens: []Token{
			{Name: "bms-integration", Role: Viewer, Token: viewerToken},
			{Name: "ops-script", Role: Operator, Token: operatorToken},
		},
		Anonymous:  Viewer,
		SessionTTL: time.Hour,
	}
}

// env is an Authenticator serving a read endpoint, an operator action and
// an engineer action, each echoing the principal it saw.
type env struct {
	a     *Authenticator
	h     http.Handler
	clock *clock
	log   *logBuffer
	// calls counts the calls that reached an endpoint.
	mu    sync.Mutex
	calls int
}

const (
	readPath     = "/api/v1/state"
	operatorPath = "/api/v1/alerts/fire-1/ack"
	engineerPath = "/api/v1/arm"
)

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	if cfg.minHashCost == 0 {
		cfg.minHashCost = bcrypt.MinCost
	}
	e := &env{clock: newClock(), log: &logBuffer{}}
	a, err := New(cfg, slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})), e.clock.now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.a = a
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.calls++
		e.mu.Unlock()
		p, _ := PrincipalFrom(r.Context())
		writeJSON(w, http.StatusOK, p)
	})
	mux := http.NewServeMux()
	a.Routes(mux)
	mux.Handle("GET "+readPath, a.Require(Viewer, echo))
	mux.Handle("POST "+operatorPath, a.Require(Operator, echo))
	mux.Handle("POST "+engineerPath, a.Require(Engineer, echo))
	e.h = a.Middleware(mux)
	return e
}

func (e *env) callCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls
}

// req describes a request.
type req struct {
	method, path, body string
	remote             string
	token              string
	sess               *sess
	csrf               string // overrides the session's token; "-" sends none
	header             map[string]string
}

// sess is a logged-in browser: its cookie and CSRF token.
type sess struct {
	cookie *http.Cookie
	csrf   string
}

func (e *env) do(t *testing.T, r req) *httptest.ResponseRecorder {
	t.Helper()
	var body *strings.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	} else {
		body = strings.NewReader("")
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.sess != nil {
		hr.AddCookie(r.sess.cookie)
		if r.csrf == "" {
			hr.Header.Set(CSRFHeader, r.sess.csrf)
		}
	}
	if r.csrf != "" && r.csrf != "-" {
		hr.Header.Set(CSRFHeader, r.csrf)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, hr)
	return rec
}

func loginBody(name, pw string) string {
	b, _ := json.Marshal(LoginRequest{Name: name, Password: pw})
	return string(b)
}

// login logs in and returns the session, failing the test if it cannot.
func (e *env) login(t *testing.T, name, pw string) *sess {
	t.Helper()
	rec := e.do(t, req{method: "POST", path: LoginPath, body: loginBody(name, pw)})
	if rec.Code != http.StatusOK {
		t.Fatalf("login %s: got %d %s, want 200", name, rec.Code, rec.Body)
	}
	var resp LoginResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login %s: got %d cookies, want 1", name, len(cookies))
	}
	return &sess{cookie: cookies[0], csrf: resp.CSRFToken}
}

// errorBody returns the "error" of a JSON error answer, failing the test
// when the body is not one.
func errorBody(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer: got Content-Type %q, want application/json", ct)
	}
	var doc struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc.Error == "" {
		t.Errorf("error answer: got body %q, want {\"error\": \"...\"}", rec.Body)
	}
	return doc.Error
}

// TestRoleMatrix runs every kind of caller against a read, an operator
// action and an engineer action, with anonymous reading on and off.
func TestRoleMatrix(t *testing.T) {
	type want struct{ read, op, eng int }
	tests := []struct {
		caller string
		// want with anonymous: viewer, and with anonymous: none.
		anonViewer, anonNone want
		// who is the principal the endpoints see when they answer 200.
		who, via string
	}{
		{"anonymous", want{200, 401, 401}, want{401, 401, 401}, AnonymousName, ViaAnonymous},
		{"viewer token", want{200, 403, 403}, want{200, 403, 403}, "bms-integration", ViaToken},
		{"operator token", want{200, 200, 403}, want{200, 200, 403}, "ops-script", ViaToken},
		{"viewer session", want{200, 403, 403}, want{200, 403, 403}, "park", ViaSession},
		{"operator session", want{200, 200, 403}, want{200, 200, 403}, "kim", ViaSession},
		{"engineer session", want{200, 200, 200}, want{200, 200, 200}, "lee", ViaSession},
		{"wrong token", want{401, 401, 401}, want{401, 401, 401}, "", ""},
		{"expired session", want{200, 401, 401}, want{401, 401, 401}, AnonymousName, ViaAnonymous},
	}
	for _, anon := range []Role{Viewer, None} {
		cfg := testConfig(t)
		cfg.Anonymous = anon
		e := newEnv(t, cfg)
		// The expired session is an hour old when the others are ten
		// minutes old: TTL is one hour.
		expired := e.login(t, "kim", kimPassword)
		e.clock.advance(50 * time.Minute)
		sessions := map[string]*sess{
			"viewer session":   e.login(t, "park", parkPassword),
			"operator session": e.login(t, "kim", kimPassword),
			"engineer session": e.login(t, "lee", leePassword),
			"expired session":  expired,
		}
		e.clock.advance(10 * time.Minute)
		tokens := map[string]string{"viewer token": viewerToken, "operator token": operatorToken, "wrong token": wrongToken}
		for _, tt := range tests {
			w := tt.anonViewer
			if anon == None {
				w = tt.anonNone
			}
			for _, action := range []struct {
				method, path string
				want         int
			}{{"GET", readPath, w.read}, {"POST", operatorPath, w.op}, {"POST", engineerPath, w.eng}} {
				name := "anonymous " + anon.String() + "/" + tt.caller + "/" + action.method + " " + action.path
				t.Run(name, func(t *testing.T) {
					before := e.callCount()
					rec := e.do(t, req{method: action.method, path: action.path, token: tokens[tt.caller], sess: sessions[tt.caller]})
					if rec.Code != action.want {
						t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, action.want)
					}
					called := e.callCount() > before
					if called != (action.want == 200) {
						t.Errorf("handler called: got %v, want %v", called, action.want == 200)
					}
					switch action.want {
					case 200:
						var p Principal
						if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
							t.Fatal(err)
						}
						if p.Name != tt.who || p.Via != tt.via {
							t.Errorf("got principal %+v, want %s via %s", p, tt.who, tt.via)
						}
					case 401:
						errorBody(t, rec)
						if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
							t.Errorf("got WWW-Authenticate %q, want Bearer ...", got)
						}
					default:
						errorBody(t, rec)
					}
				})
			}
		}
		e.log.assertNoSecrets(t, expired.cookie.Value, expired.csrf)
	}
}

// TestCSRF checks what a state-changing request needs besides a session.
func TestCSRF(t *testing.T) {
	e := newEnv(t, testConfig(t))
	kim := e.login(t, "kim", kimPassword)
	lee := e.login(t, "lee", leePassword)
	host := "example.com" // httptest.NewRequest's Host
	tests := []struct {
		name string
		r    req
		want int
	}{
		{"session with its token", req{method: "POST", path: operatorPath, sess: kim}, 200},
		{"session without token", req{method: "POST", path: operatorPath, sess: kim, csrf: "-"}, 403},
		{"session with a wrong token", req{method: "POST", path: operatorPath, sess: kim, csrf: "not-the-token"}, 403},
		{"session with another session's token", req{method: "POST", path: operatorPath, sess: kim, csrf: lee.csrf}, 403},
		{"session token in the wrong header", req{method: "POST", path: operatorPath, sess: kim, csrf: "-", header: map[string]string{"X-Csrf": kim.csrf}}, 403},
		{"read needs no token", req{method: "GET", path: readPath, sess: kim, csrf: "-"}, 200},
		{"same origin", req{method: "POST", path: operatorPath, sess: kim, header: map[string]string{"Origin": "http://" + host}}, 200},
		{"same origin by Sec-Fetch-Site", req{method: "POST", path: operatorPath, sess: kim, header: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + host}}, 200},
		{"cross origin", req{method: "POST", path: operatorPath, sess: kim, header: map[string]string{"Origin": "http://evil.example"}}, 403},
		{"cross origin, other port", req{method: "POST", path: operatorPath, sess: kim, header: map[string]string{"Origin": "http://" + host + ":8443"}}, 403},
		{"null origin", req{method: "POST", path: operatorPath, sess: kim, header: map[string]string{"Origin": "null"}}, 403},
		{"cross-site fetch", req{method: "POST", path: operatorPath, sess: kim, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403},
		{"same-site fetch from a sibling host", req{method: "POST", path: operatorPath, sess: kim, header: map[string]string{"Sec-Fetch-Site": "same-site"}}, 403},
		{"bearer token needs no CSRF token", req{method: "POST", path: operatorPath, token: operatorToken}, 200},
		{"bearer token from another origin", req{method: "POST", path: operatorPath, token: operatorToken, header: map[string]string{"Origin": "http://evil.example"}}, 403},
		{"anonymous from another origin", req{method: "POST", path: operatorPath, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403},
		{"cross-origin read is allowed", req{method: "GET", path: readPath, sess: kim, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 200},
		{"logout without token", req{method: "POST", path: LogoutPath, sess: kim, csrf: "-"}, 403},
		{"cross-origin login", req{method: "POST", path: LoginPath, body: loginBody("kim", kimPassword), header: map[string]string{"Origin": "http://evil.example"}}, 403},
		{"cross-site login", req{method: "POST", path: LoginPath, body: loginBody("kim", kimPassword), header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403},
		{"login as a form", req{method: "POST", path: LoginPath, body: "name=kim&password=x", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415},
		{"login with a stale cookie needs no token", req{method: "POST", path: LoginPath, body: loginBody("lee", leePassword), sess: kim, csrf: "-"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sessions, calls := e.a.Sessions(), e.callCount()
			rec := e.do(t, tt.r)
			if rec.Code != tt.want {
				t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, tt.want)
			}
			if tt.want == 200 {
				return
			}
			errorBody(t, rec)
			if e.callCount() != calls {
				t.Errorf("a refused request reached the handler")
			}
			if e.a.Sessions() != sessions {
				t.Errorf("sessions: got %d, want %d (a refused login or logout changed them)", e.a.Sessions(), sessions)
			}
		})
	}
	if got := e.log.lines("cross-origin", "evil.example"); len(got) == 0 {
		t.Errorf("got no log line for the cross-origin requests")
	}
	if got := e.log.lines("CSRF token missing or wrong", "user=kim"); len(got) == 0 {
		t.Errorf("got no log line for the missing CSRF token")
	}
	e.log.assertNoSecrets(t, kim.cookie.Value, kim.csrf, lee.cookie.Value, lee.csrf)
}

func TestBearerHeader(t *testing.T) {
	e := newEnv(t, testConfig(t))
	tests := []struct {
		name, header string
		want         int
	}{
		{"valid", "Bearer " + viewerToken, 200},
		{"scheme is case-insensitive", "bearer " + viewerToken, 200},
		{"basic auth", "Basic a2ltOnB3", 401},
		{"no token", "Bearer ", 401},
		{"a prefix of a token", "Bearer " + viewerToken[:MinTokenLength-1], 401},
		{"a token with more after it", "Bearer " + viewerToken + "x", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.do(t, req{method: "GET", path: readPath, header: map[string]string{"Authorization": tt.header}})
			if rec.Code != tt.want {
				t.Errorf("got %d %s, want %d", rec.Code, rec.Body, tt.want)
			}
		})
	}
	if got := e.log.lines("authentication failed", "reason=\"invalid token\""); len(got) != 2 {
		t.Errorf("got %d invalid-token log lines, want 2 (one per wrong token):\n%s", len(got), e.log)
	}
	e.log.assertNoSecrets(t)
}

func TestWhoami(t *testing.T) {
	e := newEnv(t, testConfig(t))
	kim := e.login(t, "kim", kimPassword)
	none := newEnv(t, Config{Tokens: testConfig(t).Tokens})
	tests := []struct {
		name     string
		e        *env
		r        req
		want     int
		wantJSON string
	}{
		{"anonymous", e, req{}, 200, `{"name":"anonymous","role":"viewer","via":"anonymous"}`},
		{"token", e, req{token: operatorToken}, 200, `{"name":"ops-script","role":"operator","via":"token"}`},
		{"session", e, req{sess: kim}, 200, `{"name":"kim","role":"operator","via":"session","csrf_token":"` + kim.csrf + `","expires":"2026-03-01T09:00:00Z"}`},
		{"no anonymous access", none, req{}, 401, ""},
		{"wrong token", e, req{token: wrongToken}, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.method, tt.r.path = "GET", WhoamiPath
			rec := tt.e.do(t, tt.r)
			if rec.Code != tt.want {
				t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, tt.want)
			}
			if tt.want != 200 {
				errorBody(t, rec)
				return
			}
			if got := strings.TrimSpace(rec.Body.String()); got != tt.wantJSON {
				t.Errorf("got %s, want %s", got, tt.wantJSON)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	good := testConfig(t)
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"duplicate user", func(c *Config) { c.Users = append(c.Users, c.Users[0]) }, `auth: user name "kim" is used twice`},
		{"token named like a user", func(c *Config) { c.Tokens[0].Name = "kim" }, `auth: token name "kim" is used twice`},
		{"bad name", func(c *Config) { c.Users[0].Name = "kim lee" }, `auth: user name "kim lee" must be`},
		{"user without role", func(c *Config) { c.Users[0].Role = None }, `auth: user "kim": role must be viewer, operator or engineer, got none`},
		{"token with an unknown role", func(c *Config) { c.Tokens[0].Role = 7 }, `auth: token "bms-integration": role must be viewer, operator or engineer, got role(7)`},
		{"short token", func(c *Config) { c.Tokens[0].Token = strings.Repeat("x", MinTokenLength-1) }, `auth: token "bms-integration" is shorter than 32 characters`},
		{"same token twice", func(c *Config) { c.Tokens[1].Token = c.Tokens[0].Token }, `auth: token "ops-script" is the same as token "bms-integration"`},
		{"not a hash", func(c *Config) { c.Users[1].PasswordHash = "lee-battery-staple-9" }, `auth: user "lee": password_hash is not a bcrypt hash`},
		{"truncated hash", func(c *Config) { c.Users[1].PasswordHash = c.Users[1].PasswordHash[:50] }, `auth: user "lee": password_hash is not a bcrypt hash`},
		// The test hashes have cost 4; New without the test override wants 10.
		{"cheap hash", func(c *Config) { c.minHashCost = 0 }, `auth: user "kim": password_hash has bcrypt cost 4, want at least 10`},
		{"anonymous operator", func(c *Config) { c.Anonymous = Operator }, `auth: anonymous role must be none or viewer, got operator`},
		{"negative ttl", func(c *Config) { c.SessionTTL = -time.Second }, `auth: session TTL -1s is negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			cfg.Users = append([]User(nil), good.Users...)
			cfg.Tokens = append([]Token(nil), good.Tokens...)
			cfg.minHashCost = bcrypt.MinCost
			tt.modify(&cfg)
			a, err := New(cfg, nil, nil)
			if err == nil {
				t.Fatalf("got an Authenticator %v, want an error containing %q", a, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), cfg.Users[1].PasswordHash[7:]) || strings.Contains(err.Error(), leePassword) || strings.Contains(err.Error(), viewerToken) {
				t.Errorf("error %q quotes a secret", err)
			}
		})
	}
	cfg := good
	cfg.minHashCost = bcrypt.MinCost
	if _, err := New(cfg, nil, nil); err != nil {
		t.Errorf("the good config: got %v, want no error", err)
	}
}

func TestRoles(t *testing.T) {
	if !(None < Viewer && Viewer < Operator && Operator < Engineer) {
		t.Errorf("got order %d %d %d %d, want none < viewer < operator < engineer", None, Viewer, Operator, Engineer)
	}
	for _, name := range append([]string{"none"}, RoleNames...) {
		r, err := ParseRole(name)
		if err != nil {
			t.Errorf("ParseRole(%q): %v", name, err)
		}
		if r.String() != name {
			t.Errorf("ParseRole(%q).String(): got %q, want %q", name, r, name)
		}
		b, _ := json.Marshal(r)
		var back Role
		if err := json.Unmarshal(b, &back); err != nil || back != r {
			t.Errorf("JSON round trip of %s: got %s (%s) %v, want %s", name, b, back, err, name)
		}
	}
	for _, bad := range []string{"", "Viewer", "admin", "operators"} {
		if r, err := ParseRole(bad); err == nil {
			t.Errorf("ParseRole(%q): got %s, want an error", bad, r)
		}
	}
}

func TestRequireNoneIsAMistake(t *testing.T) {
	a, err := New(Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Require(None, ...): got no panic, want one")
		}
	}()
	a.Require(None, http.NotFoundHandler())
}

// TestRequireWithoutMiddleware checks that a handler wrapped in Require
// but served without Middleware fails closed.
func TestRequireWithoutMiddleware(t *testing.T) {
	a, err := New(Config{Anonymous: Viewer}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := a.Require(Viewer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("handler called without a principal")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", readPath, nil))
	if rec.Code != 401 {
		t.Errorf("got %d, want 401", rec.Code)
	}
	// NewContext is how handlers are tested alone.
	rec = httptest.NewRecorder()
	ok := a.Require(Operator, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	ok.ServeHTTP(rec, httptest.NewRequest("POST", operatorPath, nil).WithContext(NewContext(context.Background(), Principal{Name: "kim", Role: Operator, Via: ViaSession})))
	if rec.Code != 204 {
		t.Errorf("with a principal in the context: got %d, want 204", rec.Code)
	}
}

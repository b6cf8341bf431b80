package auth

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLoginAnswerAndCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[secure], func(t *testing.T) {
			cfg := testConfig(t)
			cfg.SecureCookie = secure
			e := newEnv(t, cfg)
			rec := e.do(t, req{method: "POST", path: LoginPath, body: loginBody("lee", leePassword)})
			if rec.Code != 200 {
				t.Fatalf("got %d %s, want 200", rec.Code, rec.Body)
			}
			var resp LoginResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			wantExpires := e.clock.now().Add(time.Hour)
			if resp.Name != "lee" || resp.Role != Engineer || !resp.Expires.Equal(wantExpires) || len(resp.CSRFToken) < 40 {
				t.Errorf("got %+v, want lee, engineer, expires %s and a CSRF token", resp, wantExpires)
			}
			cookies := rec.Result().Cookies()
			if len(cookies) != 1 {
				t.Fatalf("got %d cookies, want 1", len(cookies))
			}
			c := cookies[0]
			wantName := map[bool]string{false: "facgw_session", true: "__Host-facgw_session"}[secure]
			checks := []struct {
				what      string
				got, want any
			}{
				{"name", c.Name, wantName},
				{"HttpOnly", c.HttpOnly, true},
				{"Secure", c.Secure, secure},
				{"SameSite", c.SameSite, http.SameSiteStrictMode},
				{"Path", c.Path, "/"},
				{"Domain", c.Domain, ""},
				{"Max-Age", c.MaxAge, 3600},
				{"id length (32 bytes, base64url)", len(c.Value), 43},
				{"CSRF token differs from the id", resp.CSRFToken != c.Value, true},
				{"Cache-Control", rec.Header().Get("Cache-Control"), "no-store"},
			}
			for _, ch := range checks {
				if ch.got != ch.want {
					t.Errorf("cookie %s: got %v, want %v", ch.what, ch.got, ch.want)
				}
			}
			if got := e.log.lines("auth: login", "user=lee", "role=engineer", "remote=192.0.2.1:1234"); len(got) != 1 {
				t.Errorf("got %d login log lines, want 1:\n%s", len(got), e.log)
			}
			e.log.assertNoSecrets(t, c.Value, resp.CSRFToken)
		})
	}
}

func TestLoginRefusals(t *testing.T) {
	e := newEnv(t, testConfig(t))
	tests := []struct {
		name, body, contentType string
		want                    int
		wantError               string
	}{
		{"wrong password", loginBody("kim", leePassword), "", 401, "wrong name or password"},
		{"unknown user", loginBody("nobody", kimPassword), "", 401, "wrong name or password"},
		{"password with bytes beyond what bcrypt reads", loginBody("kim", kimPassword+strings.Repeat("x", 80)), "", 401, "wrong name or password"},
		{"not JSON", "kim:" + kimPassword, "", 400, `login wants a JSON body {"name": ..., "password": ...}`},
		{"unknown field", `{"name":"kim","password":"x","role":"engineer"}`, "", 400, `login wants a JSON body {"name": ..., "password": ...}`},
		{"two documents", loginBody("kim", kimPassword) + loginBody("kim", kimPassword), "", 400, `login wants a JSON body {"name": ..., "password": ...}`},
		{"no password", `{"name":"kim"}`, "", 400, "login needs a name and a password"},
		{"huge body", `{"name":"kim","password":"` + strings.Repeat("x", 5000) + `"}`, "", 413, "login body too large"},
		{"no content type", loginBody("kim", kimPassword), "-", 415, "login wants Content-Type: application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req{method: "POST", path: LoginPath, body: tt.body, remote: "198.51.100.7:4000"}
			if tt.contentType == "-" {
				r.header = map[string]string{"Content-Type": ""}
			}
			rec := e.do(t, r)
			if rec.Code != tt.want {
				t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, tt.want)
			}
			if got := errorBody(t, rec); got != tt.wantError {
				t.Errorf("got error %q, want %q", got, tt.wantError)
			}
			if len(rec.Result().Cookies()) != 0 {
				t.Errorf("got cookies %v, want none", rec.Result().Cookies())
			}
		})
	}
	if e.a.Sessions() != 0 {
		t.Errorf("got %d sessions, want 0", e.a.Sessions())
	}
	// Each failure is logged with the name, the address and the reason;
	// the answer was the same for both.
	for _, want := range [][]string{
		{"authentication failed", "user=kim", "remote=198.51.100.7:4000", `reason="wrong password"`},
		{"authentication failed", "user=nobody", "remote=198.51.100.7:4000", `reason="unknown user"`},
	} {
		if got := e.log.lines(want...); len(got) == 0 {
			t.Errorf("got no log line with %v:\n%s", want, e.log)
		}
	}
	e.log.assertNoSecrets(t)
}

func TestLogout(t *testing.T) {
	e := newEnv(t, testConfig(t))
	kim := e.login(t, "kim", kimPassword)
	lee := e.login(t, "lee", leePassword)

	if rec := e.do(t, req{method: "POST", path: LogoutPath, sess: kim, csrf: "-"}); rec.Code != 403 {
		t.Fatalf("logout without CSRF token: got %d, want 403", rec.Code)
	}
	if rec := e.do(t, req{method: "POST", path: operatorPath, sess: kim}); rec.Code != 200 {
		t.Fatalf("after a refused logout the session should still work: got %d", rec.Code)
	}
	rec := e.do(t, req{method: "POST", path: LogoutPath, sess: kim})
	if rec.Code != 204 {
		t.Fatalf("logout: got %d %s, want 204", rec.Code, rec.Body)
	}
	if c := rec.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 || c[0].Value != "" || c[0].Name != kim.cookie.Name {
		t.Errorf("logout cookie: got %v, want %s cleared (Max-Age<0)", c, kim.cookie.Name)
	}
	tests := []struct {
		name string
		r    req
		want int
	}{
		{"action with the ended session", req{method: "POST", path: operatorPath, sess: kim}, 401},
		{"read with the ended session is anonymous", req{method: "GET", path: readPath, sess: kim}, 200},
		{"other sessions live on", req{method: "POST", path: engineerPath, sess: lee}, 200},
		{"logout again is harmless", req{method: "POST", path: LogoutPath, sess: kim}, 204},
		{"logout without a session", req{method: "POST", path: LogoutPath}, 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rec := e.do(t, tt.r); rec.Code != tt.want {
				t.Errorf("got %d %s, want %d", rec.Code, rec.Body, tt.want)
			}
		})
	}
	if rec := e.do(t, req{method: "GET", path: WhoamiPath, sess: kim}); !strings.Contains(rec.Body.String(), `"via":"anonymous"`) {
		t.Errorf("whoami after logout: got %s, want anonymous", rec.Body)
	}
	if got := e.a.Sessions(); got != 1 {
		t.Errorf("got %d sessions, want 1 (lee's)", got)
	}
	if got := e.log.lines("auth: logout", "user=kim"); len(got) != 1 {
		t.Errorf("got %d logout log lines, want 1:\n%s", len(got), e.log)
	}
	e.log.assertNoSecrets(t, kim.cookie.Value, kim.csrf, lee.cookie.Value, lee.csrf)
}

func TestSessionExpiry(t *testing.T) {
	cfg := testConfig(t)
	cfg.SessionTTL = 0 // the default, 12h
	e := newEnv(t, cfg)
	kim := e.login(t, "kim", kimPassword)
	steps := []struct {
		advance time.Duration
		want    int
	}{
		{0, 200},
		{DefaultSessionTTL - time.Second, 200},
		{time.Second, 401},
		// An expired session does not come back, whatever the clock does.
		{-time.Minute, 401},
	}
	for _, s := range steps {
		e.clock.advance(s.advance)
		at := e.clock.now().Sub(newClock().now())
		if rec := e.do(t, req{method: "POST", path: operatorPath, sess: kim}); rec.Code != s.want {
			t.Errorf("%s after login: got %d, want %d", at, rec.Code, s.want)
		}
	}
	if got := e.a.Sessions(); got != 0 {
		t.Errorf("got %d sessions, want the expired one gone", got)
	}
	// A new login sweeps out expired sessions it never saw used.
	e.login(t, "lee", leePassword)
	e.clock.advance(DefaultSessionTTL)
	e.login(t, "park", parkPassword)
	e.a.mu.Lock()
	n := len(e.a.sessions)
	e.a.mu.Unlock()
	if n != 1 {
		t.Errorf("got %d stored sessions, want 1: expired ones swept at login", n)
	}
}

// TestLoginReplacesSession checks that logging in again ends the session the
// browser held (no session fixation) and gives a new id.
func TestLoginReplacesSession(t *testing.T) {
	e := newEnv(t, testConfig(t))
	first := e.login(t, "kim", kimPassword)
	rec := e.do(t, req{method: "POST", path: LoginPath, body: loginBody("kim", kimPassword), sess: first})
	if rec.Code != 200 {
		t.Fatalf("second login: got %d", rec.Code)
	}
	second := rec.Result().Cookies()[0]
	if second.Value == first.cookie.Value {
		t.Errorf("got the same session id twice, want a new one")
	}
	if rec := e.do(t, req{method: "POST", path: operatorPath, sess: first}); rec.Code != 401 {
		t.Errorf("old session after a new login: got %d, want 401", rec.Code)
	}
	if got := e.a.Sessions(); got != 1 {
		t.Errorf("got %d sessions, want 1", got)
	}
}

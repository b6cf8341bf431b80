package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"
)

// session is one login. Only the SHA-256 of its id is kept, as the map
// key, so a map lookup's timing cannot be used to guess ids byte by byte.
type session struct {
	name    string
	role    Role
	csrf    string
	expires time.Time
}

func (s *session) csrfOK(got string) bool {
	// Hash both sides so the comparison does not leak the length either.
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(s.csrf))
	return got != "" && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// randomID returns 32 random bytes, base64url encoded.
func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionFrom returns the live session named by the request's cookie, or
// nil. An expired session is deleted on the way.
func (a *Authenticator) sessionFrom(r *http.Request) *session {
	c, err := r.Cookie(a.cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	key := sha256.Sum256([]byte(c.Value))
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[key]
	if s == nil {
		return nil
	}
	if !a.now().Before(s.expires) {
		delete(a.sessions, key)
		return nil
	}
	return s
}

// newSession stores a session for the user and returns its id.
func (a *Authenticator) newSession(u User) (string, *session) {
	id := randomID()
	now := a.now()
	s := &session{name: u.Name, role: u.Role, csrf: randomID(), expires: now.Add(a.ttl)}
	a.mu.Lock()
	defer a.mu.Unlock()
	// Logins are rare, so sweeping expired sessions here keeps the map
	// small without a goroutine.
	for k, old := range a.sessions {
		if !now.Before(old.expires) {
			delete(a.sessions, k)
		}
	}
	a.sessions[sha256.Sum256([]byte(id))] = s
	return id, s
}

// dropSession deletes the session named by the request's cookie, if any.
func (a *Authenticator) dropSession(r *http.Request) {
	c, err := r.Cookie(a.cookieName)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, sha256.Sum256([]byte(c.Value)))
}

// Sessions returns the number of live sessions.
func (a *Authenticator) Sessions() int {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, s := range a.sessions {
		if now.Before(s.expires) {
			n++
		}
	}
	return n
}

func (a *Authenticator) setCookie(w http.ResponseWriter, id string, expires time.Time) {
	c := &http.Cookie{
		Name:     a.cookieName,
		Value:    id,
		Path:     "/",
		HttpOnly: true,
		Secure:   a.secureCookie,
		SameSite: http.SameSiteStrictMode,
	}
	if id == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires.UTC()
		c.MaxAge = int(expires.Sub(a.now()) / time.Second)
	}
	http.SetCookie(w, c)
}

// Routes registers POST LoginPath, POST LogoutPath and GET WhoamiPath on
// mux. Serve mux behind Middleware: whoami reads the principal it stores,
// and its CSRF and origin checks protect logout.
//
// Login takes {"name": ..., "password": ...} as application/json, sets the
// session cookie and answers {"name", "role", "csrf_token", "expires"};
// a wrong name or password is 401 (the same answer for both), a client
// address or name locked out after failed logins is 429 with Retry-After.
// Logout deletes the session and the cookie and answers 204. Whoami
// answers the principal {"name", "role", "via"}, with "csrf_token" and
// "expires" for a session (so a reloaded page gets its CSRF token back:
// another origin cannot read the answer), or 401 when there is none.
func (a *Authenticator) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+LoginPath, a.login)
	mux.HandleFunc("POST "+LogoutPath, a.logout)
	mux.HandleFunc("GET "+WhoamiPath, a.whoami)
}

// LoginRequest is the body of a login.
type LoginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// LoginResponse is the answer to a successful login.
type LoginResponse struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CSRFToken string    `json:"csrf_token"`
	Expires   time.Time `json:"expires"`
}

// WhoamiResponse is the answer of whoami.
type WhoamiResponse struct {
	Principal
	CSRFToken string     `json:"csrf_token,omitempty"`
	Expires   *time.Time `json:"expires,omitempty"`
}

// maxLoginBody bounds a login body: a name and a password fit easily.
const maxLoginBody = 4 << 10

func (a *Authenticator) login(w http.ResponseWriter, r *http.Request) {
	// Also checked by Middleware; repeated so that login is never open to
	// login CSRF (logging a victim in as the attacker) when served alone.
	if err := a.cop.Check(r); err != nil {
		a.log.Warn("auth: cross-origin login refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"))
		writeError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	// A cross-site HTML form cannot send JSON without a CORS preflight,
	// which this server never grants: one more wall against login CSRF.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "login wants Content-Type: application/json")
		return
	}
	var req LoginRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.Decode(&struct{}{}) != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "login body too large")
			return
		}
		writeError(w, http.StatusBadRequest, `login wants a JSON body {"name": ..., "password": ...}`)
		return
	}
	if req.Name == "" || req.Password == "" {
		writeError(w, http.StatusBadRequest, "login needs a name and a password")
		return
	}
	// Names are logged; cap what an attacker can write into the log.
	logName := req.Name
	if len(logName) > 64 {
		logName = logName[:64] + "..."
	}
	ipKey, uKey := clientKey(r.RemoteAddr), nameKey(req.Name)
	if a.refuseLocked(w, r, logName, ipKey, uKey) {
		return
	}
	select {
	case a.bcryptSlots <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	// Concurrent attempts all passed the check above before any failed;
	// checking again once a slot is ours bounds how many get past a
	// lockout to the number of slots.
	if a.refuseLocked(w, r, logName, ipKey, uKey) {
		<-a.bcryptSlots
		return
	}
	// The slot is held until the outcome is recorded, so an attempt
	// waiting for it sees this one's failure when it checks again.
	defer func() { <-a.bcryptSlots }()
	u, known := a.users[req.Name]
	hash := a.dummy()
	if known {
		hash = []byte(u.PasswordHash)
	}
	if !checkPassword(hash, req.Password) || !known {
		reason := "wrong password"
		if !known {
			reason = "unknown user"
		}
		a.logFailure(r, logName, reason, ipKey, uKey)
		a.unauthorized(w, "wrong name or password")
		return
	}
	a.limits.reset(ipKey)
	a.limits.reset(uKey)
	// A fresh id on every login, and the old session gone: a session id
	// planted before login (session fixation) is worth nothing.
	a.dropSession(r)
	id, s := a.newSession(u)
	a.setCookie(w, id, s.expires)
	a.log.Info("auth: login", "user", u.Name, "role", u.Role, "remote", r.RemoteAddr, "expires", s.expires)
	writeJSON(w, http.StatusOK, LoginResponse{Name: u.Name, Role: u.Role, CSRFToken: s.csrf, Expires: s.expires.UTC()})
}

// refuseLocked answers 429 and returns true when any of keys is locked out.
func (a *Authenticator) refuseLocked(w http.ResponseWriter, r *http.Request, user string, keys ...string) bool {
	var wait time.Duration
	for _, k := range keys {
		if d := a.limits.lockedFor(k); d > 0 {
			a.logRefused(k, user, r, d)
			wait = max(wait, d)
		}
	}
	if wait == 0 {
		return false
	}
	tooMany(w, wait)
	return true
}

func (a *Authenticator) logout(w http.ResponseWriter, r *http.Request) {
	if s := a.sessionFrom(r); s != nil {
		// Middleware checked this already; logout checks again so that a
		// cross-site request cannot log a user out even where it is
		// served without Middleware.
		if !s.csrfOK(r.Header.Get(CSRFHeader)) {
			a.log.Warn("auth: CSRF token missing or wrong", "user", s.name, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			writeError(w, http.StatusForbidden, "missing or wrong "+CSRFHeader+" header")
			return
		}
		a.dropSession(r)
		a.log.Info("auth: logout", "user", s.name, "remote", r.RemoteAddr)
	}
	// Without a live session there is nothing to end; the answer is the
	// same, so a page can always log out cleanly.
	a.setCookie(w, "", time.Time{})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (a *Authenticator) whoami(w http.ResponseWriter, r *http.Request) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		a.unauthorized(w, "not logged in")
		return
	}
	resp := WhoamiResponse{Principal: p}
	if s, ok := r.Context().Value(sessionKey{}).(*session); ok {
		exp := s.expires.UTC()
		resp.CSRFToken, resp.Expires = s.csrf, &exp
	}
	writeJSON(w, http.StatusOK, resp)
}

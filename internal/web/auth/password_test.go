package auth

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashPassword(t *testing.T) {
	t.Parallel() // bcrypt at cost 12 takes seconds under -race
	tests := []struct {
		name, pw, wantErr string
	}{
		{"too short", "short7!", "auth: password must be at least 8 characters"},
		{"too short in characters, long in bytes", "가나다라마바사", "auth: password must be at least 8 characters"},
		{"too long for bcrypt", strings.Repeat("x", 73), "auth: password must be at most 72 bytes (bcrypt ignores the rest)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := HashPassword(tt.pw)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("got %q, %v, want error %q", h, err, tt.wantErr)
			}
		})
	}
	// One real hash at the default cost (slow under -race: one is enough).
	h, err := HashPassword(kimPassword)
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := CheckHash(h); err != nil || cost != DefaultHashCost {
		t.Errorf("CheckHash(HashPassword(...)): got cost %d, %v, want %d", cost, err, DefaultHashCost)
	}
	// Salted: the same password never hashes the same twice.
	a, _ := hashPassword(kimPassword, bcrypt.MinCost)
	b, _ := hashPassword(kimPassword, bcrypt.MinCost)
	if a == b {
		t.Errorf("two hashes of one password are equal: no salt")
	}
}

func TestCheckPassword(t *testing.T) {
	h72 := strings.Repeat("p", 72)
	hash, err := hashPassword(h72, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, pw string
		want     bool
	}{
		{"right", h72, true},
		{"wrong", strings.Repeat("p", 71), false},
		// bcrypt reads 72 bytes: the extra byte would match without the
		// length check.
		{"right plus more", h72 + "x", false},
	}
	for _, tt := range tests {
		if got := checkPassword([]byte(hash), tt.pw); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCheckHash(t *testing.T) {
	cheap := testHash(t, kimPassword) // cost 4
	tests := []struct {
		name, hash, wantErr string
		wantCost            int
	}{
		{"cost 4", cheap, "password_hash has bcrypt cost 4, want at least 10; make a new one with facgw passwd", 4},
		{"cost 10", strings.Replace(cheap, "$04$", "$10$", 1), "", 10},
		{"cost 31", strings.Replace(cheap, "$04$", "$31$", 1), "", 31},
		{"cost 32", strings.Replace(cheap, "$04$", "$32$", 1), "password_hash is not a valid bcrypt hash: crypto/bcrypt: cost 32 is outside allowed inclusive range 4..31", 0},
		{"$2b$", strings.Replace(strings.Replace(cheap, "$2a$", "$2b$", 1), "$04$", "$12$", 1), "", 12},
		{"$2y$", strings.Replace(strings.Replace(cheap, "$2a$", "$2y$", 1), "$04$", "$12$", 1), "", 12},
		{"$1$ (md5crypt)", "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", "password_hash is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters); make one with facgw passwd", 0},
		{"truncated", cheap[:59], "password_hash is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters); make one with facgw passwd", 0},
		{"plain password", kimPassword, "password_hash is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters); make one with facgw passwd", 0},
		{"empty", "", "password_hash is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters); make one with facgw passwd", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cost, err := CheckHash(tt.hash)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr || cost != tt.wantCost {
				t.Errorf("got %d, %q, want %d, %q", cost, gotErr, tt.wantCost, tt.wantErr)
			}
		})
	}
}

// TestRealCost logs in against a hash of the cost the config demands, with
// New's own minimum (the other tests lower it for speed).
func TestRealCost(t *testing.T) {
	t.Parallel() // bcrypt at cost 10 takes a second under -race
	h, err := hashPassword(leePassword, MinHashCost)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Config{Users: []User{{Name: "lee", Role: Engineer, PasswordHash: h}}, minHashCost: MinHashCost})
	if rec := e.attempt(t, "192.0.2.1:1", "lee", leePassword); rec.Code != 200 {
		t.Errorf("login: got %d %s, want 200", rec.Code, rec.Body)
	}
}

// TestDummyCost checks that an unknown name is compared against a dummy
// hash as dear as the dearest user's, so it takes no less time than a
// known name, without timing anything.
func TestDummyCost(t *testing.T) {
	dear, err := hashPassword(leePassword, bcrypt.MinCost+1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t) // cost 4
	cfg.Users = append(cfg.Users, User{Name: "dear", Role: Viewer, PasswordHash: dear})
	e := newEnv(t, cfg)
	if rec := e.attempt(t, "192.0.2.1:1", "nobody", leePassword); rec.Code != 401 {
		t.Errorf("unknown name: got %d, want 401", rec.Code)
	}
	if cost, err := bcrypt.Cost(e.a.dummy()); err != nil || cost != bcrypt.MinCost+1 {
		t.Errorf("dummy hash: got cost %d, %v, want %d (the users' highest)", cost, err, bcrypt.MinCost+1)
	}
}

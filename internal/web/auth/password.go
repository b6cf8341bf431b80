package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Password hashing parameters.
const (
	// MinHashCost is the lowest bcrypt cost accepted in the config: below
	// it a stolen config file's hashes are cheap to crack.
	MinHashCost = 10
	// DefaultHashCost is the cost HashPassword uses: about a quarter of a
	// second on an appliance CPU, paid once per login.
	DefaultHashCost = 12
	// MinPasswordLength and MaxPasswordLength bound what HashPassword
	// accepts; bcrypt reads no more than 72 bytes, so a longer password
	// would silently be cut.
	MinPasswordLength = 8
	MaxPasswordLength = 72
)

// bcryptRE is the whole form of a bcrypt hash; bcrypt.Cost alone reads only
// the prefix, and a truncated hash would then fail every login instead of
// the config check.
var bcryptRE = regexp.MustCompile(`^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$`)

// HashPassword returns the bcrypt hash of pw to put in the config as a
// user's password_hash.
func HashPassword(pw string) (string, error) {
	switch {
	case utf8.RuneCountInString(pw) < MinPasswordLength:
		return "", fmt.Errorf("auth: password must be at least %d characters", MinPasswordLength)
	case len(pw) > MaxPasswordLength:
		return "", fmt.Errorf("auth: password must be at most %d bytes (bcrypt ignores the rest)", MaxPasswordLength)
	}
	return hashPassword(pw, DefaultHashCost)
}

func hashPassword(pw string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return string(h), nil
}

// CheckHash checks that hash is a bcrypt hash of cost MinHashCost or more
// and returns its cost. The error names the field, password_hash, without
// a component prefix, for the config loader to locate; it never quotes the
// hash.
func CheckHash(hash string) (cost int, err error) { return checkHash(hash, MinHashCost) }

func checkHash(hash string, minCost int) (cost int, err error) {
	if !bcryptRE.MatchString(hash) {
		return 0, errors.New("password_hash is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters); make one with facgw passwd")
	}
	cost, err = bcrypt.Cost([]byte(hash))
	if err != nil {
		return 0, fmt.Errorf("password_hash is not a valid bcrypt hash: %w", err)
	}
	if cost < minCost {
		return cost, fmt.Errorf("password_hash has bcrypt cost %d, want at least %d; make a new one with facgw passwd", cost, minCost)
	}
	return cost, nil
}

// dummyHash hashes a random password nobody knows at the given cost.
func dummyHash(cost int) []byte {
	pw := make([]byte, 32)
	_, _ = rand.Read(pw) // crypto/rand.Read never fails (Go 1.24+).
	h, err := bcrypt.GenerateFromPassword([]byte(fmt.Sprintf("%x", pw)), cost)
	if err != nil {
		// Only an invalid cost fails, and costs come from CheckHash.
		panic("auth: dummy hash: " + err.Error())
	}
	return h
}

// checkPassword compares pw with hash (the dummy when the user is unknown)
// and reports whether they match. A password longer than bcrypt reads is
// compared all the same, for even timing, and never matches: HashPassword
// refuses such passwords, so its first 72 bytes matching means nothing.
func checkPassword(hash []byte, pw string) bool {
	err := bcrypt.CompareHashAndPassword(hash, []byte(pw))
	return err == nil && len(pw) <= MaxPasswordLength
}

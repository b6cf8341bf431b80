package influx

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSinkReconfigure: a sink whose database refuses writes (wrong token)
// is given new settings while it runs; what waited in its outbox goes to
// the database as now configured, with the new token and bucket, and the
// old one gets nothing more. Bad settings change nothing.
func TestSinkReconfigure(t *testing.T) {
	old, next := newFakeDB(t), newFakeDB(t)
	old.setAnswer(func(string) int { return http.StatusUnauthorized })
	cfg := testConfig(old.srv.URL, t.TempDir())
	s := startSink(t, cfg)
	for i := range 5 {
		if err := s.Write("ups", poll("ups-1", t0.Add(time.Duration(i)*time.Second), float64(90+i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a refused write", func() bool { return s.Stats().Failures > 0 })
	bad := cfg
	bad.URL = "ftp://127.0.0.1:1"
	if err := s.Reconfigure(bad); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("reconfigure with an ftp url: got %v, want refused", err)
	}
	cfg.URL, cfg.Token, cfg.Bucket = next.srv.URL, "new-token", "history2"
	if err := s.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the 5 polls in the new database", func() bool { return len(next.acceptedLines()) == 5 })
	for _, r := range next.accepted() {
		if r.auth != "Token new-token" || r.bucket != "history2" {
			t.Errorf("write to the new database: auth %q bucket %q, want the new token and bucket", r.auth, r.bucket)
		}
	}
	if n := len(old.accepted()); n != 0 {
		t.Errorf("old database accepted %d writes", n)
	}
	if d := s.Stats().Outbox.Depth; d != 0 {
		t.Errorf("outbox depth %d after the writes, want 0", d)
	}
}

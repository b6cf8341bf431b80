package web

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeLoadshed records the actions; a restore of policy "holding" is
// refused as the controller refuses it while the trigger holds.
type fakeLoadshed struct{ calls []string }

func (f *fakeLoadshed) LoadshedDoc() any {
	return map[string]any{"policies": []any{}, "calls": f.calls}
}

func (f *fakeLoadshed) Arm(policy, by, reason string, d time.Duration) error {
	f.calls = append(f.calls, fmt.Sprintf("arm %s by %s: %s for %s", policy, by, reason, d))
	return nil
}

func (f *fakeLoadshed) Disarm(policy, by, reason string) error {
	f.calls = append(f.calls, fmt.Sprintf("disarm %s by %s: %s", policy, by, reason))
	return nil
}

func (f *fakeLoadshed) Inhibit(policy, by, reason string, on bool) error {
	f.calls = append(f.calls, fmt.Sprintf("inhibit %s by %s: %s %t", policy, by, reason, on))
	return nil
}

func (f *fakeLoadshed) Restore(policy, by, reason string) error {
	switch {
	case policy == "nope":
		return fmt.Errorf("%w: no policy %q", ErrNotFound, policy)
	case strings.TrimSpace(reason) == "":
		return fmt.Errorf("%w: a restore needs a reason", ErrInvalid)
	case policy == "holding":
		return fmt.Errorf("%w: restore holding: the trigger still holds", ErrConflict)
	}
	f.calls = append(f.calls, fmt.Sprintf("restore %s by %s: %s", policy, by, reason))
	return nil
}

func TestLoadshedRestoreEndpoint(t *testing.T) {
	tests := []struct {
		name, path, role, body string
		want                   int
		contains               string
	}{
		{"engineer restores", "/api/v1/loadshed/utility-failure/restore", RoleEngineer, `{"reason":"mains back"}`, 202, `restore utility-failure by user-engineer: mains back`},
		{"operator cannot", "/api/v1/loadshed/utility-failure/restore", RoleOperator, `{"reason":"mains back"}`, 403, "needs engineer"},
		{"anonymous cannot", "/api/v1/loadshed/utility-failure/restore", "", `{"reason":"mains back"}`, 401, ""},
		{"reason required", "/api/v1/loadshed/utility-failure/restore", RoleEngineer, `{}`, 400, "needs a reason"},
		{"no body", "/api/v1/loadshed/utility-failure/restore", RoleEngineer, ``, 400, "bad request body"},
		{"unknown field", "/api/v1/loadshed/utility-failure/restore", RoleEngineer, `{"reason":"x","force":true}`, 400, "unknown field"},
		{"arming fields", "/api/v1/loadshed/utility-failure/restore", RoleEngineer, `{"reason":"x","duration":"1h"}`, 400, "restore takes only a reason"},
		{"trigger holds", "/api/v1/loadshed/holding/restore", RoleEngineer, `{"reason":"x"}`, 409, "the trigger still holds"},
		{"unknown policy", "/api/v1/loadshed/nope/restore", RoleEngineer, `{"reason":"x"}`, 404, `no policy \"nope\"`},
		{"arm still 200", "/api/v1/loadshed/utility-failure/arm", RoleEngineer, `{"reason":"x","duration":"1h"}`, 200, "arm utility-failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl := &fakeLoadshed{}
			mux := http.NewServeMux()
			LoadshedRoutes(mux, fl, roleHeader())
			req := httptest.NewRequest("POST", tt.path, strings.NewReader(tt.body))
			if tt.role != "" {
				req.Header.Set("X-Test-Role", tt.role)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tt.want || !strings.Contains(string(body), tt.contains) {
				t.Errorf("POST %s as %q: got %d %s, want %d containing %q", tt.path, tt.role, rec.Code, body, tt.want, tt.contains)
			}
			if tt.want >= 400 && len(fl.calls) != 0 {
				t.Errorf("calls after a refused request: got %v, want none", fl.calls)
			}
		})
	}
}

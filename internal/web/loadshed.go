package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrConflict is what a load-shed action the controller's state does not
// allow now wraps (409): a restore while the trigger holds, or with
// nothing shed. The message says why.
var ErrConflict = errors.New("conflict")

// Loadshed is the gateway's load-shed controller as the HTTP layer sees
// it. Every method must be safe for concurrent use. Errors wrap
// ErrNotFound (no such policy), ErrInvalid (a bad request) or ErrConflict
// (not now, and why) where those apply.
type Loadshed interface {
	// LoadshedDoc is the body of GET /api/v1/loadshed: policies, armed
	// state, stage progress and recent audit records.
	LoadshedDoc() any
	// Arm arms a policy on behalf of by, for d (0: the configured
	// maximum).
	Arm(policy, by, reason string, d time.Duration) error
	// Disarm disarms a policy.
	Disarm(policy, by, reason string) error
	// Inhibit sets or releases a policy's inhibit switch.
	Inhibit(policy, by, reason string, on bool) error
	// Restore starts switching back on the loads the policy's last shed
	// switched off; it returns once the restore is recorded, the loads
	// go back on stage by stage after it. ErrConflict while the trigger
	// holds or when nothing is off.
	Restore(policy, by, reason string) error
}

// LoadshedRequest is the body of the POST endpoints.
type LoadshedRequest struct {
	// Reason is required: the audit log says why.
	Reason string `json:"reason"`
	// Duration of an arming ("2h"); empty means the configured maximum.
	Duration string `json:"duration,omitempty"`
	// On sets (true) or releases (false) the inhibit switch.
	On *bool `json:"on,omitempty"`
}

// LoadshedRoutes adds GET /api/v1/loadshed (viewer) and POST
// /api/v1/loadshed/{policy}/arm, /disarm, /inhibit and /restore (engineer:
// arming an automatic power cut, or switching loads back on after one, is
// an engineering decision, not an operator's).
func LoadshedRoutes(mux *http.ServeMux, ls Loadshed, opts Options) {
	mux.Handle("GET /api/v1/loadshed", opts.require(RoleViewer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, ls.LoadshedDoc())
	})))
	// post adds an action; status is the success status with the new
	// state as the body (202 for a restore, which goes on after it).
	post := func(action string, status int, do func(policy, by string, req LoadshedRequest) error) {
		mux.Handle("POST /api/v1/loadshed/{policy}/"+action, opts.require(RoleEngineer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req LoadshedRequest
			if !readJSON(w, r, &req) {
				return
			}
			if err := do(r.PathValue("policy"), opts.who(r), req); err != nil {
				if errors.Is(err, ErrConflict) {
					writeError(w, http.StatusConflict, "%v", err)
					return
				}
				writeErr(w, err)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(status)
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(ls.LoadshedDoc())
		})))
	}
	post("arm", http.StatusOK, func(policy, by string, req LoadshedRequest) error {
		var d time.Duration
		if req.Duration != "" {
			var err error
			if d, err = time.ParseDuration(req.Duration); err != nil {
				return invalid("duration %q: %v", req.Duration, err)
			}
		}
		return ls.Arm(policy, by, req.Reason, d)
	})
	post("disarm", http.StatusOK, func(policy, by string, req LoadshedRequest) error {
		return ls.Disarm(policy, by, req.Reason)
	})
	post("inhibit", http.StatusOK, func(policy, by string, req LoadshedRequest) error {
		if req.On == nil {
			return invalid("inhibit needs \"on\": true or false")
		}
		return ls.Inhibit(policy, by, req.Reason, *req.On)
	})
	post("restore", http.StatusAccepted, func(policy, by string, req LoadshedRequest) error {
		if req.Duration != "" || req.On != nil {
			return invalid("restore takes only a reason")
		}
		return ls.Restore(policy, by, req.Reason)
	})
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

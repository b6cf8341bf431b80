package web

import (
	"encoding/json"
	"net/http"
)

// Reloader is the optional ability of a Source to reload its
// configuration at runtime (issue 8). A Source that has it gets
// POST /api/v1/reload (engineer) and a "reload" object in
// /api/v1/state. Both methods must be safe for concurrent use.
type Reloader interface {
	// ReloadConfig re-reads the configuration the Source was started
	// from and applies what changed. The outcome is JSON-encodable. A
	// non-nil error means the new configuration was refused and the old
	// one keeps running; the outcome then says why, with every located
	// message.
	ReloadConfig() (outcome any, err error)
	// ReloadStatus describes the last reload attempt (nil before the
	// first) and which changes wait for a restart.
	ReloadStatus() any
}

// reloadRoutes adds POST /api/v1/reload when src is a Reloader. Reloading
// is an engineer's action: it can stop polling a device or drop an alert
// rule. A refused configuration answers 422 with the error and the
// outcome, so a deploy script can tell it from a transport failure.
func reloadRoutes(mux *http.ServeMux, src Source, opts Options) {
	r, ok := src.(Reloader)
	if !ok {
		return
	}
	mux.Handle("POST /api/v1/reload", opts.require(RoleEngineer, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		opts.logger().Info("configuration reload requested", "by", opts.who(req))
		out, err := r.ReloadConfig()
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusUnprocessableEntity)
			b, _ := json.MarshalIndent(struct {
				Error  string `json:"error"`
				Result any    `json:"result"`
			}{err.Error(), out}, "", "  ")
			w.Write(append(b, '\n'))
			return
		}
		writeJSON(w, out)
	})))
}

// reloadStatus is the state endpoint's reload object, nil when src cannot
// reload.
func reloadStatus(src Source) any {
	if r, ok := src.(Reloader); ok {
		return r.ReloadStatus()
	}
	return nil
}

package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

// Errors an Alerting implementation wraps so the server answers with the
// right status.
var (
	// ErrNotFound: no alert or silence with that id (404).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request is wrong (400), the message says how.
	ErrInvalid = errors.New("invalid request")
)

// Alerting is the gateway's alert state and the operator actions on it. Every
// method must be safe for concurrent use.
type Alerting interface {
	AlertsDoc() AlertsDoc
	// Ack acknowledges a firing episode on behalf of by.
	Ack(id, by, comment string) (alert.Event, error)
	// AddSilence silences the alerts the request matches until it expires.
	AddSilence(req SilenceRequest, by string) (SilenceDoc, error)
	// RemoveSilence ends a silence early.
	RemoveSilence(id, by string) error
}

// AlertFeed is what the stream prefers for telling every alert event
// once, in order (an Alerting may implement it): the events recorded
// after seq, oldest first, at most max; and the latest seq. Without it
// the stream diffs AlertsDoc().Recent each tick, which misses events when
// more than Recent holds arrive within one tick.
type AlertFeed interface {
	EventsSince(seq uint64, max int) []alert.Event
	LastSeq() uint64
}

// AlertsDoc is the body of GET /api/v1/alerts.
type AlertsDoc struct {
	// Active are the firing episodes, most severe first, then newest.
	Active []alert.Event `json:"active"`
	// Pending are conditions that hold but have not lasted their rule's
	// "for" yet; they are never delivered.
	Pending []PendingDoc `json:"pending"`
	// Recent are the latest events, newest first.
	Recent   []alert.Event `json:"recent"`
	Silences []SilenceDoc  `json:"silences"`
	// Paths are the delivery paths with their health.
	Paths []PathDoc `json:"paths"`
	// AllPathsDown is set when no delivery path works: alerts are kept in
	// the ledger until one does.
	AllPathsDown bool `json:"all_paths_down"`
}

// PendingDoc is a rule instance whose condition holds, waiting out its for.
type PendingDoc struct {
	Rule     string         `json:"rule"`
	Instance string         `json:"instance"`
	Severity alert.Severity `json:"severity"`
	Class    string         `json:"class"`
	Since    time.Time      `json:"since"`
	Summary  string         `json:"summary,omitempty"`
}

// SilenceRequest is the body of POST /api/v1/silences. At least one
// matcher is required.
type SilenceRequest struct {
	Rule   string            `json:"rule,omitempty"` // "pack/name" or "pack/*"
	Device string            `json:"device,omitempty"`
	Group  string            `json:"group,omitempty"`
	Class  string            `json:"class,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Duration such as "2h"; bounded by alerting.max_silence.
	Duration string `json:"duration"`
	Reason   string `json:"reason"`
	// Severity caps what the silence covers (default: the highest severity
	// of the alerts it matches now): a worse alert is never hidden.
	Severity string `json:"severity,omitempty"`
}

// SilenceDoc is a silence as the API shows it.
type SilenceDoc struct {
	ID       string            `json:"id"`
	Rule     string            `json:"rule,omitempty"`
	Device   string            `json:"device,omitempty"`
	Group    string            `json:"group,omitempty"`
	Class    string            `json:"class,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Severity alert.Severity    `json:"severity"`
	Until    time.Time         `json:"until"`
	Reason   string            `json:"reason"`
	By       string            `json:"by"`
	Created  time.Time         `json:"created"`
}

// PathDoc is one alert delivery path's health.
type PathDoc struct {
	Name      string            `json:"name"`
	Kind      string            `json:"kind"` // mqtt, alertmanager, snmp, webhook
	Up        bool              `json:"up"`
	Depth     int               `json:"depth"` // events waiting
	Oldest    time.Time         `json:"oldest,omitzero"`
	LastError string            `json:"last_error,omitempty"`
	LastOK    time.Time         `json:"last_ok,omitzero"`
	DownSince time.Time         `json:"down_since,omitzero"`
	Delivered uint64            `json:"delivered"`
	Failures  uint64            `json:"failures"`
	Detail    map[string]string `json:"detail,omitempty"`
}

// Roles a route needs; Options.Require maps them to the authenticator.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleEngineer = "engineer"
)

func alertRoutes(mux *http.ServeMux, a Alerting, opts Options) {
	read := func(h http.HandlerFunc) http.Handler { return opts.require(RoleViewer, h) }
	operate := func(h http.HandlerFunc) http.Handler { return opts.require(RoleOperator, h) }
	mux.Handle("GET /api/v1/alerts", read(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, a.AlertsDoc())
	}))
	mux.Handle("GET /api/v1/alerts/{id}", read(func(w http.ResponseWriter, r *http.Request) {
		doc := a.AlertsDoc()
		for _, e := range doc.Active {
			if e.ID == r.PathValue("id") {
				writeJSON(w, e)
				return
			}
		}
		for _, e := range doc.Recent {
			if e.ID == r.PathValue("id") {
				writeJSON(w, e)
				return
			}
		}
		writeError(w, http.StatusNotFound, "no alert %q", r.PathValue("id"))
	}))
	mux.Handle("GET /api/v1/paths", read(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, a.AlertsDoc().Paths)
	}))
	mux.Handle("GET /api/v1/silences", read(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, a.AlertsDoc().Silences)
	}))
	mux.Handle("POST /api/v1/alerts/{id}/ack", operate(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Comment string `json:"comment"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		ev, err := a.Ack(r.PathValue("id"), opts.who(r), body.Comment)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, ev)
	}))
	mux.Handle("POST /api/v1/silences", operate(func(w http.ResponseWriter, r *http.Request) {
		var req SilenceRequest
		if !readJSON(w, r, &req) {
			return
		}
		s, err := a.AddSilence(req, opts.who(r))
		if err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
		writeJSON(w, s)
	}))
	mux.Handle("DELETE /api/v1/silences/{id}", operate(func(w http.ResponseWriter, r *http.Request) {
		if err := a.RemoveSilence(r.PathValue("id"), opts.who(r)); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}

// readJSON decodes a small JSON body strictly; it answers 400 itself.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad request body: %v", err)
		return false
	}
	return true
}

func writeErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, "%v", err)
	default:
		writeError(w, http.StatusInternalServerError, "%v", err)
	}
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": fmt.Sprintf(format, args...)})
	w.Write(append(b, '\n'))
}

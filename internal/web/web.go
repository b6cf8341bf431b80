// Package web serves facgw's HTTP surface on the appliance: the JSON API
// under /api/v1 (state, devices, point history, alerts), live updates over
// Server-Sent Events, health checks and the operator dashboard, plain
// HTML, CSS and ES modules embedded in the binary (no CDN, no build step).
// What changes state (acks, silences, demo scenarios) goes through the
// gateway's interfaces behind Options.Require.
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/pipeline"
	"github.com/facgw/facgw/pipeline/outbox"
)

//go:embed static
var static embed.FS

// DeviceInfo is what the gateway knows of a configured device besides its
// points.
type DeviceInfo struct {
	ID        string            `json:"id"`
	Profile   string            `json:"profile"`
	Class     string            `json:"class,omitempty"`
	Firmware  string            `json:"firmware,omitempty"`
	Variant   string            `json:"variant,omitempty"`
	Transport string            `json:"transport"`
	Address   string            `json:"address"`
	Unit      int               `json:"unit"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// Destination is the delivery state of one path out of the gateway (an
// MQTT broker, the history database).
type Destination struct {
	Kind      string        `json:"kind"`
	Name      string        `json:"name"`
	URL       string        `json:"url"`
	Connected bool          `json:"connected"`
	LastError string        `json:"last_error,omitempty"`
	Outbox    outbox.Stats  `json:"outbox"`
	Sent      uint64        `json:"sent"`
	Acked     uint64        `json:"acked"`
	Latency   time.Duration `json:"latency_ns"`
}

// Event is a notification the gateway received (an SNMP trap or inform).
type Event struct {
	Time     time.Time `json:"time"`
	Device   string    `json:"device"`
	Source   string    `json:"source"`
	Kind     string    `json:"kind"`
	Name     string    `json:"name,omitempty"`
	OID      string    `json:"oid"`
	Inform   bool      `json:"inform,omitempty"`
	Repolled bool      `json:"repolled"`
}

// Source gives the server what it shows. Every method must be safe for
// concurrent use.
type Source interface {
	Devices() []DeviceInfo
	Destinations() []Destination
	Events() []Event
	State() *pipeline.State
	PollStats() []pipeline.Stats
	Started() time.Time
	Site() (site, gateway string)
}

// Options are the optional parts of the server.
type Options struct {
	// Alerting, when set, adds the alert, silence and path endpoints.
	Alerting Alerting
	// Require wraps a handler so it runs only for a principal holding role
	// (RoleViewer, RoleOperator, RoleEngineer). Nil serves every request:
	// only for tests, the gateway always sets it.
	Require func(role string, h http.Handler) http.Handler
	// Who names the principal of a request, for acks and silences.
	Who func(r *http.Request) string
	// Routes adds more routes (login, logout) to the server's mux.
	Routes func(mux *http.ServeMux)
	// History is how many samples per point the State keeps for charts
	// (http.history); Handler sets it on the State. 0 keeps none.
	History int
	// Demo, set only in demo mode, adds the scenario endpoints.
	Demo Demo
	// Log is for the stream's and the demo's logs; nil: slog.Default.
	Log *slog.Logger
	// StreamTick, PathsEvery and ClientBuffer tune the event stream; zero
	// means DefaultStreamTick, DefaultPathsEvery, DefaultClientBuffer.
	StreamTick   time.Duration
	PathsEvery   time.Duration
	ClientBuffer int
}

func (o Options) logger() *slog.Logger {
	if o.Log == nil {
		return slog.Default()
	}
	return o.Log
}

func (o Options) require(role string, h http.Handler) http.Handler {
	if o.Require == nil {
		return h
	}
	return o.Require(role, h)
}

func (o Options) who(r *http.Request) string {
	if o.Who == nil {
		return "anonymous"
	}
	return o.Who(r)
}

// Handler returns the HTTP handler: /api/v1/state, /api/v1/devices and
// /api/v1/devices/{id} with its history, /api/v1/stream, the alert
// endpoints, the demo endpoints in demo mode, /healthz, /readyz and the
// dashboard at /. It sets the State's history size to opts.History.
func Handler(src Source, opts Options) http.Handler {
	mux := http.NewServeMux()
	if st := src.State(); st != nil {
		st.SetHistory(opts.History)
	}
	deviceRoutes(mux, src, opts)
	reloadRoutes(mux, src, opts)
	stream := newStreamHub(src, opts)
	mux.Handle("GET /api/v1/stream", opts.require(RoleViewer, http.HandlerFunc(stream.serveStream)))
	if opts.Demo != nil {
		demoRoutes(mux, opts.Demo, opts)
	}
	mux.Handle("GET /api/v1/state", opts.require(RoleViewer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, snapshot(src, time.Now()))
	})))
	mux.Handle("GET /api/v1/devices/{id}", opts.require(RoleViewer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, d := range snapshot(src, time.Now()).Devices {
			if d.ID == r.PathValue("id") {
				writeJSON(w, d)
				return
			}
		}
		writeError(w, http.StatusNotFound, "no device %q", r.PathValue("id"))
	})))
	mux.Handle("GET /api/v1/events", opts.require(RoleViewer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev := src.Events()
		if ev == nil {
			ev = []Event{}
		}
		writeJSON(w, ev)
	})))
	if opts.Alerting != nil {
		alertRoutes(mux, opts.Alerting, opts)
	}
	if opts.Routes != nil {
		opts.Routes(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if opts.Alerting != nil && opts.Alerting.AlertsDoc().AllPathsDown {
			http.Error(w, "not ready: every alert delivery path is down (alerts are kept in the ledger)", http.StatusServiceUnavailable)
			return
		}
		for _, s := range src.PollStats() {
			if s.Cycles > 0 {
				w.Write([]byte("ready\n"))
				return
			}
		}
		http.Error(w, "not ready: no poll has completed", http.StatusServiceUnavailable)
	})
	sub, _ := fs.Sub(static, "static")
	mux.Handle("GET /", http.FileServerFS(sub))
	return securityHeaders(mux)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

// StateDoc is the body of /api/v1/state.
type StateDoc struct {
	Site    string      `json:"site"`
	Gateway string      `json:"gateway"`
	Started time.Time   `json:"started"`
	Now     time.Time   `json:"now"`
	Devices []DeviceDoc `json:"devices"`
	// Destinations are the MQTT brokers and the history sink, with their
	// outboxes.
	Destinations []Destination `json:"destinations"`
	// Reload is the last configuration reload (see Reloader); absent
	// before the first or when the Source cannot reload.
	Reload any `json:"reload,omitempty"`
}

// DeviceDoc is one device with its points and poll statistics.
type DeviceDoc struct {
	DeviceInfo
	Health string           `json:"health"` // good, degraded, bad, unknown
	Points []PointDoc       `json:"points"`
	Polls  []pipeline.Stats `json:"polls"`
}

// PointDoc is a point with its age at the time of the snapshot.
type PointDoc struct {
	point.Point
	AgeSeconds float64 `json:"age_s"`
}

// MarshalJSON flattens the point and adds its age.
func (p PointDoc) MarshalJSON() ([]byte, error) {
	b, err := p.Point.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "device")
	m["age_s"] = p.AgeSeconds
	return json.Marshal(m)
}

func snapshot(src Source, now time.Time) StateDoc {
	site, gw := src.Site()
	doc := StateDoc{Site: site, Gateway: gw, Started: src.Started().UTC(), Now: now.UTC(), Destinations: src.Destinations(), Reload: reloadStatus(src)}
	if doc.Destinations == nil {
		doc.Destinations = []Destination{}
	}
	stats := map[string][]pipeline.Stats{}
	for _, s := range src.PollStats() {
		stats[s.Device] = append(stats[s.Device], s)
	}
	st := src.State()
	for _, d := range src.Devices() {
		dd := DeviceDoc{DeviceInfo: d, Health: "unknown", Points: []PointDoc{}, Polls: stats[d.ID]}
		sort.Slice(dd.Polls, func(i, j int) bool { return dd.Polls[i].Group < dd.Polls[j].Group })
		good, other := 0, 0
		for _, p := range st.Points(d.ID) {
			dd.Points = append(dd.Points, PointDoc{Point: p, AgeSeconds: now.Sub(p.Time).Seconds()})
			if p.Quality == point.Good {
				good++
			} else {
				other++
			}
		}
		switch {
		case good > 0 && other == 0:
			dd.Health = "good"
		case good > 0:
			dd.Health = "degraded"
		case other > 0:
			dd.Health = "bad"
		}
		doc.Devices = append(doc.Devices, dd)
	}
	return doc
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/pipeline"
)

// Groups of the dashboard's facility overview, in the order it shows them.
var Groups = []string{"power", "battery", "cooling", "network", "fire", "other"}

// GroupOf returns the overview group of a profile class: UPSs and PDUs are
// power, switches network; a device not yet identified (class "") is other.
func GroupOf(class string) string {
	switch class {
	case "ups", "pdu", "power", "generator", "ats":
		return "power"
	case "battery":
		return "battery"
	case "cooling", "crac", "chiller":
		return "cooling"
	case "switch", "network", "router":
		return "network"
	case "fire":
		return "fire"
	}
	return "other"
}

// DevicesDoc is the body of GET /api/v1/devices: the facility overview.
type DevicesDoc struct {
	Site    string    `json:"site"`
	Gateway string    `json:"gateway"`
	Now     time.Time `json:"now"`
	// Devices in configuration order, each with its points.
	Devices []OverviewDevice `json:"devices"`
}

// OverviewDevice is a device as the overview shows it. Its points are
// encoded without reflection (see writeDevices): with 250 devices this
// endpoint is the dashboard's largest and most frequent read.
type OverviewDevice struct {
	DeviceInfo
	// Group is the overview group (GroupOf the class).
	Group string `json:"group"`
	// Room is the device's room label, "" without one.
	Room string `json:"room,omitempty"`
	// Health is good (every point good), degraded (some not), bad (none
	// good) or unknown (no point yet).
	Health string `json:"health"`
	// Good, Stale and Bad count the points by quality.
	Good  int `json:"good"`
	Stale int `json:"stale"`
	Bad   int `json:"bad"`
	// Points, sorted by name; age_s is seconds since the poll that
	// produced each.
	Points []point.Point `json:"-"`
}

// health classifies a device from its points.
func health(pts []point.Point) (h string, good, stale, bad int) {
	for i := range pts {
		switch pts[i].Quality {
		case point.Good:
			good++
		case point.Stale:
			stale++
		default:
			bad++
		}
	}
	switch {
	case good > 0 && stale+bad == 0:
		return "good", good, stale, bad
	case good > 0:
		return "degraded", good, stale, bad
	case stale+bad > 0:
		return "bad", good, stale, bad
	}
	return "unknown", good, stale, bad
}

func overviewDevice(info DeviceInfo, pts []point.Point) OverviewDevice {
	d := OverviewDevice{DeviceInfo: info, Group: GroupOf(info.Class), Room: info.Labels["room"], Points: pts}
	d.Health, d.Good, d.Stale, d.Bad = health(pts)
	return d
}

func devicesDoc(src Source, now time.Time) DevicesDoc {
	site, gw := src.Site()
	st := src.State()
	doc := DevicesDoc{Site: site, Gateway: gw, Now: now.UTC()}
	for _, info := range src.Devices() {
		doc.Devices = append(doc.Devices, overviewDevice(info, st.Points(info.ID)))
	}
	return doc
}

// appendDevice appends one device's JSON: its fields by encoding/json, its
// points by point.AppendJSON with age_s added.
func appendDevice(dst []byte, d *OverviewDevice, now time.Time) ([]byte, error) {
	head, err := json.Marshal(d)
	if err != nil {
		return dst, err
	}
	dst = append(dst, head[:len(head)-1]...)
	dst = append(dst, `,"points":[`...)
	for i := range d.Points {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendPoint(dst, d.Points[i], now)
	}
	return append(dst, "]}"...), nil
}

// appendPoint appends a point without its device and with its age. A point
// whose time cannot be encoded is shown bad rather than dropped.
func appendPoint(dst []byte, p point.Point, now time.Time) []byte {
	p.Device = ""
	n := len(dst)
	out, err := p.AppendJSON(dst)
	if err != nil {
		p.Time, p.Quality, p.Reason = time.Time{}, point.Bad, point.ReasonDecode+": "+err.Error()
		out, _ = p.AppendJSON(dst[:n])
	}
	out = out[:len(out)-1]
	out = append(out, `,"age_s":`...)
	out = strconv.AppendFloat(out, float64(now.Sub(p.Time).Milliseconds())/1000, 'f', -1, 64)
	return append(out, '}')
}

func writeDevices(w http.ResponseWriter, doc DevicesDoc) {
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"site":`...)
	b = appendJSONString(b, doc.Site)
	b = append(b, `,"gateway":`...)
	b = appendJSONString(b, doc.Gateway)
	b = append(b, `,"now":"`...)
	b = doc.Now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","groups":`...)
	g, _ := json.Marshal(Groups)
	b = append(b, g...)
	b = append(b, `,"devices":[`...)
	for i := range doc.Devices {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendDevice(b, &doc.Devices[i], doc.Now); err != nil {
			writeError(w, http.StatusInternalServerError, "web: device %q: %v", doc.Devices[i].ID, err)
			return
		}
	}
	b = append(b, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

// HistoryDoc is the body of GET /api/v1/devices/{id}/history.
type HistoryDoc struct {
	Device string    `json:"device"`
	Now    time.Time `json:"now"`
	// Size is how many samples each point keeps (http.history).
	Size   int                  `json:"size"`
	Points map[string]PointHist `json:"points"`
}

// PointHist is one point's recent samples, oldest first.
type PointHist struct {
	Unit point.Unit `json:"unit,omitempty"`
	Kind string     `json:"kind"`
	// Samples are [unix_ms, value] pairs; value is null where the point
	// was bad or stale, so a chart shows a gap and never a made-up value.
	Samples [][2]any `json:"samples"`
}

func historyDoc(st *pipeline.State, id string, names []string, now time.Time) HistoryDoc {
	doc := HistoryDoc{Device: id, Now: now.UTC(), Size: st.HistorySize(), Points: map[string]PointHist{}}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, p := range st.Points(id) {
		if p.Kind == point.String || (len(want) > 0 && !want[p.Name]) {
			continue
		}
		samples, _ := st.History(id, p.Name)
		ph := PointHist{Unit: p.Unit, Kind: p.Kind.String(), Samples: make([][2]any, 0, len(samples))}
		for _, s := range samples {
			var v any
			if s.Quality == point.Good {
				v = s.Num
			}
			ph.Samples = append(ph.Samples, [2]any{s.Time.UnixMilli(), v})
		}
		doc.Points[p.Name] = ph
	}
	return doc
}

// deviceRoutes adds the overview and history endpoints.
func deviceRoutes(mux *http.ServeMux, src Source, opts Options) {
	read := func(h http.HandlerFunc) http.Handler { return opts.require(RoleViewer, h) }
	mux.Handle("GET /api/v1/devices", read(func(w http.ResponseWriter, r *http.Request) {
		writeDevices(w, devicesDoc(src, time.Now()))
	}))
	mux.Handle("GET /api/v1/devices/{id}/history", read(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		known := false
		for _, d := range src.Devices() {
			known = known || d.ID == id
		}
		if !known {
			writeError(w, http.StatusNotFound, "no device %q", id)
			return
		}
		var names []string
		if q := r.URL.Query().Get("points"); q != "" {
			names = strings.Split(q, ",")
		}
		doc := historyDoc(src.State(), id, names, time.Now())
		for _, n := range names {
			if _, ok := doc.Points[n]; !ok {
				writeError(w, http.StatusNotFound, "device %q has no numeric point %q", id, n)
				return
			}
		}
		writeJSON(w, doc)
	}))
}

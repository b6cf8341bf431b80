package web

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/point"
)

// Stream tuning. The defaults suit the dashboard; tests shorten them.
const (
	// DefaultStreamTick is how often the stream looks for changed points
	// and new alert events: points are batched at most 4 times a second.
	DefaultStreamTick = 250 * time.Millisecond
	// DefaultPathsEvery is how often the "paths" event repeats; it doubles
	// as the connection's keep-alive.
	DefaultPathsEvery = 2 * time.Second
	// DefaultClientBuffer is how many events may wait for one client. A
	// client that falls that far behind is dropped: its browser reconnects
	// and fetches a fresh snapshot, which is cheaper than catching up.
	// Events are encoded once and shared by every client, so the memory
	// held is this many events at most, however many clients there are.
	DefaultClientBuffer = 64
)

// streamHub fans events out to the connected clients. One goroutine
// produces events, started with the first client and stopped with the
// last, so an idle gateway pays nothing for the stream.
type streamHub struct {
	src        Source
	alerts     Alerting
	log        *slog.Logger
	tick       time.Duration
	pathsEvery time.Duration
	buffer     int

	mu      sync.Mutex
	clients map[*streamClient]struct{}
	stop    chan struct{} // closed to stop the producer; nil when none runs
	dropped uint64
}

type streamClient struct {
	ch   chan []byte
	gone chan struct{} // closed when the hub dropped the client
}

func newStreamHub(src Source, opts Options) *streamHub {
	h := &streamHub{src: src, alerts: opts.Alerting, log: opts.Log, tick: opts.StreamTick, pathsEvery: opts.PathsEvery,
		buffer: opts.ClientBuffer, clients: map[*streamClient]struct{}{}}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.tick <= 0 {
		h.tick = DefaultStreamTick
	}
	if h.pathsEvery <= 0 {
		h.pathsEvery = DefaultPathsEvery
	}
	if h.buffer <= 0 {
		h.buffer = DefaultClientBuffer
	}
	return h
}

func (h *streamHub) join() *streamClient {
	c := &streamClient{ch: make(chan []byte, h.buffer), gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients[c] = struct{}{}
	if h.stop == nil {
		h.stop = make(chan struct{})
		go h.produce(h.stop)
	}
	return c
}

func (h *streamHub) leave(c *streamClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
	if len(h.clients) == 0 && h.stop != nil {
		close(h.stop)
		h.stop = nil
	}
}

// Clients returns the number of connected clients and how many were
// dropped for falling behind.
func (h *streamHub) stats() (clients int, dropped uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients), h.dropped
}

// broadcast offers msg to every client without blocking; a client whose
// buffer is full is dropped.
func (h *streamHub) broadcast(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		select {
		case c.ch <- msg:
		default:
			delete(h.clients, c)
			close(c.gone)
			h.dropped++
			h.log.Info("web: stream client dropped: too slow", "buffer", h.buffer)
		}
	}
}

// sseEvent formats one server-sent event. data must hold no newline
// (encoding/json never writes one unless told to indent).
func sseEvent(name string, data []byte) []byte {
	b := make([]byte, 0, len(name)+len(data)+16)
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// produce runs until stop is closed: each tick it sends the points changed
// since the last (one "points" event) and each new alert event ("alert"),
// and every pathsEvery the delivery health ("paths").
func (h *streamHub) produce(stop chan struct{}) {
	st := h.src.State()
	gen := st.Gen()
	feed, _ := h.alerts.(AlertFeed)
	var lastSeq uint64
	switch {
	case feed != nil:
		lastSeq = feed.LastSeq()
	case h.alerts != nil:
		for _, e := range h.alerts.AlertsDoc().Recent {
			lastSeq = max(lastSeq, e.Seq)
		}
	}
	t := time.NewTicker(h.tick)
	defer t.Stop()
	var lastPaths time.Time
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			var pts []point.Point
			pts, gen = st.Changed(gen)
			if len(pts) > 0 {
				h.broadcast(sseEvent("points", pointsEvent(h.src, pts, now)))
			}
			if h.alerts == nil {
				if now.Sub(lastPaths) >= h.pathsEvery {
					h.broadcast(sseEvent("paths", pathsEvent(h.src, nil, now)))
					lastPaths = now
				}
				continue
			}
			var doc *AlertsDoc
			var evs []alert.Event
			if feed != nil {
				// Every event once, in order, however many arrived.
				for more := feed.EventsSince(lastSeq, streamAlertBatch); len(more) > 0; more = feed.EventsSince(lastSeq, streamAlertBatch) {
					evs = append(evs, more...)
					lastSeq = more[len(more)-1].Seq
				}
			} else {
				d := h.alerts.AlertsDoc()
				doc = &d
				for _, e := range d.Recent {
					if e.Seq > lastSeq {
						evs = append(evs, e)
					}
				}
				// Recent is newest first; the stream tells them in order.
				sort.Slice(evs, func(i, j int) bool { return evs[i].Seq < evs[j].Seq })
			}
			for _, e := range evs {
				b, err := json.Marshal(e)
				if err != nil {
					h.log.Warn("web: stream: encode alert event", "id", e.ID, "err", err)
					continue
				}
				h.broadcast(sseEvent("alert", b))
				lastSeq = max(lastSeq, e.Seq)
			}
			if now.Sub(lastPaths) >= h.pathsEvery {
				if doc == nil {
					d := h.alerts.AlertsDoc()
					doc = &d
				}
				h.broadcast(sseEvent("paths", pathsEvent(h.src, doc, now)))
				lastPaths = now
			}
		}
	}
}

// streamAlertBatch is how many alert events the stream reads from the
// feed at a time.
const streamAlertBatch = 256

// pointsEvent encodes the changed points grouped by device, each device
// with its health after the change (computed over all its points).
func pointsEvent(src Source, pts []point.Point, now time.Time) []byte {
	st := src.State()
	b := make([]byte, 0, 256+len(pts)*160)
	b = append(b, `{"now":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","devices":[`...)
	for i := 0; i < len(pts); {
		j := i
		for j < len(pts) && pts[j].Device == pts[i].Device {
			j++
		}
		if i > 0 {
			b = append(b, ',')
		}
		hl, good, stale, bad := health(st.Points(pts[i].Device))
		b = append(b, `{"id":`...)
		b = appendJSONString(b, pts[i].Device)
		b = append(b, `,"health":"`...)
		b = append(b, hl...)
		b = append(b, `","good":`...)
		b = appendInt(b, good)
		b = append(b, `,"stale":`...)
		b = appendInt(b, stale)
		b = append(b, `,"bad":`...)
		b = appendInt(b, bad)
		b = append(b, `,"points":[`...)
		for k := i; k < j; k++ {
			if k > i {
				b = append(b, ',')
			}
			b = appendPoint(b, pts[k], now)
		}
		b = append(b, "]}"...)
		i = j
	}
	return append(b, "]}"...)
}

func appendInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }

// PathsEvent is the data of the stream's "paths" event: every way out of
// the gateway with its health.
type PathsEvent struct {
	Now time.Time `json:"now"`
	// AlertPaths are the alert delivery paths (nil without alerting).
	AlertPaths   []PathDoc `json:"alert_paths"`
	AllPathsDown bool      `json:"all_paths_down"`
	// Destinations are the telemetry brokers and the history sink, with
	// their outbox depth.
	Destinations []Destination `json:"destinations"`
}

func pathsEvent(src Source, doc *AlertsDoc, now time.Time) []byte {
	ev := PathsEvent{Now: now.UTC(), AlertPaths: []PathDoc{}, Destinations: src.Destinations()}
	if doc != nil {
		ev.AlertPaths, ev.AllPathsDown = doc.Paths, doc.AllPathsDown
	}
	if ev.Destinations == nil {
		ev.Destinations = []Destination{}
	}
	b, _ := json.Marshal(ev)
	return b
}

// serveStream is GET /api/v1/stream.
func (h *streamHub) serveStream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "web: stream: the connection cannot be flushed")
		return
	}
	// The server's WriteTimeout, if any, would cut a stream that is meant
	// to stay open.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The retry hint makes a dropped browser come back quickly; the
	// comment line gets the headers and first bytes out at once.
	w.Write([]byte("retry: 1000\n: facgw stream\n\n"))
	fl.Flush()
	c := h.join()
	defer h.leave(c)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			return
		case msg := <-c.ch:
			if _, err := w.Write(msg); err != nil {
				return
			}
			// Whatever else is already queued goes out in the same flush.
			for more := true; more; {
				select {
				case msg := <-c.ch:
					if _, err := w.Write(msg); err != nil {
						return
					}
				default:
					more = false
				}
			}
			fl.Flush()
		}
	}
}

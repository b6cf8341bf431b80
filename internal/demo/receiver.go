package demo

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/pipeline/notify/webhook"
)

// Receiver stands for an operations team's alert receiver in the demo: the
// webhook path's other end. It checks each request's signature, logs every
// event and keeps the latest ones, so `make run` shows an alert leaving
// the gateway on a second, independent path.
type Receiver struct {
	secret []byte
	log    *slog.Logger
	srv    *http.Server
	url    string

	mu     sync.Mutex
	events []alert.Event
	bad    int
}

// maxKept bounds the events a Receiver keeps.
const maxKept = 500

// StartReceiver serves a webhook receiver on a free loopback port.
func StartReceiver(secret string, log *slog.Logger) (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Receiver{secret: []byte(secret), log: log, url: "http://" + ln.Addr().String() + "/facgw"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /facgw", r.serve)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("demo receiver", "err", err)
		}
	}()
	return r, nil
}

// URL is where the gateway posts.
func (r *Receiver) URL() string { return r.url }

// Close stops the receiver.
func (r *Receiver) Close() error { return r.srv.Close() }

// Events returns the events received so far, oldest first.
func (r *Receiver) Events() []alert.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alert.Event(nil), r.events...)
}

// Refused counts requests whose signature or body was wrong.
func (r *Receiver) Refused() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 4<<20))
	if err == nil {
		err = webhook.Verify(r.secret, req.Header.Get(webhook.HeaderSignature), body, time.Now(), webhook.DefaultMaxAge)
	}
	var msg webhook.Body
	if err == nil {
		err = json.Unmarshal(body, &msg)
	}
	if err != nil {
		r.mu.Lock()
		r.bad++
		r.mu.Unlock()
		r.log.Warn("demo receiver: refused a request", "err", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	r.events = append(r.events, msg.Events...)
	if n := len(r.events); n > maxKept {
		r.events = append(r.events[:0], r.events[n-maxKept:]...)
	}
	r.mu.Unlock()
	for _, e := range msg.Events {
		r.log.Info("demo receiver: alert", "kind", e.Kind, "severity", e.Severity, "rule", e.Rule, "instance", e.Instance(), "summary", e.Summary)
	}
	w.WriteHeader(http.StatusNoContent)
}

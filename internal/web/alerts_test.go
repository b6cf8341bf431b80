package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/pipeline"
)

// fakeAlerting records the actions it is asked for.
type fakeAlerting struct {
	mu      sync.Mutex
	doc     AlertsDoc
	acks    []string
	removed []string
	added   []SilenceRequest
}

func (f *fakeAlerting) AlertsDoc() AlertsDoc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.doc
}

func (f *fakeAlerting) Ack(id, by, comment string) (alert.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.doc.Active {
		if e.ID == id {
			f.acks = append(f.acks, id+" by "+by+": "+comment)
			e.Ack = &alert.Ack{By: by, Comment: comment}
			return e, nil
		}
	}
	return alert.Event{}, fmt.Errorf("alert %q: %w", id, ErrNotFound)
}

func (f *fakeAlerting) AddSilence(req SilenceRequest, by string) (SilenceDoc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.Reason == "" {
		return SilenceDoc{}, fmt.Errorf("a silence needs a reason: %w", ErrInvalid)
	}
	f.added = append(f.added, req)
	return SilenceDoc{ID: "s1", Rule: req.Rule, Reason: req.Reason, By: by}, nil
}

func (f *fakeAlerting) RemoveSilence(id, by string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != "s1" {
		return fmt.Errorf("silence %q: %w", id, ErrNotFound)
	}
	f.removed = append(f.removed, id+" by "+by)
	return nil
}

// roleHeader stands in for the authenticator: the X-Test-Role header is
// the principal's role.
func roleHeader() Options {
	rank := map[string]int{"": 0, RoleViewer: 1, RoleOperator: 2, RoleEngineer: 3}
	return Options{
		Require: func(role string, h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got := r.Header.Get("X-Test-Role")
				if got == "" {
					writeError(w, http.StatusUnauthorized, "login required")
					return
				}
				if rank[got] < rank[role] {
					writeError(w, http.StatusForbidden, "needs %s", role)
					return
				}
				h.ServeHTTP(w, r)
			})
		},
		Who: func(r *http.Request) string { return "user-" + r.Header.Get("X-Test-Role") },
	}
}

func TestAlertEndpoints(t *testing.T) {
	at := time.Date(2026, 11, 26, 19, 0, 0, 0, time.UTC)
	fa := &fakeAlerting{doc: AlertsDoc{
		Active:   []alert.Event{{ID: "e1", Kind: alert.KindFiring, State: alert.Firing, Rule: "fire/liion-offgas", Severity: alert.Critical, ActiveAt: at}},
		Pending:  []PendingDoc{},
		Recent:   []alert.Event{{ID: "e0", Kind: alert.KindResolved, State: alert.Resolved, Rule: "power/on-battery"}},
		Silences: []SilenceDoc{},
		Paths:    []PathDoc{{Name: "mqtt", Kind: "mqtt", Up: true}, {Name: "am", Kind: "alertmanager", Up: false, LastError: "connection refused"}},
	}}
	opts := roleHeader()
	opts.Alerting = fa
	h := Handler(&fakeSource{state: pipeline.NewState(3)}, opts)

	tests := []struct {
		name, method, path, role, body string
		want                           int
		contains                       string
	}{
		{"list needs login", "GET", "/api/v1/alerts", "", "", 401, "login required"},
		{"viewer lists", "GET", "/api/v1/alerts", RoleViewer, "", 200, `"rule":"fire/liion-offgas"`},
		{"one active alert", "GET", "/api/v1/alerts/e1", RoleViewer, "", 200, `"id":"e1"`},
		{"one recent alert", "GET", "/api/v1/alerts/e0", RoleViewer, "", 200, `"state":"resolved"`},
		{"unknown alert", "GET", "/api/v1/alerts/nope", RoleViewer, "", 404, `no alert \"nope\"`},
		{"paths", "GET", "/api/v1/paths", RoleViewer, "", 200, `"last_error":"connection refused"`},
		{"silences", "GET", "/api/v1/silences", RoleViewer, "", 200, `[]`},
		{"viewer cannot ack", "POST", "/api/v1/alerts/e1/ack", RoleViewer, `{"comment":"x"}`, 403, "needs operator"},
		{"anonymous cannot ack", "POST", "/api/v1/alerts/e1/ack", "", `{}`, 401, ""},
		{"operator acks", "POST", "/api/v1/alerts/e1/ack", RoleOperator, `{"comment":"crew on the way"}`, 200, `"by":"user-operator"`},
		{"engineer acks too", "POST", "/api/v1/alerts/e1/ack", RoleEngineer, `{}`, 200, `"ack"`},
		{"ack unknown", "POST", "/api/v1/alerts/nope/ack", RoleOperator, `{}`, 404, "not found"},
		{"ack with unknown field", "POST", "/api/v1/alerts/e1/ack", RoleOperator, `{"coment":"typo"}`, 400, "unknown field"},
		{"ack with no body", "POST", "/api/v1/alerts/e1/ack", RoleOperator, ``, 400, "bad request body"},
		{"viewer cannot silence", "POST", "/api/v1/silences", RoleViewer, `{"rule":"fire/*","duration":"1h","reason":"test"}`, 403, ""},
		{"operator silences", "POST", "/api/v1/silences", RoleOperator, `{"rule":"cooling/*","duration":"1h","reason":"CRAC maintenance"}`, 201, `"by":"user-operator"`},
		{"silence without reason", "POST", "/api/v1/silences", RoleOperator, `{"rule":"cooling/*","duration":"1h"}`, 400, "needs a reason"},
		{"viewer cannot unsilence", "DELETE", "/api/v1/silences/s1", RoleViewer, "", 403, ""},
		{"operator unsilences", "DELETE", "/api/v1/silences/s1", RoleOperator, "", 204, ""},
		{"unsilence unknown", "DELETE", "/api/v1/silences/s9", RoleOperator, "", 404, ""},
		{"state needs login too", "GET", "/api/v1/state", "", "", 401, ""},
		{"health needs none", "GET", "/healthz", "", "", 200, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.role != "" {
				req.Header.Set("X-Test-Role", tt.role)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, tt.want)
			}
			body := rec.Body.String()
			var compact bytes.Buffer
			if json.Compact(&compact, rec.Body.Bytes()) == nil {
				body = compact.String()
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("got body %s, want it to contain %s", rec.Body, tt.contains)
			}
			if rec.Code >= 400 && !json.Valid(rec.Body.Bytes()) {
				t.Errorf("got error body %q, want JSON", rec.Body)
			}
		})
	}
	if len(fa.acks) != 2 || fa.acks[0] != "e1 by user-operator: crew on the way" {
		t.Errorf("got acks %q, want the operator's and the engineer's", fa.acks)
	}
	if len(fa.added) != 1 || fa.added[0].Reason != "CRAC maintenance" || len(fa.removed) != 1 {
		t.Errorf("got silences added %+v removed %q, want one each", fa.added, fa.removed)
	}
}

func TestReadyzWhenEveryPathIsDown(t *testing.T) {
	fa := &fakeAlerting{doc: AlertsDoc{AllPathsDown: true}}
	src := &fakeSource{state: pipeline.NewState(3), stats: []pipeline.Stats{{Device: "ups-a", Cycles: 3}}}
	for _, tt := range []struct {
		name string
		down bool
		want int
	}{{"a path up", false, 200}, {"every path down", true, 503}} {
		fa.doc.AllPathsDown = tt.down
		rec := httptest.NewRecorder()
		Handler(src, Options{Alerting: fa}).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != tt.want {
			t.Errorf("%s: got %d %s, want %d", tt.name, rec.Code, rec.Body, tt.want)
		}
	}
}

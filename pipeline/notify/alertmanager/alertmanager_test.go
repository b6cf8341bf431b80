package alertmanager

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testEvent() alert.Event {
	return alert.Event{
		ID:       "3f2a9c1be0d4a7715c2e",
		Seq:      7,
		Kind:     alert.KindFiring,
		State:    alert.Firing,
		Rule:     "power/ups-on-battery",
		Class:    "power",
		Severity: alert.Major,
		Device:   "ups-1",
		Site:     "pangyo-b3",
		Gateway:  "gw-1",
		Summary:  "UPS ups-1 on battery, 41 % left",
		Labels:   map[string]string{"room": "b3-battery", "rack.row": "a", "severity": "info", "episode": "x"},
		ActiveAt: t0,
		FiredAt:  t0.Add(30 * time.Second),
		At:       t0.Add(30 * time.Second),
		Values: map[string]alert.Value{
			"soc":    {Value: "41", Unit: "%", Quality: "good"},
			"output": {Value: "battery", Quality: "bad", Reason: "timeout"},
		},
	}
}

func TestEncode(t *testing.T) {
	now := t0.Add(time.Minute)
	firing := testEvent()
	acked := firing
	acked.Seq, acked.Kind = 8, alert.KindAcknowledged
	acked.Ack = &alert.Ack{By: "alice", At: t0.Add(40 * time.Second), Comment: "generator starting"}
	acked.Silence = &alert.SilenceRef{ID: "s1", By: "bob", Until: t0.Add(time.Hour), Reason: "battery swap"}
	acked.SupervisionLost = true
	res := firing
	res.Seq, res.Kind, res.State, res.ResolvedAt = 9, alert.KindResolved, alert.Resolved, t0.Add(5*time.Minute)
	group := firing
	group.ID, group.Device, group.Group, group.Labels = "g1", "", "row-a", nil

	wantLabels := map[string]string{
		"alertname": "ups-on-battery", "rule": "power/ups-on-battery", "class": "power", "severity": "major",
		"device": "ups-1", "site": "pangyo-b3", "gateway": "gw-1", "episode": firing.ID,
		"room": "b3-battery", "rack_row": "a",
	}
	tests := []struct {
		name     string
		evs      []alert.Event
		labels   map[string]string
		annots   map[string]string
		endsAt   time.Time
		startsAt time.Time
	}{
		{
			name:   "firing",
			evs:    []alert.Event{firing},
			labels: wantLabels,
			annots: map[string]string{
				"summary": firing.Summary, "event": "firing", "seq": "7", "active_at": "2026-03-01T12:00:00Z",
				"values": "output=battery (bad: timeout); soc=41 % (good)",
			},
			endsAt:   now.Add(4 * time.Minute),
			startsAt: firing.FiredAt,
		},
		{
			name:   "acknowledged and silenced: the current state with who took it",
			evs:    []alert.Event{firing, acked},
			labels: wantLabels,
			annots: map[string]string{
				"summary": firing.Summary, "event": "acknowledged", "seq": "8", "active_at": "2026-03-01T12:00:00Z",
				"values":          "output=battery (bad: timeout); soc=41 % (good)",
				"acknowledged_by": "alice", "acknowledged_at": "2026-03-01T12:00:40Z", "acknowledged_comment": "generator starting",
				"silenced_by": "bob", "silence_id": "s1", "silenced_until": "2026-03-01T13:00:00Z", "silence_reason": "battery swap",
				"supervision_lost": "true",
			},
			endsAt:   now.Add(4 * time.Minute),
			startsAt: firing.FiredAt,
		},
		{
			name:   "resolved after firing in one batch: the last wins",
			evs:    []alert.Event{firing, res},
			labels: wantLabels,
			annots: map[string]string{
				"summary": firing.Summary, "event": "resolved", "seq": "9", "active_at": "2026-03-01T12:00:00Z",
				"values": "output=battery (bad: timeout); soc=41 % (good)",
			},
			endsAt:   res.ResolvedAt,
			startsAt: firing.FiredAt,
		},
		{
			name: "group instance",
			evs:  []alert.Event{group},
			labels: map[string]string{
				"alertname": "ups-on-battery", "rule": "power/ups-on-battery", "class": "power", "severity": "major",
				"group": "row-a", "site": "pangyo-b3", "gateway": "gw-1", "episode": "g1",
			},
			annots: map[string]string{
				"summary": firing.Summary, "event": "firing", "seq": "7", "active_at": "2026-03-01T12:00:00Z",
				"values": "output=battery (bad: timeout); soc=41 % (good)",
			},
			endsAt:   now.Add(4 * time.Minute),
			startsAt: firing.FiredAt,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Encode(tt.evs, now, time.Minute, "https://gw-1.example/alerts")
			if len(got) != 1 {
				t.Fatalf("alerts: got %d, want 1", len(got))
			}
			a := got[0]
			if !reflect.DeepEqual(a.Labels, tt.labels) {
				t.Errorf("labels: got %v, want %v", a.Labels, tt.labels)
			}
			if !reflect.DeepEqual(a.Annotations, tt.annots) {
				t.Errorf("annotations: got %v, want %v", a.Annotations, tt.annots)
			}
			if !a.EndsAt.Equal(tt.endsAt) || !a.StartsAt.Equal(tt.startsAt) {
				t.Errorf("startsAt, endsAt: got %s, %s, want %s, %s", a.StartsAt, a.EndsAt, tt.startsAt, tt.endsAt)
			}
			if a.GeneratorURL != "https://gw-1.example/alerts" {
				t.Errorf("generatorURL: got %q, want the option", a.GeneratorURL)
			}
		})
	}
}

// recorder is an httptest Alertmanager that answers with status and keeps
// what it was posted.
type recorder struct {
	mu     sync.Mutex
	status int
	posts  [][]PostableAlert
	auth   []string
	paths  []string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	r.paths = append(r.paths, req.Method+" "+req.URL.Path)
	if req.Method == http.MethodPost {
		var as []PostableAlert
		b, _ := io.ReadAll(req.Body)
		if err := json.Unmarshal(b, &as); err != nil || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		r.posts = append(r.posts, as)
	}
	if r.status != 0 {
		http.Error(w, "status "+http.StatusText(r.status), r.status)
	}
}

func (r *recorder) set(status int) {
	r.mu.Lock()
	r.status = status
	r.mu.Unlock()
}

func newServer(t *testing.T, r *recorder) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func newSender(t *testing.T, opts Options) *Sender {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendClassifiesAnswers(t *testing.T) {
	tests := []struct {
		status        int
		wantErr       bool
		wantRetryable bool
	}{
		{200, false, false},
		{204, false, false},
		{400, true, false},
		{401, true, false},
		{404, true, false},
		{302, true, false},
		{408, true, true},
		{429, true, true},
		{500, true, true},
		{503, true, true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			r := &recorder{status: tt.status}
			srv := newServer(t, r)
			s := newSender(t, Options{URLs: []string{srv.URL}})
			retryable, err := s.Send(t.Context(), []alert.Event{testEvent()})
			if (err != nil) != tt.wantErr || retryable != tt.wantRetryable {
				t.Fatalf("send: got retryable %v, err %v; want retryable %v, error %v", retryable, err, tt.wantRetryable, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), srv.URL+"/api/v2/alerts") {
				t.Errorf("error: got %q, want it to name the url", err)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		s := newSender(t, Options{URLs: []string{srv.URL}})
		if retryable, err := s.Send(t.Context(), []alert.Event{testEvent()}); err == nil || !retryable {
			t.Errorf("send to a closed port: got retryable %v, err %v, want a retryable error", retryable, err)
		}
	})
}

func TestSendToClusterNeedsOneMember(t *testing.T) {
	good, bad := &recorder{}, &recorder{status: 503}
	gs, bs := newServer(t, good), newServer(t, bad)
	s := newSender(t, Options{URLs: []string{bs.URL, gs.URL + "/"}})
	if _, err := s.Send(t.Context(), []alert.Event{testEvent()}); err != nil {
		t.Fatalf("send with one member up: got %v, want success", err)
	}
	if len(good.posts) != 1 || len(bad.posts) != 1 {
		t.Errorf("posts: got %d to the good member and %d to the bad one, want 1 each", len(good.posts), len(bad.posts))
	}
	d := s.HealthDetail()
	if d[gs.URL] != "ok" || !strings.Contains(d[bs.URL], "503") {
		t.Errorf("health detail: got %v, want ok for %s and the 503 for %s", d, gs.URL, bs.URL)
	}

	good.set(400)
	retryable, err := s.Send(t.Context(), []alert.Event{testEvent()})
	if err == nil || !retryable || !strings.Contains(err.Error(), "no member accepted") {
		t.Errorf("send with one refusing and one failing member: got %v (retryable %v), want a retryable error naming both", err, retryable)
	}
	bad.set(400)
	if retryable, err := s.Send(t.Context(), []alert.Event{testEvent()}); err == nil || retryable {
		t.Errorf("send refused by every member: got %v (retryable %v), want a non-retryable error", err, retryable)
	}
}

func TestCredentialsAreSentNeverShown(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		wantAuth string
	}{
		{"basic", Options{Username: "facgw", Password: config.NewSecret("s3cret-pw")}, "Basic ZmFjZ3c6czNjcmV0LXB3"},
		{"bearer", Options{BearerToken: config.NewSecret("s3cret-token")}, "Bearer s3cret-token"},
		{"none", Options{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{status: 500}
			srv := newServer(t, r)
			tt.opts.URLs = []string{srv.URL}
			s := newSender(t, tt.opts)
			_, err := s.Send(t.Context(), []alert.Event{testEvent()})
			perr := s.Probe(t.Context())
			if r.auth[0] != tt.wantAuth || r.auth[1] != tt.wantAuth {
				t.Errorf("authorization: got %q, want %q on both requests", r.auth, tt.wantAuth)
			}
			for _, text := range []string{err.Error(), perr.Error(), s.HealthDetail()[srv.URL]} {
				if strings.Contains(text, "s3cret") {
					t.Errorf("a message shows the secret: %q", text)
				}
			}
		})
	}
}

func TestProbe(t *testing.T) {
	r := &recorder{}
	srv := newServer(t, r)
	s := newSender(t, Options{URLs: []string{srv.URL + "/am"}})
	if err := s.Probe(t.Context()); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if want := []string{"GET /am/-/healthy"}; !reflect.DeepEqual(r.paths, want) {
		t.Errorf("probe request: got %v, want %v (route prefix kept)", r.paths, want)
	}
	r.set(503)
	if err := s.Probe(t.Context()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("probe of an unhealthy alertmanager: got %v, want the 503", err)
	}
}

func TestResend(t *testing.T) {
	r := &recorder{}
	srv := newServer(t, r)
	now := t0
	s := newSender(t, Options{URLs: []string{srv.URL}, ResendEvery: 30 * time.Second, Now: func() time.Time { return now }})
	if got := s.ResendEvery(); got != 30*time.Second {
		t.Errorf("resend every: got %s, want 30s", got)
	}
	a, b := testEvent(), testEvent()
	b.ID = "other"
	if err := s.Resend(t.Context(), []alert.Event{a, b}); err != nil {
		t.Fatal(err)
	}
	if len(r.posts) != 1 || len(r.posts[0]) != 2 || !r.posts[0][0].EndsAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("re-send: got %+v, want both alerts ending 4 x 30s from now", r.posts)
	}
}

func TestNewChecksOptions(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no url", Options{}, "alertmanager: no url"},
		{"scheme", Options{URLs: []string{"ftp://am:9093"}}, `alertmanager: urls[0] "ftp://am:9093": scheme must be http or https`},
		{"no host", Options{URLs: []string{"http://"}}, `alertmanager: urls[0] "http://": no host`},
		{"credentials in url", Options{URLs: []string{"http://u:pw@am:9093"}}, "alertmanager: urls[0]: credentials in the url; use username/password or bearer_token"},
		{"query", Options{URLs: []string{"http://am:9093/?x=1"}}, `alertmanager: urls[0] "http://am:9093/?x=1": a base url has no query or fragment`},
		{"twice", Options{URLs: []string{"http://am:9093", "http://am:9093/"}}, `alertmanager: urls[1] "http://am:9093/": listed twice`},
		{"both auths", Options{URLs: []string{"http://am:9093"}, Username: "u", Password: config.NewSecret("p"), BearerToken: config.NewSecret("t")}, "alertmanager: give basic auth (username, password) or a bearer token, not both"},
		{"password alone", Options{URLs: []string{"http://am:9093"}, Password: config.NewSecret("p")}, "alertmanager: password without username"},
		{"ca missing", Options{URLs: []string{"https://am:9093"}, CAFile: "/nonexistent/ca.pem"}, "alertmanager: ca_file: open /nonexistent/ca.pem: no such file or directory"},
		{"ca not pem", Options{URLs: []string{"https://am:9093"}, CAFile: ca}, `alertmanager: ca_file "` + ca + `": no PEM certificate found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Errorf("new: got %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := New(Options{URLs: []string{"http://am:9093"}}); err != nil {
		t.Errorf("new with a plain url: got %v, want nil", err)
	}
}

func TestRetryable(t *testing.T) {
	for status, want := range map[int]bool{200: false, 301: false, 400: false, 403: false, 408: true, 422: false, 429: true, 500: true, 502: true} {
		if got := Retryable(status); got != want {
			t.Errorf("retryable(%d): got %v, want %v", status, got, want)
		}
	}
}

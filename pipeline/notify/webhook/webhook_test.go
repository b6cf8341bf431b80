package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/pipeline/notify"
)

const testSecret = "whsec-0123456789abcdef"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func event(device string, seq uint64) alert.Event {
	return alert.Event{
		ID:       alert.EpisodeID("fire/smoke", device, t0),
		Seq:      seq,
		Kind:     alert.KindFiring,
		State:    alert.Firing,
		Rule:     "fire/smoke",
		Class:    "fire",
		Severity: alert.Critical,
		Device:   device,
		Site:     "pangyo-b3",
		Gateway:  "gw-1",
		Summary:  "smoke detected by " + device,
		ActiveAt: t0,
		FiredAt:  t0,
		At:       t0,
		Values:   map[string]alert.Value{"obscuration": {Value: "2.1", Unit: "%/m", Quality: "good"}},
	}
}

// receiver is an httptest webhook receiver that verifies each request,
// answers with the status the test sets, and keeps what it accepted.
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	status []int // answers of the next requests; then 200
	bodies [][]byte
	heads  []http.Header
	events []alert.Event
	calls  int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if len(r.status) > 0 {
		st := r.status[0]
		r.status = r.status[1:]
		http.Error(w, "test says "+http.StatusText(st), st)
		return
	}
	if err := Verify([]byte(testSecret), req.Header.Get(HeaderSignature), body, time.Now(), DefaultMaxAge); err != nil {
		r.t.Errorf("receiver: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var b Body
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil || b.Version != Version {
		r.t.Errorf("receiver: body version %d, %v", b.Version, err)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.bodies = append(r.bodies, body)
	r.heads = append(r.heads, req.Header.Clone())
	r.events = append(r.events, b.Events...)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) answer(st ...int) {
	r.mu.Lock()
	r.status = append(r.status, st...)
	r.mu.Unlock()
}

func (r *receiver) got() []alert.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alert.Event(nil), r.events...)
}

func newSender(t *testing.T, opts Options) *Sender {
	t.Helper()
	if !opts.Secret.IsSet() {
		opts.Secret = config.NewSecret(testSecret)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendSignsAndEncodes(t *testing.T) {
	r := &receiver{t: t}
	srv := httptest.NewServer(r)
	defer srv.Close()
	now := time.Now().Truncate(time.Second)
	s := newSender(t, Options{URL: srv.URL + "/hook", Headers: map[string]string{"x-api-key": "k1"}, Now: func() time.Time { return now }})
	evs := []alert.Event{event("vesda-1", 1), event("vesda-2", 2)}
	if retryable, err := s.Send(t.Context(), evs); err != nil {
		t.Fatalf("send: %v (retryable %v)", err, retryable)
	}
	if !reflect.DeepEqual(r.events, evs) {
		t.Errorf("events: got %+v, want %+v", r.events, evs)
	}
	h, body := r.heads[0], r.bodies[0]
	for name, want := range map[string]string{
		"Content-Type": "application/json",
		HeaderEventIDs: evs[0].ID + ":1," + evs[1].ID + ":2",
		"X-Api-Key":    "k1",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("header %s: got %q, want %q", name, got, want)
		}
	}
	// Recompute the signature from the documented recipe, not from Sign.
	m := hmac.New(sha256.New, []byte(testSecret))
	fmt.Fprintf(m, "%d.", now.Unix())
	m.Write(body)
	want := fmt.Sprintf("t=%d,v1=%s", now.Unix(), hex.EncodeToString(m.Sum(nil)))
	if got := h.Get(HeaderSignature); got != want {
		t.Errorf("signature: got %q, want %q", got, want)
	}
}

func TestSendClassifiesAnswers(t *testing.T) {
	tests := []struct {
		name          string
		handler       http.HandlerFunc
		wantErr       string
		wantRetryable bool
	}{
		{"ok", func(w http.ResponseWriter, _ *http.Request) {}, "", false},
		{"accepted", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(202) }, "", false},
		{"bad request", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no such tenant", 400) }, "400 Bad Request: no such tenant", false},
		{"unauthorized", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(401) }, "401 Unauthorized", false},
		{"request timeout", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(408) }, "408", true},
		{"too many requests", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(429) }, "429", true},
		{"server error", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }, "500", true},
		{"unavailable", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }, "503", true},
		{"redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }, "redirects to /elsewhere", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			s := newSender(t, Options{URL: srv.URL})
			retryable, err := s.Send(t.Context(), []alert.Event{event("vesda-1", 1)})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("send: got %v, want success", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || retryable != tt.wantRetryable {
				t.Errorf("send: got %v (retryable %v), want an error containing %q (retryable %v)", err, retryable, tt.wantErr, tt.wantRetryable)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		s := newSender(t, Options{URL: srv.URL})
		if retryable, err := s.Send(t.Context(), []alert.Event{event("vesda-1", 1)}); err == nil || !retryable {
			t.Errorf("send to a closed port: got %v (retryable %v), want a retryable error", err, retryable)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
		defer srv.Close()
		defer close(release)
		s := newSender(t, Options{URL: srv.URL, Timeout: 50 * time.Millisecond})
		if retryable, err := s.Send(t.Context(), []alert.Event{event("vesda-1", 1)}); err == nil || !retryable {
			t.Errorf("send to a hung receiver: got %v (retryable %v), want a retryable error", err, retryable)
		}
	})
}

func TestVerify(t *testing.T) {
	secret := []byte(testSecret)
	body := []byte(`{"version":1,"events":[]}`)
	now := time.Unix(1_800_000_000, 0)
	good := Sign(secret, body, now.Add(-time.Minute))
	tests := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		want   string // "" for valid
	}{
		{"valid", secret, good, body, ""},
		{"valid with spaces", secret, strings.ReplaceAll(good, ",", ", "), body, ""},
		{"rotation: second v1 matches", secret, good[:strings.Index(good, "v1=")] + "v1=" + strings.Repeat("00", 32) + "," + good[strings.Index(good, "v1="):], body, ""},
		{"wrong secret", []byte("other"), good, body, "does not match"},
		{"altered body", secret, good, []byte(`{"version":1,"events":[{}]}`), "does not match"},
		{"replay", secret, Sign(secret, body, now.Add(-6*time.Minute)), body, "a replay"},
		{"future", secret, Sign(secret, body, now.Add(6*time.Minute)), body, "in the future"},
		{"no v1", secret, "t=1800000000", body, "lacks t or v1"},
		{"no t", secret, "v1=00", body, "lacks t or v1"},
		{"malformed", secret, "garbage", body, "malformed"},
		{"not hex", secret, "t=1800000000,v1=zz", body, "not hex"},
		{"bad time", secret, "t=soon,v1=00", body, `timestamp "soon"`},
		{"empty secret", nil, good, body, "empty secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, tt.body, now, DefaultMaxAge)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("verify: got %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("verify: got %v, want an error containing %q", err, tt.want)
			}
		})
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
		{"no url", Options{}, "webhook: no url"},
		{"scheme", Options{URL: "ftp://h/x"}, `webhook: url "ftp://h/x": scheme must be http or https`},
		{"no host", Options{URL: "http:///x"}, `webhook: url "http:///x": no host`},
		{"credentials", Options{URL: "https://u:pw@h/x"}, "webhook: credentials in the url; use the secret or headers"},
		{"empty secret", Options{URL: "https://h/x", Secret: config.NewSecret("")}, "webhook: secret is empty"},
		{"reserved header", Options{URL: "https://h/x", Headers: map[string]string{"x-facgw-signature": "forged"}}, "webhook: headers: X-Facgw-Signature is set by facgw"},
		{"content type", Options{URL: "https://h/x", Headers: map[string]string{"Content-Type": "text/plain"}}, "webhook: headers: Content-Type is set by facgw"},
		{"bad name", Options{URL: "https://h/x", Headers: map[string]string{"a b": "c"}}, `webhook: headers: "a b" is not a header name`},
		{"line break", Options{URL: "https://h/x", Headers: map[string]string{"X-Key": "a\r\nb"}}, "webhook: headers: X-Key: value has a line break"},
		{"ca missing", Options{URL: "https://h/x", CAFile: "/nonexistent/ca.pem"}, "webhook: ca_file: open /nonexistent/ca.pem: no such file or directory"},
		{"ca not pem", Options{URL: "https://h/x", CAFile: ca}, `webhook: ca_file "` + ca + `": no PEM certificate found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts); err == nil || err.Error() != tt.want {
				t.Errorf("new: got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSecretsNeverShown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	opts := Options{URL: srv.URL, Secret: config.NewSecret(testSecret), Headers: map[string]string{"X-Api-Key": "apikey-42"}}
	s := newSender(t, opts)
	_, err := s.Send(t.Context(), []alert.Event{event("vesda-1", 1)})
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("options", "opts", opts, "err", err)
	for _, text := range []string{err.Error(), fmt.Sprintf("%v %+v", opts, opts), logged.String()} {
		if strings.Contains(text, testSecret) {
			t.Errorf("text shows the secret: %q", text)
		}
	}
}

// TestDocsExamples keeps docs/alerting.md honest: the example body decodes
// into Body with no unknown field, and the worked signature example is what
// Sign computes and Verify accepts.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/alerting.md")
	if err != nil {
		t.Fatal(err)
	}
	body := docBlock(t, doc, "webhook-body")
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var b Body
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("webhook-body example: %v", err)
	}
	if b.Version != Version || len(b.Events) == 0 {
		t.Fatalf("webhook-body example: got version %d and %d events, want %d and some", b.Version, len(b.Events), Version)
	}
	for i, ev := range b.Events {
		if _, err := alert.Unmarshal(ev.Marshal()); err != nil || ev.Seq == 0 || ev.Site == "" || ev.At.IsZero() {
			t.Errorf("webhook-body example event %d: %v, or missing seq, site or at", i, err)
		}
	}

	sig := docBlock(t, doc, "webhook-signature")
	fields := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(sig)), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("webhook-signature example: line %q is not \"key: value\"", line)
		}
		fields[k] = v
	}
	ts, err := strconv.ParseInt(fields["t"], 10, 64)
	if err != nil {
		t.Fatalf("webhook-signature example: t: %v", err)
	}
	at := time.Unix(ts, 0)
	if got := Sign([]byte(fields["secret"]), []byte(fields["body"]), at); got != fields["header"] {
		t.Errorf("webhook-signature example: Sign gives %q, the doc says %q", got, fields["header"])
	}
	if err := Verify([]byte(fields["secret"]), fields["header"], []byte(fields["body"]), at.Add(time.Minute), DefaultMaxAge); err != nil {
		t.Errorf("webhook-signature example: verify: %v", err)
	}
}

// docBlock returns the fenced block that follows <!-- example: name -->.
func docBlock(t *testing.T, doc []byte, name string) []byte {
	t.Helper()
	marker := []byte("<!-- example: " + name + " -->\n")
	i := bytes.Index(doc, marker)
	if i < 0 {
		t.Fatalf("docs/alerting.md has no %s example", name)
	}
	rest := doc[i+len(marker):]
	start := bytes.IndexByte(rest, '\n') // after the opening fence
	end := bytes.Index(rest, []byte("\n```"))
	if !bytes.HasPrefix(rest, []byte("```")) || start < 0 || end < start {
		t.Fatalf("docs/alerting.md: %s example is not a fenced block", name)
	}
	return rest[start+1 : end+1]
}

// TestPathOverWebhook runs the webhook sender under a notify.Path: failures
// are retried in order, a refusal is retried slowly until the receiver
// accepts, and a receiver that restarts gets what queued meanwhile.
func TestPathOverWebhook(t *testing.T) {
	r := &receiver{t: t}
	r.answer(503, 503, 429, 400)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	srv := &http.Server{Handler: r}
	go srv.Serve(l)

	s := newSender(t, Options{URL: "http://" + addr + "/hook", Timeout: time.Second})
	p, err := notify.NewPath(notify.PathOptions{
		Name: "webhook", Kind: "webhook", Dir: t.TempDir(), Sender: s,
		Log:         slog.New(slog.NewTextHandler(t.Output(), nil)),
		BaseBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, SlowRetry: 100 * time.Millisecond, Batch: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		p.Close()
	}()

	var want []alert.Event
	for i := range 5 {
		ev := event("vesda-"+strconv.Itoa(i), uint64(i+1))
		want = append(want, ev)
		if err := p.Enqueue(ev); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "5 events at the receiver", func() bool { return len(r.got()) >= 5 })
	if got := r.got(); !reflect.DeepEqual(got, want) {
		t.Errorf("delivered: got seqs %v, want %v in order, once each", seqs(got), seqs(want))
	}
	if h := p.Health(); h.Failures != 4 || !h.Up {
		t.Errorf("health: got %+v, want up after 4 failures", h)
	}

	// The receiver goes away; events queue; it comes back on the same address.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 5; i < 8; i++ {
		ev := event("vesda-"+strconv.Itoa(i), uint64(i+1))
		want = append(want, ev)
		if err := p.Enqueue(ev); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the path down with events queued", func() bool { h := p.Health(); return !h.Up && h.Depth == 3 })
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again (taken meanwhile): %v", addr, err)
	}
	srv2 := &http.Server{Handler: r}
	go srv2.Serve(l2)
	defer srv2.Close()
	waitFor(t, "the queued events after the receiver's restart", func() bool { return len(r.got()) >= 8 })
	if got := r.got(); !reflect.DeepEqual(seqs(got), seqs(want)) {
		t.Errorf("delivered: got seqs %v, want %v", seqs(got), seqs(want))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func seqs(evs []alert.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

package gateway

// An internal test: it drives planAlerting and applyAlerting directly (the
// gateway_test helpers start the demo through internal/demo, which imports
// this package, so they cannot be used from here). Once Reload calls them,
// the same steps hold through g.Reload.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/web"
	"github.com/facgw/facgw/pipeline/notify/webhook"
)

// hookReceiver is a webhook receiver on 127.0.0.1 that verifies every
// request's signature with its secret and keeps the events of the valid
// ones.
type hookReceiver struct {
	*httptest.Server
	secret string
	mu     sync.Mutex
	evs    []alert.Event
	bad    int
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	t.Helper()
	r := &hookReceiver{secret: secret}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := webhook.Verify([]byte(r.secret), req.Header.Get(webhook.HeaderSignature), body, time.Now(), webhook.DefaultMaxAge); err != nil {
			r.mu.Lock()
			r.bad++
			r.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var b webhook.Body
		if err := json.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.evs = append(r.evs, b.Events...)
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) events() []alert.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alert.Event(nil), r.evs...)
}

func (r *hookReceiver) refused() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

func (r *hookReceiver) has(id string, kind alert.Kind) bool {
	for _, e := range r.events() {
		if e.ID == id && e.Kind == kind {
			return true
		}
	}
	return false
}

// hook is one webhook path of a test config.
type hook struct{ name, url, secret, caFile string }

// alertingConfig loads a config with one disabled device (nothing is
// polled), no rules, the given max_silence and webhook paths, and the
// state in dir.
func alertingConfig(t *testing.T, dir, maxSilence string, hooks ...hook) (*config.Config, *profiles.Registry) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `site: lab
gateway: gw-1
state_dir: %q
http: {listen: "127.0.0.1:0"}
rules: {packs: []}
devices:
  - {id: bms-1, profile: generic-liion-bms, transport: modbus-tcp, address: "127.0.0.1:1", disabled: true}
alerting:
  max_silence: %s
  webhook:
`, dir, maxSilence)
	for _, h := range hooks {
		fmt.Fprintf(&b, "    - {name: %s, url: %q, secret: %q", h.name, h.url, h.secret)
		if h.caFile != "" {
			fmt.Fprintf(&b, ", ca_file: %q", h.caFile)
		}
		b.WriteString("}\n")
	}
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "facgw.yaml"), []byte(b.String()), reg)
	if err != nil {
		t.Fatalf("config:\n%s\n%v", b.String(), err)
	}
	return cfg, reg
}

// runGateway builds and runs a gateway until the test ends.
func runGateway(t *testing.T, cfg *config.Config, reg *profiles.Registry) *Gateway {
	t.Helper()
	g, err := New(cfg, reg, Options{Log: slog.New(slog.NewTextHandler(t.Output(), nil)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- g.Run(ctx, func() { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	return g
}

// eventually polls cond until it holds; the bound only turns a hang into
// a failure.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testAlert(rule, device string, at time.Time) alert.Event {
	return alert.Event{ID: alert.EpisodeID(rule, device, at), Kind: alert.KindFiring, State: alert.Firing, Rule: rule, Class: "power",
		Severity: alert.Critical, Device: device, Summary: rule + " on " + device, ActiveAt: at, FiredAt: at, At: at}
}

// reloadAlerting plans and applies cfg's alerting section, checking what
// the plan says it changes.
func reloadAlerting(t *testing.T, g *Gateway, cfg *config.Config, want ...string) {
	t.Helper()
	p, err := g.planAlerting(cfg)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if got := p.summary(); !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Errorf("summary: got %q, want %q", got, want)
	}
	if got := p.needsRestart(); len(got) != 0 {
		t.Errorf("needs restart: got %q, want nothing", got)
	}
	g.applyAlerting(p)
}

func pathNames(g *Gateway) []string {
	var out []string
	for _, h := range g.alerts.disp.Health() {
		out = append(out, h.Name)
	}
	return out
}

// TestAlertingReloadPaths: (a) a webhook whose receiver is down, with an
// alert queued, is pointed at another receiver with another secret: the
// queued alert arrives there, signed with the new secret; (b) an added
// path gets the alert firing now, then new ones, and a longer max_silence
// applies; (c) a removed path gets nothing more while the other still
// delivers.
func TestAlertingReloadPaths(t *testing.T) {
	const (
		secret1 = "first-secret-0123456789"
		secret2 = "second-secret-0123456789"
		secret3 = "audit-secret-0123456789"
	)
	state := t.TempDir()
	down := newHookReceiver(t, secret1)
	down.Close() // nothing listens there any more
	cfg, reg := alertingConfig(t, state, "1h", hook{"ops", down.URL, secret1, ""})
	g := runGateway(t, cfg, reg)

	// (a) Changed URL and secret while an alert waits for a dead receiver.
	t0 := time.Now().UTC().Truncate(time.Second)
	x := testAlert("power/ups-on-battery", "ups-1", t0)
	g.alerts.submit([]alert.Event{x})
	eventually(t, "the alert queued on ops, its receiver down", func() bool {
		h := g.alerts.disp.Health()
		return len(h) == 1 && h[0].Depth == 1 && h[0].Failures > 0
	})
	ops := newHookReceiver(t, secret2)
	cfg2, _ := alertingConfig(t, state, "1h", hook{"ops", ops.URL, secret2, ""})
	reloadAlerting(t, g, cfg2, "alerting.webhook[ops] changed")
	eventually(t, "the queued alert at the new receiver", func() bool { return ops.has(x.ID, alert.KindFiring) })
	if n := ops.refused(); n != 0 {
		t.Errorf("new receiver: %d requests not signed with the new secret, want 0", n)
	}
	// Reloading the same section changes nothing.
	reloadAlerting(t, g, cfg2)

	// (b) An added path learns what is burning, then what happens next; a
	// longer max_silence applies at once.
	silence := web.SilenceRequest{Rule: "power/ups-overload", Duration: "24h", Reason: "battery works"}
	if _, err := g.alerts.AddSilence(silence, "tester"); err == nil {
		t.Fatalf("24h silence under max_silence 1h: got nil, want an error")
	}
	audit := newHookReceiver(t, secret3)
	cfg3, _ := alertingConfig(t, state, "48h", hook{"ops", ops.URL, secret2, ""}, hook{"audit", audit.URL, secret3, ""})
	reloadAlerting(t, g, cfg3, "alerting.max_silence 1h0m0s -> 48h0m0s", "alerting.webhook[audit] added")
	eventually(t, "the firing alert at the added receiver", func() bool { return audit.has(x.ID, alert.KindFiring) })
	if _, err := g.alerts.AddSilence(silence, "tester"); err != nil {
		t.Errorf("24h silence under max_silence 48h: got %v, want it accepted", err)
	}
	y := testAlert("power/ups-overload", "ups-2", t0)
	y.Severity = alert.Major
	g.alerts.submit([]alert.Event{y})
	eventually(t, "a new alert on both paths", func() bool { return audit.has(y.ID, alert.KindFiring) && ops.has(y.ID, alert.KindFiring) })
	if got := pathNames(g); !reflect.DeepEqual(got, []string{"ops", "audit"}) {
		t.Errorf("paths: got %v, want ops, audit", got)
	}

	// (c) A removed path gets nothing more; the other still delivers.
	cfg4, _ := alertingConfig(t, state, "48h", hook{"audit", audit.URL, secret3, ""})
	reloadAlerting(t, g, cfg4, "alerting.webhook[ops] removed")
	before := len(ops.events())
	r := x
	r.Kind, r.State, r.ResolvedAt, r.At = alert.KindResolved, alert.Resolved, time.Now().UTC(), time.Now().UTC()
	g.alerts.submit([]alert.Event{r})
	eventually(t, "the resolution on the remaining path", func() bool { return audit.has(x.ID, alert.KindResolved) })
	// ops's sender stopped before applyAlerting returned: nothing can
	// reach its receiver any more.
	if got := ops.events(); len(got) != before {
		t.Errorf("removed path: got %d more events, want none", len(got)-before)
	}
	if got := pathNames(g); !reflect.DeepEqual(got, []string{"audit"}) {
		t.Errorf("paths: got %v, want audit", got)
	}
	eventually(t, "every event dispatched", func() bool { return len(g.alerts.ledger.Undispatched()) == 0 })
	if _, err := os.Stat(filepath.Join(state, "alerts", "path-ops")); err != nil {
		t.Errorf("removed path's outbox directory: %v, want it kept", err)
	}
	for _, rcv := range []*hookReceiver{ops, audit} {
		if n := rcv.refused(); n != 0 {
			t.Errorf("%s: %d requests with a bad signature", rcv.URL, n)
		}
	}
}

// TestAlertingReloadRefused: a plan that cannot build a sender fails,
// closing the outboxes it opened, and leaves the running paths as they
// are; the same path can then be planned again.
func TestAlertingReloadRefused(t *testing.T) {
	const secret = "ops-secret-0123456789"
	state := t.TempDir()
	ops := newHookReceiver(t, secret)
	cfg, reg := alertingConfig(t, state, "1h", hook{"ops", ops.URL, secret, ""})
	g := runGateway(t, cfg, reg)

	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Config order: alertmanager, webhook, snmp; the added "extra" is
	// opened before "zbad" fails.
	bad, _ := alertingConfig(t, state, "1h", hook{"ops", ops.URL, secret, ""}, hook{"extra", ops.URL, secret, ""},
		hook{"zbad", ops.URL, secret, notPEM})
	if _, err := g.planAlerting(bad); err == nil || !strings.Contains(err.Error(), "zbad") {
		t.Fatalf("plan with an unusable ca_file: got %v, want an error naming zbad", err)
	}
	if got := pathNames(g); !reflect.DeepEqual(got, []string{"ops"}) {
		t.Errorf("paths after a refused plan: got %v, want ops", got)
	}
	good, _ := alertingConfig(t, state, "1h", hook{"ops", ops.URL, secret, ""}, hook{"extra", ops.URL, secret, ""})
	p, err := g.planAlerting(good)
	if err != nil {
		t.Fatalf("plan after a refused one: %v (was extra's outbox left open?)", err)
	}
	p.discard()
	x := testAlert("power/ups-on-battery", "ups-1", time.Now().UTC())
	g.alerts.submit([]alert.Event{x})
	eventually(t, "the alert on ops", func() bool { return ops.has(x.ID, alert.KindFiring) })
	if got := pathNames(g); !reflect.DeepEqual(got, []string{"ops"}) {
		t.Errorf("paths after a discarded plan: got %v, want ops", got)
	}
}

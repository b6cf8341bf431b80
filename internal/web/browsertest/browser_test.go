package browsertest

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
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/demo"
	"github.com/facgw/facgw/internal/gateway"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/testpeer"
	"github.com/facgw/facgw/internal/web"
	"github.com/facgw/facgw/pipeline"
)

const chromiumPath = "/usr/bin/chromium"

// Demo users of deploy/demo.yaml.
const (
	operatorName = "operator"
	operatorPass = "facgw-demo-operator"
)

// startDemo starts what `make run` starts, through internal/demo, with the
// simulator's clock stepped by hand and fast polling. It returns once every
// device has been polled.
func startDemo(t testing.TB) (*demo.Info, *gateway.Gateway, string) {
	t.Helper()
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("../../../deploy/demo.yaml", reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.StateDir = t.TempDir()
	// Poll fast so the test needs few wall-clock seconds; the cadence is
	// not what is under test.
	for i := range cfg.Devices {
		cfg.Devices[i].Poll = map[string]time.Duration{"default": 100 * time.Millisecond, "safety": 100 * time.Millisecond}
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	info, err := demo.Start(ctx, cfg, "../../../deploy/facility.yaml", log, demo.Options{Manual: true, Seed: 7})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	gw, err := gateway.New(cfg, reg, gateway.Options{Log: log, Version: "test", Demo: info})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		gw.Run(ctx, nil)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitFor(t, "http listener", func() bool { return gw.HTTPAddr() != "" })
	for _, d := range cfg.Devices {
		waitFor(t, d.ID+" polled", func() bool { return len(gw.State().Points(d.ID)) > 0 })
	}
	return info, gw, "http://" + gw.HTTPAddr() + "/"
}

// waitFor polls cond until it holds. The bound only turns a hang into a
// failure; no assertion depends on how long anything took.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// browser starts headless Chromium with the flags that work on this kind
// of machine (docs: /work/shared/docs/peers.md) and returns a tab.
func browser(t testing.TB) context.Context {
	t.Helper()
	testpeer.Require(t, "chromium", chromiumPath)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs actions with a generous bound, failing the test on error.
func do(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// until waits for a JavaScript expression to be truthy in the page.
func until(t testing.TB, ctx context.Context, what, expr string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(tctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// eval evaluates expr in the page (awaiting a promise) and decodes it.
func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// screenshot saves the viewport as a PNG under the test's temp dir and,
// when FACGW_SCREENSHOTS names a directory, there too, to look at.
func screenshot(t testing.TB, ctx context.Context, dir, name string) string {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if keep := os.Getenv("FACGW_SCREENSHOTS"); keep != "" {
		if err := os.WriteFile(filepath.Join(keep, name+".png"), png, 0o644); err != nil {
			t.Errorf("keep screenshot: %v", err)
		}
	}
	t.Logf("screenshot %s", path)
	return path
}

// TestDashboardIntegration walks through the dashboard against the running
// demo: the overview shows every demo device; a fault shows as bad, never
// as a number; an operator logs in and triggers the thermal-runaway
// scenario from the page, and the fire alert appears without a reload; a
// viewer cannot acknowledge it; the operator does.
func TestDashboardIntegration(t *testing.T) {
	testpeer.Require(t, "chromium", chromiumPath)
	info, gw, url := startDemo(t)
	ctx := browser(t)
	shots := t.TempDir()

	do(t, ctx, "open the dashboard", chromedp.Navigate(url))
	until(t, ctx, "the page to load", `document.body.dataset.ready === "1"`)

	// Every demo device has its card, grouped by class.
	var ids []string
	for _, d := range gw.Devices() {
		ids = append(ids, d.ID)
	}
	idsJSON, _ := json.Marshal(ids)
	until(t, ctx, "a card per device", fmt.Sprintf(`%s.every(id => document.querySelector('article.card[data-device="' + id + '"]'))`, idsJSON))
	got := eval[[]string](t, ctx, `[...document.querySelectorAll("article.card")].map(e => e.dataset.device).sort()`)
	if strings.Join(got, ",") != strings.Join(sortedCopy(ids), ",") {
		t.Errorf("cards: got %v, want one per demo device %v", got, sortedCopy(ids))
	}
	for _, g := range []string{"power", "battery", "cooling", "network", "fire"} {
		if n := eval[int](t, ctx, fmt.Sprintf(`document.querySelectorAll('section.group[data-group="%s"] article.card').length`, g)); n == 0 {
			t.Errorf("group %s: got no cards, want the demo's %s devices", g, g)
		}
	}
	// The load-shed panel says what it knows, never nothing.
	until(t, ctx, "the load-shed panel", `/not configured|not available in this build|disarmed|ARMED/.test(document.getElementById("loadshed-body").textContent)`)
	screenshot(t, ctx, shots, "overview")

	// A silent device turns bad: its values read "bad (timeout…)", never a
	// number, and the card updates live.
	if err := info.Sim.SetFault("crac-2", "silent", ""); err != nil {
		t.Fatal(err)
	}
	until(t, ctx, "crac-2 bad on its card", `(() => {
		const c = document.querySelector('article.card[data-device="crac-2"]');
		if (!c || !c.classList.contains("h-bad")) return false;
		const vs = [...c.querySelectorAll("td.v")].map(e => e.textContent);
		return vs.length > 0 && vs.every(v => v.startsWith("bad (timeout"));
	})()`)
	screenshot(t, ctx, shots, "device-bad")
	if err := info.Sim.SetFault("crac-2", "none", ""); err != nil {
		t.Fatal(err)
	}

	// Anonymous is a viewer: the demo trigger is disabled.
	until(t, ctx, "the demo panel", `!document.getElementById("demo").hidden`)
	if !eval[bool](t, ctx, `document.getElementById("demo-trigger").disabled`) {
		t.Error("demo trigger as a viewer: got enabled, want disabled")
	}

	// The operator logs in on the page.
	login(t, ctx)

	// A marker a reload would wipe out.
	eval[bool](t, ctx, `(window.__noReload = true)`)
	do(t, ctx, "trigger thermal runaway on bms-rack1",
		chromedp.SetValue(chromedp.CSS("#demo-scenario"), "thermal-runaway"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("demo-scenario").dispatchEvent(new Event("change"))`),
		chromedp.SetValue(chromedp.CSS("#demo-device"), "bms-rack1"),
		chromedp.Click(chromedp.CSS("#demo-trigger")),
	)
	until(t, ctx, "the trigger's answer", `/thermal-runaway started on bms-rack1/.test(document.getElementById("demo-result").textContent)`)
	if sc := simScenario(info, "bms-rack1"); sc != "thermal-runaway" {
		t.Fatalf("simulator scenario of bms-rack1: got %q, want thermal-runaway", sc)
	}
	// The simulator's clock is stepped by hand: move it on until the
	// alert is there.
	stop := stepSim(info, 5*time.Second)
	const alertSel = `li.alert[data-rule="fire/liion-offgas-alarm"]`
	until(t, ctx, "the off-gas alert, live", `document.querySelector('`+alertSel+`') !== null`)
	stop()
	if !eval[bool](t, ctx, `window.__noReload === true`) {
		t.Fatal("the page reloaded: want the alert to arrive over the stream")
	}
	if !eval[bool](t, ctx, `document.querySelector('`+alertSel+`').classList.contains("sev-critical")`) {
		t.Error("off-gas alert: got no sev-critical class, want critical")
	}
	until(t, ctx, "the critical banner", `!document.getElementById("banner-critical").hidden`)
	screenshot(t, ctx, shots, "fire-alert")
	alertID := eval[string](t, ctx, `document.querySelector('`+alertSel+`').dataset.alert`)

	// A viewer cannot acknowledge: logged out, the button is disabled, and
	// the request itself is refused.
	do(t, ctx, "log out", chromedp.Click(chromedp.CSS("#logout")))
	until(t, ctx, "logged out", `!document.getElementById("login").hidden`)
	until(t, ctx, "ack disabled for a viewer", `document.querySelector('`+alertSel+` button.ack-btn').disabled`)
	status := eval[int](t, ctx, fmt.Sprintf(`fetch("api/v1/alerts/%s/ack", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"}).then(r => r.status)`, alertID))
	if status != http.StatusUnauthorized {
		t.Errorf("ack as anonymous viewer: got %d, want 401", status)
	}
	screenshot(t, ctx, shots, "viewer")

	// The operator acknowledges.
	login(t, ctx)
	until(t, ctx, "ack enabled for the operator", `!document.querySelector('`+alertSel+` button.ack-btn').disabled`)
	do(t, ctx, "acknowledge", chromedp.Click(chromedp.CSS(alertSel+` button.ack-btn`)))
	until(t, ctx, "the acknowledgement shown", `/acknowledged by operator/.test(document.querySelector('`+alertSel+`').textContent)`)
	acked := false
	for _, e := range gwAlerts(gw) {
		if e.ID == alertID && e.Ack != nil && e.Ack.By == operatorName {
			acked = true
		}
	}
	if !acked {
		t.Errorf("alert %s in the gateway: got no ack by %s", alertID, operatorName)
	}

	// Device detail with charts from the history.
	do(t, ctx, "open bms-rack1", chromedp.Click(chromedp.CSS(`article.card[data-device="bms-rack1"]`)))
	until(t, ctx, "charts", `document.querySelectorAll("#charts svg.chart polyline").length > 0`)
	screenshot(t, ctx, shots, "detail")
}

func login(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, "log in as operator",
		chromedp.SetValue(chromedp.CSS(`#login input[name="name"]`), operatorName),
		chromedp.SetValue(chromedp.CSS(`#login input[name="password"]`), operatorPass),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
	)
	until(t, ctx, "logged in", `document.getElementById("me-name").textContent === "operator (operator)"`)
}

func simScenario(info *demo.Info, id string) string {
	for _, d := range info.Sim.Devices() {
		if d.ID == id {
			return d.Scenario
		}
	}
	return ""
}

// stepSim moves the simulator's clock by dt every 100 ms until stopped.
func stepSim(info *demo.Info, dt time.Duration) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				info.Sim.Step(dt)
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

func gwAlerts(gw *gateway.Gateway) []alertEvent {
	resp, err := http.Get("http://" + gw.HTTPAddr() + "/api/v1/alerts")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var doc struct {
		Active []alertEvent `json:"active"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return doc.Active
}

type alertEvent struct {
	ID  string `json:"id"`
	Ack *struct {
		By string `json:"by"`
	} `json:"ack"`
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// BenchmarkDashboardLoad is the dashboard's load time in headless Chromium
// against the running demo: from navigation until every device's card is
// drawn from the snapshot (the page sets data-ready after its first
// snapshots).
func BenchmarkDashboardLoad(b *testing.B) {
	testpeer.Require(b, "chromium", chromiumPath)
	_, gw, url := startDemo(b)
	ctx := browser(b)
	n := len(gw.Devices())
	loadPage(b, ctx, url, n)
}

// BenchmarkDashboardLoad250 is BenchmarkDashboardLoad on a synthetic site
// of 250 devices x 60 points served by web.Handler alone.
func BenchmarkDashboardLoad250(b *testing.B) {
	testpeer.Require(b, "chromium", chromiumPath)
	src := newSynthetic(250, 60)
	srv := httptest.NewServer(web.Handler(src, web.Options{History: 600, Log: slog.New(slog.DiscardHandler)}))
	b.Cleanup(srv.Close)
	ctx := browser(b)
	loadPage(b, ctx, srv.URL+"/", 250)
}

func loadPage(b *testing.B, ctx context.Context, url string, cards int) {
	ready := fmt.Sprintf(`document.body.dataset.ready === "1" && document.querySelectorAll("article.card").length === %d`, cards)
	for b.Loop() {
		do(b, ctx, "open the dashboard", chromedp.Navigate(url))
		tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, err := chromedp.Run(tctx, chromedp.Poll[chromedp.Void](ready, chromedp.WithPollingInterval(2*time.Millisecond)))
		cancel()
		if err != nil {
			b.Fatalf("waiting for %d cards: %v", cards, err)
		}
	}
}

// synthetic is a web.Source of n devices with m numeric points each.
type synthetic struct {
	devices []web.DeviceInfo
	state   *pipeline.State
}

func newSynthetic(n, m int) *synthetic {
	s := &synthetic{state: pipeline.NewState(3)}
	classes := []string{"ups", "pdu", "battery", "cooling", "switch", "fire"}
	now := time.Now()
	for i := range n {
		id := fmt.Sprintf("dev-%03d", i)
		s.devices = append(s.devices, web.DeviceInfo{ID: id, Profile: "synthetic", Class: classes[i%len(classes)], Labels: map[string]string{"room": fmt.Sprintf("hall-%d", i%4)}})
		pts := make([]point.Point, m)
		for j := range pts {
			pts[j] = point.Point{Device: id, Name: fmt.Sprintf("p.%02d", j), Num: float64(j), Unit: point.Celsius, Time: now}
		}
		s.state.Update(pts, time.Hour)
	}
	return s
}

func (s *synthetic) Devices() []web.DeviceInfo       { return s.devices }
func (s *synthetic) Destinations() []web.Destination { return nil }
func (s *synthetic) Events() []web.Event             { return nil }
func (s *synthetic) State() *pipeline.State          { return s.state }
func (s *synthetic) PollStats() []pipeline.Stats     { return nil }
func (s *synthetic) Started() time.Time              { return time.Time{} }
func (s *synthetic) Site() (site, gateway string)    { return "bench", "gw-bench" }

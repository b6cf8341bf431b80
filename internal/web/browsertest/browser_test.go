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

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/demo"
	"github.com/facgw/facgw/internal/demo/demotest"
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
	engineerName = "engineer"
	engineerPass = "facgw-demo-engineer"
)

// cheapHashes are bcrypt hashes of the demo passwords at the least cost
// the gateway accepts (auth.MinHashCost). The demo's own cost-12 hashes
// take seconds each under -race on a busy 2-core machine, and the test
// logs in several times; what is under test is the page, not bcrypt.
var cheapHashes = map[string]string{
	operatorName: "$2a$10$aZsyaXbZWOjEEviWAUiZL.lmMFmlSFDLkZoWfQmT3lduV/gOxfczW",
	engineerName: "$2a$10$0NJUDeB5EDoAOaiQEsOmBOa1zTEIVGb0QpA0r6DBQMyP18bTN01em",
}

// staleDevice is the demo device the stale-value check silences. Its
// request timeout (10 s) is raised in startDemo so that a silent poll
// outlasts stale_after intervals (4 s) and the staleness sweep gets to it.
const staleDevice = "crac-1"

// policy is the demo's load-shed policy (deploy/demo.yaml).
const policy = "utility-failure"

// startDemo starts what `make run` starts, through internal/demo, with the
// simulator's clock stepped by hand and fast polling. It returns once every
// device has been polled.
func startDemo(t testing.TB) (*demo.Info, *gateway.Gateway, string) {
	t.Helper()
	d := demotest.Start(t, "../../..", func(cfg *config.Config) {
		for i, u := range cfg.HTTP.Users {
			if h, ok := cheapHashes[u.Name]; ok {
				cfg.HTTP.Users[i].PasswordHash = h
			}
		}
		for i := range cfg.Devices {
			cfg.Devices[i].Poll = map[string]time.Duration{"default": 100 * time.Millisecond, "safety": 100 * time.Millisecond}
			if cfg.Devices[i].ID == staleDevice {
				// A poll of the silenced device outlasts stale_after
				// intervals (40 x 100 ms), so its points go stale.
				timeout, retries := 10*time.Second, 0
				cfg.Devices[i].TimeoutOverride, cfg.Devices[i].RetriesOverride = &timeout, &retries
			}
		}
	})
	return d.Info, d.Gateway, d.Base + "/"
}

// waitFor polls cond until it holds. The bound only turns a hang into a
// failure; no assertion depends on how long anything took.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
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
	tctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// until waits for a JavaScript expression to be truthy in the page.
func until(t testing.TB, ctx context.Context, what, expr string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if _, err := chromedp.Run(tctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))); err != nil {
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

// TestDashboardIntegration runs the dashboard against the running demo in
// one headless Chromium, shared by the subtests in order: the overview and
// the alert walk-through, stale values, load-shed arming with its
// confirmation, an operator's refused arming, and silences.
func TestDashboardIntegration(t *testing.T) {
	testpeer.Require(t, "chromium", chromiumPath)
	info, gw, url := startDemo(t)
	ctx := browser(t)
	shots := t.TempDir()

	do(t, ctx, "open the dashboard", chromedp.Navigate(url))
	until(t, ctx, "the page to load", `document.body.dataset.ready === "1"`)

	t.Run("walkthrough", func(t *testing.T) { closeDialogs(t, ctx); walkthrough(t, ctx, info, gw, shots) })
	t.Run("stale", func(t *testing.T) { closeDialogs(t, ctx); staleValues(t, ctx, info, gw, shots) })
	t.Run("loadshed-arm", func(t *testing.T) { closeDialogs(t, ctx); loadshedArm(t, ctx, gw, shots) })
	t.Run("loadshed-restore", func(t *testing.T) { closeDialogs(t, ctx); loadshedRestore(t, ctx, shots) })
	t.Run("loadshed-operator", func(t *testing.T) { closeDialogs(t, ctx); loadshedOperator(t, ctx, gw) })
	t.Run("silence", func(t *testing.T) { closeDialogs(t, ctx); silenceFromPage(t, ctx, info, gw, shots) })
}

// walkthrough: the overview shows every demo device; a fault shows as
// bad, never as a number; an operator logs in and triggers the
// thermal-runaway scenario from the page, and the fire alert appears
// without a reload; a viewer cannot acknowledge it; the operator does,
// with a comment, through the ack dialog.
func walkthrough(t *testing.T, ctx context.Context, info *demo.Info, gw *gateway.Gateway, shots string) {
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
	// The demo has a load-shed policy: the panel shows it.
	until(t, ctx, "the load-shed panel", `document.querySelector('#loadshed-body .ls-policy[data-policy="`+policy+`"]') !== null`)
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
	loginAs(t, ctx, operatorName, operatorPass)

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
	alertSel := offgasAlert("bms-rack1")
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
	logout(t, ctx)
	until(t, ctx, "ack disabled for a viewer", `document.querySelector('`+alertSel+` button.ack-btn').disabled`)
	status := eval[int](t, ctx, fmt.Sprintf(`fetch("api/v1/alerts/%s/ack", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"}).then(r => r.status)`, alertID))
	if status != http.StatusUnauthorized {
		t.Errorf("ack as anonymous viewer: got %d, want 401", status)
	}
	screenshot(t, ctx, shots, "viewer")

	// The operator acknowledges with a comment, through the dialog.
	loginAs(t, ctx, operatorName, operatorPass)
	until(t, ctx, "ack enabled for the operator", `!document.querySelector('`+alertSel+` button.ack-btn').disabled`)
	const comment = "on site, rack 1 isolated"
	press(t, ctx, alertSel+` button.ack-btn`)
	until(t, ctx, "the ack dialog", `document.getElementById("ack-dialog").open`)
	do(t, ctx, "acknowledge with a comment",
		chromedp.SendKeys(chromedp.CSS("#ack-comment"), comment),
		chromedp.Click(chromedp.CSS("#ack-confirm")))
	until(t, ctx, "the acknowledgement shown", `/acknowledged by operator.*: on site, rack 1 isolated/.test(document.querySelector('`+alertSel+`').textContent)`)
	var ack *alertAck
	for _, e := range gwAlerts(gw) {
		if e.ID == alertID {
			ack = e.Ack
		}
	}
	if ack == nil || ack.By != operatorName || ack.Comment != comment {
		t.Errorf("alert %s in the gateway: got ack %+v, want by %s with comment %q", alertID, ack, operatorName, comment)
	}

	// Device detail with charts from the history.
	do(t, ctx, "open bms-rack1", chromedp.Click(chromedp.CSS(`article.card[data-device="bms-rack1"]`)))
	until(t, ctx, "charts", `document.querySelectorAll("#charts svg.chart polyline").length > 0`)
	screenshot(t, ctx, shots, "detail")
	do(t, ctx, "close the detail", chromedp.Click(chromedp.CSS("#detail-close")))
}

// staleValues: a device made silent keeps being polled without answer;
// once a poll outlasts stale_after intervals its points go stale, and the
// overview shows "stale", never the last number.
func staleValues(t *testing.T, ctx context.Context, info *demo.Info, gw *gateway.Gateway, shots string) {
	card := `article.card[data-device="` + staleDevice + `"]`
	until(t, ctx, staleDevice+" good first", `document.querySelector('`+card+`.h-good') !== null`)
	if err := info.Sim.SetFault(staleDevice, "silent", ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = info.Sim.SetFault(staleDevice, "none", "") })
	// The gateway's own view first: the sweep marks the points stale.
	waitFor(t, staleDevice+" stale in the gateway", func() bool {
		for _, p := range gw.State().Points(staleDevice) {
			if p.Quality == point.Stale {
				return true
			}
		}
		return false
	})
	// On the card, every stale row reads "stale" and holds no digit (the
	// last value is kept in the API for the record, never shown as now).
	until(t, ctx, staleDevice+" stale on its card", `(() => {
		const rows = [...document.querySelectorAll('`+card+` tr.q-stale')];
		return rows.length > 0;
	})()`)
	type row struct {
		Name  string `json:"name"`
		Class string `json:"class"`
		Text  string `json:"text"`
	}
	rows := eval[[]row](t, ctx, `[...document.querySelectorAll('`+card+` tr')].map(r => ({name: r.dataset.point, class: r.className, text: r.querySelector("td.v").textContent}))`)
	stale := 0
	for _, r := range rows {
		switch r.Class {
		case "q-stale":
			stale++
			if r.Text != "stale" {
				t.Errorf("%s %s on the card: got %q, want \"stale\"", staleDevice, r.Name, r.Text)
			}
		case "q-bad":
			if !strings.HasPrefix(r.Text, "bad (") {
				t.Errorf("%s %s on the card: got %q, want \"bad (reason)\"", staleDevice, r.Name, r.Text)
			}
		default:
			t.Errorf("%s %s on the card: got quality class %q with %q while the device is silent, want stale or bad", staleDevice, r.Name, r.Class, r.Text)
		}
	}
	if stale == 0 {
		t.Errorf("%s card: got no stale row in %+v, want some", staleDevice, rows)
	}
	// The summary above the cards follows live updates too: it counts as
	// many good devices as there are good cards.
	until(t, ctx, "the summary agreeing with the cards", `(() => {
		const m = / (\d+) good/.exec(document.getElementById("counts").textContent);
		return m !== null && Number(m[1]) === document.querySelectorAll("article.card.h-good").length && document.querySelector('`+card+`.h-good') === null;
	})()`)
	screenshot(t, ctx, shots, "device-stale")
}

// loadshedArm: the panel shows the demo's policy with its stages in plan
// order; arming it needs the confirmation dialog: cancelling leaves it
// disarmed, a wrongly typed name keeps the button disabled, the right name
// and a reason arm it, by "engineer", for the chosen duration. Disarm and
// the inhibit switch go through their dialogs too.
func loadshedArm(t *testing.T, ctx context.Context, gw *gateway.Gateway, shots string) {
	loginAs(t, ctx, engineerName, engineerPass)
	pol := `#loadshed-body .ls-policy[data-policy="` + policy + `"]`
	until(t, ctx, "the policy, disarmed, with Arm enabled", `(() => {
		const p = document.querySelector('`+pol+`');
		return p !== null && p.querySelector(".ls-badge").textContent === "disarmed" && !p.querySelector("button.ls-arm").disabled;
	})()`)

	doc := gwLoadshed(t, gw)
	pst := doc.policy(t, policy)
	if pst.Armed != nil {
		t.Fatalf("policy %s at start: got armed by %s, want disarmed (the demo's default)", policy, pst.Armed.By)
	}
	var wantStages []string
	var wantLoads []planLoad
	for _, st := range pst.Plan {
		var names []string
		for _, l := range st.Loads {
			names = append(names, l.Load)
			wantLoads = append(wantLoads, l)
		}
		wantStages = append(wantStages, strings.Join(names, ","))
	}
	if len(wantLoads) == 0 {
		t.Fatalf("policy %s: the API's plan has no loads", policy)
	}
	gotStages := eval[[]string](t, ctx, `[...document.querySelectorAll('`+pol+` li.ls-stage')].map(li => li.dataset.loads)`)
	if strings.Join(gotStages, " | ") != strings.Join(wantStages, " | ") {
		t.Errorf("stages on the panel: got %q, want the plan's %q in order", gotStages, wantStages)
	}
	if txt := eval[string](t, ctx, `document.getElementById("loadshed").textContent`); strings.Contains(txt, "null") || strings.Contains(txt, "undefined") || strings.Contains(txt, "NaN") {
		t.Errorf("load-shed panel: got %q, want no null, undefined or NaN", txt)
	}
	screenshot(t, ctx, shots, "loadshed-panel")

	// Cancel leaves it disarmed.
	openArm := func() {
		t.Helper()
		do(t, ctx, "click Arm", chromedp.Click(chromedp.CSS(pol+` button.ls-arm`)))
		until(t, ctx, "the arm dialog", `document.getElementById("ls-dialog").open`)
	}
	openArm()
	what := eval[string](t, ctx, `document.getElementById("ls-dialog-what").textContent`)
	for _, l := range wantLoads {
		if !strings.Contains(what, l.Load) || !strings.Contains(what, l.Device+" "+l.Point) {
			t.Errorf("arm dialog: got %q, want it to name load %s (%s %s)", what, l.Load, l.Device, l.Point)
		}
	}
	if !eval[bool](t, ctx, `document.getElementById("ls-confirm").disabled`) {
		t.Error("arm dialog, nothing typed: got Arm enabled, want disabled")
	}
	do(t, ctx, "fill in the arm dialog",
		chromedp.SendKeys(chromedp.CSS("#ls-name"), policy),
		chromedp.SendKeys(chromedp.CSS("#ls-reason"), "generator test"))
	if txt := eval[string](t, ctx, `document.getElementById("ls-dialog").textContent`); strings.Contains(txt, "null") || strings.Contains(txt, "undefined") || strings.Contains(txt, "NaN") {
		t.Errorf("arm dialog: got %q, want no null, undefined or NaN", txt)
	}
	screenshot(t, ctx, shots, "arm-dialog")
	do(t, ctx, "cancel", chromedp.Click(chromedp.CSS("#ls-cancel")))
	until(t, ctx, "the dialog closed", `!document.getElementById("ls-dialog").open`)
	if a := gwLoadshed(t, gw).policy(t, policy).Armed; a != nil {
		t.Fatalf("after cancel: got armed by %s, want disarmed", a.By)
	}
	if !eval[bool](t, ctx, `document.querySelector('`+pol+` .ls-badge').textContent === "disarmed"`) {
		t.Error("after cancel: the panel does not say disarmed")
	}

	// A wrong name keeps Arm disabled, a reason or not; so does the right
	// name without a reason.
	openArm()
	const reason = "generator maintenance window, ticket 4711"
	for _, tc := range []struct {
		name, typed, reason string
		enabled             bool
	}{
		{"wrong name", policy[:len(policy)-1], reason, false},
		{"name with a typo", strings.Replace(policy, "-", "_", 1), reason, false},
		{"name in capitals", strings.ToUpper(policy), reason, false},
		{"right name, no reason", policy, "", false},
		{"right name and a reason", policy, reason, true},
	} {
		typeInto(t, ctx, "#ls-name", tc.typed)
		typeInto(t, ctx, "#ls-reason", tc.reason)
		if got := !eval[bool](t, ctx, `document.getElementById("ls-confirm").disabled`); got != tc.enabled {
			t.Errorf("%s (%q, reason %q): got Arm enabled %v, want %v", tc.name, tc.typed, tc.reason, got, tc.enabled)
		}
	}
	// Pressing Enter with a wrong name must not arm either.
	typeInto(t, ctx, "#ls-name", policy[:len(policy)-1]+"\r")
	if a := gwLoadshed(t, gw).policy(t, policy).Armed; a != nil {
		t.Fatalf("after Enter with a wrong name: got armed by %s, want disarmed", a.By)
	}
	if !eval[bool](t, ctx, `document.getElementById("ls-dialog").open`) {
		t.Fatal("after Enter with a wrong name: got the dialog closed, want it open")
	}
	typeInto(t, ctx, "#ls-name", policy)
	do(t, ctx, "one hour, confirm",
		chromedp.SetValue(chromedp.CSS("#ls-duration"), "1h"),
		chromedp.Click(chromedp.CSS("#ls-confirm")))
	until(t, ctx, "ARMED on the panel", `(() => {
		const p = document.querySelector('`+pol+`');
		return p !== null && p.querySelector(".ls-badge").textContent === "ARMED" && /armed by engineer/.test(p.textContent) && !document.getElementById("ls-dialog").open;
	})()`)
	a := gwLoadshed(t, gw).policy(t, policy).Armed
	switch {
	case a == nil:
		t.Fatal("after confirming: the API says disarmed, want armed")
	case a.By != engineerName || a.Reason != reason:
		t.Errorf("armed: got by %q reason %q, want by %q reason %q", a.By, a.Reason, engineerName, reason)
	case a.Until.Sub(a.At) != time.Hour:
		t.Errorf("armed: got until %s - at %s = %s, want the chosen 1h", a.Until, a.At, a.Until.Sub(a.At))
	}
	until(t, ctx, "the arming in the audit list", `/armed.*by engineer/.test(document.getElementById("loadshed-audit").textContent)`)
	screenshot(t, ctx, shots, "loadshed-armed")

	// Inhibit and release, each with a reason.
	do(t, ctx, "inhibit",
		chromedp.Click(chromedp.CSS(pol+` button.ls-inhibit-btn`)),
		chromedp.SendKeys(chromedp.CSS("#ls-reason"), "electrician in the lab"),
		chromedp.Click(chromedp.CSS("#ls-confirm")))
	until(t, ctx, "INHIBITED on the panel", `document.querySelector('`+pol+` .ls-badge.inhibited') !== null`)
	if in := gwLoadshed(t, gw).policy(t, policy).Inhibited; in == nil || in.By != engineerName {
		t.Errorf("inhibit: got %+v, want inhibited by %s", in, engineerName)
	}
	do(t, ctx, "release the inhibit",
		chromedp.Click(chromedp.CSS(pol+` button.ls-inhibit-btn`)),
		chromedp.SendKeys(chromedp.CSS("#ls-reason"), "electrician done"),
		chromedp.Click(chromedp.CSS("#ls-confirm")))
	until(t, ctx, "inhibit released on the panel", `document.querySelector('`+pol+` .ls-badge.inhibited') === null`)
	if in := gwLoadshed(t, gw).policy(t, policy).Inhibited; in != nil {
		t.Errorf("release: got inhibited by %s, want released", in.By)
	}

	// Disarm.
	do(t, ctx, "disarm",
		chromedp.Click(chromedp.CSS(pol+` button.ls-disarm`)),
		chromedp.SendKeys(chromedp.CSS("#ls-reason"), "maintenance over"),
		chromedp.Click(chromedp.CSS("#ls-confirm")))
	until(t, ctx, "disarmed on the panel", `document.querySelector('`+pol+` .ls-badge').textContent === "disarmed"`)
	if a := gwLoadshed(t, gw).policy(t, policy).Armed; a != nil {
		t.Errorf("after disarming: got armed by %s, want disarmed", a.By)
	}
}

// loadshedRestore: after a shed, the panel lists the loads still off and
// offers Restore; its dialog lists them in the order they go back on
// (last stage first, last load first) and needs the policy's name typed
// and a reason. The demo does not shed within a test, so the page's GET
// /api/v1/loadshed is answered with the real document plus a completed
// shed of every planned load; the POST goes to the real gateway, which
// refuses it (409, nothing shed), and the dialog shows why.
func loadshedRestore(t *testing.T, ctx context.Context, shots string) {
	loginAs(t, ctx, engineerName, engineerPass)
	pol := `#loadshed-body .ls-policy[data-policy="` + policy + `"]`
	eval[bool](t, ctx, `(() => {
		window.__realFetch = window.__realFetch || window.fetch;
		window.fetch = async (input, init) => {
			const url = typeof input === "string" ? input : input.url;
			if (url.endsWith("api/v1/loadshed") && (!init || !init.method || init.method === "GET")) {
				const doc = await (await window.__realFetch(input, init)).json();
				for (const p of doc.policies) {
					if (p.name !== "`+policy+`") continue;
					const loads = p.plan.flatMap(st => st.loads.map(l => l.load));
					const at = new Date(Date.now() - 60000).toISOString();
					p.shed = { episode: "e1", started_at: at, ended: at, result: "completed", next_stage: p.plan.length, done: Object.fromEntries(loads.map(l => [l, "off"])) };
					p.still_off = loads;
					p.trigger_firing = false;
					p.trigger_pending = false;
				}
				return new Response(JSON.stringify(doc), { status: 200, headers: { "Content-Type": "application/json" } });
			}
			return window.__realFetch(input, init);
		};
		return true;
	})()`)
	t.Cleanup(func() {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, _ = chromedp.Run(tctx, chromedp.Evaluate[bool](`(window.__realFetch && (window.fetch = window.__realFetch), true)`))
	})
	until(t, ctx, "the Restore button after the (faked) shed", `(() => {
		const b = document.querySelector('`+pol+` button.ls-restore-btn');
		return b !== null && !b.disabled && /still off after the shed/.test(document.querySelector('`+pol+`').textContent);
	})()`)
	press(t, ctx, pol+` button.ls-restore-btn`)
	until(t, ctx, "the restore dialog", `document.getElementById("ls-dialog").open`)
	order := eval[[]string](t, ctx, `[...document.querySelectorAll("#ls-dialog-what li[data-load]")].map(li => li.dataset.load)`)
	if want := []string{"lab-bench-2", "lab-bench-1", "test-rack-2", "test-rack-1"}; strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("restore dialog order: got %v, want %v (last stage first, last load first)", order, want)
	}
	if eval[bool](t, ctx, `document.getElementById("ls-name-row").hidden`) {
		t.Error("restore dialog: the policy name field is hidden, want it asked for")
	}
	for _, tc := range []struct {
		name, typed, reason string
		enabled             bool
	}{
		{"nothing typed", "", "", false},
		{"reason only", "", "mains back", false},
		{"wrong name", policy + "x", "mains back", false},
		{"right name and a reason", policy, "mains back, checked on site", true},
	} {
		typeInto(t, ctx, "#ls-name", tc.typed)
		typeInto(t, ctx, "#ls-reason", tc.reason)
		if got := !eval[bool](t, ctx, `document.getElementById("ls-confirm").disabled`); got != tc.enabled {
			t.Errorf("%s: got Restore enabled %v, want %v", tc.name, got, tc.enabled)
		}
	}
	screenshot(t, ctx, shots, "restore-dialog")
	press(t, ctx, "#ls-confirm")
	until(t, ctx, "the gateway's refusal in the dialog", `/restore failed: .*nothing to restore/.test(document.getElementById("ls-error").textContent)`)
	if !eval[bool](t, ctx, `document.getElementById("ls-dialog").open`) {
		t.Error("after a refused restore: got the dialog closed, want it open with the reason")
	}
	if txt := eval[string](t, ctx, `document.getElementById("loadshed").textContent + document.getElementById("ls-dialog").textContent`); strings.Contains(txt, "null") || strings.Contains(txt, "undefined") || strings.Contains(txt, "NaN") {
		t.Errorf("load-shed panel and dialog: got %q, want no null, undefined or NaN", txt)
	}
}

// loadshedOperator: an operator sees the panel with its controls disabled
// and a hint, and the server refuses the arming itself (403), with a
// valid session and CSRF token, so the refusal is the role's.
func loadshedOperator(t *testing.T, ctx context.Context, gw *gateway.Gateway) {
	loginAs(t, ctx, operatorName, operatorPass)
	pol := `#loadshed-body .ls-policy[data-policy="` + policy + `"]`
	until(t, ctx, "the controls disabled", `(() => {
		const bs = [...document.querySelectorAll('`+pol+` .actions button')];
		return bs.length >= 2 && bs.every(b => b.disabled);
	})()`)
	if hint := eval[string](t, ctx, `(document.getElementById("loadshed-hint") || {}).textContent || ""`); !strings.Contains(hint, "engineer") {
		t.Errorf("hint for an operator: got %q, want it to name the engineer role", hint)
	}
	type answer struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	}
	got := eval[answer](t, ctx, `fetch("api/v1/whoami").then(r => r.json()).then(w =>
		fetch("api/v1/loadshed/`+policy+`/arm", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": w.csrf_token},
			body: JSON.stringify({reason: "operator tries", duration: "1h"})}))
		.then(async r => ({status: r.status, error: (await r.json()).error || ""}))`)
	if got.Status != http.StatusForbidden || !strings.Contains(got.Error, "engineer") {
		t.Errorf("arm as operator: got %d %q, want 403 naming the engineer role", got.Status, got.Error)
	}
	if a := gwLoadshed(t, gw).policy(t, policy).Armed; a != nil {
		t.Errorf("after the operator's attempt: got armed by %s, want disarmed", a.By)
	}
}

// silenceFromPage: an operator silences a firing alert through the
// dialog (prefilled with the alert's rule and device); the alert shows as
// silenced, the silence is listed, and the silence travels: the demo's
// webhook receiver gets the silenced event. Unsilencing from the list
// ends it, and that travels too.
func silenceFromPage(t *testing.T, ctx context.Context, info *demo.Info, gw *gateway.Gateway, shots string) {
	loginAs(t, ctx, operatorName, operatorPass)
	const dev = "bms-rack2"
	if err := info.Sim.SetScenario(dev, "thermal-runaway"); err != nil {
		t.Fatal(err)
	}
	sel := offgasAlert(dev)
	stop := stepSim(info, 5*time.Second)
	until(t, ctx, "the off-gas alert of "+dev, `document.querySelector('`+sel+`') !== null`)
	stop()
	alertID := eval[string](t, ctx, `document.querySelector('`+sel+`').dataset.alert`)

	press(t, ctx, sel+` button.silence-btn`)
	until(t, ctx, "the silence dialog", `document.getElementById("silence-dialog").open`)
	type prefill struct {
		Rule, Device string
		UseRule      bool `json:"useRule"`
		UseDevice    bool `json:"useDevice"`
		Disabled     bool `json:"disabled"`
	}
	pf := eval[prefill](t, ctx, `({Rule: document.getElementById("silence-rule").value, Device: document.getElementById("silence-device").value,
		useRule: document.getElementById("silence-use-rule").checked, useDevice: document.getElementById("silence-use-device").checked,
		disabled: document.getElementById("silence-confirm").disabled})`)
	if want := (prefill{Rule: "fire/liion-offgas-alarm", Device: dev, UseRule: true, UseDevice: true, Disabled: true}); pf != want {
		t.Errorf("silence dialog prefill: got %+v, want %+v (no reason yet: disabled)", pf, want)
	}
	const reason = "sensor swap on rack 2"
	do(t, ctx, "silence for 2h",
		chromedp.SetValue(chromedp.CSS("#silence-duration"), "2h"),
		chromedp.SendKeys(chromedp.CSS("#silence-reason"), reason))
	screenshot(t, ctx, shots, "silence-dialog")
	do(t, ctx, "confirm the silence", chromedp.Click(chromedp.CSS("#silence-confirm")))
	until(t, ctx, "the alert shown silenced", `(() => {
		const a = document.querySelector('`+sel+`');
		return a !== null && /silenced by operator.*sensor swap on rack 2/.test(a.textContent) && !document.getElementById("silence-dialog").open;
	})()`)
	until(t, ctx, "the silence listed", `document.querySelectorAll("#silence-list li.silence").length > 0`)
	silenceID := eval[string](t, ctx, `[...document.querySelectorAll("#silence-list li.silence")].find(li => /bms-rack2/.test(li.textContent)).dataset.silence`)
	screenshot(t, ctx, shots, "silenced")
	waitFor(t, "the receiver's silenced event", func() bool {
		return receiverHas(info, alertID, "silenced", func(e alert.Event) bool {
			return e.Silence != nil && e.Silence.By == operatorName && e.Silence.Reason == reason
		})
	})

	press(t, ctx, `#silence-list li.silence[data-silence="`+silenceID+`"] button.unsilence`)
	defer func() {
		if t.Failed() {
			resp, err := http.Get("http://" + gw.HTTPAddr() + "/api/v1/alerts")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Logf("alerts: %s", b)
			}
		}
	}()
	until(t, ctx, "the silence gone", `document.querySelector('#silence-list li.silence[data-silence="`+silenceID+`"]') === null && !/silenced by/.test(document.querySelector('`+sel+`').textContent)`)
	waitFor(t, "the receiver's unsilenced event", func() bool {
		return receiverHas(info, alertID, "unsilenced", func(alert.Event) bool { return true })
	})
}

// offgasAlert is the selector of the off-gas alert of a battery rack.
func offgasAlert(dev string) string {
	return `li.alert[data-rule="fire/liion-offgas-alarm"][data-instance="` + dev + `"]`
}

func receiverHas(info *demo.Info, id string, kind alert.Kind, ok func(alert.Event) bool) bool {
	for _, e := range info.Receiver.Events() {
		if e.ID == id && e.Kind == kind && ok(e) {
			return true
		}
	}
	return false
}

// press clicks a button in a list the page redraws live (alerts,
// silences) through the DOM. A click at screen coordinates can land on
// the row below when an alert arrives between finding the button and
// clicking it; the page's handler is what is under test, not the layout
// of that moment. A disabled button ignores click() as it ignores a mouse.
func press(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	if !eval[bool](t, ctx, fmt.Sprintf(`(() => { const b = document.querySelector(%q); if (!b || b.disabled) return false; b.click(); return true; })()`, sel)) {
		t.Fatalf("press %s: no such enabled button", sel)
	}
}

// typeInto replaces the text of an input by typing text into it, key by
// key, so the page sees the input events a person's typing makes.
// (chromedp.Clear only resets the value attribute, not what was typed.)
func typeInto(t *testing.T, ctx context.Context, sel, text string) {
	t.Helper()
	eval[bool](t, ctx, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = ""; e.dispatchEvent(new Event("input")); return true; })()`, sel))
	if text != "" {
		do(t, ctx, "type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text))
	}
}

// closeDialogs closes any dialog a failed step left open: a modal dialog
// would keep the next subtest from clicking anything else.
func closeDialogs(t *testing.T, ctx context.Context) {
	t.Cleanup(func() {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, _ = chromedp.Run(tctx, chromedp.Evaluate[bool](`(document.querySelectorAll("dialog[open]").forEach(d => d.close()), true)`))
	})
}

// loginAs logs in on the page, logging out whoever is logged in first.
func loginAs(t *testing.T, ctx context.Context, name, pass string) {
	t.Helper()
	want := fmt.Sprintf("%s (%s)", name, name)
	if eval[string](t, ctx, `document.getElementById("me").hidden ? "" : document.getElementById("me-name").textContent`) == want {
		return
	}
	if eval[bool](t, ctx, `!document.getElementById("me").hidden`) {
		logout(t, ctx)
	}
	do(t, ctx, "log in as "+name,
		chromedp.SetValue(chromedp.CSS(`#login input[name="name"]`), name),
		chromedp.SetValue(chromedp.CSS(`#login input[name="password"]`), pass),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
	)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(tctx, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("me-name").textContent === %q`, want),
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		t.Fatalf("log in as %s: %v (the page says %q, login error %q)", name, err,
			eval[string](t, ctx, `document.getElementById("me-name").textContent`), eval[string](t, ctx, `document.getElementById("login-error").textContent`))
	}
}

func logout(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, "log out", chromedp.Click(chromedp.CSS("#logout")))
	until(t, ctx, "logged out", `!document.getElementById("login").hidden`)
}

// loadshedStatus is what the test reads of GET /api/v1/loadshed.
type loadshedStatus struct {
	Policies []policyDoc `json:"policies"`
}

type policyDoc struct {
	Name      string     `json:"name"`
	Armed     *armingDoc `json:"armed"`
	Inhibited *armingDoc `json:"inhibited"`
	Plan      []struct {
		Loads []planLoad `json:"loads"`
	} `json:"plan"`
}

type armingDoc struct {
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	Until  time.Time `json:"until"`
}

type planLoad struct {
	Load   string `json:"load"`
	Device string `json:"device"`
	Point  string `json:"point"`
}

func (s loadshedStatus) policy(t *testing.T, name string) policyDoc {
	t.Helper()
	for _, p := range s.Policies {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("GET /api/v1/loadshed: no policy %q", name)
	return policyDoc{}
}

// gwLoadshed reads the load-shed state from the API as an anonymous
// viewer, apart from the browser.
func gwLoadshed(t *testing.T, gw *gateway.Gateway) loadshedStatus {
	t.Helper()
	resp, err := http.Get("http://" + gw.HTTPAddr() + "/api/v1/loadshed")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc loadshedStatus
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/loadshed: got %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("GET /api/v1/loadshed: %v", err)
	}
	return doc
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
	ID  string    `json:"id"`
	Ack *alertAck `json:"ack"`
}

type alertAck struct {
	By      string `json:"by"`
	Comment string `json:"comment"`
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
		tctx, cancel := context.WithTimeout(ctx, 120*time.Second)
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

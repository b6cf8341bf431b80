package gateway_test

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/demo"
	"github.com/facgw/facgw/internal/demo/demotest"
	"github.com/facgw/facgw/internal/gateway"
)

// reloadDemo is the demo of startDemoInfo, also keeping the running
// config (demo.Start pointed it at the simulator and embedded brokers) so
// a test can load the file again and point it at the same places.
type reloadDemo struct {
	info *demo.Info
	gw   *gateway.Gateway
	run  *config.Config
	base string
}

func startReloadDemo(t *testing.T) *reloadDemo {
	t.Helper()
	if testing.Short() {
		t.Skip("end to end: skipped with -short")
	}
	d := demotest.Start(t, "../..", func(cfg *config.Config) {
		// Bearer tokens rather than logins: bcrypt at the demo's cost
		// takes many seconds under -race on a shared machine.
		cfg.HTTP.Tokens = append(cfg.HTTP.Tokens, config.HTTPToken{Name: "deploy", Role: "engineer", Token: config.NewSecret(engineerToken)},
			config.HTTPToken{Name: "ops", Role: "operator", Token: config.NewSecret(operatorToken)})
	})
	info, gw, cfg := d.Info, d.Gateway, d.Config
	return &reloadDemo{info: info, gw: gw, run: cfg, base: "http://" + gw.HTTPAddr()}
}

// load loads deploy/demo.yaml with extra appended to its text, and points
// it where the running demo points (devices, brokers, webhook, traps,
// state directory) with the same fast polls, so that only what a test
// changes differs.
func (d *reloadDemo) load(t *testing.T, extra string) (*config.Config, *profiles.Registry) {
	t.Helper()
	src, err := os.ReadFile("../../deploy/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(file, append(src, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file, reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.Listen, cfg.StateDir, cfg.HTTP.Tokens = d.run.HTTP.Listen, d.run.StateDir, d.run.HTTP.Tokens
	cfg.MQTT, cfg.Traps, cfg.Alerting = d.run.MQTT, d.run.Traps, d.run.Alerting
	cfg.Defaults.StaleAfter = d.run.Defaults.StaleAfter
	for i := range cfg.Devices {
		dc := &cfg.Devices[i]
		if rd, ok := d.run.Device(dc.ID); ok {
			dc.Address = rd.Address
			dc.Poll = maps.Clone(rd.Poll)
		}
	}
	return cfg, reg
}

const (
	engineerToken = "reload-test-engineer-token-0123456789abcdef"
	operatorToken = "reload-test-operator-token-0123456789abcdef"
)

// bearerPost posts an empty JSON body with a bearer token ("" for none).
func bearerPost(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(""))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (d *reloadDemo) status(t *testing.T) *gateway.ReloadStatus {
	t.Helper()
	resp, err := http.Get(d.base + "/api/v1/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Reload *gateway.ReloadStatus `json:"reload"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc.Reload
}

func (d *reloadDemo) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(d.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestReloadInvalidConfigIntegration: a configuration that does not load
// is refused, through POST /api/v1/reload (engineer only) as through
// ReloadConfig; the old one keeps polling, and the state endpoint and the
// metrics say so with the located error.
func TestReloadInvalidConfigIntegration(t *testing.T) {
	d := startReloadDemo(t)
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	os.WriteFile(broken, []byte("site: demo-hall\ngateway: gw-demo\ndevices:\n  - id: x\n    profile: no-such-profile\n    transport: modbus-tcp\n    address: 127.0.0.1:1\n"), 0o644)
	d.gw.SetLoader(func() (*config.Config, *profiles.Registry, error) {
		reg, err := profiles.Shipped()
		if err != nil {
			return nil, nil, err
		}
		cfg, err := config.Load(broken, reg)
		return cfg, reg, err
	})
	if d.status(t) != nil {
		t.Fatal("state shows a reload before any was attempted")
	}
	before := cycles(d.gw)

	if code, body := post(t, d.base+"/api/v1/reload", "", nil); code != http.StatusUnauthorized {
		t.Errorf("anonymous reload: got %d %s, want 401", code, body)
	}
	if code, body := bearerPost(t, d.base+"/api/v1/reload", operatorToken); code != http.StatusForbidden {
		t.Errorf("operator reload: got %d %s, want 403 (engineers only)", code, body)
	}
	code, body := bearerPost(t, d.base+"/api/v1/reload", engineerToken)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "broken.yaml:5:") || !strings.Contains(body, "no-such-profile") {
		t.Errorf("engineer reload of a broken file: got %d %s, want 422 naming broken.yaml:5 and the profile", code, body)
	}

	st := d.status(t)
	if st == nil || st.Last.OK || st.Failed != 1 || st.Succeeded != 0 || len(st.Last.Errors) == 0 || !strings.HasPrefix(st.Last.Errors[0], broken+":5:") {
		t.Errorf("state reload: got %+v, want one failed attempt with the error located at %s:5", st, broken)
	}
	m := d.metrics(t)
	for _, want := range []string{`facgw_config_reloads_total{result="error"} 1`, `facgw_config_reloads_total{result="ok"} 0`, "facgw_config_last_reload_success_timestamp_seconds "} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The old configuration keeps running: every device polls on.
	waitFor(t, "every device polling after the refused reload", func() bool {
		now := cycles(d.gw)
		for id, n := range before {
			if now[id] < n+3 {
				return false
			}
		}
		return len(now) == len(before)
	})
}

// telemetryWatch records the seq of every telemetry message per device
// on one broker.
type telemetryWatch struct {
	mu   sync.Mutex
	seqs map[string][]uint64
}

func watchTelemetry(t *testing.T, addr string) *telemetryWatch {
	t.Helper()
	w := &telemetryWatch{seqs: map[string][]uint64{}}
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("reload-watch").SetOrderMatters(true))
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	tok := c.Subscribe("facgw/+/+/telemetry/+", 1, func(_ paho.Client, m paho.Message) {
		var msg struct {
			Device string `json:"device"`
			Seq    uint64 `json:"seq"`
		}
		if err := json.Unmarshal(m.Payload(), &msg); err != nil {
			t.Errorf("telemetry on %s: %v", m.Topic(), err)
			return
		}
		w.mu.Lock()
		w.seqs[msg.Device] = append(w.seqs[msg.Device], msg.Seq)
		w.mu.Unlock()
	})
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return w
}

func (w *telemetryWatch) get(dev string) []uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seqs[dev])
}

// TestReloadRestartsOnlyChangedDeviceIntegration: a reload that changes
// one device's poll interval and labels restarts that device only: a
// device sharing nothing with it keeps its poll loop (cycle count goes on
// from where it was) and its MQTT sequence numbers have no gap; the
// changed device's numbers go on too (the sequence store carries over).
func TestReloadRestartsOnlyChangedDeviceIntegration(t *testing.T) {
	d := startReloadDemo(t)
	w := watchTelemetry(t, strings.SplitN(d.info.Brokers[0], "=", 2)[1])
	waitFor(t, "telemetry of crac-1 and crac-2", func() bool { return len(w.get("crac-1")) > 3 && len(w.get("crac-2")) > 3 })

	cfg, reg := d.load(t, "")
	for i := range cfg.Devices {
		if dc := &cfg.Devices[i]; dc.ID == "crac-1" {
			dc.Poll = map[string]time.Duration{"default": 120 * time.Millisecond}
			dc.Labels = map[string]string{"room": "hall-1", "row": "r2"}
		}
	}
	before := cycles(d.gw)
	crac1Before := w.get("crac-1")
	res, err := d.gw.Reload(cfg, reg)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !slices.Equal(res.Changed, []string{"crac-1"}) || len(res.Added) != 0 || len(res.Removed) != 0 || res.Unchanged != len(cfg.Devices)-1 {
		t.Errorf("reload result: got changed %v added %v removed %v unchanged %d, want only crac-1 changed, %d unchanged",
			res.Changed, res.Added, res.Removed, res.Unchanged, len(cfg.Devices)-1)
	}
	if !res.RulesRebuilt || len(res.NeedsRestart) != 0 {
		t.Errorf("reload result: got rules rebuilt %v, needs restart %v; want rebuilt (labels changed) and nothing waiting", res.RulesRebuilt, res.NeedsRestart)
	}
	// The untouched device's poll loop goes on counting: a restarted one
	// would start again from zero.
	waitFor(t, "crac-2 polling on and crac-1 polling again", func() bool {
		now := cycles(d.gw)
		return now["crac-2"] >= before["crac-2"]+10 && now["crac-1"] >= 3 && len(w.get("crac-1")) > len(crac1Before)+3
	})
	for _, s := range d.gw.PollStats() {
		if s.Device == "crac-1" && s.Interval != 120*time.Millisecond {
			t.Errorf("crac-1 %s interval: got %v, want 120ms", s.Group, s.Interval)
		}
	}
	for _, info := range d.gw.Devices() {
		if info.ID == "crac-1" && info.Labels["row"] != "r2" {
			t.Errorf("crac-1 labels: got %v, want the reloaded ones", info.Labels)
		}
	}
	for _, dev := range []string{"crac-2", "crac-1"} {
		seqs := w.get(dev)
		for i := 1; i < len(seqs); i++ {
			if seqs[i] != seqs[i-1]+1 {
				t.Errorf("%s seq: got %d after %d, want no gap across the reload", dev, seqs[i], seqs[i-1])
				break
			}
		}
	}
	if st := d.status(t); st == nil || !st.Last.OK || st.Succeeded != 1 || !slices.Equal(st.Last.Changed, []string{"crac-1"}) {
		t.Errorf("state reload: got %+v, want one successful reload that changed crac-1", st)
	}
	if m := d.metrics(t); !strings.Contains(m, `facgw_config_reloads_total{result="ok"} 1`) {
		t.Error(`metrics lack facgw_config_reloads_total{result="ok"} 1`)
	}

	// A section that cannot change at runtime is reported, the rest applied.
	cfg, reg = d.load(t, "")
	cfg.Site = "another-site"
	if res, err := d.gw.Reload(cfg, reg); err != nil || !slices.Equal(res.NeedsRestart, []string{"site"}) || !slices.Equal(res.Changed, []string{"crac-1"}) {
		t.Errorf("reload with a new site: got %v, needs restart %v, changed %v; want site waiting for a restart and crac-1 back to its file settings",
			err, res.NeedsRestart, res.Changed)
	}
	if site, _ := d.gw.Site(); site != "demo-hall" {
		t.Errorf("site: got %q, want the running one until a restart", site)
	}
}

// fireRack1 runs thermal runaway on battery rack 1 until its off-gas
// alert fires, and returns the alert.
func (d *reloadDemo) fireRack1(t *testing.T) alert.Event {
	t.Helper()
	if err := d.info.Sim.SetScenario("bms-rack1", "thermal-runaway"); err != nil {
		t.Fatal(err)
	}
	var fired alert.Event
	waitFor(t, "off-gas alert firing", func() bool {
		d.info.Sim.Step(5 * time.Second)
		for _, e := range alerts(t, d.base).Active {
			if e.Rule == "fire/liion-offgas-alarm" && e.Device == "bms-rack1" {
				fired = e
				return true
			}
		}
		return false
	})
	return fired
}

// TestReloadKeepsFiringAlertIntegration: a firing alert stays firing with
// its episode id across a reload that rebuilds the rules engine (an
// unrelated rule disabled) and is not announced again on any path;
// disabling its own rule then resolves it.
func TestReloadKeepsFiringAlertIntegration(t *testing.T) {
	d := startReloadDemo(t)
	mq := watchMQTT(t, strings.SplitN(d.info.Brokers[0], "=", 2)[1])
	fired := d.fireRack1(t)
	waitFor(t, "the alert on both paths", func() bool {
		return received(d.info.Receiver.Events(), fired.ID, alert.KindFiring) && mq.has(fired.ID, alert.KindFiring)
	})

	cfg, reg := d.load(t, "\nrules:\n  disable: [cooling/supply-air-high]\n")
	res, err := d.gw.Reload(cfg, reg)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !res.RulesRebuilt || res.Unchanged != len(cfg.Devices) {
		t.Errorf("reload result: got rules rebuilt %v, %d unchanged devices; want rebuilt and all %d unchanged", res.RulesRebuilt, res.Unchanged, len(cfg.Devices))
	}
	// Let the new engine evaluate rack 1 many times over.
	before := cycles(d.gw)
	waitFor(t, "bms-rack1 polled after the reload", func() bool { return cycles(d.gw)["bms-rack1"] >= before["bms-rack1"]+20 })
	still := false
	for _, e := range alerts(t, d.base).Active {
		if e.ID == fired.ID {
			still = true
		} else if e.Rule == fired.Rule && e.Device == fired.Device {
			t.Errorf("a second episode %s of the same alert after the reload", e.ID)
		}
	}
	if !still {
		t.Errorf("the alert %s is no longer active after the reload", fired.ID)
	}
	countFiring := func(evs []alert.Event) int {
		n := 0
		for _, e := range evs {
			if e.Rule == fired.Rule && e.Device == fired.Device && e.Kind == alert.KindFiring {
				n++
			}
		}
		return n
	}
	if n := countFiring(d.info.Receiver.Events()); n != 1 {
		t.Errorf("webhook: got %d firing events for the alert, want 1 (not re-announced)", n)
	}
	mq.mu.Lock()
	n := countFiring(mq.evs)
	mq.mu.Unlock()
	if n != 1 {
		t.Errorf("mqtt: got %d firing events for the alert, want 1 (not re-announced)", n)
	}

	// Its own rule disabled: the open episode is resolved.
	cfg, reg = d.load(t, "\nrules:\n  disable: [cooling/supply-air-high, fire/liion-offgas-alarm]\n")
	if _, err := d.gw.Reload(cfg, reg); err != nil {
		t.Fatalf("reload: %v", err)
	}
	waitFor(t, "the alert resolved on both paths", func() bool {
		return received(d.info.Receiver.Events(), fired.ID, alert.KindResolved) && mq.has(fired.ID, alert.KindResolved)
	})
	for _, e := range alerts(t, d.base).Active {
		if e.ID == fired.ID {
			t.Errorf("the alert of a disabled rule is still active: %+v", e)
		}
	}
}

// TestReloadAddsAndRemovesDevicesIntegration: a device removed from the
// file stops polling and leaves the device list; one added starts.
func TestReloadAddsAndRemovesDevicesIntegration(t *testing.T) {
	d := startReloadDemo(t)
	cfg, reg := d.load(t, "")
	var kept []config.Device
	for _, dc := range cfg.Devices {
		if dc.ID != "crac-2" {
			kept = append(kept, dc)
		}
	}
	cfg.Devices = kept
	// The engineer's token is replaced by another: the authenticator is
	// rebuilt and the old token stops working.
	const newToken = "reload-test-new-engineer-token-0123456789"
	cfg.HTTP.Tokens = []config.HTTPToken{{Name: "deploy2", Role: "engineer", Token: config.NewSecret(newToken)}}
	res, err := d.gw.Reload(cfg, reg)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !slices.Equal(res.Removed, []string{"crac-2"}) || len(res.Changed)+len(res.Added) != 0 || !res.AuthRebuilt {
		t.Errorf("reload result: got removed %v changed %v added %v auth rebuilt %v, want crac-2 removed only and the authenticator rebuilt",
			res.Removed, res.Changed, res.Added, res.AuthRebuilt)
	}
	if code, body := bearerPost(t, d.base+"/api/v1/reload", engineerToken); code != http.StatusUnauthorized {
		t.Errorf("reload with the removed token: got %d %s, want 401", code, body)
	}
	for _, info := range d.gw.Devices() {
		if info.ID == "crac-2" {
			t.Error("crac-2 is still listed after its removal")
		}
	}
	if _, ok := cycles(d.gw)["crac-2"]; ok {
		t.Error("crac-2 still has poll statistics after its removal")
	}

	// crac-2 is back, through the API with the new token; the token
	// stays (the loader keeps it).
	cfg, reg = d.load(t, "")
	cfg.HTTP.Tokens = []config.HTTPToken{{Name: "deploy2", Role: "engineer", Token: config.NewSecret(newToken)}}
	d.gw.SetLoader(func() (*config.Config, *profiles.Registry, error) { return cfg, reg, nil })
	code, body := bearerPost(t, d.base+"/api/v1/reload", newToken)
	var got gateway.ReloadResult
	if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil || !slices.Equal(got.Added, []string{"crac-2"}) || got.AuthRebuilt {
		t.Errorf("reload through the API with the new token: got %d %s, want 200 adding crac-2 and the authenticator kept", code, body)
	}
	waitFor(t, "crac-2 polling again", func() bool { return cycles(d.gw)["crac-2"] >= 3 })
}

package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/gateway"
	"github.com/facgw/facgw/internal/testpeer"
)

// retainedAlerts collects the retained alerts/active messages a broker
// holds, by episode id.
func retainedAlerts(t *testing.T, addr string) func() map[string]bool {
	t.Helper()
	var mu sync.Mutex
	got := map[string]bool{}
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("retained-watch"))
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	tok := c.Subscribe("facgw/+/+/alerts/active/+", 1, func(_ paho.Client, m paho.Message) {
		if len(m.Payload()) == 0 {
			return
		}
		e, err := alert.Unmarshal(m.Payload())
		if err != nil {
			t.Errorf("active alert on %s: %v", m.Topic(), err)
			return
		}
		mu.Lock()
		got[e.ID] = true
		mu.Unlock()
	})
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return func() map[string]bool {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(got)
	}
}

// watchStatus reports whether the gateway's status on the broker at addr
// has gone offline (its retained status message, live).
func watchStatus(t *testing.T, addr string) func() bool {
	t.Helper()
	var off atomic.Bool
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("status-watch"))
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	tok := c.Subscribe("facgw/+/+/status", 1, func(_ paho.Client, m paho.Message) {
		var st struct {
			State string `json:"state"`
		}
		if err := json.Unmarshal(m.Payload(), &st); err == nil && !m.Retained() {
			off.Store(st.State == "offline")
		}
	})
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return off.Load
}

// withBrokers returns a copy of the running mqtt section with brokers
// appended.
func withBrokers(run *config.MQTT, extra ...config.Broker) *config.MQTT {
	m := *run
	m.Brokers = append(slices.Clone(run.Brokers), extra...)
	return &m
}

// TestReloadBrokersIntegration: brokers are added, changed and removed by
// reload while the gateway runs, against real mosquitto brokers.
//
//   - Added: the new broker gets telemetry with the same seq numbering
//     as the others, and the retained alerts/active message of an alert
//     that was firing before it was added.
//   - Changed while down: broker m1 is killed, its outbox fills, and a
//     reload points m1 at another broker: that broker gets everything
//     the first did not acknowledge, so m1's stream has no gap across
//     the two, and the firing alert's retained message.
//   - Removed: the broker leaves the destinations and gets nothing more.
func TestReloadBrokersIntegration(t *testing.T) {
	d := startReloadDemo(t)
	fired := d.fireRack1(t)

	m1 := testpeer.StartMosquitto(t, "")
	m2 := testpeer.StartMosquitto(t, "")
	w1 := watchTelemetry(t, m1.Addr)
	cfg, reg := d.load(t, "")
	cfg.MQTT = withBrokers(d.run.MQTT, config.Broker{Name: "m1", URL: m1.URL()})
	res, err := d.gw.Reload(cfg, reg)
	if err != nil {
		t.Fatalf("reload adding m1: %v", err)
	}
	if !slices.Equal(res.Sinks, []string{"mqtt.brokers[m1] added"}) || res.Unchanged != len(cfg.Devices) {
		t.Errorf("reload adding m1: got sinks %v, %d devices unchanged; want m1 added and no device touched", res.Sinks, res.Unchanged)
	}
	waitFor(t, "crac-1 telemetry on the added broker", func() bool { return len(w1.get("crac-1")) > 5 })
	active1 := retainedAlerts(t, m1.Addr)
	waitFor(t, "the alert that fired before m1 was added retained on m1", func() bool { return active1()[fired.ID] })

	// m1 goes away; while it is down its outbox keeps what is polled.
	m1.Kill()
	before := cycles(d.gw)["crac-1"]
	waitFor(t, "crac-1 polled while m1 is down", func() bool { return cycles(d.gw)["crac-1"] >= before+10 })
	seen1 := w1.get("crac-1")
	w2 := watchTelemetry(t, m2.Addr)
	cfg, reg = d.load(t, "")
	cfg.MQTT = withBrokers(d.run.MQTT, config.Broker{Name: "m1", URL: m2.URL()})
	if res, err = d.gw.Reload(cfg, reg); err != nil {
		t.Fatalf("reload moving m1: %v", err)
	}
	if !slices.Equal(res.Sinks, []string{"mqtt.brokers[m1] changed"}) {
		t.Errorf("reload moving m1: got sinks %v, want m1 changed", res.Sinks)
	}
	last1 := seen1[len(seen1)-1]
	waitFor(t, "crac-1 telemetry on m1's new broker well past what the old one got", func() bool {
		s := w2.get("crac-1")
		return len(s) > 0 && s[len(s)-1] > last1+15
	})
	seen2 := w2.get("crac-1")
	if seen2[0] > last1+1 {
		t.Errorf("m1's stream: the old broker got up to seq %d, the new one starts at %d: the outbox did not carry over", last1, seen2[0])
	}
	all := append(slices.Clone(seen1), seen2...)
	slices.Sort(all)
	all = slices.Compact(all)
	for i := 1; i < len(all); i++ {
		if all[i] != all[i-1]+1 {
			t.Errorf("crac-1 seq on m1 (old and new broker): %d after %d, want no gap", all[i], all[i-1])
			break
		}
	}
	active2 := retainedAlerts(t, m2.Addr)
	waitFor(t, "the firing alert retained on m1's new broker", func() bool { return active2()[fired.ID] })

	// Removed: gone from the destinations, nothing more delivered.
	offline := watchStatus(t, m2.Addr)
	cfg, reg = d.load(t, "")
	if res, err = d.gw.Reload(cfg, reg); err != nil {
		t.Fatalf("reload removing m1: %v", err)
	}
	if !slices.Equal(res.Sinks, []string{"mqtt.brokers[m1] removed"}) {
		t.Errorf("reload removing m1: got sinks %v, want m1 removed", res.Sinks)
	}
	for _, dst := range d.gw.Destinations() {
		if dst.Name == "m1" {
			t.Errorf("destinations still list m1 after its removal: %+v", dst)
		}
	}
	// The publisher's last message on its way out is the offline status:
	// once it is here, everything sent before it is too.
	waitFor(t, "the offline status from the removed broker's publisher", offline)
	n := len(w2.get("crac-1"))
	before = cycles(d.gw)["crac-1"]
	waitFor(t, "crac-1 polled after m1's removal", func() bool { return cycles(d.gw)["crac-1"] >= before+10 })
	if got := len(w2.get("crac-1")); got != n {
		t.Errorf("removed broker got %d more crac-1 messages after the reload returned", got-n)
	}
	if st := d.status(t); st == nil || st.Succeeded != 3 || !strings.Contains(strings.Join(st.Last.Sinks, ","), "m1") {
		t.Errorf("state reload: got %+v, want three successful reloads, the last listing m1", st)
	}
}

// hasSeries reports whether VictoriaMetrics at base holds any series of
// device (after flushing its buffers).
func hasSeries(t *testing.T, base, device string) bool {
	t.Helper()
	resp, err := http.Post(base+"/internal/force_flush", "", nil)
	if err != nil {
		t.Fatalf("force_flush: %v", err)
	}
	resp.Body.Close()
	q := url.Values{"match[]": {fmt.Sprintf(`{device=%q}`, device)}}
	resp, err = http.Get(base + "/api/v1/export?" + q.Encode())
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"device":"`+device+`"`)
}

// TestReloadHistoryIntegration: the history database is added, moved and
// removed by reload while the gateway runs, against real
// VictoriaMetrics: added, points reach it; its url changed, they reach
// the new one; removed, it leaves the destinations.
func TestReloadHistoryIntegration(t *testing.T) {
	d := startReloadDemo(t)
	vm1, _ := testpeer.StartVictoriaMetrics(t)
	vm2, _ := testpeer.StartVictoriaMetrics(t)
	history := func(url string) *config.Influx {
		return &config.Influx{URL: url, Bucket: "facility", BatchSize: 100, FlushInterval: 50 * time.Millisecond}
	}
	cfg, reg := d.load(t, "")
	cfg.Influx = history(vm1)
	res, err := d.gw.Reload(cfg, reg)
	if err != nil {
		t.Fatalf("reload adding influx: %v", err)
	}
	if !slices.Equal(res.Sinks, []string{"influx added"}) {
		t.Errorf("reload adding influx: got sinks %v", res.Sinks)
	}
	waitFor(t, "crac-1 history in the added database", func() bool { return hasSeries(t, vm1, "crac-1") })

	cfg, reg = d.load(t, "")
	cfg.Influx = history(vm2)
	if res, err = d.gw.Reload(cfg, reg); err != nil {
		t.Fatalf("reload moving influx: %v", err)
	}
	if !slices.Equal(res.Sinks, []string{"influx changed"}) {
		t.Errorf("reload moving influx: got sinks %v", res.Sinks)
	}
	waitFor(t, "crac-1 history in the new database", func() bool { return hasSeries(t, vm2, "crac-1") })

	cfg, reg = d.load(t, "")
	if res, err = d.gw.Reload(cfg, reg); err != nil {
		t.Fatalf("reload removing influx: %v", err)
	}
	if !slices.Equal(res.Sinks, []string{"influx removed"}) {
		t.Errorf("reload removing influx: got sinks %v", res.Sinks)
	}
	for _, dst := range d.gw.Destinations() {
		if dst.Kind == "influx" {
			t.Errorf("destinations still list the history database after its removal: %+v", dst)
		}
	}
}

// TestReloadTrapAcceptanceIntegration: a reload that rotates the trap
// community applies to the running listener: the simulated UPS's trap
// with the old community is refused (no event, though the poll sees the
// UPS on battery), and accepted again once the community is back.
func TestReloadTrapAcceptanceIntegration(t *testing.T) {
	d := startReloadDemo(t)
	withCommunity := func(c string) (*config.Config, *profiles.Registry) {
		cfg, reg := d.load(t, "")
		tr := *d.run.Traps
		tr.Communities = []config.Secret{config.NewSecret(c)}
		cfg.Traps = &tr
		return cfg, reg
	}
	cfg, reg := withCommunity("rotated-community")
	res, err := d.gw.Reload(cfg, reg)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !res.TrapsUpdated || len(res.NeedsRestart) != 0 {
		t.Errorf("reload rotating the community: got traps updated %v, needs restart %v; want updated live", res.TrapsUpdated, res.NeedsRestart)
	}
	if err := d.info.Sim.SetScenario("ups-c", "utility-failure"); err != nil {
		t.Fatal(err)
	}
	d.info.Sim.Step(5 * time.Second)
	waitFor(t, "ups-c on battery", func() bool { return get(d.gw, "ups-c", "ups.status.on_battery").Value() == true })
	before := cycles(d.gw)["ups-c"]
	waitFor(t, "ups-c polled on", func() bool { return cycles(d.gw)["ups-c"] >= before+20 })
	if hasEvent(d.gw, "upsTrapOnBattery", "ups-c") {
		t.Fatal("a trap with the community the reload removed was accepted")
	}

	cfg, reg = withCommunity("public")
	if res, err = d.gw.Reload(cfg, reg); err != nil || !res.TrapsUpdated {
		t.Fatalf("reload restoring the community: %v, traps updated %v", err, res.TrapsUpdated)
	}
	if err := d.info.Sim.SetScenario("ups-c", "normal"); err != nil {
		t.Fatal(err)
	}
	d.info.Sim.Step(5 * time.Second)
	waitFor(t, "ups-c back on utility", func() bool { return get(d.gw, "ups-c", "ups.status.on_battery").Value() == false })
	if err := d.info.Sim.SetScenario("ups-c", "utility-failure"); err != nil {
		t.Fatal(err)
	}
	d.info.Sim.Step(5 * time.Second)
	waitFor(t, "upsTrapOnBattery accepted with the restored community", func() bool { return hasEvent(d.gw, "upsTrapOnBattery", "ups-c") })
}

// TestReloadLoadshedTriggerDevice: a reload that changes a device a
// load-shed trigger selects restarts its polling at once, and says the
// load-shed controller sees it as before until a restart; a device no
// trigger selects does not say so.
func TestReloadLoadshedTriggerDevice(t *testing.T) {
	d := startReloadDemo(t)
	relabel := func(id string) gateway.ReloadResult {
		t.Helper()
		cfg, reg := d.load(t, "")
		for i := range cfg.Devices {
			if dc := &cfg.Devices[i]; dc.ID == id {
				dc.Labels = maps.Clone(dc.Labels)
				dc.Labels["row"] = "r9"
			}
		}
		res, err := d.gw.Reload(cfg, reg)
		if err != nil {
			t.Fatalf("reload relabelling %s: %v", id, err)
		}
		return res
	}
	if res := relabel("crac-2"); !slices.Equal(res.Changed, []string{"crac-2"}) || len(res.NeedsRestart) != 0 {
		t.Errorf("relabelling crac-2: got changed %v, needs restart %v; want crac-2 changed, nothing waiting", res.Changed, res.NeedsRestart)
	}
	// deploy/demo.yaml's policy selects ups-b and ups-c (crac-2 goes back
	// to the file's labels).
	if res := relabel("ups-c"); !slices.Equal(res.Changed, []string{"crac-2", "ups-c"}) ||
		!slices.Equal(res.NeedsRestart, []string{"loadshed (trigger devices changed: ups-c)"}) {
		t.Errorf("relabelling ups-c: got changed %v, needs restart %v; want ups-c (and crac-2) changed and the load-shed trigger waiting", res.Changed, res.NeedsRestart)
	}
}

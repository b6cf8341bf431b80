package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/facsim"
	"github.com/facgw/facgw/internal/testpeer"
)

// TestAlertPathsIntegration runs the facgw binary against the simulated
// facility with three alert paths on real peers: two mosquitto brokers
// (path A), Prometheus Alertmanager and net-snmp snmptrapd (SNMPv2c
// informs). It kills each path in turn, and finally facgw itself between
// detection and delivery:
//
//  1. thermal runaway on rack 1: the off-gas alert reaches every path;
//  2. both brokers killed: the aspirating detector's fire alarm still
//     reaches Alertmanager and snmptrapd, a delivery-path-degraded alert
//     for MQTT goes out on them, and the brokers get everything once back;
//  3. Alertmanager killed: rack 2's off-gas alert reaches MQTT and
//     snmptrapd, and Alertmanager once it is back;
//  4. every path down, a CRAC fails, facgw records the alert and is
//     SIGKILLed; after the peers and facgw restart, the alert is
//     delivered on every path with the id it was recorded under.
func TestAlertPathsIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds facgw and starts mosquitto, Alertmanager and snmptrapd")
	}
	bin := facgwBinary(t)
	// Paths retry with backoff (up to 10 s) and the machine may be
	// loaded: wait generously; nothing here is timed.
	waitUntil := func(t *testing.T, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	brokerA, brokerB := testpeer.StartMosquitto(t, ""), testpeer.StartMosquitto(t, "")
	amURL, am := testpeer.StartAlertmanager(t)
	trapAddr, trapLog, trapd := testpeer.StartSnmptrapd(t, "authCommunity log public\n", "-On")
	subA, subB := watchAlertTopics(t, brokerA.Addr), watchAlertTopics(t, brokerB.Addr)

	sim := startSim(t, facsim.Options{Manual: true, Seed: 5})

	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	cfgFile := filepath.Join(dir, "facgw.yaml")
	cfg := fmt.Sprintf(`site: alert-test
gateway: gw-1
state_dir: %s
http: {listen: %q}
defaults: {timeout: 500ms, retries: 0, poll: {default: 100ms}}
mqtt:
  brokers:
    - {name: a, url: %q}
    - {name: b, url: %q}
rules:
  packs: [fire, cooling]
alerting:
  degraded_after: 2s
  alertmanager:
    - {name: am, urls: [%q], resend_every: 5s, timeout: 2s}
  snmp:
    - {name: nms, address: %q, version: 2c, community: public, inform: true, timeout: 500ms, retries: 1}
devices:
  - {id: bms-rack1, profile: generic-liion-bms, transport: modbus-tcp, address: %q, unit: 1, labels: {room: battery-room-b3}}
  - {id: bms-rack2, profile: generic-liion-bms, transport: modbus-tcp, address: %q, unit: 2, labels: {room: battery-room-b3}}
  - {id: firepanel, profile: generic-fire-panel, transport: modbus-tcp, address: %q, unit: 1, labels: {room: battery-room-b3}}
  - {id: vesda-1, profile: generic-vesda, transport: modbus-tcp, address: %q, unit: 2, labels: {room: battery-room-b3}}
  - {id: crac-1, profile: liebert-icom-crac, transport: modbus-tcp, address: %q, labels: {room: hall-1}}
`, filepath.Join(dir, "state"), httpAddr, brokerA.URL(), brokerB.URL(), amURL, trapAddr,
		sim.Addr("bms-rack1"), sim.Addr("bms-rack2"), sim.Addr("firepanel"), sim.Addr("vesda-1"), sim.Addr("crac-1"))
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs []string
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "-config", cfgFile)
		logFile := filepath.Join(dir, fmt.Sprintf("facgw-%d.log", len(logs)))
		logs = append(logs, logFile)
		f, err := os.Create(logFile)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = f, f
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); f.Close() })
		return cmd
	}
	defer func() {
		if t.Failed() {
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, strings.TrimSpace(string(b)))
			}
			b, _ := os.ReadFile(trapLog)
			t.Logf("snmptrapd log:\n%s", b)
		}
	}()
	gw := start()
	base := "http://" + httpAddr
	waitUntil(t, "facgw serving", func() bool { _, err := gatewayAlerts(base); return err == nil })

	// step advances the simulated facility until cond holds.
	step := func(what string, dt time.Duration, cond func() bool) {
		t.Helper()
		waitUntil(t, what, func() bool {
			sim.Step(dt)
			time.Sleep(50 * time.Millisecond) // let a poll see the new values
			return cond()
		})
	}
	firing := func(rule, instance string) func() (alert.Event, bool) {
		return func() (alert.Event, bool) {
			evs, _ := gatewayAlerts(base)
			for _, e := range evs {
				if e.Rule == rule && e.Instance() == instance {
					return e, true
				}
			}
			return alert.Event{}, false
		}
	}
	await := func(what string, dt time.Duration, f func() (alert.Event, bool)) alert.Event {
		t.Helper()
		var e alert.Event
		step(what, dt, func() bool { var ok bool; e, ok = f(); return ok })
		t.Logf("%s: %s %s", what, e.ID, e.Summary)
		return e
	}
	inAM := func(id string) bool { return strings.Contains(amAlerts(amURL), `"episode":"`+id+`"`) }
	inTrapd := func(id string) bool {
		return testpeer.CountLogLines(trapLog, regexp.MustCompile(regexp.QuoteMeta(`"`+id+`"`))) > 0
	}

	// 1. Every path up.
	if err := sim.SetScenario("bms-rack1", "thermal-runaway"); err != nil {
		t.Fatal(err)
	}
	e1 := await("rack 1 off-gas alert", 5*time.Second, firing("fire/liion-offgas-alarm", "bms-rack1"))
	waitUntil(t, "e1 on every path", func() bool {
		return inAM(e1.ID) && inTrapd(e1.ID) && subA.has(e1.ID, alert.KindFiring) && subB.has(e1.ID, alert.KindFiring)
	})

	// 2. Both brokers down.
	brokerA.Kill()
	brokerB.Kill()
	if err := sim.SetScenario("vesda-1", "fire-alarm"); err != nil {
		t.Fatal(err)
	}
	e2 := await("confirmed fire in the battery room", 10*time.Second, firing("fire/confirmed-fire", "room=battery-room-b3"))
	waitUntil(t, "e2 on Alertmanager and snmptrapd with both brokers down", func() bool { return inAM(e2.ID) && inTrapd(e2.ID) })
	deg := await("delivery path degraded: mqtt", time.Second, firing("gateway/delivery-path-degraded", "mqtt"))
	waitUntil(t, "the degraded-path alert on Alertmanager and snmptrapd", func() bool { return inAM(deg.ID) && inTrapd(deg.ID) })
	brokerA.Restart()
	brokerB.Restart()
	subA.reconnect(t)
	subB.reconnect(t)
	waitUntil(t, "e2 (retained, active) on both brokers once back", func() bool { return subA.active(e2.ID) && subB.active(e2.ID) })

	// 3. Alertmanager down.
	am.Kill()
	if err := sim.SetScenario("bms-rack2", "thermal-runaway"); err != nil {
		t.Fatal(err)
	}
	e3 := await("rack 2 off-gas alert", 5*time.Second, firing("fire/liion-offgas-alarm", "bms-rack2"))
	waitUntil(t, "e3 on MQTT and snmptrapd with Alertmanager down", func() bool {
		return inTrapd(e3.ID) && subA.has(e3.ID, alert.KindFiring) && subB.has(e3.ID, alert.KindFiring)
	})
	am.Restart()
	waitUntil(t, "e3 on Alertmanager once back", func() bool { return inAM(e3.ID) })

	// 4. Every path down; facgw detects, records and is killed.
	brokerA.Kill()
	brokerB.Kill()
	am.Kill()
	trapd.Kill()
	if err := sim.SetScenario("crac-1", "crac-failure"); err != nil {
		t.Fatal(err)
	}
	e4 := await("crac-1 failed, recorded in the ledger", time.Second, firing("cooling/unit-failed", "crac-1"))
	if err := gw.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gw.Wait()
	if inAM(e4.ID) || inTrapd(e4.ID) || subA.has(e4.ID, alert.KindFiring) {
		t.Fatalf("e4 %s was delivered although every path was down", e4.ID)
	}
	brokerA.Restart()
	brokerB.Restart()
	subA.reconnect(t)
	subB.reconnect(t)
	am.Restart()
	trapd.Restart()
	start()
	waitUntil(t, "e4 on every path after facgw's restart, with the id it was recorded under", func() bool {
		return inAM(e4.ID) && inTrapd(e4.ID) && subA.active(e4.ID) && subB.active(e4.ID)
	})
	// The restarted gateway did not announce the open episodes again as
	// new ones: rack 1's off-gas alert has one id, still e1's.
	if e, ok := firing("fire/liion-offgas-alarm", "bms-rack1")(); !ok || e.ID != e1.ID {
		t.Errorf("after the restart: got %+v, want e1 (%s) still firing", e, e1.ID)
	}
}

// gatewayAlerts returns the gateway's firing alerts.
func gatewayAlerts(base string) ([]alert.Event, error) {
	resp, err := http.Get(base + "/api/v1/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var doc struct {
		Active []alert.Event `json:"active"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, err
	}
	return doc.Active, nil
}

// amAlerts returns Alertmanager's alerts as JSON ("" when it is down).
func amAlerts(url string) string {
	resp, err := http.Get(url + "/api/v2/alerts")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// alertTopics records the alert events and the retained active alerts of
// one broker.
type alertTopics struct {
	addr     string
	mu       sync.Mutex
	events   []alert.Event
	retained map[string]bool
	c        paho.Client
}

func watchAlertTopics(t *testing.T, addr string) *alertTopics {
	w := &alertTopics{addr: addr, retained: map[string]bool{}}
	w.reconnect(t)
	t.Cleanup(func() { w.c.Disconnect(0) })
	return w
}

// reconnect connects anew (a restarted broker without persistence has
// forgotten the subscription); the retained active alerts come again.
func (w *alertTopics) reconnect(t *testing.T) {
	t.Helper()
	if w.c != nil {
		w.c.Disconnect(0)
	}
	opts := paho.NewClientOptions().AddBroker("tcp://" + w.addr).SetClientID(fmt.Sprintf("watch-%d", time.Now().UnixNano())).
		SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond)
	w.c = paho.NewClient(opts)
	if tok := w.c.Connect(); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", w.addr, tok.Error())
	}
	tok := w.c.Subscribe("facgw/+/+/alerts/#", 1, func(_ paho.Client, m paho.Message) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if i := strings.Index(m.Topic(), "/alerts/active/"); i >= 0 {
			w.retained[m.Topic()[i+len("/alerts/active/"):]] = len(m.Payload()) > 0
			return
		}
		if e, err := alert.Unmarshal(m.Payload()); err == nil {
			w.events = append(w.events, e)
		}
	})
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", w.addr, tok.Error())
	}
}

func (w *alertTopics) has(id string, kind alert.Kind) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.events {
		if e.ID == id && e.Kind == kind {
			return true
		}
	}
	return false
}

func (w *alertTopics) active(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.retained[id]
}

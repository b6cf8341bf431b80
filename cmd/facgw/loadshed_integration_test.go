package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mb "github.com/goburrow/modbus"
	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/facsim"
	"github.com/facgw/facgw/internal/testpeer"
	"github.com/facgw/facgw/rules/loadshed"
)

// lsConfig is the gateway config of the load-shed tests: the SNMP UPS
// whose runtime counts down in the utility-failure scenario, the rPDU2
// (SNMP SET) and the Modbus outlet bank (coils), two brokers. Stage 1
// sheds the non-critical tier (two bank outlets and a PDU outlet), stage 2
// drains hall-1 through the orchestrator, then sheds app-01.
func lsConfig(dir, gw string, sim *facsim.Sim, brokerA, brokerB *testpeer.Mosquitto, armed bool, stage2After time.Duration) string {
	return fmt.Sprintf(`site: ls-test
gateway: %s
state_dir: %s
defaults: {timeout: 500ms, retries: 0, poll: {default: 100ms}}
mqtt:
  brokers:
    - {name: a, url: %q}
    - {name: b, url: %q}
devices:
  - {id: ups-c, profile: rfc1628-ups-snmp, transport: snmp, address: %q, snmp: {version: 2c, community: public}}
  - {id: pdu-a1, profile: apc-rpdu2-snmp, transport: snmp, address: %q, snmp: {version: 2c, community: public}}
  - {id: outlets-lab, profile: generic-modbus-outlet-bank, transport: modbus-tcp, address: %q, unit: 1}
loadshed:
  min_stage_interval: 200ms
  verify_timeout: 3s
  drain_timeout: 3s
  tiers:
    - {name: critical, critical: true}
    - {name: essential}
    - {name: non-critical}
  loads:
    - {name: lab-1, tier: non-critical, device: outlets-lab, point: pdu.outlet.command.1, off: "false", verify: {point: pdu.outlet.state.1, value: "false"}}
    - {name: lab-2, tier: non-critical, device: outlets-lab, point: pdu.outlet.command.2, off: "false", verify: {point: pdu.outlet.state.2, value: "false"}}
    - {name: lab-01, tier: non-critical, device: pdu-a1, point: pdu.outlet.command, index: "7", off: immediate_off, on: immediate_on, verify: {point: pdu.outlet.state, value: "off", on: "on"}}
    - {name: app-01, tier: essential, device: pdu-a1, point: pdu.outlet.command, index: "5", off: immediate_off, on: immediate_on, verify: {point: pdu.outlet.state, value: "off", on: "on"}}
    - {name: web-01, tier: critical, device: pdu-a1, point: pdu.outlet.command, index: "1", off: immediate_off, verify: {point: pdu.outlet.state, value: "off"}}
  write_credentials:
    - {device: pdu-a1, community: private}
  policies:
    - name: utility-failure
      armed: %t
      trigger:
        select: {devices: [ups-c]}
        when: ups.status.on_battery && battery.runtime < 15
        for: 1s
      stages:
        - {tiers: [non-critical]}
        - {after: %s, drain: {scope: hall-1}, loads: [app-01]}
`, gw, filepath.Join(dir, "state"), brokerA.URL(), brokerB.URL(), sim.Addr("ups-c"), sim.Addr("pdu-a1"), sim.Addr("outlets-lab"), armed, stage2After)
}

// lsRun is one gateway process on a config, with its audit log.
type lsRun struct {
	t    *testing.T
	bin  string
	cfg  string
	dir  string
	cmd  *exec.Cmd
	logs []string
}

func (r *lsRun) start() {
	r.t.Helper()
	cmd := exec.Command(r.bin, "run", "-config", r.cfg)
	logFile := filepath.Join(r.dir, fmt.Sprintf("facgw-%d.log", len(r.logs)))
	r.logs = append(r.logs, logFile)
	f, err := os.Create(logFile)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.cmd = cmd
	r.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); f.Close() })
}

func (r *lsRun) kill() {
	r.cmd.Process.Signal(syscall.SIGKILL)
	r.cmd.Wait()
}

func (r *lsRun) audit() []loadshed.Record {
	recs, _ := loadshed.ReadAudit(filepath.Join(r.dir, "state", "loadshed", "audit.jsonl"))
	return recs
}

func (r *lsRun) has(event string) bool {
	for _, rec := range r.audit() {
		if rec.Event == event {
			return true
		}
	}
	return false
}

// restoredOnce checks that every shed outlet reads on at the device and
// was switched on exactly once, read back, and returns the operator of the
// restore-started record.
func restoredOnce(t *testing.T, r *lsRun, sim *facsim.Sim) (by string) {
	t.Helper()
	for ld, on := range outletsOn(t, sim) {
		if !on {
			t.Errorf("outlet %s reads off at the device after the restore, want on", ld)
		}
	}
	restored := map[string]int{}
	for _, rec := range r.audit() {
		switch rec.Event {
		case loadshed.EventRestoreAction:
			if rec.Action != nil && rec.Action.Verified {
				restored[rec.Action.Load]++
			}
		case loadshed.EventRestoring:
			by = rec.Operator
		}
	}
	for _, ld := range []string{"lab-1", "lab-2", "lab-01", "app-01"} {
		if restored[ld] != 1 {
			t.Errorf("%s switched on %d times in the audit, want once", ld, restored[ld])
		}
	}
	return by
}

// last returns the last audit record of event (zero if none).
func (r *lsRun) last(event string) loadshed.Record {
	var rec loadshed.Record
	for _, x := range r.audit() {
		if x.Event == event {
			rec = x
		}
	}
	return rec
}

func (r *lsRun) dumpOnFailure() {
	if !r.t.Failed() {
		return
	}
	for _, l := range r.logs {
		b, _ := os.ReadFile(l)
		r.t.Logf("%s:\n%s", l, strings.TrimSpace(string(b)))
	}
	b, _ := os.ReadFile(filepath.Join(r.dir, "state", "loadshed", "audit.jsonl"))
	r.t.Logf("audit:\n%s", b)
}

// lsWait polls cond, stepping the simulated facility by dt each round
// (dt 0: not at all), and fails after a generous deadline.
func lsWait(t *testing.T, sim *facsim.Sim, dt time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		if dt > 0 {
			sim.Step(dt)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// topicLog collects the messages of one broker under a topic filter.
type topicLog struct {
	mu  sync.Mutex
	msg map[string][][]byte
}

func (l *topicLog) get(topic string) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.msg[topic]...)
}

func subscribeLog(t *testing.T, broker *testpeer.Mosquitto, filter string) *topicLog {
	t.Helper()
	l := &topicLog{msg: map[string][][]byte{}}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID(fmt.Sprintf("ls-watch-%d", testpeer.FreePort(t))).SetOrderMatters(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect: %v", tok.Error())
	}
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		l.mu.Lock()
		l.msg[m.Topic()] = append(l.msg[m.Topic()], m.Payload())
		l.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return l
}

// orchestrator answers drain commands it reads on one broker with an
// acknowledgement on the other, twice (a retried answer), so the gateway
// must take an answer from any broker and only once.
func orchestrator(t *testing.T, from, to *testpeer.Mosquitto, base string) {
	t.Helper()
	out := paho.NewClient(paho.NewClientOptions().AddBroker(to.URL()).SetClientID(fmt.Sprintf("ls-orch-out-%d", testpeer.FreePort(t))))
	if tok := out.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("orchestrator connect: %v", tok.Error())
	}
	in := paho.NewClient(paho.NewClientOptions().AddBroker(from.URL()).SetClientID(fmt.Sprintf("ls-orch-in-%d", testpeer.FreePort(t))).SetOrderMatters(false))
	if tok := in.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("orchestrator connect: %v", tok.Error())
	}
	tok := in.Subscribe(base+"/loadshed/drain/+", 1, func(_ paho.Client, m paho.Message) {
		var cmd loadshed.DrainCommand
		if err := json.Unmarshal(m.Payload(), &cmd); err != nil {
			t.Errorf("drain command %s: %v", m.Payload(), err)
			return
		}
		if cmd.Action == loadshed.ActionWithdraw {
			return // no answer expected
		}
		ack, _ := json.Marshal(loadshed.DrainAck{ID: cmd.ID, Status: loadshed.AckDrained, By: "test-orchestrator", Message: "hall-1 drained"})
		for range 2 {
			out.Publish(cmd.AckTopic, 1, false, ack)
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("orchestrator subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { in.Disconnect(100); out.Disconnect(100) })
}

// outletsOn reads the outlets straight from the simulated devices, not
// through facgw: the bank's feedback contacts 1 and 2 (discrete inputs
// 0-1) and the rPDU2's outlet states 5 and 7 (on 2, off 1).
func outletsOn(t *testing.T, sim *facsim.Sim) map[string]bool {
	t.Helper()
	h := mb.NewTCPClientHandler(sim.Addr("outlets-lab"))
	h.SlaveId, h.Timeout = 1, 2*time.Second
	defer h.Close()
	b, err := mb.NewClient(h).ReadDiscreteInputs(0, 2)
	if err != nil {
		t.Fatalf("read the outlet bank: %v", err)
	}
	host, port, _ := strings.Cut(sim.Addr("pdu-a1"), ":")
	var p uint16
	fmt.Sscan(port, &p)
	g := &gosnmp.GoSNMP{Target: host, Port: p, Community: "public", Version: gosnmp.Version2c, Timeout: 2 * time.Second, Retries: 1}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	defer g.Conn.Close()
	const state = "1.3.6.1.4.1.318.1.1.26.9.2.3.1.5"
	pkt, err := g.Get([]string{state + ".5", state + ".7"})
	if err != nil {
		t.Fatalf("read the PDU: %v", err)
	}
	return map[string]bool{
		"lab-1": b[0]&1 != 0, "lab-2": b[0]&2 != 0,
		"app-01": gosnmp.ToBigInt(pkt.Variables[0].Value).Int64() == 2, "lab-01": gosnmp.ToBigInt(pkt.Variables[1].Value).Int64() == 2,
	}
}

// actions counts the actions per load that wrote (not skipped), in order.
func actions(recs []loadshed.Record) (order []string, n map[string]int) {
	n = map[string]int{}
	for _, rec := range recs {
		if rec.Event == loadshed.EventAction && rec.Action.Skipped == "" {
			n[rec.Action.Load]++
			order = append(order, rec.Action.Load)
			if !rec.Action.Verified {
				order[len(order)-1] += "(unverified)"
			}
		}
	}
	return order, n
}

// TestLoadshedIntegration runs the facgw binary against the simulated
// facility (UPS and rPDU2 over SNMP, the outlet bank over Modbus) and two
// mosquitto brokers, one gateway per case.
func TestLoadshedIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds facgw and starts two mosquitto brokers")
	}
	bin := facgwBinary(t)
	brokerA, brokerB := testpeer.StartMosquitto(t, ""), testpeer.StartMosquitto(t, "")
	setup := func(t *testing.T, gw string, armed bool, stage2After time.Duration) (*lsRun, *facsim.Sim, string) {
		sim := startSim(t, facsim.Options{Manual: true, Seed: 9})
		dir := t.TempDir()
		cfg := filepath.Join(dir, "facgw.yaml")
		if err := os.WriteFile(cfg, []byte(lsConfig(dir, gw, sim, brokerA, brokerB, armed, stage2After)), 0o644); err != nil {
			t.Fatal(err)
		}
		r := &lsRun{t: t, bin: bin, cfg: cfg, dir: dir}
		t.Cleanup(r.dumpOnFailure)
		return r, sim, "facgw/ls-test/" + gw
	}
	// withAPI gives the run an HTTP listener with an engineer's token and
	// returns a function posting a load-shed action for the policy.
	withAPI := func(t *testing.T, r *lsRun) func(action, body string) (int, string) {
		addr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
		cfg, _ := os.ReadFile(r.cfg)
		cfg = fmt.Appendf(cfg, "http: {listen: %q, tokens: [{name: ci, role: engineer, token: ls-test-engineer-token-0123456789abcdef}]}\n", addr)
		if err := os.WriteFile(r.cfg, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		return func(action, body string) (int, string) {
			req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/loadshed/utility-failure/"+action, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer ls-test-engineer-token-0123456789abcdef")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, err.Error()
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
	}
	utilityFailure := func(t *testing.T, sim *facsim.Sim) {
		if err := sim.SetScenario("ups-c", facsim.ScenarioUtilityFailure); err != nil {
			t.Fatal(err)
		}
	}

	// shedAll starts the armed gateway and runs the utility failure until
	// the shed has completed: the runtime counts down with simulated time
	// until the trigger holds (under 15 min) for its 1 s.
	shedAll := func(t *testing.T, r *lsRun, sim *facsim.Sim) {
		t.Helper()
		r.start()
		lsWait(t, sim, 0, "the gateway armed", func() bool { return r.has(loadshed.EventArmed) })
		utilityFailure(t, sim)
		lsWait(t, sim, 20*time.Second, "the shed to start", func() bool { return r.has(loadshed.EventTriggered) })
		lsWait(t, sim, 0, "the shed to complete", func() bool { return r.has(loadshed.EventCompleted) })
	}

	t.Run("armed sheds tier by tier", func(t *testing.T) {
		r, sim, base := setup(t, "gw-armed", true, time.Second)
		watchA, watchB := subscribeLog(t, brokerA, base+"/loadshed/#"), subscribeLog(t, brokerB, base+"/loadshed/#")
		orchestrator(t, brokerA, brokerB, base)
		shedAll(t, r, sim)
		order, n := actions(r.audit())
		if want := []string{"lab-1", "lab-2", "lab-01", "app-01"}; fmt.Sprint(order) != fmt.Sprint(want) {
			t.Errorf("actions: got %v, want %v (tier by tier, each verified)", order, want)
		}
		for ld, c := range n {
			if c != 1 {
				t.Errorf("%s written %d times, want once", ld, c)
			}
		}
		for ld, on := range outletsOn(t, sim) {
			if on {
				t.Errorf("outlet %s reads on at the device, want off", ld)
			}
		}
		var trig loadshed.Record
		acks, escalated := 0, 0
		for _, rec := range r.audit() {
			switch rec.Event {
			case loadshed.EventTriggered:
				trig = rec
			case loadshed.EventDrainAck:
				acks++
			case loadshed.EventDrainEscalated:
				escalated++
			}
		}
		runtime := -1.0
		for k, v := range trig.Inputs {
			if strings.HasSuffix(k, "battery.runtime") {
				fmt.Sscan(fmt.Sprint(v.Value), &runtime)
			}
		}
		if runtime < 0 || runtime >= 15 {
			t.Errorf("trigger inputs: got runtime %g in %+v, want one under 15 min", runtime, trig.Inputs)
		}
		if acks != 1 || escalated != 0 {
			t.Errorf("drain: got %d acknowledgements and %d escalations recorded, want 1 and 0 (the orchestrator answered twice)", acks, escalated)
		}
		topic := base + "/loadshed/audit/utility-failure"
		lsWait(t, sim, 0, "the audit on both brokers", func() bool {
			return len(watchA.get(topic)) >= len(r.audit())-1 && len(watchB.get(topic)) >= len(r.audit())-1
		})
		if got := len(watchA.get(base + "/loadshed/drain/utility-failure")); got != 1 {
			t.Errorf("drain commands on broker a: got %d, want 1", got)
		}
	})

	t.Run("disarmed only logs and publishes the plan", func(t *testing.T) {
		r, sim, base := setup(t, "gw-dry", false, time.Second)
		watch := subscribeLog(t, brokerB, base+"/loadshed/#")
		r.start()
		lsWait(t, sim, 0, "the gateway up", func() bool {
			_, err := os.Stat(filepath.Join(r.dir, "state", "loadshed", "audit.jsonl"))
			return err == nil
		})
		utilityFailure(t, sim)
		lsWait(t, sim, 20*time.Second, "the dry run", func() bool { return r.has(loadshed.EventDryRun) })
		lsWait(t, sim, 0, "the plan on MQTT", func() bool {
			for _, b := range watch.get(base + "/loadshed/audit/utility-failure") {
				var rec loadshed.Record
				if json.Unmarshal(b, &rec) == nil && rec.DryRun && len(rec.Plan) == 2 {
					return true
				}
			}
			return false
		})
		for ld, on := range outletsOn(t, sim) {
			if !on {
				t.Errorf("outlet %s is off after a dry run, want on", ld)
			}
		}
		if _, n := actions(r.audit()); len(n) != 0 {
			t.Errorf("actions in a dry run: got %v, want none", n)
		}
	})

	// refusedOn runs the utility failure until a few polls see the UPS on
	// battery, then puts the UPS into fault: the shed must be refused as
	// not good, with the UPS's points recorded bad for the reason, an
	// alert, and nothing written.
	refusedOn := func(t *testing.T, gw, fault, param, reason string) {
		r, sim, _ := setup(t, gw, true, time.Second)
		r.start()
		lsWait(t, sim, 0, "the gateway armed", func() bool { return r.has(loadshed.EventArmed) })
		utilityFailure(t, sim)
		sim.Step(time.Second)
		time.Sleep(500 * time.Millisecond) // a few polls see the UPS on battery
		if err := sim.SetFault("ups-c", fault, param); err != nil {
			t.Fatal(err)
		}
		lsWait(t, sim, 20*time.Second, "the refusal", func() bool { return r.has(loadshed.EventRefused) })
		rec := r.last(loadshed.EventRefused)
		if !strings.Contains(rec.Reason, "not good") {
			t.Errorf("refusal reason: got %q, want it to say the inputs are not good", rec.Reason)
		}
		for _, k := range []string{"battery.runtime", "ups.status.on_battery"} {
			if in := rec.Inputs[k]; in.Quality != "bad" || !strings.Contains(in.Reason, reason) {
				t.Errorf("refusal input %s: got %+v, want it recorded bad (%s)", k, in, reason)
			}
		}
		if _, n := actions(r.audit()); len(n) != 0 {
			t.Errorf("actions on bad inputs: got %v, want none", n)
		}
		for ld, on := range outletsOn(t, sim) {
			if !on {
				t.Errorf("outlet %s is off after a refusal, want on", ld)
			}
		}
		// The refusal is an alert on the ledger's paths (MQTT here).
		lsWait(t, sim, 0, "the refusal alert in the ledger", func() bool {
			b, _ := os.ReadFile(filepath.Join(r.dir, "state", "alerts", "ledger", "ledger.json"))
			return strings.Contains(string(b), "loadshed/utility-failure")
		})
	}
	// (Stale inputs, a device polled too late rather than failing, are
	// refused the same way: the controller's unit tests.)
	t.Run("silent UPS: runtime bad (timeout) refuses and alerts", func(t *testing.T) {
		refusedOn(t, "gw-silent", facsim.FaultSilent, "", "timeout")
	})
	t.Run("UPS answering errors: runtime bad refuses and alerts", func(t *testing.T) {
		refusedOn(t, "gw-bad", facsim.FaultError, "genErr", "genErr")
	})

	t.Run("manual restore through the API once power is back", func(t *testing.T) {
		r, sim, base := setup(t, "gw-restore", true, time.Second)
		post := withAPI(t, r)
		orchestrator(t, brokerA, brokerB, base)
		shedAll(t, r, sim)
		if code, body := post("restore", `{"reason":"too early"}`); code != http.StatusConflict {
			t.Errorf("restore while on battery: got %d %s, want 409", code, body)
		}
		if err := sim.SetScenario("ups-c", facsim.ScenarioNormal); err != nil {
			t.Fatal(err)
		}
		// Utility back: once the trigger no longer holds, the engineer's
		// restore is accepted.
		lsWait(t, sim, time.Second, "the restore accepted", func() bool {
			code, _ := post("restore", `{"reason":"utility stable, generator tested"}`)
			return code == http.StatusAccepted
		})
		lsWait(t, sim, 0, "the restore to complete", func() bool { return r.has(loadshed.EventRestored) })
		if by := restoredOnce(t, r, sim); by != "ci" {
			t.Errorf("restore-started operator: got %q, want the engineer ci", by)
		}
	})

	t.Run("automatic restore once utility power is stable", func(t *testing.T) {
		r, sim, base := setup(t, "gw-autorestore", true, time.Second)
		cfg, _ := os.ReadFile(r.cfg)
		cfg = []byte(strings.Replace(string(cfg), "      stages:\n",
			"      restore: auto\n      restore_when: {select: {devices: [ups-c]}, when: '!ups.status.on_battery', for: 2s}\n      stages:\n", 1))
		if err := os.WriteFile(r.cfg, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		orchestrator(t, brokerA, brokerB, base)
		shedAll(t, r, sim)
		if r.has(loadshed.EventRestoring) {
			t.Fatal("a restore started while the UPS is still on battery")
		}
		if err := sim.SetScenario("ups-c", facsim.ScenarioNormal); err != nil {
			t.Fatal(err)
		}
		lsWait(t, sim, time.Second, "the automatic restore to complete", func() bool { return r.has(loadshed.EventRestored) })
		restoredOnce(t, r, sim)
	})

	t.Run("orchestrator never acknowledges: escalation", func(t *testing.T) {
		r, sim, _ := setup(t, "gw-noack", true, time.Second)
		r.start()
		lsWait(t, sim, 0, "the gateway armed", func() bool { return r.has(loadshed.EventArmed) })
		utilityFailure(t, sim)
		lsWait(t, sim, 20*time.Second, "the drain command", func() bool { return r.has(loadshed.EventDrain) })
		lsWait(t, sim, 0, "the escalation and the shed completed", func() bool { return r.has(loadshed.EventCompleted) })
		if !r.has(loadshed.EventDrainEscalated) || r.has(loadshed.EventDrainAck) {
			t.Errorf("audit: want drain-escalated and no drain-ack")
		}
		if on := outletsOn(t, sim); on["app-01"] {
			t.Errorf("app-01 reads on after the escalation, want off")
		}
	})

	t.Run("inhibited armed policy does not shed", func(t *testing.T) {
		r, sim, _ := setup(t, "gw-inhibit", true, time.Second)
		// An engineer's token for the API: inhibit, then try a restore.
		post := withAPI(t, r)
		r.start()
		lsWait(t, sim, 0, "the gateway armed", func() bool { return r.has(loadshed.EventArmed) })
		lsWait(t, sim, 0, "the API", func() bool {
			code, _ := post("inhibit", `{"reason":"electrician at the PDU","on":true}`)
			return code == http.StatusOK
		})
		utilityFailure(t, sim)
		lsWait(t, sim, 20*time.Second, "the refusal", func() bool { return r.has(loadshed.EventRefused) })
		rec := r.last(loadshed.EventRefused)
		if !strings.Contains(rec.Reason, "inhibited by ci") {
			t.Errorf("refusal: got %q, want it to name the inhibit by ci", rec.Reason)
		}
		sim.Step(20 * time.Second) // the runtime runs down further: still nothing
		time.Sleep(time.Second)
		if _, n := actions(r.audit()); len(n) != 0 || r.has(loadshed.EventTriggered) {
			t.Errorf("actions while inhibited: got %v (triggered %v), want none", n, r.has(loadshed.EventTriggered))
		}
		for ld, on := range outletsOn(t, sim) {
			if !on {
				t.Errorf("outlet %s is off while inhibited, want on", ld)
			}
		}
		if code, body := post("restore", `{"reason":"try"}`); code != http.StatusConflict || !strings.Contains(body, "trigger still holds") {
			t.Errorf("restore while the trigger holds: got %d %s, want 409 saying the trigger still holds", code, body)
		}
	})

	t.Run("restart mid-shed neither repeats nor forgets", func(t *testing.T) {
		r, sim, base := setup(t, "gw-restart", true, 6*time.Second)
		orchestrator(t, brokerA, brokerB, base)
		r.start()
		lsWait(t, sim, 0, "the gateway armed", func() bool { return r.has(loadshed.EventArmed) })
		utilityFailure(t, sim)
		lsWait(t, sim, 20*time.Second, "stage 1 done", func() bool {
			_, n := actions(r.audit())
			return n["lab-01"] == 1
		})
		r.kill() // between stage 1 and stage 2 (6 s later)
		if r.has(loadshed.EventDrain) {
			t.Fatal("stage 2 started before the kill; the test needs a longer stage delay")
		}
		r.start()
		lsWait(t, sim, 2*time.Second, "the shed to complete after the restart", func() bool { return r.has(loadshed.EventCompleted) })
		order, n := actions(r.audit())
		if want := "map[app-01:1 lab-01:1 lab-1:1 lab-2:1]"; fmt.Sprint(n) != want {
			t.Errorf("actions per load: got %v (%v), want %s", n, order, want)
		}
		if !r.has(loadshed.EventResumed) {
			t.Errorf("audit: want a resumed record after the restart")
		}
		for ld, on := range outletsOn(t, sim) {
			if on {
				t.Errorf("outlet %s reads on, want off", ld)
			}
		}
	})
}

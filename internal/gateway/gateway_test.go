package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/demo"
	"github.com/facgw/facgw/internal/demo/demotest"
	"github.com/facgw/facgw/internal/facsim"
	"github.com/facgw/facgw/internal/gateway"
	"github.com/facgw/facgw/internal/point"
)

// startDemo starts what `make run` starts, through the same internal/demo
// code: the facility of deploy/facility.yaml in-process (its clock stepped
// by hand), two embedded brokers and a gateway built from deploy/demo.yaml
// (polling faster) with its trap listener. It returns both once every device has been
// polled at least once.
func startDemo(t *testing.T) (*facsim.Sim, *gateway.Gateway) {
	t.Helper()
	info, gw := startDemoInfo(t)
	return info.Sim, gw
}

// startDemoInfo is startDemo, also returning where the demo's parts
// listen (brokers, webhook receiver).
func startDemoInfo(t *testing.T) (*demo.Info, *gateway.Gateway) {
	t.Helper()
	d := demotest.Start(t, "../..", nil)
	return d.Info, d.Gateway
}

// waitFor polls cond until it holds. The bound only turns a hang into a
// failure; no assertion depends on how long anything took.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// present waits until a point has a good value and returns it.
func present(t *testing.T, gw *gateway.Gateway, dev, name string) point.Point {
	t.Helper()
	waitFor(t, dev+" "+name+" good", func() bool { return get(gw, dev, name).Quality == point.Good })
	return get(gw, dev, name)
}

// get returns a point's latest value; a point not yet polled comes back
// bad, so no check can mistake it for a good zero.
func get(gw *gateway.Gateway, dev, name string) point.Point {
	p, ok := gw.State().Get(dev, name)
	if !ok {
		return point.Point{Device: dev, Name: name, Quality: point.Bad, Reason: point.ReasonNotPolled}
	}
	return p
}

// TestDemoFacilityIntegration: every simulated device is identified and
// read with good quality in the normal scenario, through the same config
// and facility files `make run` uses.
func TestDemoFacilityIntegration(t *testing.T) {
	_, gw := startDemo(t)
	for _, info := range gw.Devices() {
		waitFor(t, info.ID+" good", func() bool {
			for _, p := range gw.State().Points(info.ID) {
				if p.Quality != point.Good && !strings.HasPrefix(p.Reason, point.ReasonAbsent) {
					return false
				}
			}
			return true
		})
	}
	var ups *struct{ profile, fw string }
	for _, d := range gw.Devices() {
		if d.ID == "ups-a" {
			ups = &struct{ profile, fw string }{d.Profile, d.Firmware}
		}
	}
	if ups == nil || ups.profile != "apc-smart-ups-modbus" || ups.fw == "" {
		t.Errorf("ups-a (profile auto): got %+v, want identified as apc-smart-ups-modbus with its firmware", ups)
	}
	waitFor(t, "ups-a online polled", func() bool { _, ok := gw.State().Get("ups-a", "ups.status.online"); return ok })
	waitFor(t, "ups-a frequency polled", func() bool { _, ok := gw.State().Get("ups-a", "ups.output.frequency"); return ok })
	if p := get(gw, "ups-a", "ups.status.online"); p.Value() != true {
		t.Errorf("ups-a online: got %v (%v %s), want true", p.Value(), p.Quality, p.Reason)
	}
	if p := get(gw, "ups-a", "ups.output.frequency"); p.Num < 49 || p.Num > 51 || p.Unit != point.Hertz {
		t.Errorf("ups-a output frequency: got %v %s, want about 50 Hz", p.Num, p.Unit)
	}
}

// TestScenariosIntegration drives each simulator scenario and checks the
// gateway sees it, device by device, while the other devices stay as they
// were.
func TestScenariosIntegration(t *testing.T) {
	sim, gw := startDemo(t)

	// Utility failure: UPS A goes on battery and its runtime falls.
	if err := sim.SetScenario("ups-a", "utility-failure"); err != nil {
		t.Fatal(err)
	}
	sim.Step(30 * time.Second)
	waitFor(t, "ups-a on battery", func() bool { return get(gw, "ups-a", "ups.status.on_battery").Value() == true })
	rt1 := present(t, gw, "ups-a", "battery.runtime")
	sim.Step(120 * time.Second)
	waitFor(t, "ups-a runtime falling", func() bool {
		rt2 := get(gw, "ups-a", "battery.runtime")
		return rt2.Quality == point.Good && rt2.Num < rt1.Num
	})
	if p := get(gw, "ups-b", "ups.status.on_battery"); p.Value() != false {
		t.Errorf("ups-b on battery: got %v, want false (only ups-a's scenario changed)", p.Value())
	}

	// Li-ion thermal runaway precursor: off-gas first, then cell
	// temperature; the other rack behind the same gateway is unaffected.
	if err := sim.SetScenario("bms-rack1", "thermal-runaway"); err != nil {
		t.Fatal(err)
	}
	base := present(t, gw, "bms-rack1", "bms.cell_temp_max").Num
	for i := 0; i < 20 && get(gw, "bms-rack1", "bms.alarm.offgas").Value() != true; i++ {
		sim.Step(15 * time.Second)
		time.Sleep(100 * time.Millisecond)
	}
	waitFor(t, "off-gas alarm on rack 1", func() bool { return get(gw, "bms-rack1", "bms.alarm.offgas").Value() == true })
	for i := 0; i < 40; i++ {
		sim.Step(15 * time.Second)
	}
	waitFor(t, "cell temperature rising on rack 1", func() bool { return get(gw, "bms-rack1", "bms.cell_temp_max").Num > base+10 })
	if p := get(gw, "bms-rack2", "bms.alarm.offgas"); p.Value() != false || p.Quality != point.Good {
		t.Errorf("rack 2 off-gas alarm: got %v (%v), want good false", p.Value(), p.Quality)
	}

	// Fire alarm: the aspirating detector walks up to Fire 2 and the panel
	// follows.
	if err := sim.SetScenario("vesda-1", "fire-alarm"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 60; i++ {
		sim.Step(10 * time.Second)
	}
	waitFor(t, "vesda fire2", func() bool { return get(gw, "vesda-1", "vesda.fire2").Value() == true })
	waitFor(t, "fire panel alarm", func() bool { return get(gw, "firepanel", "firepanel.alarm").Value() == true })

	// CRAC failure: supply air warms on crac-1 only.
	supply := present(t, gw, "crac-1", "crac.supply_temp").Num
	if err := sim.SetScenario("crac-1", "crac-failure"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		sim.Step(20 * time.Second)
	}
	waitFor(t, "crac-1 supply air warming", func() bool { return get(gw, "crac-1", "crac.supply_temp").Num > supply+3 })
}

// TestDeviceFaultsIntegration: each simulated device fault turns that
// device's points bad with the right reason, the device sharing its
// gateway and every other device keep polling, and the device recovers
// once the fault clears.
func TestDeviceFaultsIntegration(t *testing.T) {
	sim, gw := startDemo(t)
	faults := []struct {
		device, kind, param, reason string
	}{
		{"crac-1", "silent", "", "timeout"},
		{"vesda-1", "exception", "4", "exception: server device failure (04)"},
		{"ups-b", "drop", "", "connection"},
		{"crac-2", "garbage", "", "protocol"},
		{"bms-rack2", "late", "2s", "timeout"},
	}
	for _, f := range faults {
		t.Run(f.device+"/"+f.kind, func(t *testing.T) {
			if err := sim.SetFault(f.device, f.kind, f.param); err != nil {
				t.Fatal(err)
			}
			waitFor(t, f.device+" bad with "+f.reason, func() bool {
				for _, p := range gw.State().Points(f.device) {
					if p.Quality == point.Bad && strings.Contains(p.Reason, f.reason) {
						return true
					}
				}
				return false
			})
			// Others keep their cadence: every other device completes more
			// polls while the faulty one is broken.
			before := cycles(gw)
			waitFor(t, "other devices keep polling", func() bool {
				now := cycles(gw)
				for id, n := range now {
					if id != f.device && n < before[id]+3 {
						return false
					}
				}
				return true
			})
			if err := sim.SetFault(f.device, "none", ""); err != nil {
				t.Fatal(err)
			}
			waitFor(t, f.device+" recovered", func() bool {
				pts := gw.State().Points(f.device)
				for _, p := range pts {
					if p.Quality != point.Good && !strings.HasPrefix(p.Reason, point.ReasonAbsent) {
						return false
					}
				}
				return len(pts) > 0
			})
		})
	}
}

func cycles(gw *gateway.Gateway) map[string]uint64 {
	out := map[string]uint64{}
	for _, s := range gw.PollStats() {
		out[s.Device] += s.Cycles
	}
	return out
}

// TestSnmpTrapIntegration: a utility failure on the simulated SNMP UPS
// sends upsTrapOnBattery to the gateway's listener, which records it and
// polls the UPS at once; the link-down scenario on the switch does the
// same with linkDown. All agents share 127.0.0.1, so the gateway picks the
// device by the notification's family.
func TestSnmpTrapIntegration(t *testing.T) {
	sim, gw := startDemo(t)
	if err := sim.SetScenario("ups-c", "utility-failure"); err != nil {
		t.Fatal(err)
	}
	sim.Step(5 * time.Second)
	waitFor(t, "upsTrapOnBattery event", func() bool { return hasEvent(gw, "upsTrapOnBattery", "ups-c") })
	waitFor(t, "ups-c on battery", func() bool { return get(gw, "ups-c", "ups.status.on_battery").Value() == true })
	// The regular 50 ms poll may see the change first; the poll the trap
	// triggered is counted once it completes.
	waitFor(t, "a poll of ups-c triggered by the trap", func() bool {
		for _, s := range gw.PollStats() {
			if s.Device == "ups-c" && s.Triggered > 0 {
				return true
			}
		}
		return false
	})
	if err := sim.SetScenario("sw-core1", "link-down"); err != nil {
		t.Fatal(err)
	}
	sim.Step(time.Second)
	waitFor(t, "linkDown event", func() bool { return hasEvent(gw, "linkDown", "sw-core1") })
}

func hasEvent(gw *gateway.Gateway, name, device string) bool {
	for _, e := range gw.Events() {
		if e.Name == name && e.Device == device && e.Repolled {
			return true
		}
	}
	return false
}

// TestDemoPublishesIntegration: the demo's two embedded brokers both get
// every message: each broker's outbox drains to zero with everything
// acknowledged.
func TestDemoPublishesIntegration(t *testing.T) {
	_, gw := startDemo(t)
	waitFor(t, "both brokers connected and drained", func() bool {
		ds := gw.Destinations()
		if len(ds) != 2 {
			return false
		}
		for _, d := range ds {
			if !d.Connected || d.Acked == 0 || d.Outbox.Appended < 20 {
				return false
			}
		}
		return true
	})
}

package facsim

import (
	"context"
	"reflect"
	"testing"
	"time"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

const testFacility = "testdata/facility.yaml"

// TestNormalValuesPlausible reads the normal state of every device class
// over Modbus, several times as the values move.
func TestNormalValuesPlausible(t *testing.T) {
	s := startTest(t, testFacility, Options{})
	upsA, upsB := dial(t, s, "ups-a"), dial(t, s, "ups-b")
	bms1, bms2 := dial(t, s, "bms-1"), dial(t, s, "bms-2")
	crac, panel, vesda := dial(t, s, "crac-1"), dial(t, s, "panel"), dial(t, s, "vesda")
	var loads []float64
	for i := range 6 {
		s.Step(time.Minute)
		for _, c := range []*client{upsA, upsB} {
			if !c.bool("ups.status.online") || c.bool("ups.status.on_battery") || c.bool("ups.status.input_bad") || c.bool("ups.status.overload") {
				t.Errorf("step %d %s: status not online on mains", i, c.res.Profile.Model)
			}
			load := c.num("ups.output.load")
			inRange(t, "ups.output.load", load, 28, 62)
			loads = append(loads, load)
			inRange(t, "ups.output.voltage", c.num("ups.output.voltage"), 225, 235)
			inRange(t, "ups.output.frequency", c.num("ups.output.frequency"), 49.8, 50.2)
			inRange(t, "battery.charge", c.num("battery.charge"), 99.9, 100)
		}
		inRange(t, "ups-a ups.input.voltage", upsA.num("ups.input.voltage"), 220, 240)
		inRange(t, "ups-a battery.runtime", upsA.num("battery.runtime"), 600, 3600)
		inRange(t, "ups-a battery.voltage", upsA.num("battery.voltage"), 50, 58)
		inRange(t, "ups-a battery.temperature", upsA.num("battery.temperature"), 20, 30)
		// Socomec reports 0xFFFF runtime on mains, as the profile says.
		if p := upsB.read("battery.runtime"); p.Quality != point.Bad {
			t.Errorf("ups-b battery.runtime on mains: %v %v, want bad (absent)", p.Quality, p.Num)
		}

		for _, c := range []*client{bms1, bms2} {
			inRange(t, "bms.soc", c.num("bms.soc"), 95, 100)
			inRange(t, "bms.cell_temp_max", c.num("bms.cell_temp_max"), 15, 35)
			inRange(t, "bms.cell_temp_min", c.num("bms.cell_temp_min"), 15, 35)
			inRange(t, "bms.offgas_ppm", c.num("bms.offgas_ppm"), 0, 5)
			inRange(t, "bms.cell_voltage_spread", c.num("bms.cell_voltage_spread"), 5, 30)
			inRange(t, "bms.cell_voltage_max", c.num("bms.cell_voltage_max"), 3.2, 3.6)
			if got := c.read("bms.contactor").Str; got != "closed" {
				t.Errorf("bms.contactor = %q, want closed", got)
			}
			for _, a := range []string{"bms.alarm.cell_overtemp", "bms.alarm.offgas", "bms.alarm.cell_undervoltage", "bms.alarm.cell_overvoltage"} {
				if c.bool(a) {
					t.Errorf("step %d: %s set in normal", i, a)
				}
			}
		}
		inRange(t, "bms-2 bms.h2_ppm", bms2.num("bms.h2_ppm"), 0, 5)

		inRange(t, "crac.supply_temp", crac.num("crac.supply_temp"), 16, 20)
		inRange(t, "crac.return_temp", crac.num("crac.return_temp"), 25, 31)
		inRange(t, "crac.return_humidity", crac.num("crac.return_humidity"), 35, 55)
		inRange(t, "crac.fan_speed", crac.num("crac.fan_speed"), 55, 85)
		if crac.read("crac.state").Str != "on" || crac.read("crac.compressor").Str != "on" || crac.bool("crac.alarm.high_supply_temp") {
			t.Errorf("step %d: crac not running normally", i)
		}

		inRange(t, "vesda.obscuration", vesda.num("vesda.obscuration"), 0, 0.05)
		if vesda.read("vesda.level").Str != "normal" || vesda.bool("vesda.alert") {
			t.Errorf("step %d: vesda not normal", i)
		}
		if panel.bool("firepanel.alarm") || panel.read("firepanel.state").Str != "armed" {
			t.Errorf("step %d: panel not armed and quiet", i)
		}
	}
	moved := false
	for _, l := range loads[2:] {
		moved = moved || l != loads[0]
	}
	if !moved {
		t.Errorf("ups load never moved: %v", loads)
	}
}

// TestUtilityFailure walks a UPS through a mains failure to depletion and
// back.
func TestUtilityFailure(t *testing.T) {
	s := startTest(t, testFacility, Options{})
	c := dial(t, s, "ups-a")
	s.Step(time.Second)
	if err := s.SetScenario("ups-a", ScenarioUtilityFailure); err != nil {
		t.Fatal(err)
	}
	s.Step(time.Second)
	if c.bool("ups.status.online") || !c.bool("ups.status.on_battery") || !c.bool("ups.status.input_bad") {
		t.Fatalf("after the failure: online %v on_battery %v input_bad %v, want false true true",
			c.bool("ups.status.online"), c.bool("ups.status.on_battery"), c.bool("ups.status.input_bad"))
	}
	if v := c.num("ups.input.voltage"); v != 0 {
		t.Errorf("input voltage on battery = %g, want 0", v)
	}
	inRange(t, "output voltage on battery", c.num("ups.output.voltage"), 225, 235)

	prevRuntime, prevCharge := c.num("battery.runtime"), c.num("battery.charge")
	for i := range 3 {
		s.Step(3 * time.Minute)
		rt, ch := c.num("battery.runtime"), c.num("battery.charge")
		if rt >= prevRuntime || ch >= prevCharge {
			t.Errorf("step %d: runtime %g -> %g, charge %g -> %g, want both falling", i, prevRuntime, rt, prevCharge, ch)
		}
		if c.bool("ups.status.shutdown_imminent") {
			t.Errorf("step %d: low battery with %g s left", i, rt)
		}
		prevRuntime, prevCharge = rt, ch
	}

	// Run on until low battery, then until the output goes off.
	sawLow := false
	for range 120 {
		s.Step(30 * time.Second)
		if c.bool("ups.status.output_off") {
			break
		}
		if c.bool("ups.status.shutdown_imminent") {
			sawLow = true
			inRange(t, "runtime at low battery", c.num("battery.runtime"), 0, 150)
		}
	}
	if !sawLow {
		t.Error("never saw low battery before the output went off")
	}
	if !c.bool("ups.status.output_off") || c.bool("ups.status.on_battery") || c.num("battery.charge") != 0 {
		t.Fatalf("depleted: output_off %v on_battery %v charge %g, want true false 0",
			c.bool("ups.status.output_off"), c.bool("ups.status.on_battery"), c.num("battery.charge"))
	}

	if err := s.SetScenario("ups-a", ScenarioRestore); err != nil {
		t.Fatal(err)
	}
	s.Step(time.Second)
	if !c.bool("ups.status.online") || c.bool("ups.status.input_bad") || c.bool("ups.status.output_off") {
		t.Fatal("restore: not back online")
	}
	ch0 := c.num("battery.charge")
	s.Step(10 * time.Minute)
	if ch := c.num("battery.charge"); ch <= ch0+5 {
		t.Errorf("restore: charge %g -> %g after 10 min, want recharging", ch0, ch)
	}
}

// TestUtilityFailureRuntimeInMinutes checks the Socomec map: runtime in
// minutes, valid on battery only.
func TestUtilityFailureRuntimeInMinutes(t *testing.T) {
	s := startTest(t, testFacility, Options{})
	c := dial(t, s, "ups-b")
	if err := s.SetScenario("", ScenarioUtilityFailure); err != nil { // every UPS and BMS
		t.Fatal(err)
	}
	s.Step(time.Second)
	if !c.bool("ups.status.on_battery") || c.bool("ups.status.online") {
		t.Fatal("ups-b not on battery")
	}
	inRange(t, "ups-b runtime (min)", c.num("battery.runtime"), 5, 60)
	inRange(t, "ups-b battery current (discharge)", c.num("battery.current"), 50, 1000)
	b := dial(t, s, "bms-1")
	if b.read("bms.mode").Str != "discharging" || b.num("bms.current") <= 0 {
		t.Errorf("bms-1 with the class-wide utility failure: mode %q current %g, want discharging, positive",
			b.read("bms.mode").Str, b.num("bms.current"))
	}
	for _, d := range s.Devices() {
		want := d.Class == "ups" || d.Class == "battery"
		if got := d.Scenario == ScenarioUtilityFailure; got != want {
			t.Errorf("%s (%s) scenario %q after the class-wide switch", d.ID, d.Class, d.Scenario)
		}
	}
}

// TestThermalRunaway checks the order of a runaway's signals: off-gas and
// its alarm first, then the cell temperature rising several degC/min, then
// the over-temperature alarm; the other rack on the gateway is unaffected.
func TestThermalRunaway(t *testing.T) {
	s := startTest(t, testFacility, Options{})
	c, other := dial(t, s, "bms-2"), dial(t, s, "bms-1")
	s.Step(time.Second)
	base := c.num("bms.cell_temp_max")
	if err := s.SetScenario("bms-2", ScenarioThermalRunaway); err != nil {
		t.Fatal(err)
	}
	var offgasAt, h2At, heatAt, offgasAlarmAt, overtempAt time.Duration
	var maxRate float64
	const step = 5 * time.Second
	for elapsed := step; elapsed <= 15*time.Minute; elapsed += step {
		s.Step(step)
		if offgasAt == 0 && c.num("bms.offgas_ppm") > 10 {
			offgasAt = elapsed
		}
		if h2At == 0 && c.num("bms.h2_ppm") > 20 {
			h2At = elapsed
		}
		if heatAt == 0 && c.num("bms.cell_temp_max") > base+2 {
			heatAt = elapsed
		}
		if offgasAlarmAt == 0 && c.bool("bms.alarm.offgas") {
			offgasAlarmAt = elapsed
		}
		if overtempAt == 0 && c.bool("bms.alarm.cell_overtemp") {
			overtempAt = elapsed
		}
		if heatAt != 0 && overtempAt == 0 {
			maxRate = max(maxRate, c.num("bms.cell_temp_rise"))
		}
	}
	t.Logf("off-gas %v, H2 %v, offgas alarm %v, heating %v, over-temperature %v", offgasAt, h2At, offgasAlarmAt, heatAt, overtempAt)
	if offgasAt == 0 || offgasAlarmAt == 0 || heatAt == 0 || overtempAt == 0 || h2At == 0 {
		t.Fatal("a stage never happened")
	}
	if offgasAt >= heatAt || offgasAlarmAt >= heatAt {
		t.Errorf("off-gas at %v (alarm %v), heating at %v: want off-gas first", offgasAt, offgasAlarmAt, heatAt)
	}
	if overtempAt <= heatAt || offgasAlarmAt >= overtempAt {
		t.Errorf("over-temperature alarm at %v, heating %v, offgas alarm %v: want heating, offgas alarm, then over-temperature", overtempAt, heatAt, offgasAlarmAt)
	}
	inRange(t, "rate of rise before over-temperature (degC/min)", maxRate, 2, 15)
	if !c.bool("bms.alarm.offgas") || !c.bool("bms.alarm.cell_overtemp") {
		t.Error("alarm bits not both set at the end")
	}
	if c.read("bms.contactor").Str != "open" {
		t.Error("contactor still closed after over-temperature")
	}
	if other.bool("bms.alarm.offgas") || other.num("bms.cell_temp_max") > 35 {
		t.Error("the other rack on the gateway took part in the runaway")
	}

	if err := s.SetScenario("bms-2", ScenarioNormal); err != nil {
		t.Fatal(err)
	}
	s.Step(time.Second)
	if c.bool("bms.alarm.offgas") || c.bool("bms.alarm.cell_overtemp") || c.num("bms.cell_temp_max") > 35 {
		t.Error("normal did not reset the rack")
	}
}

// TestFireAlarm walks the detector through its levels in order and checks
// that the panel follows at Fire 1 and latches until reset.
func TestFireAlarm(t *testing.T) {
	s := startTest(t, testFacility, Options{})
	v, p := dial(t, s, "vesda"), dial(t, s, "panel")
	if err := s.SetScenario("", ScenarioFireAlarm); err != nil {
		t.Fatal(err)
	}
	bits := []string{"vesda.alert", "vesda.action", "vesda.fire1", "vesda.fire2"}
	var levels []int
	prevObsc := 0.0
	for range 300 {
		s.Step(time.Second)
		lvl := int(v.num("vesda.level"))
		if len(levels) == 0 || levels[len(levels)-1] != lvl {
			levels = append(levels, lvl)
		}
		for i, b := range bits {
			if got := v.bool(b); got != (lvl > i) {
				t.Fatalf("level %d: %s = %v", lvl, b, got)
			}
		}
		if got := p.bool("firepanel.alarm"); got != (lvl >= 3) {
			t.Fatalf("detector level %d: panel alarm %v, want it to follow Fire 1", lvl, got)
		}
		if got := p.bool("firepanel.zone1.alarm"); got != (lvl >= 3) {
			t.Fatalf("detector level %d: zone 1 alarm %v", lvl, got)
		}
		obsc := v.num("vesda.obscuration")
		if obsc+0.005 < prevObsc {
			t.Fatalf("obscuration fell from %g to %g", prevObsc, obsc)
		}
		prevObsc = obsc
		if lvl == 4 {
			break
		}
	}
	if !reflect.DeepEqual(levels, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("levels %v, want 0 1 2 3 4 in order", levels)
	}
	if p.read("firepanel.state").Str != "tripped" {
		t.Errorf("panel state %q, want tripped", p.read("firepanel.state").Str)
	}

	// The panel latches: the detector clearing does not reset it.
	if err := s.SetScenario("vesda", ScenarioNormal); err != nil {
		t.Fatal(err)
	}
	s.Step(time.Second)
	if v.num("vesda.level") != 0 || !p.bool("firepanel.alarm") {
		t.Error("after the detector cleared: want detector normal, panel still in alarm")
	}
	if err := s.SetScenario("panel", ScenarioNormal); err != nil {
		t.Fatal(err)
	}
	s.Step(time.Second)
	if p.bool("firepanel.alarm") {
		t.Error("panel reset did not clear the alarm")
	}

	// Naming the panel alarms it at once.
	if err := s.SetScenario("panel", ScenarioFireAlarm); err != nil {
		t.Fatal(err)
	}
	s.Step(time.Second)
	if !p.bool("firepanel.alarm") || !p.bool("firepanel.zone1.alarm") || v.num("vesda.level") != 0 {
		t.Error("panel named by fire-alarm: want panel alarm at once, detector still normal")
	}
}

// TestCRACFailure checks that a failed unit stops and its supply air warms
// past the alarm threshold.
func TestCRACFailure(t *testing.T) {
	s := startTest(t, testFacility, Options{})
	c := dial(t, s, "crac-1")
	s.Step(time.Second)
	supply0, ret0 := c.num("crac.supply_temp"), c.num("crac.return_temp")
	if err := s.SetScenario("crac-1", ScenarioCRACFailure); err != nil {
		t.Fatal(err)
	}
	s.Step(time.Minute)
	if !c.bool("crac.alarm.unit_fault") || c.num("crac.fan_speed") != 0 || c.read("crac.compressor").Str != "off" {
		t.Errorf("failed unit: fault %v fan %g compressor %q, want true 0 off",
			c.bool("crac.alarm.unit_fault"), c.num("crac.fan_speed"), c.read("crac.compressor").Str)
	}
	supply1 := c.num("crac.supply_temp")
	if supply1 <= supply0+1 {
		t.Errorf("supply %g -> %g after 1 min, want warming", supply0, supply1)
	}
	if c.bool("crac.alarm.high_supply_temp") && supply1 < 25 {
		t.Errorf("high supply alarm at %g degC", supply1)
	}
	s.Step(10 * time.Minute)
	supply2 := c.num("crac.supply_temp")
	if supply2 <= 25 || supply2 > c.num("crac.return_temp") {
		t.Errorf("supply after 11 min = %g (return %g, was %g), want above 25 and at most the return air", supply2, c.num("crac.return_temp"), ret0)
	}
	if !c.bool("crac.alarm.high_supply_temp") {
		t.Error("high supply temperature alarm not set")
	}
}

// TestScenarioErrors checks that unknown names and wrong classes fail.
func TestScenarioErrors(t *testing.T) {
	s := startTest(t, testFacility, Options{})
	for _, tc := range []struct{ dev, scenario string }{
		{"nope", ScenarioNormal},
		{"ups-a", "meltdown"},
		{"ups-a", ScenarioThermalRunaway},
		{"crac-1", ScenarioFireAlarm},
		{"", "meltdown"},
	} {
		if err := s.SetScenario(tc.dev, tc.scenario); err == nil {
			t.Errorf("SetScenario(%q, %q): no error", tc.dev, tc.scenario)
		}
	}
	for _, tc := range []struct{ dev, kind, param string }{
		{"nope", FaultSilent, ""},
		{"ups-a", "explode", ""},
		{"ups-a", FaultLate, "soon"},
		{"ups-a", FaultException, "300"},
		{"ups-a", FaultGarbage, "noise"},
		{"ups-a", FaultSilent, "1s"},
	} {
		if err := s.SetFault(tc.dev, tc.kind, tc.param); err == nil {
			t.Errorf("SetFault(%q, %q, %q): no error", tc.dev, tc.kind, tc.param)
		}
	}
}

// TestDeterministic checks that the same seed and steps give the same
// values, and Speed compresses scenario time.
func TestDeterministic(t *testing.T) {
	run := func(speed float64) []DeviceStatus {
		s := startTest(t, testFacility, Options{Seed: 42, Speed: speed})
		s.SetScenario("bms-1", ScenarioThermalRunaway)
		s.Step(time.Duration(float64(3*time.Minute) / speed))
		st := s.Devices()
		for i := range st {
			st[i].Address = ""
		}
		return st
	}
	a, b := run(1), run(1)
	if !reflect.DeepEqual(a, b) {
		t.Error("two runs with the same seed differ")
	}
	fast := run(10)
	if fast[2].ID != "bms-1" || fast[2].ScenarioSeconds != 180 {
		t.Errorf("speed 10: %s scenario time %g s, want 180", fast[2].ID, fast[2].ScenarioSeconds)
	}
	if fast[2].Values["bms.alarm.offgas"] != true {
		t.Error("speed 10: no off-gas alarm after 18 s of real time (180 s simulated)")
	}
}

// TestAutomaticTick runs the real tick briefly and stops through the
// context; it asserts nothing about timing, only a clean stop.
func TestAutomaticTick(t *testing.T) {
	f, err := LoadFacility(testFacility)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, f, Options{Tick: time.Millisecond, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s, "ups-a")
	c.num("ups.output.load")
	cancel()
	s.Close()
	if _, err := c.tryRead("ups.output.load"); err == nil {
		t.Error("device still answers after the context ended")
	}
}

// TestPollerReadsEveryPoint polls every device with the gateway's own
// driver (planned block reads over gaps, every poll group) and expects
// every point good, except a Socomec runtime on mains (0xFFFF by design).
func TestPollerReadsEveryPoint(t *testing.T) {
	s := startTest(t, testFacility, Options{})
	s.Step(time.Second)
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, d := range s.Devices() {
		t.Run(d.ID, func(t *testing.T) {
			conn := mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: d.Address, Timeout: time.Second})
			defer conn.Close()
			p, _ := reg.Get(d.Profile)
			dev := mbdrv.NewDevice(mbdrv.DeviceConfig{ID: d.ID, Unit: d.Unit, Profile: p, Registry: reg}, conn)
			n := 0
			for _, g := range p.Resolve(d.Firmware).Groups() {
				for _, pt := range dev.Poll(ctx, g) {
					n++
					if pt.Quality != point.Good && !(d.ID == "ups-b" && pt.Name == "battery.runtime") {
						t.Errorf("%s: %v (%s)", pt.Name, pt.Quality, pt.Reason)
					}
				}
			}
			if r := dev.Resolved(); len(p.Variants) > 0 && (r == nil || r.Firmware != d.Firmware) {
				t.Errorf("poller did not resolve firmware %q", d.Firmware)
			}
			if n != len(d.Values) {
				t.Errorf("polled %d points, the device serves %d", n, len(d.Values))
			}
		})
	}
}

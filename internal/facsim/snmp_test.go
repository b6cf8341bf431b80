package facsim

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	snmpdrv "github.com/facgw/facgw/drivers/snmp"
	"github.com/facgw/facgw/drivers/snmp/trap"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

const snmpFacility = "testdata/snmp-facility.yaml"

// swUser is sw-core1's SNMPv3 user in testdata/snmp-facility.yaml.
var swUser = snmpdrv.V3Config{User: "facgw", AuthProto: "SHA-256", AuthPass: "facgw-auth-pass",
	PrivProto: "AES-256", PrivPass: "facgw-priv-pass", SecurityLevel: "authPriv"}

func shipped(t *testing.T) *profiles.Registry {
	t.Helper()
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// status returns device id's status.
func status(t *testing.T, s *Sim, id string) DeviceStatus {
	t.Helper()
	for _, d := range s.Devices() {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("no device %q", id)
	return DeviceStatus{}
}

// snmpPoller returns the gateway's SNMP driver for device id of s: v2c
// with community public, or sw-core1's v3 user; edit changes the config.
func snmpPoller(t *testing.T, s *Sim, id string, edit func(*snmpdrv.DeviceConfig)) *snmpdrv.Device {
	t.Helper()
	st := status(t, s, id)
	p, ok := shipped(t).Get(st.Profile)
	if !ok {
		t.Fatalf("no profile %s", st.Profile)
	}
	cfg := snmpdrv.DeviceConfig{ID: id, Target: "127.0.0.1", Port: port(t, st.Address), Version: "2c", Community: "public",
		Profile: p, Timeout: 2 * time.Second, Retries: 1}
	if id == "sw-core1" {
		cfg.Version, cfg.Community, cfg.V3 = "3", "", swUser
	}
	if edit != nil {
		edit(&cfg)
	}
	d := snmpdrv.NewDevice(cfg)
	t.Cleanup(func() { d.Close() })
	return d
}

// pollAll polls every group of the device's profile once and returns the
// points by name.
func pollAll(t *testing.T, d *snmpdrv.Device) map[string]point.Point {
	t.Helper()
	out := map[string]point.Point{}
	for _, g := range d.Config().Profile.Resolve("").Groups() {
		for _, p := range d.Poll(context.Background(), g) {
			out[p.Name] = p
		}
	}
	return out
}

// good returns a point that must be good.
func good(t *testing.T, pts map[string]point.Point, name string) point.Point {
	t.Helper()
	p, ok := pts[name]
	if !ok {
		t.Fatalf("no point %s", name)
	}
	if p.Quality != point.Good {
		t.Fatalf("%s: %s (%s), want good", name, p.Quality, p.Reason)
	}
	return p
}

func isTrue(t *testing.T, pts map[string]point.Point, name string) bool {
	t.Helper()
	return good(t, pts, name).Num != 0
}

// trapLog collects the events a trap listener accepts.
type trapLog struct {
	addr   string
	mu     sync.Mutex
	events []trap.Event
	more   chan struct{}
}

// listenTraps starts the gateway's trap listener on a free port with cfg
// (Listen is set) and collects its events until the test ends.
func listenTraps(t *testing.T, cfg trap.Config) *trapLog {
	t.Helper()
	tl := &trapLog{more: make(chan struct{}, 1)}
	cfg.Listen = "127.0.0.1:0"
	l, err := trap.New(cfg, func(ev trap.Event) {
		tl.mu.Lock()
		tl.events = append(tl.events, ev)
		tl.mu.Unlock()
		select {
		case tl.more <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	tl.addr = l.Addr().String()
	return tl
}

// wait returns the n-th event (from 1) that matches, waiting for it. The
// bound only turns a lost trap into a failure; nothing depends on timing.
func (tl *trapLog) wait(t *testing.T, what string, n int, match func(trap.Event) bool) trap.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		tl.mu.Lock()
		seen := 0
		for _, ev := range tl.events {
			if match(ev) {
				seen++
				if seen == n {
					tl.mu.Unlock()
					return ev
				}
			}
		}
		tl.mu.Unlock()
		select {
		case <-tl.more:
		case <-deadline:
			t.Fatalf("no %s (#%d) received; events: %v", what, n, tl.names())
			return trap.Event{}
		}
	}
}

// count returns how many events match.
func (tl *trapLog) count(match func(trap.Event) bool) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	n := 0
	for _, ev := range tl.events {
		if match(ev) {
			n++
		}
	}
	return n
}

func (tl *trapLog) names() []string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var out []string
	for _, ev := range tl.events {
		out = append(out, ev.Name+" "+fmt.Sprint(ev.Varbinds))
	}
	return out
}

func named(name string) func(trap.Event) bool {
	return func(ev trap.Event) bool { return ev.Name == name }
}

// alarmTrap matches upsTrapAlarmEntryAdded/Removed of a well-known alarm
// (1.3.6.1.2.1.33.1.6.3.N).
func alarmTrap(name string, alarm int) func(trap.Event) bool {
	want := "1.3.6.1.2.1.33.1.6.3." + strconv.Itoa(alarm)
	return func(ev trap.Event) bool {
		if ev.Name != name {
			return false
		}
		for _, vb := range ev.Varbinds {
			if strings.HasPrefix(vb.OID, oidUpsAlarmDescr+".") && vb.Value.Str == want {
				return true
			}
		}
		return false
	}
}

func varbind(ev trap.Event, oid string) (int64, bool) {
	for _, vb := range ev.Varbinds {
		if vb.OID == oid {
			if vb.Value.Type == gosnmp.Integer {
				return vb.Value.Int, true
			}
			return int64(vb.Value.Uint), true
		}
	}
	return 0, false
}

// eventually waits until cond holds; the bound only turns a hang into a
// failure.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestSNMPPollerReadsEveryPoint polls every SNMP device of the facility
// with the gateway's driver: every point is good in normal (rates on the
// second poll), the driver's point names are exactly the ones the
// simulator says it serves, and every value decodes to what it serves.
// profile: auto identifies the profiles that have an identify section.
func TestSNMPPollerReadsEveryPoint(t *testing.T) {
	s := startTest(t, snmpFacility, Options{})
	s.Step(time.Second)
	reg := shipped(t)
	for _, d := range s.Devices() {
		if d.Protocol != profiles.SNMP {
			continue
		}
		t.Run(d.ID, func(t *testing.T) {
			dev := snmpPoller(t, s, d.ID, nil)
			pollAll(t, dev)
			s.Step(time.Second)
			pts := pollAll(t, dev)
			st := status(t, s, d.ID)
			n := 0
			for name, p := range pts {
				if p.Quality != point.Good {
					t.Errorf("%s: %s (%s)", name, p.Quality, p.Reason)
					continue
				}
				if strings.HasSuffix(name, profiles.RateSuffix) {
					continue
				}
				n++
				want, ok := st.Values[name]
				if !ok {
					t.Errorf("%s polled, but the simulator does not say it serves it", name)
					continue
				}
				var got any
				switch p.Kind {
				case point.Bool:
					got = p.Num != 0
				case point.String, point.Enum:
					got = p.Str
				default:
					got = p.Num
					if w, ok := want.(float64); ok && math.Abs(w-p.Num) <= 1e-6*max(1, math.Abs(w)) {
						got = w
					}
				}
				if got != want {
					t.Errorf("%s: polled %v (%T), served %v (%T)", name, got, got, want, want)
				}
			}
			if n != len(st.Values) {
				t.Errorf("polled %d points, the simulator serves %d", n, len(st.Values))
			}
			p, _ := reg.Get(d.Profile)
			if p.Identify == nil {
				return
			}
			auto := snmpPoller(t, s, d.ID, func(c *snmpdrv.DeviceConfig) { c.Profile, c.Auto, c.Registry = nil, true, reg })
			id, err := auto.Identify(context.Background())
			if err != nil {
				t.Fatalf("identify: %v", err)
			}
			if id.Profile.Model != d.Profile || id.Firmware != d.Firmware {
				t.Errorf("identified as %s firmware %q, want %s %q", id.Profile.Model, id.Firmware, d.Profile, d.Firmware)
			}
		})
	}
}

// TestSNMPValuesFollowModel checks plausible values and the tables'
// shapes through the driver: three output lines, one input line, named
// outlets, ports and sensors.
func TestSNMPValuesFollowModel(t *testing.T) {
	s := startTest(t, snmpFacility, Options{})
	s.Step(time.Minute)
	ups := pollAll(t, snmpPoller(t, s, "ups-c", nil))
	if good(t, ups, "ups.output.source").Str != "normal" || !isTrue(t, ups, "ups.status.online") || isTrue(t, ups, "ups.status.on_battery") {
		t.Error("ups-c not online on mains")
	}
	for i := 1; i <= 3; i++ {
		inRange(t, "output load line "+strconv.Itoa(i), good(t, ups, "ups.output.load."+strconv.Itoa(i)).Num, 25, 65)
		inRange(t, "output voltage", good(t, ups, "ups.output.voltage."+strconv.Itoa(i)).Num, 225, 235)
	}
	if _, ok := ups["ups.output.load.4"]; ok {
		t.Error("a fourth output line")
	}
	if _, ok := ups["ups.input.voltage.2"]; ok {
		t.Error("a second input line")
	}
	inRange(t, "input voltage", good(t, ups, "ups.input.voltage.1").Num, 220, 240)
	inRange(t, "runtime (min)", good(t, ups, "battery.runtime").Num, 10, 60)
	if good(t, ups, "battery.charge").Num != 100 || good(t, ups, "ups.output.lines").Num != 3 || good(t, ups, "ups.alarms_present").Num != 0 {
		t.Error("charge, output lines or alarms present wrong")
	}
	if got := good(t, ups, "ident.name").Str; got != "ups-c" {
		t.Errorf("upsIdentName %q, want the device id", got)
	}

	pdu := pollAll(t, snmpPoller(t, s, "pdu-a1", nil))
	sum := 0.0
	for _, o := range []string{"web_01", "web_02", "db_01", "db_02", "app_01", "lab_01", "lab_02", "outlet_8"} {
		if good(t, pdu, "pdu.outlet.state."+o).Str != "on" {
			t.Errorf("outlet %s not on", o)
		}
		sum += good(t, pdu, "pdu.outlet.current."+o).Num
	}
	if phase := good(t, pdu, "pdu.phase.current.1").Num; math.Abs(phase-sum) > 0.5 {
		t.Errorf("phase current %g, outlets sum to %g", phase, sum)
	}

	sw := pollAll(t, snmpPoller(t, s, "sw-core1", nil))
	for _, p := range DefaultPorts {
		if good(t, sw, "if.oper_status."+snmpdrv.SanitizeLabel(p)).Str != "up" {
			t.Errorf("port %s not up", p)
		}
	}
	if good(t, sw, "if.speed.te1_1_1").Num != 10000 || good(t, sw, "if.speed.gi1_0_1").Num != 1000 {
		t.Error("port speeds")
	}
	inRange(t, "inlet temperature", good(t, sw, "switch.sensor.inlet_temp").Num, 18, 32)
	inRange(t, "fan", good(t, sw, "switch.sensor.fan_1").Num, 5000, 7000)
	if u := good(t, sw, "switch.sensor.fan_1").Unit; u != point.RPM {
		t.Errorf("fan unit %q", u)
	}
}

// TestSNMPUtilityFailure walks an RFC 1628 UPS through a mains failure,
// seen through the driver and the gateway's trap listener: on battery,
// seconds on battery counting, runtime and charge falling, the alarm
// rows, upsTrapOnBattery at once and every minute, alarm entry traps,
// low battery, and back with restore.
func TestSNMPUtilityFailure(t *testing.T) {
	s := startTest(t, snmpFacility, Options{})
	traps := listenTraps(t, trap.Config{Communities: []string{"public"}, Sources: map[string]string{"127.0.0.1": "ups-c"}})
	if err := s.SetTrapReceivers("ups-c", []TrapReceiver{{Addr: traps.addr, Version: "2c", Community: "public"}}); err != nil {
		t.Fatal(err)
	}
	ups := snmpPoller(t, s, "ups-c", nil)
	s.Step(time.Second)
	pts := pollAll(t, ups)
	if isTrue(t, pts, "ups.status.on_battery") || isTrue(t, pts, "ups.alarm.on_battery") || good(t, pts, "battery.time_on_battery").Num != 0 {
		t.Fatal("on battery before the failure")
	}

	if err := s.SetScenario("ups-c", ScenarioUtilityFailure); err != nil {
		t.Fatal(err)
	}
	ev := traps.wait(t, "upsTrapOnBattery", 1, named(trap.NameUPSOnBattery))
	if ev.Device != "ups-c" || ev.TrapOID != oidUpsTrapOnBattery {
		t.Errorf("trap from %q oid %s", ev.Device, ev.TrapOID)
	}
	for _, oid := range []string{oidUpsEstimatedMinutesRemaining, oidUpsSecondsOnBattery, oidUpsConfigLowBattTime} {
		if _, ok := varbind(ev, oid); !ok {
			t.Errorf("upsTrapOnBattery lacks %s: %v", oid, ev.Varbinds)
		}
	}
	if v, _ := varbind(ev, oidUpsConfigLowBattTime); v != 2 {
		t.Errorf("upsConfigLowBattTime %d, want 2", v)
	}
	traps.wait(t, "upsTrapAlarmEntryAdded InputBad", 1, alarmTrap(trap.NameUPSAlarmEntryAdded, 6))

	s.Step(time.Second)
	pts = pollAll(t, ups)
	if !isTrue(t, pts, "ups.status.on_battery") || isTrue(t, pts, "ups.status.online") || good(t, pts, "ups.output.source").Str != "battery" {
		t.Fatal("not on battery after the failure")
	}
	if !isTrue(t, pts, "ups.alarm.on_battery") || !isTrue(t, pts, "ups.status.input_bad") || good(t, pts, "ups.alarms_present").Num != 2 {
		t.Errorf("alarms: on_battery %v input_bad %v present %g, want true true 2",
			isTrue(t, pts, "ups.alarm.on_battery"), isTrue(t, pts, "ups.status.input_bad"), good(t, pts, "ups.alarms_present").Num)
	}
	if good(t, pts, "ups.input.voltage.1").Num != 0 || good(t, pts, "ups.input.line_bads").Num != 1 {
		t.Error("input voltage not 0 or no line bad counted")
	}
	secs0, rt0, ch0 := good(t, pts, "battery.time_on_battery").Num, good(t, pts, "battery.runtime").Num, good(t, pts, "battery.charge").Num
	inRange(t, "seconds on battery", secs0, 1, 2)

	s.Step(3 * time.Minute)
	pts = pollAll(t, ups)
	secs1, rt1, ch1 := good(t, pts, "battery.time_on_battery").Num, good(t, pts, "battery.runtime").Num, good(t, pts, "battery.charge").Num
	if secs1 < secs0+179 || rt1 >= rt0 || ch1 >= ch0 {
		t.Errorf("after 3 min: seconds on battery %g -> %g, runtime %g -> %g min, charge %g -> %g", secs0, secs1, rt0, rt1, ch0, ch1)
	}
	traps.wait(t, "a repeated upsTrapOnBattery", 2, named(trap.NameUPSOnBattery))

	sawLow := false
	for range 60 {
		s.Step(30 * time.Second)
		pts = pollAll(t, ups)
		if isTrue(t, pts, "ups.alarm.low_battery") {
			sawLow = true
			break
		}
	}
	if !sawLow {
		t.Fatal("never low battery")
	}
	if good(t, pts, "battery.status").Str != "low" || !isTrue(t, pts, "ups.status.battery_low") || good(t, pts, "battery.runtime").Num > 2 {
		t.Errorf("low battery: status %q runtime %g min", good(t, pts, "battery.status").Str, good(t, pts, "battery.runtime").Num)
	}
	traps.wait(t, "upsTrapAlarmEntryAdded LowBattery", 1, alarmTrap(trap.NameUPSAlarmEntryAdded, 3))
	if n := traps.count(alarmTrap(trap.NameUPSAlarmEntryAdded, 2)); n != 0 {
		t.Errorf("%d upsTrapAlarmEntryAdded for OnBattery, which RFC 1628 does not send", n)
	}

	if err := s.SetScenario("ups-c", ScenarioRestore); err != nil {
		t.Fatal(err)
	}
	for _, alarm := range []int{6, 2, 3} {
		traps.wait(t, fmt.Sprintf("upsTrapAlarmEntryRemoved %d", alarm), 1, alarmTrap(trap.NameUPSAlarmEntryRemoved, alarm))
	}
	pts = pollAll(t, ups)
	if !isTrue(t, pts, "ups.status.online") || isTrue(t, pts, "ups.alarm.on_battery") || good(t, pts, "ups.alarms_present").Num != 0 ||
		good(t, pts, "battery.time_on_battery").Num != 0 {
		t.Error("restore did not clear the failure")
	}
}

// TestSNMPOutputSource checks the mapping of the UPS state onto
// upsOutputSource and its bools: bypass 4, and output off (none 2) when
// the mains fail on bypass; APC's own numbering on the PowerNet OID.
func TestSNMPOutputSource(t *testing.T) {
	s := startTest(t, snmpFacility, Options{})
	ups, apc := snmpPoller(t, s, "ups-c", nil), snmpPoller(t, s, "ups-d", nil)
	if err := s.SetScenario("", ScenarioBypass); err != nil {
		t.Fatal(err)
	}
	s.Step(time.Second)
	pts := pollAll(t, ups)
	if good(t, pts, "ups.output.source").Str != "bypass" || !isTrue(t, pts, "ups.status.on_bypass") || !isTrue(t, pts, "ups.alarm.on_bypass") || isTrue(t, pts, "ups.status.online") {
		t.Error("bypass not served as upsOutputSource bypass(4) with its alarm")
	}
	if got := good(t, pollAll(t, apc), "apc.output.status").Str; got != "switched_bypass" {
		t.Errorf("APC output status on bypass %q", got)
	}
	if err := s.SetScenario("", ScenarioUtilityFailure); err != nil {
		t.Fatal(err)
	}
	s.Step(time.Second)
	pts = pollAll(t, ups)
	if good(t, pts, "ups.output.source").Str != "none" || !isTrue(t, pts, "ups.status.output_off") || !isTrue(t, pts, "ups.alarm.ups_output_off") {
		t.Error("mains failure on bypass: output not off")
	}
	if err := s.SetScenario("", ScenarioNormal); err != nil {
		t.Fatal(err)
	}
	if err := s.SetScenario("ups-d", ScenarioUtilityFailure); err != nil {
		t.Fatal(err)
	}
	s.Step(time.Second)
	pts = pollAll(t, apc)
	if good(t, pts, "apc.output.status").Str != "on_battery" || !isTrue(t, pts, "ups.status.on_battery") || good(t, pts, "apc.input.transfer_reason").Str != "blackout" {
		t.Error("APC UPS not on battery in both MIBs")
	}
	inRange(t, "APC runtime (s) vs RFC runtime (min)", good(t, pts, "apc.battery.runtime").Num/60-good(t, pts, "battery.runtime").Num, -0.5, 0.5)
}

// setOutlet SETs rPDU2OutletSwitchedControlCommand of outlet n with
// gosnmp, as a load shed would, and returns the error status.
func setOutlet(t *testing.T, s *Sim, community string, n int, code int) gosnmp.SNMPError {
	t.Helper()
	g := &gosnmp.GoSNMP{Target: "127.0.0.1", Port: port(t, s.Addr("pdu-a1")), Community: community, Version: gosnmp.Version2c,
		Timeout: 2 * time.Second, Retries: 1, MaxOids: gosnmp.MaxOids}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	defer g.Conn.Close()
	res, err := g.Set([]gosnmp.SnmpPDU{{Name: fmt.Sprintf("1.3.6.1.4.1.318.1.1.26.9.2.4.1.5.%d", n), Type: gosnmp.Integer, Value: code}})
	if err != nil {
		t.Fatalf("set outlet %d to %d: %v", n, code, err)
	}
	return res.Error
}

// TestSNMPOutletSwitching switches PDU outlets with SNMP SETs and reads
// the result back through the driver: the state, the command column, the
// outlet's and the PDU's current and power.
func TestSNMPOutletSwitching(t *testing.T) {
	s := startTest(t, snmpFacility, Options{})
	pdu := snmpPoller(t, s, "pdu-a1", nil)
	s.Step(time.Second)
	before := pollAll(t, pdu)
	lab0 := good(t, before, "pdu.outlet.current.lab_01").Num
	if lab0 <= 0 {
		t.Fatalf("lab-01 draws %g A", lab0)
	}

	if st := setOutlet(t, s, "public", 6, 2); st != gosnmp.NoAccess {
		t.Errorf("SET with the read community: %v, want noAccess", st)
	}
	if st := setOutlet(t, s, "private", 6, 2); st != gosnmp.NoError { // lab-01 immediateOff
		t.Fatalf("immediateOff: %v", st)
	}
	after := pollAll(t, pdu)
	if got := good(t, after, "pdu.outlet.state.lab_01").Str; got != "off" {
		t.Fatalf("lab-01 state %q after immediateOff, want off", got)
	}
	if good(t, after, "pdu.outlet.current.lab_01").Num != 0 || good(t, after, "pdu.outlet.power.lab_01").Num != 0 || good(t, after, "pdu.outlet.command.lab_01").Str != "immediate_off" {
		t.Error("lab-01 off but still drawing or not reading immediate_off")
	}
	if b, a := good(t, before, "pdu.phase.current.1").Num, good(t, after, "pdu.phase.current.1").Num; a > b-lab0+0.15 {
		t.Errorf("phase current %g -> %g A after shedding %g A", b, a, lab0)
	}
	if b, a := good(t, before, "pdu.power").Num, good(t, after, "pdu.power").Num; a > b-lab0*0.2 {
		t.Errorf("PDU power %g -> %g kW after shedding %g A", b, a, lab0)
	}
	for _, o := range []string{"web_01", "db_01", "lab_02", "outlet_8"} {
		if good(t, after, "pdu.outlet.state."+o).Str != "on" {
			t.Errorf("%s switched too", o)
		}
	}

	if st := setOutlet(t, s, "private", 6, 5); st != gosnmp.WrongValue { // delayedOn: not simulated
		t.Errorf("delayedOn: %v, want wrongValue", st)
	}
	if st := setOutlet(t, s, "private", 6, 9); st != gosnmp.WrongValue {
		t.Errorf("command 9: %v, want wrongValue", st)
	}
	if st := setOutlet(t, s, "private", 99, 2); st == gosnmp.NoError {
		t.Error("SET of a missing outlet accepted")
	}
	if got := good(t, pollAll(t, pdu), "pdu.outlet.state.lab_01").Str; got != "off" {
		t.Errorf("refused SETs changed the state to %q", got)
	}

	if st := setOutlet(t, s, "private", 6, 1); st != gosnmp.NoError {
		t.Fatalf("immediateOn: %v", st)
	}
	if pts := pollAll(t, pdu); good(t, pts, "pdu.outlet.state.lab_01").Str != "on" || good(t, pts, "pdu.outlet.current.lab_01").Num <= 0 {
		t.Error("lab-01 not back on")
	}

	if st := setOutlet(t, s, "private", 1, 3); st != gosnmp.NoError { // web-01 immediateReboot
		t.Fatalf("immediateReboot: %v", st)
	}
	pts := pollAll(t, pdu)
	if good(t, pts, "pdu.outlet.state.web_01").Str != "off" || good(t, pts, "pdu.outlet.pending.web_01").Str != "command_pending" {
		t.Error("rebooting outlet not off with its command pending")
	}
	s.Step(6 * time.Second)
	pts = pollAll(t, pdu)
	if good(t, pts, "pdu.outlet.state.web_01").Str != "on" || good(t, pts, "pdu.outlet.pending.web_01").Str != "no_command_pending" {
		t.Error("rebooted outlet not back on after the reboot delay")
	}

	st := status(t, s, "pdu-a1").SNMP
	if st.Sets != 7 || st.SetsRejected != 4 {
		t.Errorf("agent counted %d SETs, %d rejected; want 7, 4", st.Sets, st.SetsRejected)
	}
	if err := s.SetScenario("pdu-a1", ScenarioNormal); err != nil {
		t.Fatal(err)
	}
}

// TestSNMPv3Switch reads the switch over SNMPv3 authPriv (and not with
// wrong credentials), takes its uplink down and sees the linkDown trap,
// sent as an SNMPv3 trap, and the port down through the driver.
func TestSNMPv3Switch(t *testing.T) {
	s := startTest(t, snmpFacility, Options{})
	sw := snmpPoller(t, s, "sw-core1", nil)
	pollAll(t, sw)
	s.Step(10 * time.Second)
	pts := pollAll(t, sw)
	for name, p := range pts {
		if p.Quality != point.Good {
			t.Errorf("%s: %s (%s)", name, p.Quality, p.Reason)
		}
	}
	for _, tc := range []struct {
		what   string
		edit   func(*snmpdrv.DeviceConfig)
		reason string
	}{
		{"wrong auth passphrase", func(c *snmpdrv.DeviceConfig) { c.V3.AuthPass = "not-the-auth-pass" }, "authentication"},
		{"wrong priv passphrase", func(c *snmpdrv.DeviceConfig) { c.V3.PrivPass = "not-the-priv-pass" }, ""},
		{"unknown user", func(c *snmpdrv.DeviceConfig) { c.V3.User = "intruder" }, "user"},
		{"v2c community", func(c *snmpdrv.DeviceConfig) { c.Version, c.Community, c.V3 = "2c", "public", snmpdrv.V3Config{} }, point.ReasonTimeout},
	} {
		t.Run(tc.what, func(t *testing.T) {
			d := snmpPoller(t, s, "sw-core1", func(c *snmpdrv.DeviceConfig) {
				c.Timeout, c.Retries = 300*time.Millisecond, 0
				tc.edit(c)
			})
			for _, p := range d.Poll(context.Background(), "default") {
				if p.Quality == point.Good || !strings.Contains(p.Reason, tc.reason) {
					t.Fatalf("%s: %s (%s), want bad mentioning %q", p.Name, p.Quality, p.Reason, tc.reason)
				}
			}
		})
	}

	traps := listenTraps(t, trap.Config{
		V3Users: []trap.User{{Name: "facgw", AuthProto: "SHA-256", AuthPass: "facgw-auth-pass", PrivProto: "AES-256", PrivPass: "facgw-priv-pass"}},
		Sources: map[string]string{"127.0.0.1": "sw-core1"},
	})
	if err := s.SetTrapReceivers("sw-core1", []TrapReceiver{{Addr: traps.addr, Version: "3", User: "facgw"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetScenario("sw-core1", ScenarioLinkDown); err != nil {
		t.Fatal(err)
	}
	ev := traps.wait(t, "linkDown", 1, named(trap.NameLinkDown))
	if ev.User != "facgw" || ev.Device != "sw-core1" {
		t.Errorf("linkDown from %q user %q", ev.Device, ev.User)
	}
	if idx, _ := varbind(ev, oidIfIndex+".9"); idx != 9 {
		t.Errorf("linkDown varbinds %v, want ifIndex 9 (Te1/1/1)", ev.Varbinds)
	}
	if oper, _ := varbind(ev, oidIfOperStatus+".9"); oper != 2 {
		t.Errorf("linkDown ifOperStatus %d, want down(2)", oper)
	}
	pollAll(t, sw)
	s.Step(10 * time.Second)
	pts = pollAll(t, sw)
	if good(t, pts, "if.oper_status.te1_1_1").Str != "down" || good(t, pts, "if.admin_status.te1_1_1").Str != "up" || good(t, pts, "if.oper_status.te1_1_2").Str != "up" {
		t.Error("uplink Te1/1/1 not down (admin up), or Te1/1/2 down too")
	}
	if r := good(t, pts, "if.in_octets.te1_1_1.rate").Num; r != 0 {
		t.Errorf("traffic on a down link: %g octets/s", r)
	}
	if r := good(t, pts, "if.in_octets.te1_1_2.rate").Num; r <= 0 {
		t.Errorf("no traffic on the other uplink: %g", r)
	}
	if err := s.SetScenario("sw-core1", ScenarioNormal); err != nil {
		t.Fatal(err)
	}
	traps.wait(t, "linkUp", 1, named(trap.NameLinkUp))
	if n := traps.count(named(trap.NameLinkDown)); n != 1 {
		t.Errorf("%d linkDown traps, want 1", n)
	}
}

// TestSNMPFaults switches an SNMP agent to each fault and checks what the
// driver sees, then clears it.
func TestSNMPFaults(t *testing.T) {
	s := startTest(t, snmpFacility, Options{})
	for _, tc := range []struct {
		kind, param string
		timeout     time.Duration
		reason      string // "" for good points
	}{
		{FaultSilent, "", 300 * time.Millisecond, point.ReasonTimeout},
		{FaultLate, "2s", 300 * time.Millisecond, point.ReasonTimeout},
		{FaultLate, "10ms", 2 * time.Second, ""},
		{FaultError, "", time.Second, "error status genErr"},
		{FaultError, "noSuchName", time.Second, "error status noSuchName"},
		{FaultError, "13", time.Second, "error status resourceUnavailable"},
		{FaultGarbage, "", 300 * time.Millisecond, point.ReasonProtocol},
		{FaultGarbage, "truncated", 300 * time.Millisecond, point.ReasonProtocol},
		{FaultTruncated, "", 300 * time.Millisecond, point.ReasonProtocol},
		{FaultNone, "", time.Second, ""},
	} {
		t.Run(tc.kind+":"+tc.param, func(t *testing.T) {
			if err := s.SetFault("ups-c", tc.kind, tc.param); err != nil {
				t.Fatal(err)
			}
			d := snmpPoller(t, s, "ups-c", func(c *snmpdrv.DeviceConfig) { c.Timeout, c.Retries = tc.timeout, 0 })
			pts := d.Poll(context.Background(), "default")
			if len(pts) == 0 {
				t.Fatal("no points")
			}
			for _, p := range pts {
				switch {
				case tc.reason == "" && p.Quality != point.Good && !strings.HasSuffix(p.Name, profiles.RateSuffix):
					t.Fatalf("%s: %s (%s), want good", p.Name, p.Quality, p.Reason)
				case tc.reason != "" && (p.Quality == point.Good || !strings.Contains(p.Reason, tc.reason)):
					t.Fatalf("%s: %s (%s), want bad mentioning %q", p.Name, p.Quality, p.Reason, tc.reason)
				}
			}
			want, _ := ParseFault(tc.kind, tc.param)
			if got := status(t, s, "ups-c").Fault; got != want.String() {
				t.Errorf("status shows fault %q, want %q", got, want.String())
			}
		})
	}

	// Faults of one protocol only.
	if err := s.SetFault("ups-c", FaultException, ""); err == nil || !strings.Contains(err.Error(), "does not apply") {
		t.Errorf("exception on an SNMP device: %v", err)
	}
	if err := s.SetFault("ups-a", FaultError, ""); err == nil {
		t.Error("SNMP error status on a Modbus device accepted")
	}
	if err := s.SetFault("ups-c", FaultError, "nonsense"); err == nil {
		t.Error("unknown error status accepted")
	}
	if err := s.SetFault("", FaultError, "genErr"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFault("", FaultDrop, ""); err != nil {
		t.Fatal(err)
	}
	for _, d := range s.Devices() {
		want := "error:genErr"
		if d.Protocol == profiles.Modbus {
			want = FaultDrop
		}
		if d.Fault != want {
			t.Errorf("%s (%s): fault %q, want %q", d.ID, d.Protocol, d.Fault, want)
		}
	}
	if err := s.SetFault("", FaultNone, ""); err != nil {
		t.Fatal(err)
	}
}

// TestSetTrapReceiversErrors checks the run-time receiver checks.
func TestSetTrapReceiversErrors(t *testing.T) {
	s := startTest(t, snmpFacility, Options{})
	for _, tc := range []struct {
		id   string
		r    TrapReceiver
		want string
	}{
		{"nope", TrapReceiver{Addr: "127.0.0.1:10162"}, "unknown device"},
		{"ups-a", TrapReceiver{Addr: "127.0.0.1:10162"}, "Modbus device"},
		{"ups-c", TrapReceiver{}, "addr is required"},
		{"ups-c", TrapReceiver{Addr: "10.0.0.1:162"}, "loopback"},
		{"ups-c", TrapReceiver{Addr: "127.0.0.1:0"}, "needs a port"},
		{"ups-c", TrapReceiver{Addr: "127.0.0.1:10162", Version: "4"}, "unknown SNMP version"},
		{"ups-c", TrapReceiver{Addr: "127.0.0.1:10162", Version: "3", User: "facgw"}, "unknown user"},
		{"ups-c", TrapReceiver{Addr: "127.0.0.1:10162", Version: "1", Inform: true}, "no inform"},
		{"sw-core1", TrapReceiver{Addr: "127.0.0.1:10162", Version: "2c"}, "needs a community"},
	} {
		err := s.SetTrapReceivers(tc.id, []TrapReceiver{tc.r})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetTrapReceivers(%q, %+v): %v, want %q", tc.id, tc.r, err, tc.want)
		}
	}
	if err := s.SetTrapReceivers("", []TrapReceiver{{Addr: "127.0.0.1:10162", Version: "2c", Community: "public"}}); err != nil {
		t.Fatal(err)
	}
	for _, d := range s.Devices() {
		if d.Protocol == profiles.SNMP && (len(d.SNMP.Traps) != 1 || d.SNMP.Traps[0].Addr != "127.0.0.1:10162") {
			t.Errorf("%s receivers %+v", d.ID, d.SNMP.Traps)
		}
	}
	if err := s.SetTrapReceivers("", nil); err != nil {
		t.Fatal(err)
	}
}

// TestSNMPFacilityTraps checks receivers given in the facility file: an
// initial scenario's trap is sent once the agents run, as an inform the
// listener acknowledges.
func TestSNMPFacilityTraps(t *testing.T) {
	traps := listenTraps(t, trap.Config{Communities: []string{"public"}, Sources: map[string]string{"127.0.0.1": "ups-x"}})
	f, err := ParseFacility("f.yaml", []byte(`
devices:
  - id: ups-x
    profile: rfc1628-ups-snmp
    scenario: utility-failure
    snmp:
      listen: 127.0.0.1:0
      community: public
      traps: [{addr: "`+traps.addr+`", inform: true}]
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), f, Options{Manual: true, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := traps.wait(t, "upsTrapOnBattery inform", 1, named(trap.NameUPSOnBattery))
	if !ev.Inform || ev.Device != "ups-x" {
		t.Errorf("inform %v from %q", ev.Inform, ev.Device)
	}
	traps.wait(t, "upsTrapAlarmEntryAdded", 1, named(trap.NameUPSAlarmEntryAdded))
	// The agent counts an inform once acknowledged.
	eventually(t, "both informs acknowledged", func() bool { return status(t, s, "ups-x").SNMP.TrapsSent == 2 })
	if st := status(t, s, "ups-x").SNMP; st.TrapFailures != 0 {
		t.Errorf("%d trap failures", st.TrapFailures)
	}
}

// TestEncodeSNMP checks the inverse of the driver's decoding on
// hand-made points: scale, TimeTicks, sentinels, clamping, counter wrap,
// and the code chosen for an OID several points read.
func TestEncodeSNMP(t *testing.T) {
	d := &device{res: &profiles.Resolved{Profile: &profiles.Profile{}}}
	f := func(x float64) *float64 { return &x }
	volts := &profiles.PointDef{Name: "v", Type: "integer", Scale: f(0.1)}
	ticks := &profiles.PointDef{Name: "rt", Type: "timeticks", Unit: "s"}
	minutes := &profiles.PointDef{Name: "rtm", Type: "integer", Unit: "min", Absent: []int64{-1}}
	gauge := &profiles.PointDef{Name: "g", Type: "gauge", Min: f(0)}
	c32 := &profiles.PointDef{Name: "c", Type: "counter32"}
	truth := &profiles.PointDef{Name: "t", Type: "integer", TrueValues: []int64{1}}
	for _, tc := range []struct {
		def  *profiles.PointDef
		v    any
		want string
		dec  any
	}{
		{volts, 54.6, "INTEGER: 546", 54.6},
		{ticks, secs(90), "Timeticks: 9000", 90.0},
		{minutes, secs(600), "INTEGER: 10", 10.0},
		{minutes, absentOr{secs(600)}, "INTEGER: -1", "absent: device reports -1 (no sensor)"},
		{gauge, -3.0, "Gauge32: 0", 0.0},
		{c32, counter(1<<32 + 5), "Counter32: 5", 5.0},
		{truth, false, "INTEGER: 2", false},
		{truth, true, "INTEGER: 1", true},
	} {
		v := d.encodeSNMP(tc.def, tc.v)
		if v.String() != tc.want {
			t.Errorf("%s %v: %s, want %s", tc.def.Name, tc.v, v, tc.want)
		}
		if got := decodeSNMP(tc.def, v); got != tc.dec {
			t.Errorf("%s %v: decodes to %v (%T), want %v", tc.def.Name, tc.v, got, got, tc.dec)
		}
	}

	// APC upsBasicOutputStatus: an enum and bools on one OID.
	status := &profiles.PointDef{Name: "apc.output.status", Type: "integer", Enum: map[int64]string{1: "unknown", 2: "on_line", 3: "on_battery", 4: "on_smart_boost", 13: "eco_mode"}, Sim: 2}
	boost := &profiles.PointDef{Name: "ups.status.boost", Type: "integer", TrueValues: []int64{4}}
	eco := &profiles.PointDef{Name: "ups.status.eco", Type: "integer", TrueValues: []int64{13, 20}}
	defs := []*profiles.PointDef{status, boost, eco}
	for _, tc := range []struct {
		vals   map[string]any
		want   string
		driven bool
	}{
		{map[string]any{}, "INTEGER: 2", false},
		{map[string]any{"ups.status.boost": false, "ups.status.eco": false}, "INTEGER: 2", true},
		{map[string]any{"ups.status.boost": true, "ups.status.eco": false}, "INTEGER: 4", true},
		{map[string]any{"ups.status.eco": true}, "INTEGER: 13", true},
		{map[string]any{"ups.status.eco": true, "apc.output.status": enum(3, "on_battery")}, "INTEGER: 3", true}, // the enum wins
	} {
		v, driven := d.pick(defs, func(def *profiles.PointDef) (any, bool) { x, ok := tc.vals[def.Name]; return x, ok })
		if v.String() != tc.want || driven != tc.driven {
			t.Errorf("%v: %s driven %v, want %s %v", tc.vals, v, driven, tc.want, tc.driven)
		}
	}
}

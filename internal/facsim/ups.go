package facsim

import (
	"math"
	"math/rand/v2"
)

// upsModel is a double-conversion UPS with a lead-acid string. Runtime is
// the estimate at the present load from the charge left, so it counts down
// about one second per second on battery at a steady load and shortens when
// the load rises.
type upsModel struct {
	r *rand.Rand

	// Nominal values, from profile hints where present.
	va        float64 // rated apparent power
	vOut, fHz float64 // output voltage and frequency
	vFloat    float64 // battery float voltage
	phases    float64
	t50       float64 // runtime in seconds at full charge and 50 % load
	lowBatt   float64 // runtime in seconds below which the battery is low
	watts     float64 // rated real power
	outLines  int     // rows of an SNMP output table (lines)

	scenario string
	load     ou // slow load wander, %
	jitter   ou // fast load jitter, %
	vIn, fIn ou
	vOutN    ou
	fOutN    ou
	effN     ou
	battTemp float64
	ambient  ou
	bTempN   ou

	charge    float64 // %
	inputBad  bool
	onBattery bool
	bypass    bool
	outputOff bool
	depleted  bool
	reason    enumVal
	onBattFor float64 // seconds on battery, 0 on mains
	lineBads  counter // input out-of-tolerance episodes
}

func newUPS(h hints, r *rand.Rand) *upsModel {
	m := &upsModel{r: r}
	m.va = h.withUnit("ups.power.nominal", 0)
	if m.va <= 0 {
		m.va = 10000
	}
	m.vOut = h.num("ups.output.voltage", 230)
	m.fHz = h.num("ups.output.frequency", 50)
	// Small UPSs carry a 48 V string, large ones a string of some 480 V.
	m.vFloat = 54.6
	if m.va > 20000 {
		m.vFloat = 545
	}
	m.vFloat = h.num("battery.voltage", m.vFloat)
	m.phases = 1
	if h.has("ups.output.load_l3") || h.has("ups.output.voltage_l3") {
		m.phases = 3
	}
	m.watts = h.withUnit("ups.realpower.nominal", 0.9*m.va)
	m.t50 = 1200
	m.lowBatt = 120
	if p, ok := h.res.Point("ups.config.low_battery_time"); ok && p.Unit == "min" {
		m.lowBatt = 60 * h.num("ups.config.low_battery_time", 2)
	}
	m.outLines = int(m.phases)
	if h.column("ups.output.load") {
		// An SNMP UPS serves upsOutputTable: simulated with three output
		// lines, one input line.
		m.outLines = 3
	}
	base := 40 + 10*r.Float64()
	m.load = newOU(base, 5, 1200, 30, 60)
	m.jitter = newOU(0, 0.4, 5, -1.5, 1.5)
	m.vIn = newOU(m.vOut, 1.5, 60, m.vOut-8, m.vOut+8)
	m.fIn = newOU(m.fHz, 0.02, 30, m.fHz-0.1, m.fHz+0.1)
	m.vOutN = newOU(0, 0.3, 20, -1, 1)
	m.fOutN = newOU(0, 0.005, 20, -0.02, 0.02)
	m.effN = newOU(95, 0.3, 300, 93, 97)
	m.ambient = newOU(23+2*r.Float64(), 0.3, 600, 18, 30)
	m.bTempN = newOU(0, 0.2, 300, -1, 1)
	m.setScenario(ScenarioNormal, true)
	return m
}

func (m *upsModel) setScenario(name string, _ bool) string {
	switch name {
	case ScenarioNormal:
		m.charge = 100
		m.inputBad, m.onBattery, m.bypass, m.outputOff, m.depleted = false, false, false, false, false
		m.load.x = m.load.mu
		m.battTemp = 25
		m.reason = enum(8, "acceptable_input")
	case ScenarioUtilityFailure:
		if !m.inputBad {
			m.lineBads++
		}
		m.inputBad = true
		m.reason = enum(2, "low_input_voltage")
		if m.bypass || m.outputOff {
			// Bypass has no battery behind it: the load drops.
			m.bypass, m.outputOff, m.onBattery = false, true, false
		} else {
			m.onBattery = true
		}
	case ScenarioRestore:
		m.inputBad, m.onBattery, m.outputOff, m.depleted = false, false, false, false
		m.reason = enum(8, "acceptable_input")
	case ScenarioBypass:
		m.bypass, m.onBattery = true, false
		m.reason = enum(11, "local_ui_command")
	case ScenarioOverload:
	default:
		return m.scenario
	}
	m.scenario = name
	return name
}

// loadPct is the load the UPS carries now.
func (m *upsModel) loadPct() float64 {
	if m.outputOff {
		return 0
	}
	l := m.load.x
	if m.scenario == ScenarioOverload {
		l = 110 + 0.4*(m.load.x-m.load.mu)
	}
	return max(0, l+m.jitter.x)
}

// fullRuntime is the runtime in seconds at full charge and load pct,
// Peukert-like: twice the load, less than half the time.
func (m *upsModel) fullRuntime(pct float64) float64 {
	return m.t50 * math.Pow(50/max(pct, 5), 1.25)
}

func (m *upsModel) step(dt float64, _ *inputs) {
	r := m.r
	m.load.step(dt, r)
	m.jitter.step(dt, r)
	m.vIn.step(dt, r)
	m.fIn.step(dt, r)
	m.vOutN.step(dt, r)
	m.fOutN.step(dt, r)
	m.effN.step(dt, r)
	m.ambient.step(dt, r)
	m.bTempN.step(dt, r)
	if m.onBattery {
		m.onBattFor += dt
	}
	switch {
	case m.onBattery:
		m.charge -= 100 * dt / m.fullRuntime(m.loadPct()-m.jitter.x)
		if m.charge <= 0 {
			m.charge, m.depleted, m.onBattery, m.outputOff = 0, true, false, true
			m.reason = enum(13, "low_battery_voltage")
		}
		m.battTemp = approach(m.battTemp, 28, 900, dt)
	case !m.inputBad && m.charge < 100:
		m.charge = min(100, m.charge+dt/60) // about 1 %/min
		m.battTemp = approach(m.battTemp, 26, 900, dt)
	default:
		m.battTemp = approach(m.battTemp, 25, 900, dt)
	}
	if !m.onBattery {
		m.onBattFor = 0
	}
}

// upsNow is the state values and columns are computed from.
type upsNow struct {
	load, runtime     float64
	online, low       bool
	charging          bool
	vOut, fOut        float64
	vIn, fIn          float64
	amps              float64 // output current per phase
	watts             float64 // output real power
	cellV, cells      float64
	cLeft             float64 // charge left, 0..1
	outputSourceCode  int64
	outputSourceName  string
	apcStatusCode     int64
	apcStatusName     string
	batteryStatusCode int64
	batteryStatusName string
}

func (m *upsModel) now() upsNow {
	var n upsNow
	n.load = m.loadPct()
	n.cLeft = m.charge / 100
	n.online = !m.onBattery && !m.bypass && !m.outputOff
	n.runtime = n.cLeft * m.fullRuntime(n.load-m.jitter.x)
	n.low = m.onBattery && n.runtime <= m.lowBatt
	n.charging = !m.onBattery && !m.inputBad && m.charge < 100

	// Lead-acid cell voltage: float 2.27 V, 2.35 V while recharging,
	// 2.10 V falling to 1.75 V on battery.
	n.cells = m.vFloat / 2.27
	n.cellV = 2.27
	switch {
	case m.onBattery:
		n.cellV = 1.75 + 0.35*n.cLeft - 0.02*n.load/100
	case m.depleted || m.inputBad:
		n.cellV = 1.95 + 0.25*n.cLeft
	case n.charging:
		n.cellV = 2.35
	}
	n.watts = n.load / 100 * m.va * 0.9
	n.vOut, n.fOut = m.vOut+m.vOutN.x, m.fHz+m.fOutN.x
	n.vIn, n.fIn = m.vIn.x, m.fIn.x
	if m.inputBad {
		n.vIn, n.fIn = 0, 0
	}
	if m.bypass {
		n.vOut, n.fOut = n.vIn, n.fIn
	}
	if m.outputOff {
		n.vOut, n.fOut = 0, 0
	}
	if n.vOut > 0 {
		n.amps = n.load / 100 * m.va / m.phases / n.vOut
	}
	// RFC 1628 upsOutputSource and APC upsBasicOutputStatus.
	switch {
	case m.outputOff:
		n.outputSourceCode, n.outputSourceName = 2, "none"
		n.apcStatusCode, n.apcStatusName = 7, "off"
	case m.onBattery:
		n.outputSourceCode, n.outputSourceName = 5, "battery"
		n.apcStatusCode, n.apcStatusName = 3, "on_battery"
	case m.bypass:
		n.outputSourceCode, n.outputSourceName = 4, "bypass"
		n.apcStatusCode, n.apcStatusName = 9, "switched_bypass"
	default:
		n.outputSourceCode, n.outputSourceName = 3, "normal"
		n.apcStatusCode, n.apcStatusName = 2, "on_line"
	}
	switch {
	case m.depleted:
		n.batteryStatusCode, n.batteryStatusName = 4, "depleted"
	case n.low:
		n.batteryStatusCode, n.batteryStatusName = 3, "low"
	default:
		n.batteryStatusCode, n.batteryStatusName = 2, "normal"
	}
	return n
}

func (m *upsModel) values(out map[string]any) {
	n := m.now()
	load, low := n.load, n.low

	out["ups.status.online"] = n.online
	out["ups.status.on_battery"] = m.onBattery
	out["ups.status.on_bypass"] = m.bypass
	out["ups.status.output_off"] = m.outputOff
	out["ups.status.fault"] = false
	out["ups.status.input_bad"] = m.inputBad
	out["ups.status.overload"] = load > 100
	out["ups.status.battery_low"] = low
	out["ups.status.shutdown_imminent"] = low
	out["ups.status.input_present"] = !m.inputBad
	out["ups.status.inverter_on"] = !m.bypass && !m.outputOff
	out["ups.status.battery_ok"] = !m.depleted && !low
	out["ups.status.charging"] = n.charging
	out["ups.status.test"] = false
	out["ups.alarm.battery_discharged"] = m.depleted
	out["ups.alarm.imminent_stop"] = low
	out["ups.transfer_reason"] = m.reason

	// RFC 1628: upsOutputSource (the status bools above read the same
	// OID through true_values and agree with it), upsBatteryStatus, and
	// the well-known alarms of upsAlarmTable (InputBad, OutputOverload,
	// ShutdownImminent, GeneralFault and TestInProgress are the
	// ups.status.* bools above).
	out["ups.output.source"] = enum(n.outputSourceCode, n.outputSourceName)
	out["battery.status"] = enum(n.batteryStatusCode, n.batteryStatusName)
	out["battery.time_on_battery"] = secs(0)
	if m.onBattery {
		out["battery.time_on_battery"] = secs(math.Floor(m.onBattFor))
	}
	out["ups.input.line_bads"] = m.lineBads
	out["ups.alarm.on_battery"] = m.onBattery
	out["ups.alarm.low_battery"] = low
	out["ups.alarm.depleted_battery"] = m.depleted
	out["ups.alarm.on_bypass"] = m.bypass
	out["ups.alarm.ups_output_off"] = m.outputOff
	out["ups.input.lines"] = 1.0
	out["ups.output.lines"] = float64(m.outLines)
	out["ups.power.nominal"] = unitVal{m.va, "VA"}
	out["ups.realpower.nominal"] = unitVal{m.watts, "W"}
	out["ups.config.low_battery_time"] = secs(m.lowBatt)

	// Runtime: some UPSs report "not applicable" on mains (Socomec
	// 0xFFFF); a point with an absent sentinel serves it there.
	if m.onBattery || m.depleted {
		out["battery.runtime"] = secs(math.Round(n.runtime))
	} else {
		out["battery.runtime"] = absentOr{secs(math.Round(n.runtime))}
	}
	out["battery.charge"] = round(m.charge, 1)

	out["battery.voltage"] = round(n.cells*n.cellV, 1)
	current := 0.0
	switch {
	case m.onBattery:
		current = n.watts / 0.94 / (n.cells * n.cellV) // discharge: positive
	case n.charging:
		current = -0.05 * m.va / m.vFloat // recharge: negative
	}
	out["battery.current"] = round(current, 1)
	out["battery.temperature"] = round(m.battTemp+m.bTempN.x, 1)
	out["ups.ambient.temperature"] = round(m.ambient.x, 0)

	out["ups.output.load"] = round(load, 1)
	out["ups.output.apparent_load"] = round(load*1.04, 1)
	for i, k := range []string{"ups.output.load_l1", "ups.output.load_l2", "ups.output.load_l3"} {
		if m.phases == 3 || i == 0 {
			out[k] = math.Round(load + float64(i-1)*1.5)
		}
	}
	out["ups.output.voltage"] = round(n.vOut, 1)
	out["ups.output.voltage_l2"] = round(n.vOut+0.4*m.vOutN.x, 0)
	out["ups.output.voltage_l3"] = round(n.vOut-0.3*m.vOutN.x, 0)
	out["ups.output.frequency"] = round(n.fOut, 2)
	out["ups.output.current"] = round(n.amps, 1)
	out["ups.input.voltage"] = round(n.vIn, 1)
	out["ups.input.frequency"] = round(n.fIn, 2)
	out["ups.bypass.voltage"] = round(n.vIn, 0)
	out["ups.bypass.frequency"] = round(n.fIn, 1)

	// APC's efficiency register carries a negative reason code when it
	// has no value.
	switch {
	case m.outputOff:
		out["ups.efficiency"] = rawVal(-3)
	case m.onBattery:
		out["ups.efficiency"] = rawVal(-4)
	case m.bypass:
		out["ups.efficiency"] = rawVal(-5)
	case n.charging:
		out["ups.efficiency"] = rawVal(-6)
	default:
		out["ups.efficiency"] = round(m.effN.x, 1)
	}

	// APC PowerNet-MIB, next to RFC 1628 on an APC network card.
	out["apc.output.status"] = enum(n.apcStatusCode, n.apcStatusName)
	out["apc.battery.status"] = enum(map[bool]int64{true: 3, false: 2}[low], map[bool]string{true: "low", false: "normal"}[low])
	out["apc.battery.capacity"] = math.Round(m.charge)
	out["apc.battery.runtime"] = secs(math.Round(n.runtime))
	out["apc.battery.temperature"] = math.Round(m.battTemp + m.bTempN.x)
	out["apc.battery.replace"] = false
	out["apc.output.load"] = math.Round(load)
	if m.inputBad || m.lineBads > 0 {
		out["apc.input.transfer_reason"] = enum(4, "blackout")
	} else {
		out["apc.input.transfer_reason"] = enum(1, "no_transfer")
	}
}

// columns serves the RFC 1628 line tables: upsInputTable with one line,
// upsOutputTable with outLines lines sharing the load.
func (m *upsModel) columns(out map[string]column) {
	n := m.now()
	eff := m.effN.x / 100
	inWatts, inAmps := 0.0, 0.0
	if n.vIn > 0 && !m.onBattery && !m.outputOff {
		inWatts = n.watts / eff
		if n.charging {
			inWatts += 0.05 * m.va
		}
		inAmps = inWatts / 0.98 / n.vIn
	}
	one := func(v any) column { return column{vals: []any{v}} }
	out["ups.input.voltage"] = one(math.Round(n.vIn))
	out["ups.input.frequency"] = one(round(n.fIn, 1))
	out["ups.input.current"] = one(round(inAmps, 1))
	out["ups.input.realpower"] = one(math.Round(inWatts))

	lines := m.outLines
	volts, amps, watts, loads := make([]any, lines), make([]any, lines), make([]any, lines), make([]any, lines)
	for i := range lines {
		l := 0.0
		if !m.outputOff {
			l = max(0, n.load+float64(i-1)*1.5)
		}
		v := 0.0
		if n.vOut > 0 {
			v = n.vOut + float64(i-1)*0.4*m.vOutN.x
		}
		a := 0.0
		if v > 0 {
			a = l / 100 * m.va / float64(lines) / v
		}
		volts[i], amps[i] = math.Round(v), round(a, 1)
		watts[i], loads[i] = math.Round(l/100*m.va*0.9/float64(lines)), math.Round(l)
	}
	out["ups.output.voltage"] = column{vals: volts}
	out["ups.output.current"] = column{vals: amps}
	out["ups.output.realpower"] = column{vals: watts}
	out["ups.output.load"] = column{vals: loads}
}

// rawVal is a raw register integer served as is (a device's reason code
// or sentinel), bypassing scale and offset.
type rawVal int64

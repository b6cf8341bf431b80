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
	m.t50 = 1200
	m.lowBatt = 120
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
}

func (m *upsModel) values(out map[string]any) {
	load := m.loadPct()
	c := m.charge / 100
	online := !m.onBattery && !m.bypass && !m.outputOff
	runtime := c * m.fullRuntime(load-m.jitter.x)
	low := m.onBattery && runtime <= m.lowBatt
	charging := !m.onBattery && !m.inputBad && m.charge < 100

	out["ups.status.online"] = online
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
	out["ups.status.charging"] = charging
	out["ups.alarm.battery_discharged"] = m.depleted
	out["ups.alarm.imminent_stop"] = low
	out["ups.transfer_reason"] = m.reason

	// Runtime: some UPSs report "not applicable" on mains (Socomec
	// 0xFFFF); a point with an absent sentinel serves it there.
	if m.onBattery || m.depleted {
		out["battery.runtime"] = secs(math.Round(runtime))
	} else {
		out["battery.runtime"] = absentOr{secs(math.Round(runtime))}
	}
	out["battery.charge"] = round(m.charge, 1)

	// Lead-acid cell voltage: float 2.27 V, 2.35 V while recharging,
	// 2.10 V falling to 1.75 V on battery.
	cells := m.vFloat / 2.27
	cellV := 2.27
	switch {
	case m.onBattery:
		cellV = 1.75 + 0.35*c - 0.02*load/100
	case m.depleted || m.inputBad:
		cellV = 1.95 + 0.25*c
	case charging:
		cellV = 2.35
	}
	out["battery.voltage"] = round(cells*cellV, 1)
	watts := load / 100 * m.va * 0.9
	current := 0.0
	switch {
	case m.onBattery:
		current = watts / 0.94 / (cells * cellV) // discharge: positive
	case charging:
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
	vOut, fOut := m.vOut+m.vOutN.x, m.fHz+m.fOutN.x
	vIn, fIn := m.vIn.x, m.fIn.x
	if m.inputBad {
		vIn, fIn = 0, 0
	}
	if m.bypass {
		vOut, fOut = vIn, fIn
	}
	if m.outputOff {
		vOut, fOut = 0, 0
	}
	out["ups.output.voltage"] = round(vOut, 1)
	out["ups.output.voltage_l2"] = round(vOut+0.4*m.vOutN.x, 0)
	out["ups.output.voltage_l3"] = round(vOut-0.3*m.vOutN.x, 0)
	out["ups.output.frequency"] = round(fOut, 2)
	amps := 0.0
	if vOut > 0 {
		amps = load / 100 * m.va / m.phases / vOut
	}
	out["ups.output.current"] = round(amps, 1)
	out["ups.input.voltage"] = round(vIn, 1)
	out["ups.input.frequency"] = round(fIn, 2)
	out["ups.bypass.voltage"] = round(vIn, 0)
	out["ups.bypass.frequency"] = round(fIn, 1)

	// APC's efficiency register carries a negative reason code when it
	// has no value.
	switch {
	case m.outputOff:
		out["ups.efficiency"] = rawVal(-3)
	case m.onBattery:
		out["ups.efficiency"] = rawVal(-4)
	case m.bypass:
		out["ups.efficiency"] = rawVal(-5)
	case charging:
		out["ups.efficiency"] = rawVal(-6)
	default:
		out["ups.efficiency"] = round(m.effN.x, 1)
	}
}

// rawVal is a raw register integer served as is (a device's reason code
// or sentinel), bypassing scale and offset.
type rawVal int64

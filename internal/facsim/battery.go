package facsim

import (
	"math"
	"math/rand/v2"
)

// Thermal runaway timeline, in simulated seconds from the scenario start.
const (
	// runawayHeatDelay is how long off-gas leads the temperature rise.
	runawayHeatDelay = 120.0
	// runawayRate0 is the initial rate of rise of the hottest cell,
	// degC/min; it grows e-fold every runawayTau seconds.
	runawayRate0 = 3.0
	runawayTau   = 300.0
	// runawayCollapse is the cell temperature at which the separator fails
	// and the cell voltage collapses.
	runawayCollapse = 120.0
)

// bmsModel is a lithium-iron-phosphate rack BMS on float behind a UPS.
// In thermal runaway one cell vents first (off-gas, then H2), then heats
// at several degC/min, accelerating; the BMS raises its alarms at the
// thresholds the profile serves and opens the contactor at over-temperature.
type bmsModel struct {
	r *rand.Rand

	cells       float64 // cells in series
	capacityAh  float64
	overtemp    float64 // alarm thresholds
	offgasAlarm float64
	overvolt    float64
	undervolt   float64

	scenario string
	t        float64 // scenario time, s
	clock    float64 // seconds since start, for the heartbeat

	soc       float64 // %
	soh       float64
	cycles    float64
	socFloat  ou
	spread    ou
	cellTemp  ou
	tempDiff  ou
	offgasN   ou
	h2N       ou
	currentN  ou
	vN        ou
	hotModule int

	discharging bool
	contactor   bool
	tMax        float64 // hottest cell, degC
	tRate       float64 // degC/min
	moduleMax   float64
	vCollapse   float64 // how far the failing cell has collapsed, V
}

func newBMS(h hints, r *rand.Rand) *bmsModel {
	m := &bmsModel{r: r}
	m.cells = 168
	if v := h.num("bms.voltage", 0); v > 0 {
		m.cells = math.Round(v / 3.3)
	}
	m.capacityAh = 15 // sized for some 15 min at the UPS's full load
	m.overtemp = h.num("bms.setpoint.cell_overtemp", 55)
	m.offgasAlarm = h.num("bms.setpoint.offgas", 100)
	m.overvolt = h.num("bms.setpoint.cell_overvoltage", 3.65)
	m.undervolt = h.num("bms.setpoint.cell_undervoltage", 2.5)
	m.soh = round(95+3*r.Float64(), 1)
	m.cycles = math.Round(80 + 200*r.Float64())
	m.socFloat = newOU(99, 0.3, 600, 97.5, 100)
	m.spread = newOU(15, 3, 600, 8, 28)
	m.cellTemp = newOU(23.5+2*r.Float64(), 0.3, 600, 18, 32)
	m.tempDiff = newOU(1.5, 0.3, 600, 0.8, 2.5)
	m.offgasN = newOU(1, 0.5, 60, 0, 3)
	m.h2N = newOU(1, 0.5, 60, 0, 3)
	m.currentN = newOU(0, 0.1, 30, -0.3, 0.3)
	m.vN = newOU(0, 0.002, 60, -0.005, 0.005)
	m.hotModule = 1 + r.IntN(12)
	m.setScenario(ScenarioNormal, true)
	return m
}

func (m *bmsModel) setScenario(name string, _ bool) string {
	switch name {
	case ScenarioNormal:
		m.soc = m.socFloat.x
		m.discharging, m.contactor = false, true
		m.vCollapse = 0
	case ScenarioUtilityFailure:
		if m.scenario == ScenarioThermalRunaway {
			return m.scenario // a rack in runaway stays in runaway
		}
		m.discharging = m.contactor
	case ScenarioRestore:
		if m.scenario == ScenarioThermalRunaway {
			return m.scenario
		}
		m.discharging, m.contactor = false, true
	case ScenarioThermalRunaway:
		if m.scenario == ScenarioThermalRunaway {
			return m.scenario // already venting: keep the timeline
		}
	default:
		return m.scenario
	}
	m.scenario, m.t = name, 0
	return name
}

func (m *bmsModel) step(dt float64, _ *inputs) {
	r := m.r
	m.t += dt
	m.clock += dt
	m.socFloat.step(dt, r)
	m.spread.step(dt, r)
	base := m.cellTemp.step(dt, r)
	m.tempDiff.step(dt, r)
	m.offgasN.step(dt, r)
	m.h2N.step(dt, r)
	m.currentN.step(dt, r)
	m.vN.step(dt, r)

	switch {
	case m.discharging:
		m.soc -= 100 * m.dischargeA() * dt / (m.capacityAh * 3600)
		if m.soc <= 0 {
			// Cut-off: the BMS opens the string to save the cells.
			m.soc, m.discharging, m.contactor = 0, false, false
		}
	case m.scenario == ScenarioRestore && m.contactor && m.soc < 100:
		m.soc = min(100, m.soc+100*m.chargeA()*dt/(m.capacityAh*3600))
	case m.scenario == ScenarioNormal:
		m.soc = m.socFloat.x
	}

	prev := m.tMax
	if m.scenario == ScenarioThermalRunaway && m.t > runawayHeatDelay {
		x := (m.t - runawayHeatDelay) / runawayTau
		// Capped where the cell has burnt out and sensors saturate.
		m.tMax = min(max(base+runawayRate0*runawayTau/60*(math.Exp(x)-1), base), 800)
		m.tRate = min(runawayRate0*math.Exp(x), 500)
		if m.tMax >= m.overtemp {
			m.contactor, m.discharging = false, false
		}
		if m.tMax >= runawayCollapse {
			m.vCollapse = approach(m.vCollapse, 3.4, 30, dt)
		}
	} else {
		m.tMax = base
		m.tRate = 0
		if dt > 0 && prev != 0 {
			m.tRate = (m.tMax - prev) / dt * 60
		}
	}
	if m.moduleMax == 0 {
		m.moduleMax = m.tMax + 1
	}
	m.moduleMax = approach(m.moduleMax, m.tMax+1, 90, dt)
}

func (m *bmsModel) dischargeA() float64 { return 60 }
func (m *bmsModel) chargeA() float64    { return 10 }

// ocv is the open-circuit voltage of an LFP cell at state of charge s
// (0..1): flat around 3.3 V with steep ends.
func ocv(s float64) float64 {
	v := 3.28 + 0.08*(s-0.5)
	if s >= 0.5 {
		v += 0.12 * math.Pow((s-0.5)/0.5, 12)
	} else {
		v -= 0.7 * math.Pow((0.5-s)/0.5, 12)
	}
	return v
}

func (m *bmsModel) values(out map[string]any) {
	runaway := m.scenario == ScenarioThermalRunaway
	current := m.currentN.x - 0.3 // float: a trickle into the rack
	mode := enum(0, "standby")
	switch {
	case !m.contactor:
		current = 0
		mode = enum(4, "shutdown")
		if runaway {
			mode = enum(3, "fault")
		}
	case m.discharging:
		current = m.dischargeA() + 20*m.currentN.x
		mode = enum(2, "discharging")
	case m.scenario == ScenarioRestore && m.soc < 100:
		current = -m.chargeA() + m.currentN.x
		mode = enum(1, "charging")
	}
	ir := 0.0008 * current // 0.8 mOhm per cell
	mean := ocv(m.soc/100) - ir + m.vN.x
	spreadV := m.spread.x / 1000
	vMax, vMin := mean+spreadV/2, mean-spreadV/2
	vMin = max(0, vMin-m.vCollapse)
	spreadMV := math.Round((vMax - vMin) * 1000)

	out["bms.soc"] = round(m.soc, 1)
	out["bms.soh"] = m.soh
	out["bms.voltage"] = round(mean*(m.cells-1)+vMin, 1)
	out["bms.current"] = round(current, 1)
	out["bms.cell_voltage_max"] = round(vMax, 3)
	out["bms.cell_voltage_min"] = round(vMin, 3)
	out["bms.cell_voltage_spread"] = spreadMV
	out["bms.cell_temp_max"] = round(m.tMax, 1)
	out["bms.cell_temp_min"] = round(m.cellTemp.x-m.tempDiff.x, 1)
	out["bms.module_temp_max"] = round(m.moduleMax, 1)
	out["bms.cell_temp_rise"] = round(m.tRate, 1)
	out["bms.cell_temp_max_module"] = float64(m.hotModule)
	out["bms.cycles"] = m.cycles
	limit := func(a float64) float64 {
		if !m.contactor {
			return 0
		}
		return a
	}
	out["bms.charge_current_limit"] = limit(50)
	out["bms.discharge_current_limit"] = limit(150)
	out["bms.heartbeat"] = math.Mod(math.Floor(m.clock), 65536)

	offgas, h2 := m.offgasN.x, m.h2N.x
	if runaway {
		// The failing cell vents electrolyte vapour first, H2 follows.
		offgas += min(5*(math.Exp(m.t/25)-1), 5000)
		if m.t > 30 {
			h2 += min(50*(math.Exp((m.t-30)/40)-1), 20000)
		}
	}
	out["bms.offgas_ppm"] = round(offgas, 1)
	out["bms.h2_ppm"] = math.Round(h2)

	out["bms.contactor"] = enum(b2i(m.contactor), map[bool]string{true: "closed", false: "open"}[m.contactor])
	out["bms.mode"] = mode
	out["bms.alarm.cell_overtemp"] = m.tMax >= m.overtemp
	out["bms.alarm.cell_overvoltage"] = vMax >= m.overvolt
	out["bms.alarm.cell_undervoltage"] = vMin <= m.undervolt
	out["bms.alarm.offgas"] = offgas >= m.offgasAlarm
	out["bms.alarm.comms"] = false
	out["bms.alarm.contactor"] = false
	out["bms.alarm.insulation"] = false
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

package facsim

import "math/rand/v2"

// cracModel is a computer room air conditioner holding its supply air at
// a setpoint, with return air some 10 degC warmer. When it fails the fans
// and compressor stop and the supply air warms toward the return air, which
// itself creeps up as the room heats.
type cracModel struct {
	r *rand.Rand

	setpoint  float64 // supply air, degC
	highAlarm float64 // supply air high-temperature alarm, degC
	deltaT    float64 // return minus supply in normal operation

	scenario string
	supplyN  ou
	returnN  ou
	humidity ou
	fan      ou
	chw      ou
	util     ou

	supply, ret float64 // degC
	heat        float64 // extra return air warming of the room, degC
	fanSpeed    float64 // %
}

func newCRAC(h hints, r *rand.Rand) *cracModel {
	m := &cracModel{r: r}
	m.setpoint = h.num("crac.setpoint.supply", 18)
	m.highAlarm = h.num("crac.setpoint.supply_high", 25)
	m.deltaT = 9 + 2*r.Float64()
	m.supplyN = newOU(0, 0.25, 60, -0.8, 0.8)
	m.returnN = newOU(0, 0.4, 300, -1.5, 1.5)
	m.humidity = newOU(45, 2, 900, 38, 52)
	m.fan = newOU(70, 3, 300, 60, 80)
	m.chw = newOU(7, 0.2, 300, 6.2, 7.8)
	m.util = newOU(60, 5, 300, 45, 75)
	m.setScenario(ScenarioNormal, true)
	return m
}

func (m *cracModel) setScenario(name string, _ bool) string {
	switch name {
	case ScenarioNormal:
		m.supply, m.heat = m.setpoint, 0
		m.ret = m.setpoint + m.deltaT
		m.fanSpeed = m.fan.x
	case ScenarioCRACFailure:
	default:
		return m.scenario
	}
	m.scenario = name
	return name
}

func (m *cracModel) step(dt float64, _ *inputs) {
	r := m.r
	m.supplyN.step(dt, r)
	m.returnN.step(dt, r)
	m.humidity.step(dt, r)
	m.fan.step(dt, r)
	m.chw.step(dt, r)
	m.util.step(dt, r)
	if m.scenario == ScenarioCRACFailure {
		// The room heats by some 0.5 degC/min at first; the supply air,
		// no longer cooled, takes the return air's temperature.
		m.heat = approach(m.heat, 10, 1200, dt)
		m.ret = m.setpoint + m.deltaT + m.heat
		m.supply = approach(m.supply, m.ret-0.5, 120, dt)
		m.fanSpeed = approach(m.fanSpeed, 0, 5, dt)
		return
	}
	m.heat = approach(m.heat, 0, 600, dt)
	m.ret = m.setpoint + m.deltaT + m.heat
	m.supply = approach(m.supply, m.setpoint, 60, dt)
	m.fanSpeed = approach(m.fanSpeed, m.fan.x, 10, dt)
}

func (m *cracModel) values(out map[string]any) {
	failed := m.scenario == ScenarioCRACFailure
	supply := m.supply + m.supplyN.x
	if failed {
		supply = m.supply + 0.3*m.supplyN.x
	}
	out["crac.supply_temp"] = round(supply, 1)
	out["crac.return_temp"] = round(m.ret+m.returnN.x, 1)
	out["crac.return_humidity"] = round(m.humidity.x, 1)
	out["crac.fan_speed"] = round(m.fanSpeed, 0)
	out["crac.chilled_water_temp"] = round(m.chw.x, 1)
	out["crac.alarm.high_supply_temp"] = supply > m.highAlarm
	out["crac.alarm.unit_fault"] = failed
	out["crac.alarm.sensor_fault"] = false
	out["crac.alarm.fan"] = false
	out["crac.alarm.comms_lost"] = false
	out["crac.alarm.partial_shutdown"] = false
	if failed {
		out["crac.state"] = enum(0, "off")
		out["crac.status"] = enum(32, "abnormal")
		out["crac.compressor"] = enum(0, "off")
		out["crac.compressor_utilization"] = 0.0
		return
	}
	out["crac.state"] = enum(1, "on")
	out["crac.status"] = enum(1, "normal")
	out["crac.compressor"] = enum(1, "on")
	out["crac.compressor_utilization"] = round(m.util.x, 0)
}

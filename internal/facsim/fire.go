package facsim

import (
	"math"
	"math/rand/v2"
)

// fireModel serves a fire panel, an aspirating smoke detector (VESDA), or
// a profile with points of both. The detector's obscuration rises
// exponentially in a fire, crossing its four thresholds in order; the
// panel alarms when any detector of the facility reaches Fire 1 (its relay
// is wired to the panel) and latches the alarm until it is reset.
type fireModel struct {
	r *rand.Rand

	detector, panel bool
	thresholds      [4]float64 // alert, action, fire1, fire2, %obs/m

	scenario string
	direct   bool
	t        float64
	obscN    ou
	airflow  ou
	obsc     float64
	alarmed  bool
}

func newFire(h hints, r *rand.Rand) *fireModel {
	m := &fireModel{r: r}
	m.detector = h.has("vesda.obscuration") || h.has("vesda.level")
	m.panel = h.has("firepanel.alarm") || h.has("firepanel.state")
	m.thresholds = [4]float64{
		h.num("vesda.threshold.alert", 0.08),
		h.num("vesda.threshold.action", 0.14),
		h.num("vesda.threshold.fire1", 0.2),
		h.num("vesda.threshold.fire2", 2.0),
	}
	m.obscN = newOU(0.01, 0.004, 120, 0.002, 0.025)
	m.airflow = newOU(100, 2, 300, 94, 106)
	m.setScenario(ScenarioNormal, true)
	return m
}

func (m *fireModel) setScenario(name string, direct bool) string {
	switch name {
	case ScenarioNormal:
		m.alarmed = false
	case ScenarioFireAlarm:
		if m.scenario == ScenarioFireAlarm {
			m.direct = m.direct || direct
			return m.scenario // keep the fire's timeline
		}
	default:
		return m.scenario
	}
	m.scenario, m.direct, m.t = name, direct, 0
	return name
}

// level is the highest threshold the obscuration has reached: 0 normal,
// 1 alert, 2 action, 3 fire 1, 4 fire 2.
func (m *fireModel) level() int {
	n := 0
	for i, th := range m.thresholds {
		if m.obsc >= th {
			n = i + 1
		}
	}
	return n
}

// fire1 reports whether the detector's Fire 1 relay is closed.
func (m *fireModel) fire1() bool { return m.detector && m.level() >= 3 }

func (m *fireModel) step(dt float64, in *inputs) {
	m.t += dt
	m.obscN.step(dt, m.r)
	m.airflow.step(dt, m.r)
	m.obsc = m.obscN.x
	if m.scenario == ScenarioFireAlarm && m.detector {
		// Fire 1 (0.2 %obs/m) after some 2 min, Fire 2 (2.0) after 3.5.
		m.obsc += min(0.01*(math.Exp(m.t/40)-1), 20)
	}
	if !m.panel {
		return
	}
	// A panel named by the scenario alarms at once; one switched with its
	// whole class waits for a detector, if the facility has any.
	if m.scenario == ScenarioFireAlarm && (m.direct || !in.detectors) {
		m.alarmed = true
	}
	m.react(in)
}

func (m *fireModel) react(in *inputs) {
	if m.panel && (in.fire1 || m.fire1()) {
		m.alarmed = true
	}
}

func (m *fireModel) values(out map[string]any) {
	if m.detector {
		lvl := m.level()
		out["vesda.obscuration"] = round(m.obsc, 3)
		out["vesda.level"] = enum(int64(lvl), [...]string{"normal", "alert", "action", "fire1", "fire2"}[lvl])
		out["vesda.alert"] = lvl >= 1
		out["vesda.action"] = lvl >= 2
		out["vesda.fire1"] = lvl >= 3
		out["vesda.fire2"] = lvl >= 4
		out["vesda.airflow"] = math.Round(m.airflow.x)
		out["vesda.airflow_fault"] = false
		out["vesda.fault"] = false
		out["vesda.minor_fault"] = false
		for i, k := range []string{"vesda.threshold.alert", "vesda.threshold.action", "vesda.threshold.fire1", "vesda.threshold.fire2"} {
			out[k] = m.thresholds[i]
		}
	}
	if m.panel {
		out["firepanel.alarm"] = m.alarmed
		out["firepanel.zone1.alarm"] = m.alarmed
		out["firepanel.fault"] = false
		out["firepanel.supervisory"] = false
		out["firepanel.epo_tripped"] = false
		out["firepanel.state"] = enum(0, "armed", "normal")
		out["firepanel.alarm_count"] = 0.0
		out["firepanel.first_alarm_zone"] = 0.0
		if m.alarmed {
			out["firepanel.state"] = enum(1, "tripped", "alarm", "fire")
			out["firepanel.alarm_count"] = 1.0
			out["firepanel.first_alarm_zone"] = 1.0
		}
	}
}

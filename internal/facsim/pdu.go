package facsim

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// DefaultOutlets are the outlet names of a PDU whose facility entry gives
// none: web servers and databases (critical), application servers and
// lab machines (sheddable), as a load-shed test wants them.
var DefaultOutlets = []string{"web-01", "web-02", "db-01", "db-02", "app-01", "app-02", "lab-01", "lab-02"}

// rebootDelay is how long an outlet stays off after immediateReboot, in
// simulated seconds (rPDU2OutletSwitchedConfigRebootDuration defaults to
// 5 s).
const rebootDelay = 5.0

// pduModel is a single-phase switched rack PDU metered by outlet: each
// outlet draws a current that wanders around its own level while on and
// nothing while off; the phase current and the PDU's power are the sum.
// A manager switches outlets with SETs of the command column (immediate
// on 1, off 2, reboot 3), which is what a load shed does.
type pduModel struct {
	r *rand.Rand

	ratedA  float64 // phase rating, A
	t       float64 // simulated seconds since start
	volts   ou
	outlets []pduOutlet
}

type pduOutlet struct {
	name     string
	on       bool
	rebootAt float64 // when a rebooting outlet comes back on; -1: none
	amps     ou
}

func newPDU(names []string, r *rand.Rand) *pduModel {
	if len(names) == 0 {
		names = DefaultOutlets
	}
	m := &pduModel{r: r, ratedA: 16, volts: newOU(230, 1, 120, 224, 236)}
	for _, n := range names {
		base := 0.4 + 1.4*r.Float64() // A
		m.outlets = append(m.outlets, pduOutlet{name: n, on: true, rebootAt: -1, amps: newOU(base, 0.05*base, 120, 0.7*base, 1.3*base)})
	}
	return m
}

func (m *pduModel) setScenario(name string, _ bool) string {
	if name != ScenarioNormal {
		return ScenarioNormal
	}
	for i := range m.outlets {
		m.outlets[i].on, m.outlets[i].rebootAt = true, -1
	}
	return name
}

func (m *pduModel) step(dt float64, _ *inputs) {
	m.t += dt
	m.volts.step(dt, m.r)
	for i := range m.outlets {
		o := &m.outlets[i]
		o.amps.step(dt, m.r)
		if o.rebootAt >= 0 && m.t >= o.rebootAt {
			o.on, o.rebootAt = true, -1
		}
	}
}

// command switches outlet row (1..) as rPDU2OutletSwitchedControlCommand:
// immediateOn 1, immediateOff 2, immediateReboot 3 (off now, on after
// rebootDelay). Other commands are refused.
func (m *pduModel) command(point string, row int, code int64) error {
	if point != "pdu.outlet.command" || row < 1 || row > len(m.outlets) {
		return fmt.Errorf("facsim: %s row %d is not writable", point, row)
	}
	o := &m.outlets[row-1]
	switch code {
	case 1:
		o.on, o.rebootAt = true, -1
	case 2:
		o.on, o.rebootAt = false, -1
	case 3:
		o.on, o.rebootAt = false, m.t+rebootDelay
	default:
		return fmt.Errorf("facsim: outlet command %d not supported (immediateOn 1, immediateOff 2, immediateReboot 3)", code)
	}
	return nil
}

// current returns the outlet's current now, A.
func (o *pduOutlet) current() float64 {
	if !o.on {
		return 0
	}
	return o.amps.x
}

// loadState is rPDU2's load state of a current against the rating.
func (m *pduModel) loadState(a float64) enumVal {
	switch {
	case a >= m.ratedA:
		return enum(4, "overload")
	case a >= 0.8*m.ratedA:
		return enum(3, "near_overload")
	case a < 0.2:
		return enum(1, "low_load")
	}
	return enum(2, "normal")
}

func (m *pduModel) total() float64 {
	sum := 0.0
	for i := range m.outlets {
		sum += m.outlets[i].current()
	}
	return sum
}

func (m *pduModel) values(out map[string]any) {
	a := m.total()
	out["pdu.power"] = round(a*m.volts.x*0.95/1000, 2)
	out["pdu.load_state"] = m.loadState(a)
}

func (m *pduModel) columns(out map[string]column) {
	a := m.total()
	out["pdu.phase.current"] = column{vals: []any{round(a, 1)}}
	out["pdu.phase.voltage"] = column{vals: []any{math.Round(m.volts.x)}}
	out["pdu.phase.load_state"] = column{vals: []any{m.loadState(a)}}
	n := len(m.outlets)
	labels := make([]string, n)
	state, pending, cmd, amps, watts := make([]any, n), make([]any, n), make([]any, n), make([]any, n), make([]any, n)
	for i := range m.outlets {
		o := &m.outlets[i]
		labels[i] = o.name
		if o.on {
			state[i], cmd[i] = enum(2, "on"), enum(1, "immediate_on")
		} else {
			state[i], cmd[i] = enum(1, "off"), enum(2, "immediate_off")
		}
		pending[i] = enum(2, "no_command_pending")
		if o.rebootAt >= 0 {
			pending[i] = enum(1, "command_pending")
		}
		amps[i] = round(o.current(), 1)
		watts[i] = math.Round(o.current() * m.volts.x * 0.95)
	}
	out["pdu.outlet.state"] = column{labels, state}
	out["pdu.outlet.pending"] = column{labels, pending}
	out["pdu.outlet.command"] = column{labels, cmd}
	out["pdu.outlet.current"] = column{labels, amps}
	out["pdu.outlet.power"] = column{labels, watts}
}

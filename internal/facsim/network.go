package facsim

import (
	"math"
	"math/rand/v2"
	"strings"
)

// DefaultPorts are the interface names of a switch whose facility entry
// gives none: eight access ports and two uplinks.
var DefaultPorts = []string{"Gi1/0/1", "Gi1/0/2", "Gi1/0/3", "Gi1/0/4", "Gi1/0/5", "Gi1/0/6", "Gi1/0/7", "Gi1/0/8", "Te1/1/1", "Te1/1/2"}

// switchModel is a managed switch: every port's traffic wanders around a
// share of its speed and counts into 64-bit octet counters (which wrap,
// as counters do, rather than saturate); its hardware sensors (inlet and
// CPU temperature, fans, power supplies) wander around their levels. In
// link-down its uplink goes down and carries nothing.
type switchModel struct {
	r *rand.Rand

	scenario string
	ports    []swPort
	uplink   int
	sensors  []swSensor
}

type swPort struct {
	name          string
	speed         float64 // Mb/s
	up            bool
	utilIn        ou // share of the speed
	utilOut       ou
	in, out       counter
	inFr, outFr   float64 // octets not yet counted
	inErr, outErr counter
}

type swSensor struct {
	name string
	typ  int64 // entPhySensorType
	prec int
	x    ou
}

// portSpeed guesses an interface's speed in Mb/s from its name.
func portSpeed(name string) float64 {
	n := strings.ToLower(name)
	switch {
	case strings.HasPrefix(n, "hu"):
		return 100000
	case strings.HasPrefix(n, "fo"):
		return 40000
	case strings.HasPrefix(n, "tw"):
		return 25000
	case strings.HasPrefix(n, "te"):
		return 10000
	case strings.HasPrefix(n, "fa"):
		return 100
	}
	return 1000
}

// uplinkIndex returns the port the link-down scenario takes down: the
// named one, else the first whose name starts with "Te", else the last.
func uplinkIndex(ports []string, uplink string) int {
	for i, p := range ports {
		if p == uplink {
			return i
		}
	}
	for i, p := range ports {
		if strings.HasPrefix(strings.ToLower(p), "te") {
			return i
		}
	}
	return len(ports) - 1
}

func newSwitch(names []string, uplink string, r *rand.Rand) *switchModel {
	if len(names) == 0 {
		names = DefaultPorts
	}
	m := &switchModel{r: r, uplink: uplinkIndex(names, uplink)}
	for i, n := range names {
		share := 0.02 + 0.08*r.Float64()
		if i == m.uplink {
			share = 0.2 + 0.1*r.Float64()
		}
		m.ports = append(m.ports, swPort{
			name: n, speed: portSpeed(n), up: true,
			utilIn:  newOU(share, share/5, 60, 0, min(1, 3*share)),
			utilOut: newOU(share*0.8, share/5, 60, 0, min(1, 3*share)),
			// The switch has been up a while: counters start anywhere.
			in: counter(r.Uint64N(1 << 40)), out: counter(r.Uint64N(1 << 40)),
			inErr: counter(r.IntN(20)), outErr: counter(r.IntN(5)),
		})
	}
	m.sensors = []swSensor{
		{"Inlet Temp", 8, 1, newOU(24, 0.3, 600, 20, 30)},
		{"CPU Temp", 8, 1, newOU(47, 1, 120, 40, 60)},
		{"Fan 1", 10, 0, newOU(6200, 80, 120, 5800, 6600)},
		{"Fan 2", 10, 0, newOU(6150, 80, 120, 5800, 6600)},
		{"PSU 1 Power", 6, 0, newOU(110, 4, 120, 90, 130)},
		{"PSU 2 Power", 6, 0, newOU(105, 4, 120, 90, 130)},
	}
	m.setScenario(ScenarioNormal, true)
	return m
}

func (m *switchModel) setScenario(name string, _ bool) string {
	switch name {
	case ScenarioNormal:
		for i := range m.ports {
			m.ports[i].up = true
		}
	case ScenarioLinkDown:
		m.ports[m.uplink].up = false
	default:
		return m.scenario
	}
	m.scenario = name
	return name
}

// count adds rate*dt octets to c, carrying the fraction in fr.
func count(c *counter, fr *float64, octets float64) {
	total := *fr + octets
	whole := math.Floor(total)
	*c += counter(whole) // wraps modulo 2^64
	*fr = total - whole
}

func (m *switchModel) step(dt float64, _ *inputs) {
	for i := range m.ports {
		p := &m.ports[i]
		p.utilIn.step(dt, m.r)
		p.utilOut.step(dt, m.r)
		if !p.up {
			continue
		}
		bytesPerS := p.speed * 1e6 / 8
		count(&p.in, &p.inFr, p.utilIn.x*bytesPerS*dt)
		count(&p.out, &p.outFr, p.utilOut.x*bytesPerS*dt)
	}
	for i := range m.sensors {
		m.sensors[i].x.step(dt, m.r)
	}
}

func (m *switchModel) values(map[string]any) {}

func (m *switchModel) columns(out map[string]column) {
	n := len(m.ports)
	labels := make([]string, n)
	oper, admin, in, outO, inE, outE, speed := make([]any, n), make([]any, n), make([]any, n), make([]any, n), make([]any, n), make([]any, n), make([]any, n)
	for i := range m.ports {
		p := &m.ports[i]
		labels[i] = p.name
		oper[i] = enum(1, "up")
		if !p.up {
			oper[i] = enum(2, "down")
		}
		admin[i] = enum(1, "up")
		in[i], outO[i], inE[i], outE[i] = p.in, p.out, p.inErr, p.outErr
		speed[i] = p.speed
	}
	out["if.oper_status"] = column{labels, oper}
	out["if.admin_status"] = column{labels, admin}
	out["if.in_octets"] = column{labels, in}
	out["if.out_octets"] = column{labels, outO}
	out["if.in_errors"] = column{labels, inE}
	out["if.out_errors"] = column{labels, outE}
	out["if.speed"] = column{labels, speed}

	sl := make([]string, len(m.sensors))
	sv := make([]any, len(m.sensors))
	for i, s := range m.sensors {
		sl[i] = s.name
		sv[i] = sensorVal{typ: s.typ, v: s.x.x, prec: s.prec, ok: true}
	}
	out["switch.sensor"] = column{sl, sv}
}

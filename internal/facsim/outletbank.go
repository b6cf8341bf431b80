package facsim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/mbserver"
)

// outletBank is a Modbus switched outlet bank (generic-modbus-outlet-bank):
// relay command coils a manager writes, feedback contacts that follow
// them, and the bank's total current. A write of a command coil reaches
// the model through coilWriter at once, so the next read of the feedback
// contact shows the outlet off, as a load shed's read-back expects.
type outletBank struct {
	r       *rand.Rand
	on      []bool
	amps    []ou
	nOutlet int
	// pushCoils makes the next values serve the command coils too. The
	// coils are otherwise the manager's: serving them on every step could
	// undo a write that lands between the write and its coilWriter call.
	pushCoils bool
}

// coilWriter is implemented by Modbus models whose coils a manager may
// write: written is called, under the Sim's lock, with the coil address
// and its new value after a successful write, and the model's values are
// served again at once.
type coilWriter interface {
	written(addr uint16, on bool)
}

func newOutletBank(res *profiles.Resolved, r *rand.Rand) *outletBank {
	n := 0
	for _, p := range res.Points {
		if i, ok := outletNumber(p.Name, "pdu.outlet.command."); ok && i > n {
			n = i
		}
	}
	m := &outletBank{r: r, nOutlet: n, pushCoils: true}
	for range n {
		base := 0.5 + 1.5*r.Float64()
		m.on = append(m.on, true)
		m.amps = append(m.amps, newOU(base, 0.05*base, 120, 0.7*base, 1.3*base))
	}
	return m
}

// outletNumber parses the outlet number of a point name with prefix.
func outletNumber(name, prefix string) (int, bool) {
	s, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	return i, err == nil && i >= 1
}

// setScenario: normal switches every outlet on again.
func (m *outletBank) setScenario(name string, _ bool) string {
	if name != ScenarioNormal {
		return ScenarioNormal
	}
	for i := range m.on {
		m.on[i] = true
	}
	m.pushCoils = true
	return name
}

func (m *outletBank) step(dt float64, _ *inputs) {
	for i := range m.amps {
		m.amps[i].step(dt, m.r)
	}
}

func (m *outletBank) written(addr uint16, on bool) {
	i := int(addr)
	if i >= m.nOutlet {
		return
	}
	m.on[i] = on
}

func (m *outletBank) values(out map[string]any) {
	total := 0.0
	for i, on := range m.on {
		n := strconv.Itoa(i + 1)
		out["pdu.outlet.state."+n] = on
		if m.pushCoils {
			out["pdu.outlet.command."+n] = on
		}
		if on {
			total += m.amps[i].x
		}
	}
	out["pdu.phase.current"] = round(total, 1)
	m.pushCoils = false
}

// onModbusWrite tells the models of the listener's devices about a
// manager's coil write, then serves their values again.
func (s *Sim) onModbusWrite(l *listener, unit uint8, t mbserver.Table, addr uint16, count int) {
	if t != mbserver.Coils {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.lst != l || d.unit != unit {
			continue
		}
		cw, ok := d.model.(coilWriter)
		if !ok {
			return
		}
		bits, err := l.mem.Bits(unit, mbserver.Coils, addr, uint16(count))
		if err != nil {
			s.log.Warn("facsim: read written coils", "device", d.spec.ID, "err", err)
			return
		}
		for i, b := range bits {
			cw.written(addr+uint16(i), b)
		}
		s.log.Info("facsim: coils written", "device", d.spec.ID, "addr", addr, "count", count)
		if err := d.writeModel(); err != nil {
			s.log.Warn("facsim: serve values", "device", d.spec.ID, "err", fmt.Sprint(err))
		}
		return
	}
}

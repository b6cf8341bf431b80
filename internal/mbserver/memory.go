package mbserver

import (
	"fmt"
	"maps"
	"sync"
)

// Table names one of the four Modbus data tables of a unit.
type Table uint8

// The four data tables of the Modbus data model.
const (
	Coils Table = iota
	DiscreteInputs
	HoldingRegisters
	InputRegisters
)

// String returns the table's name.
func (t Table) String() string {
	switch t {
	case Coils:
		return "coils"
	case DiscreteInputs:
		return "discrete inputs"
	case HoldingRegisters:
		return "holding registers"
	case InputRegisters:
		return "input registers"
	}
	return fmt.Sprintf("table(%d)", uint8(t))
}

func (t Table) isBits() bool { return t == Coils || t == DiscreteInputs }

// Memory is an in-memory Handler and DeviceIdentifier holding, per unit id,
// four sparse tables. Only mapped addresses exist: a Modbus read or write
// touching an unmapped address is answered with IllegalDataAddress. A unit
// id with nothing configured (no mapping, no values, no identification)
// is absent: by default it gets no reply at all (ErrNoResponse), which
// SetAbsentResponse can change to an exception such as
// GatewayTargetFailedToRespond.
//
// A Modbus write to unit 0 (broadcast) when unit 0 itself is absent is
// applied to every unit that maps the whole written range.
//
// Memory is safe for concurrent use: a simulator may update values while
// clients read them. Create it with NewMemory.
type Memory struct {
	mu      sync.RWMutex
	units   map[uint8]*unitMemory
	absent  ExceptionCode
	onWrite func(unit uint8, t Table, addr uint16, count int)
}

type unitMemory struct {
	tables [4]map[uint16]uint16 // bits are stored as 0 or 1
	ident  map[byte]string
}

// NewMemory returns an empty Memory in which every unit id is absent.
func NewMemory() *Memory {
	return &Memory{units: make(map[uint8]*unitMemory)}
}

// unit returns the unit's memory, creating it if create is set. The caller
// holds m.mu (for writing if create is set).
func (m *Memory) unit(unit uint8, create bool) *unitMemory {
	u := m.units[unit]
	if u == nil && create {
		u = &unitMemory{}
		m.units[unit] = u
	}
	return u
}

func checkSpan(t Table, from uint16, count int) error {
	if t > InputRegisters {
		return fmt.Errorf("mbserver: unknown table %d", uint8(t))
	}
	if count < 0 || int(from)+count > 0x10000 {
		return fmt.Errorf("mbserver: range %d+%d exceeds the address space", from, count)
	}
	return nil
}

// Map makes count addresses of table t of unit, starting at from, readable
// and writable by clients. Newly mapped addresses hold 0 (false); addresses
// already mapped keep their value.
func (m *Memory) Map(unit uint8, t Table, from uint16, count int) error {
	if err := checkSpan(t, from, count); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.unit(unit, true)
	if u.tables[t] == nil {
		u.tables[t] = make(map[uint16]uint16, count)
	}
	for i := range count {
		a := from + uint16(i)
		if _, ok := u.tables[t][a]; !ok {
			u.tables[t][a] = 0
		}
	}
	return nil
}

// Unmap removes count addresses of table t of unit, starting at from. The
// unit stays configured even if nothing remains mapped.
func (m *Memory) Unmap(unit uint8, t Table, from uint16, count int) error {
	if err := checkSpan(t, from, count); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if u := m.unit(unit, false); u != nil {
		for i := range count {
			delete(u.tables[t], from+uint16(i))
		}
	}
	return nil
}

// RemoveUnit forgets everything about unit, making it absent.
func (m *Memory) RemoveUnit(unit uint8) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.units, unit)
}

// SetAbsentResponse selects the answer for requests to absent units: 0
// (the default) sends no reply, any other code an exception with that code.
func (m *Memory) SetAbsentResponse(code ExceptionCode) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.absent = code
}

// OnWrite registers fn to be called after each successful Modbus write (not
// after the setters below), with the first address and number of values
// written. fn runs on the server goroutine serving the request, without
// Memory's lock held, so it may call Memory's methods. A nil fn removes it.
func (m *Memory) OnWrite(fn func(unit uint8, t Table, addr uint16, count int)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onWrite = fn
}

// SetDeviceIdentification sets the objects served by Read Device
// Identification for unit (see DeviceIdentifier); the map is copied.
func (m *Memory) SetDeviceIdentification(unit uint8, objs map[byte]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unit(unit, true).ident = maps.Clone(objs)
}

// SetBits stores vals at addr.. in bit table t (Coils or DiscreteInputs) of
// unit, mapping the addresses if needed.
func (m *Memory) SetBits(unit uint8, t Table, addr uint16, vals ...bool) error {
	words := make([]uint16, len(vals))
	for i, v := range vals {
		if v {
			words[i] = 1
		}
	}
	return m.set(unit, t, true, addr, words)
}

// SetRegisters stores vals at addr.. in register table t (HoldingRegisters
// or InputRegisters) of unit, mapping the addresses if needed.
func (m *Memory) SetRegisters(unit uint8, t Table, addr uint16, vals ...uint16) error {
	return m.set(unit, t, false, addr, vals)
}

func (m *Memory) set(unit uint8, t Table, bits bool, addr uint16, vals []uint16) error {
	if err := checkSpan(t, addr, len(vals)); err != nil {
		return err
	}
	if t.isBits() != bits {
		return fmt.Errorf("mbserver: wrong value type for %v", t)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.unit(unit, true)
	if u.tables[t] == nil {
		u.tables[t] = make(map[uint16]uint16, len(vals))
	}
	for i, v := range vals {
		u.tables[t][addr+uint16(i)] = v
	}
	return nil
}

// Bits returns qty values of bit table t of unit starting at addr. It fails
// with an *Exception (IllegalDataAddress) if an address is unmapped, or with
// the absent-unit error if unit is absent.
func (m *Memory) Bits(unit uint8, t Table, addr, qty uint16) ([]bool, error) {
	if !t.isBits() {
		return nil, fmt.Errorf("mbserver: %v is not a bit table", t)
	}
	words, err := m.get(unit, t, addr, qty)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(words))
	for i, w := range words {
		out[i] = w != 0
	}
	return out, nil
}

// Registers returns qty values of register table t of unit starting at addr,
// failing like Bits.
func (m *Memory) Registers(unit uint8, t Table, addr, qty uint16) ([]uint16, error) {
	if t.isBits() || t > InputRegisters {
		return nil, fmt.Errorf("mbserver: %v is not a register table", t)
	}
	return m.get(unit, t, addr, qty)
}

func (m *Memory) absentErr() error {
	if m.absent == 0 {
		return ErrNoResponse
	}
	return &Exception{Code: m.absent}
}

func (m *Memory) get(unit uint8, t Table, addr, qty uint16) ([]uint16, error) {
	if int(addr)+int(qty) > 0x10000 {
		return nil, &Exception{Code: IllegalDataAddress}
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	u := m.unit(unit, false)
	if u == nil {
		return nil, m.absentErr()
	}
	out := make([]uint16, qty)
	for i := range out {
		v, ok := u.tables[t][addr+uint16(i)]
		if !ok {
			return nil, &Exception{Code: IllegalDataAddress}
		}
		out[i] = v
	}
	return out, nil
}

// write applies a Modbus write; unmapped addresses fail the whole write.
func (m *Memory) write(unit uint8, t Table, addr uint16, vals []uint16) error {
	if int(addr)+len(vals) > 0x10000 {
		return &Exception{Code: IllegalDataAddress}
	}
	m.mu.Lock()
	mapped := func(u *unitMemory) bool {
		for i := range vals {
			if _, ok := u.tables[t][addr+uint16(i)]; !ok {
				return false
			}
		}
		return true
	}
	var targets []uint8
	if u := m.unit(unit, false); u != nil {
		if !mapped(u) {
			m.mu.Unlock()
			return &Exception{Code: IllegalDataAddress}
		}
		targets = []uint8{unit}
	} else if unit == 0 {
		for id, u := range m.units {
			if mapped(u) {
				targets = append(targets, id)
			}
		}
	} else {
		err := m.absentErr()
		m.mu.Unlock()
		return err
	}
	for _, id := range targets {
		for i, v := range vals {
			m.units[id].tables[t][addr+uint16(i)] = v
		}
	}
	hook := m.onWrite
	m.mu.Unlock()
	if hook != nil {
		for _, id := range targets {
			hook(id, t, addr, len(vals))
		}
	}
	return nil
}

// ReadCoils implements Handler.
func (m *Memory) ReadCoils(unit uint8, addr, qty uint16) ([]bool, error) {
	return m.Bits(unit, Coils, addr, qty)
}

// ReadDiscreteInputs implements Handler.
func (m *Memory) ReadDiscreteInputs(unit uint8, addr, qty uint16) ([]bool, error) {
	return m.Bits(unit, DiscreteInputs, addr, qty)
}

// ReadHoldingRegisters implements Handler.
func (m *Memory) ReadHoldingRegisters(unit uint8, addr, qty uint16) ([]uint16, error) {
	return m.Registers(unit, HoldingRegisters, addr, qty)
}

// ReadInputRegisters implements Handler.
func (m *Memory) ReadInputRegisters(unit uint8, addr, qty uint16) ([]uint16, error) {
	return m.Registers(unit, InputRegisters, addr, qty)
}

// WriteCoils implements Handler.
func (m *Memory) WriteCoils(unit uint8, addr uint16, vals []bool) error {
	words := make([]uint16, len(vals))
	for i, v := range vals {
		if v {
			words[i] = 1
		}
	}
	return m.write(unit, Coils, addr, words)
}

// WriteRegisters implements Handler.
func (m *Memory) WriteRegisters(unit uint8, addr uint16, vals []uint16) error {
	return m.write(unit, HoldingRegisters, addr, vals)
}

// DeviceIdentification implements DeviceIdentifier. A present unit without
// identification objects answers IllegalFunction.
func (m *Memory) DeviceIdentification(unit uint8) (map[byte]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	u := m.unit(unit, false)
	if u == nil {
		return nil, m.absentErr()
	}
	if len(u.ident) == 0 {
		return nil, &Exception{Code: IllegalFunction}
	}
	return maps.Clone(u.ident), nil
}

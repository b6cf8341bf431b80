package mbserver

import (
	"errors"
	"fmt"
	"testing"
)

func wantException(t *testing.T, what string, err error, code ExceptionCode) {
	t.Helper()
	ex, ok := errors.AsType[*Exception](err)
	if !ok || ex.Code != code {
		t.Errorf("%s: got error %v, want exception %v", what, err, code)
	}
}

func TestMemory(t *testing.T) {
	m := NewMemory()
	if err := m.Map(1, HoldingRegisters, 10, 5); err != nil {
		t.Fatal(err)
	}
	if got, err := m.ReadHoldingRegisters(1, 10, 5); err != nil || fmt.Sprint(got) != "[0 0 0 0 0]" {
		t.Errorf("fresh mapping: got %v, %v, want [0 0 0 0 0]", got, err)
	}
	if err := m.SetRegisters(1, HoldingRegisters, 14, 1, 2); err != nil {
		t.Fatal(err)
	}
	if got, err := m.ReadHoldingRegisters(1, 14, 2); err != nil || fmt.Sprint(got) != "[1 2]" {
		t.Errorf("set extends mapping: got %v, %v, want [1 2]", got, err)
	}
	if err := m.Map(1, HoldingRegisters, 14, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Registers(1, HoldingRegisters, 14, 1); got[0] != 1 {
		t.Errorf("remapping: got %d, want 1", got[0])
	}
	_, err := m.ReadHoldingRegisters(1, 9, 2)
	wantException(t, "read below mapping", err, IllegalDataAddress)
	_, err = m.ReadInputRegisters(1, 10, 1)
	wantException(t, "read other table", err, IllegalDataAddress)
	wantException(t, "write unmapped", m.WriteRegisters(1, 16, []uint16{1, 2}), IllegalDataAddress)
	if got, _ := m.Registers(1, HoldingRegisters, 15, 1); got[0] != 2 {
		t.Errorf("failed write changed memory: got %d, want 2", got[0])
	}
	if err := m.Unmap(1, HoldingRegisters, 10, 1); err != nil {
		t.Fatal(err)
	}
	_, err = m.ReadHoldingRegisters(1, 10, 1)
	wantException(t, "read unmapped", err, IllegalDataAddress)

	if err := m.SetBits(1, HoldingRegisters, 0, true); err == nil {
		t.Error("SetBits on registers: got no error, want one")
	}
	if err := m.SetRegisters(1, Coils, 0, 1); err == nil {
		t.Error("SetRegisters on coils: got no error, want one")
	}
	if _, err := m.Bits(1, InputRegisters, 0, 1); err == nil {
		t.Error("Bits on registers: got no error, want one")
	}
	if err := m.Map(1, Coils, 0xFFFF, 2); err == nil {
		t.Error("Map past 0xFFFF: got no error, want one")
	}
	if err := m.Map(1, Table(9), 0, 1); err == nil {
		t.Error("Map of table 9: got no error, want one")
	}
	if err := m.Map(1, Coils, 0, 0x10000); err != nil {
		t.Errorf("Map of the whole space: got %v, want none", err)
	}

	// Absent units.
	if _, err := m.ReadCoils(2, 0, 1); !errors.Is(err, ErrNoResponse) {
		t.Errorf("absent unit: got %v, want %v", err, ErrNoResponse)
	}
	m.SetAbsentResponse(GatewayTargetFailedToRespond)
	_, err = m.DeviceIdentification(2)
	wantException(t, "absent unit with exception", err, GatewayTargetFailedToRespond)
	m.RemoveUnit(1)
	wantException(t, "removed unit", m.WriteCoils(1, 0, []bool{true}), GatewayTargetFailedToRespond)
}

func TestMemoryWritesAndHook(t *testing.T) {
	m := NewMemory()
	for _, unit := range []uint8{1, 2, 3} {
		m.Map(unit, Coils, 0, 8)
		m.Map(unit, HoldingRegisters, 0, 4)
	}
	m.Map(3, HoldingRegisters, 0, 10)
	var got []string
	m.OnWrite(func(unit uint8, tab Table, addr uint16, count int) {
		got = append(got, fmt.Sprintf("%d %v %d+%d", unit, tab, addr, count))
		m.Registers(unit, tab, addr, 1) // the lock is not held
	})
	if err := m.WriteCoils(2, 1, []bool{true, true}); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteRegisters(0, 8, []uint16{5}); err != nil { // broadcast, unit 3 only
		t.Fatal(err)
	}
	if err := m.WriteRegisters(0, 100, []uint16{5}); err != nil { // broadcast, nobody
		t.Fatal(err)
	}
	m.SetRegisters(1, HoldingRegisters, 0, 1) // no hook for setters
	want := "[2 coils 1+2 3 holding registers 8+1]"
	if fmt.Sprint(got) != want {
		t.Errorf("hook calls: got %v, want %v", got, want)
	}
	if err := wantBits(m, 2, Coils, 0, false, true, true, false); err != nil {
		t.Error(err)
	}
	if err := wantRegs(m, 3, 8, 5); err != nil {
		t.Error(err)
	}

	// A configured unit 0 is a normal unit.
	m.Map(0, HoldingRegisters, 0, 1)
	wantException(t, "unit 0 configured", m.WriteRegisters(0, 8, []uint16{6}), IllegalDataAddress)
}

func TestMemoryDeviceIdentificationCopies(t *testing.T) {
	m := NewMemory()
	objs := map[byte]string{0: "a"}
	m.SetDeviceIdentification(4, objs)
	objs[0] = "changed"
	got, err := m.DeviceIdentification(4)
	if err != nil || got[0] != "a" {
		t.Fatalf("got %v, %v, want map[0:a]", got, err)
	}
	got[0] = "changed"
	if again, _ := m.DeviceIdentification(4); again[0] != "a" {
		t.Errorf("got %q, want %q", again[0], "a")
	}
	m.SetRegisters(5, InputRegisters, 0, 1)
	_, err = m.DeviceIdentification(5)
	wantException(t, "unit without identification", err, IllegalFunction)
}

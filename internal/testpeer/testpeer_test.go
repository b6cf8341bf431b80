package testpeer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goburrow/modbus"
)

// testLayout is served by the pymodbus tests: values differ per unit id so a
// reply from the wrong unit cannot pass.
var testLayout = PymodbusLayout{
	Units: map[uint8]PymodbusUnit{
		1: {
			Holding:  map[uint16]uint16{0: 1111, 100: 230, 101: S16(-1234)},
			Input:    map[uint16]uint16{5: 42},
			Coils:    map[uint16]bool{3: true, 4: false},
			Discrete: map[uint16]bool{0: false, 1: true},
		},
		2: {
			Holding: map[uint16]uint16{0: 2222, 100: 65535, 101: S16(-2)},
			Coils:   map[uint16]bool{3: false, 4: true},
		},
		17: {
			Input: map[uint16]uint16{0: 7},
		},
	},
	Identity: &DeviceIdentity{
		VendorName:         "Acme Power",
		ProductCode:        "PDU-9000",
		MajorMinorRevision: "v2.7",
		ProductName:        "Rack PDU",
		ModelName:          "9000-24",
	},
}

// client returns a goburrow Modbus TCP client for unit id slave, closed at
// the end of the test.
func client(t *testing.T, addr string, slave byte) (modbus.Client, *modbus.TCPClientHandler) {
	t.Helper()
	h := modbus.NewTCPClientHandler(addr)
	h.SlaveId = slave
	h.Timeout = time.Second
	t.Cleanup(func() { h.Close() })
	return modbus.NewClient(h), h
}

// u16 reads one register at addr with read (a client's ReadHoldingRegisters
// or ReadInputRegisters).
func u16(t *testing.T, read func(addr, quantity uint16) ([]byte, error), addr uint16) uint16 {
	t.Helper()
	b, err := read(addr, 1)
	if err != nil {
		t.Fatalf("read register %d: %v", addr, err)
	}
	if len(b) != 2 {
		t.Fatalf("read: got %d bytes % x, want 2", len(b), b)
	}
	return binary.BigEndian.Uint16(b)
}

func TestPymodbusIntegrationRegisters(t *testing.T) {
	addr := StartPymodbus(t, testLayout)

	c1, _ := client(t, addr, 1)
	if got := u16(t, c1.ReadHoldingRegisters, 0); got != 1111 {
		t.Errorf("unit 1 holding 0 = %d, want 1111", got)
	}
	b, err := c1.ReadHoldingRegisters(100, 2)
	if err != nil {
		t.Fatalf("unit 1 holding 100..101: %v", err)
	}
	if got := binary.BigEndian.Uint16(b[0:]); got != 230 {
		t.Errorf("unit 1 holding 100 = %d, want 230", got)
	}
	if got := int16(binary.BigEndian.Uint16(b[2:])); got != -1234 {
		t.Errorf("unit 1 holding 101 as s16 = %d, want -1234", got)
	}
	if got := u16(t, c1.ReadInputRegisters, 5); got != 42 {
		t.Errorf("unit 1 input 5 = %d, want 42", got)
	}
	coils, err := c1.ReadCoils(3, 2)
	if err != nil {
		t.Fatalf("unit 1 coils 3..4: %v", err)
	}
	if len(coils) != 1 || coils[0] != 0b01 {
		t.Errorf("unit 1 coils 3..4 = % x, want 01 (3 on, 4 off)", coils)
	}
	di, err := c1.ReadDiscreteInputs(0, 2)
	if err != nil {
		t.Fatalf("unit 1 discrete 0..1: %v", err)
	}
	if len(di) != 1 || di[0] != 0b10 {
		t.Errorf("unit 1 discrete 0..1 = % x, want 02 (0 off, 1 on)", di)
	}

	c2, _ := client(t, addr, 2)
	if got := u16(t, c2.ReadHoldingRegisters, 0); got != 2222 {
		t.Errorf("unit 2 holding 0 = %d, want 2222", got)
	}
	if got := u16(t, c2.ReadHoldingRegisters, 100); got != 65535 {
		t.Errorf("unit 2 holding 100 = %d, want 65535", got)
	}
	if got := int16(u16(t, c2.ReadHoldingRegisters, 101)); got != -2 {
		t.Errorf("unit 2 holding 101 as s16 = %d, want -2", got)
	}
	coils, err = c2.ReadCoils(3, 2)
	if err != nil {
		t.Fatalf("unit 2 coils 3..4: %v", err)
	}
	if len(coils) != 1 || coils[0] != 0b10 {
		t.Errorf("unit 2 coils 3..4 = % x, want 02 (3 off, 4 on)", coils)
	}

	c17, _ := client(t, addr, 17)
	if got := u16(t, c17.ReadInputRegisters, 0); got != 7 {
		t.Errorf("unit 17 input 0 = %d, want 7", got)
	}

	// Writes to mapped addresses are stored.
	if _, err := c2.WriteSingleRegister(0, 4321); err != nil {
		t.Fatalf("unit 2 write holding 0: %v", err)
	}
	if got := u16(t, c2.ReadHoldingRegisters, 0); got != 4321 {
		t.Errorf("unit 2 holding 0 after write = %d, want 4321", got)
	}
	if got := u16(t, c1.ReadHoldingRegisters, 0); got != 1111 {
		t.Errorf("unit 1 holding 0 after writing unit 2 = %d, want 1111", got)
	}
}

// wantException checks that err is a Modbus exception response with code.
func wantException(t *testing.T, what string, err error, code byte) {
	t.Helper()
	var me *modbus.ModbusError
	if !errors.As(err, &me) {
		t.Errorf("%s: got error %v, want Modbus exception %02x", what, err, code)
		return
	}
	if me.ExceptionCode != code {
		t.Errorf("%s: got exception %02x, want %02x", what, me.ExceptionCode, code)
	}
}

func TestPymodbusIntegrationUnmappedAddress(t *testing.T) {
	addr := StartPymodbus(t, testLayout)
	c1, _ := client(t, addr, 1)

	_, err := c1.ReadHoldingRegisters(1, 1)
	wantException(t, "unit 1 holding 1 (unmapped)", err, modbus.ExceptionCodeIllegalDataAddress)
	_, err = c1.ReadHoldingRegisters(101, 2)
	wantException(t, "unit 1 holding 101..102 (102 unmapped)", err, modbus.ExceptionCodeIllegalDataAddress)
	_, err = c1.ReadInputRegisters(0, 1)
	wantException(t, "unit 1 input 0 (unmapped)", err, modbus.ExceptionCodeIllegalDataAddress)
	_, err = c1.ReadCoils(0, 1)
	wantException(t, "unit 1 coil 0 (unmapped)", err, modbus.ExceptionCodeIllegalDataAddress)
	_, err = c1.WriteSingleRegister(1, 5)
	wantException(t, "unit 1 write holding 1 (unmapped)", err, modbus.ExceptionCodeIllegalDataAddress)

	// Unit 17 has no holding registers at all.
	c17, _ := client(t, addr, 17)
	_, err = c17.ReadHoldingRegisters(0, 1)
	wantException(t, "unit 17 holding 0 (no holding registers)", err, modbus.ExceptionCodeIllegalDataAddress)

	// The connection is still usable after exceptions.
	if got := u16(t, c1.ReadHoldingRegisters, 0); got != 1111 {
		t.Errorf("unit 1 holding 0 after exceptions = %d, want 1111", got)
	}
}

func TestPymodbusIntegrationUnknownUnitTimesOut(t *testing.T) {
	addr := StartPymodbus(t, testLayout)
	c9, _ := client(t, addr, 9)
	_, err := c9.ReadHoldingRegisters(0, 1)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("unit 9 (not served): got %v, want a timeout (pymodbus 3.0.0 drops the request)", err)
	}
	// The server is still serving the other units.
	c1, _ := client(t, addr, 1)
	if got := u16(t, c1.ReadHoldingRegisters, 0); got != 1111 {
		t.Errorf("unit 1 holding 0 = %d, want 1111", got)
	}
}

// TestPymodbusIntegrationUnitZeroAcceptsAll documents that serving unit id 0
// (or 255) makes pymodbus 3.0.0 accept every unit id and answer unknown ones
// with exception 0x0B instead of staying silent.
func TestPymodbusIntegrationUnitZeroAcceptsAll(t *testing.T) {
	addr := StartPymodbus(t, PymodbusLayout{Units: map[uint8]PymodbusUnit{
		0: {Holding: map[uint16]uint16{0: 10}},
		1: {Holding: map[uint16]uint16{0: 11}},
	}})
	c0, _ := client(t, addr, 0)
	if got := u16(t, c0.ReadHoldingRegisters, 0); got != 10 {
		t.Errorf("unit 0 holding 0 = %d, want 10", got)
	}
	c9, _ := client(t, addr, 9)
	_, err := c9.ReadHoldingRegisters(0, 1)
	wantException(t, "unit 9 (not served, unit 0 served)", err, modbus.ExceptionCodeGatewayTargetDeviceFailedToRespond)
}

// readDeviceID sends Read Device Identification (0x2B / MEI 0x0E) with
// readCode and returns the objects by id.
func readDeviceID(t *testing.T, h *modbus.TCPClientHandler, readCode byte) map[byte]string {
	t.Helper()
	req, err := h.Encode(&modbus.ProtocolDataUnit{FunctionCode: 0x2B, Data: []byte{0x0E, readCode, 0x00}})
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	resp, err := h.Send(req)
	if err != nil {
		t.Fatalf("read device identification: %v", err)
	}
	if err := h.Verify(req, resp); err != nil {
		t.Fatalf("verify: %v", err)
	}
	pdu, err := h.Decode(resp)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if pdu.FunctionCode != 0x2B {
		t.Fatalf("function code %02x (data % x), want 2b", pdu.FunctionCode, pdu.Data)
	}
	d := pdu.Data
	if len(d) < 6 || d[0] != 0x0E || d[1] != readCode {
		t.Fatalf("bad response header % x", d)
	}
	n := int(d[5])
	objs := map[byte]string{}
	rest := d[6:]
	for i := 0; i < n; i++ {
		if len(rest) < 2 || len(rest) < 2+int(rest[1]) {
			t.Fatalf("truncated object list % x", d)
		}
		objs[rest[0]] = string(rest[2 : 2+int(rest[1])])
		rest = rest[2+int(rest[1]):]
	}
	return objs
}

func TestPymodbusIntegrationDeviceIdentification(t *testing.T) {
	addr := StartPymodbus(t, testLayout)
	_, h := client(t, addr, 1)

	basic := readDeviceID(t, h, 0x01)
	want := map[byte]string{0x00: "Acme Power", 0x01: "PDU-9000", 0x02: "v2.7"}
	if fmt.Sprint(basic) != fmt.Sprint(want) {
		t.Errorf("basic device identification = %q, want %q", basic, want)
	}
	regular := readDeviceID(t, h, 0x02)
	want[0x04], want[0x05] = "Rack PDU", "9000-24"
	if fmt.Sprint(regular) != fmt.Sprint(want) {
		t.Errorf("regular device identification = %q, want %q", regular, want)
	}
}

func TestPymodbusIntegrationKillRestart(t *testing.T) {
	p, addr := StartPymodbusProcess(t, testLayout)
	c, h := client(t, addr, 1)
	if got := u16(t, c.ReadHoldingRegisters, 0); got != 1111 {
		t.Fatalf("holding 0 = %d, want 1111", got)
	}
	oldPID := p.PID()

	p.Kill()
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Kill")
	}
	h.Close()
	if _, err := c.ReadHoldingRegisters(0, 1); err == nil {
		t.Fatal("read succeeded with the server killed")
	}

	p.Restart()
	if p.PID() == oldPID {
		t.Errorf("PID %d unchanged after Restart", oldPID)
	}
	h.Close()
	if got := u16(t, c.ReadHoldingRegisters, 0); got != 1111 {
		t.Errorf("holding 0 after restart = %d, want 1111", got)
	}
	if !strings.Contains(p.Stderr(), "serving modbus tcp on "+addr) {
		t.Errorf("stderr lacks the serving line:\n%s", p.Stderr())
	}
}

// procState returns the state letter of pid from /proc ("" if gone).
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// pid (comm) S ...; comm may contain spaces, so cut at the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

func TestProcessKillReachesChildren(t *testing.T) {
	Require(t, "dash", "/bin/sh", "/bin/sleep")
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	p := StartProcess(t, "/bin/sh", []string{"-c", `sleep 300 & echo $! > child.pid.tmp && mv child.pid.tmp child.pid; wait`},
		WithDir(dir),
		WithReady(func() error {
			_, err := os.Stat(pidFile)
			return err
		}))
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("child pid %q: %v", b, err)
	}
	if pgid, err := syscall.Getpgid(child); err != nil || pgid != p.PID() {
		t.Fatalf("child %d: process group %d (%v), want %d", child, pgid, err, p.PID())
	}

	p.Kill()
	// The orphaned child is reaped by whoever adopts it; until then it is a
	// zombie. Poll a bounded number of times for it to be dead.
	err = pollReady(DefaultTries, nil, func() error {
		if s := procState(child); s != "" && s != "Z" {
			return fmt.Errorf("child %d still in state %s", child, s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestProcessStartFailsWhenProgramExits(t *testing.T) {
	Require(t, "dash", "/bin/sh")
	p := &Process{t: t, name: "/bin/sh", args: []string{"-c", "echo boom >&2; exit 3"}, logDir: t.TempDir()}
	p.cfg.dir = p.logDir
	p.cfg.readyTCP = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))}
	t.Cleanup(p.cleanup)
	err := p.start()
	if err == nil {
		t.Fatal("start succeeded for a program that exits at once")
	}
	for _, want := range []string{"exited before it was ready", "exit status 3", "boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestWaitTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	WaitTCP(t, l.Addr().String(), 3)

	port := FreePort(t)
	if err := pollReady(2, nil, func() error { return dialTCP(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))) }); err == nil {
		t.Errorf("closed port %d reported ready", port)
	}
}

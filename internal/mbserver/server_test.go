package mbserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goburrow/modbus"
)

const (
	okTimeout    = 5 * time.Second        // client timeout where a reply is expected
	shortTimeout = 200 * time.Millisecond // client timeout where none is
)

// testMemory returns a Memory with units 1, 2 and 3 configured.
func testMemory(t *testing.T) *Memory {
	t.Helper()
	m := NewMemory()
	for _, err := range []error{
		m.Map(1, Coils, 0, 2000),
		m.SetBits(1, Coils, 0, true, false, true, true, false, false, false, false, true),
		m.Map(1, DiscreteInputs, 0, 2000),
		m.SetBits(1, DiscreteInputs, 10, true, true),
		m.Map(1, HoldingRegisters, 0, 200),
		m.SetRegisters(1, HoldingRegisters, 0, 0x1234, 0xABCD, 7),
		m.Map(1, InputRegisters, 0, 200),
		m.SetRegisters(1, InputRegisters, 100, 2300, 2310),
		m.SetRegisters(2, HoldingRegisters, 0, 200, 201),
		m.SetRegisters(3, HoldingRegisters, 0, 300, 301),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	m.SetDeviceIdentification(1, map[byte]string{
		ObjVendorName: "Acme Power", ObjProductCode: "UPS-9000", ObjMajorMinorRevision: "2.1",
		ObjVendorURL: "http://acme.invalid", ObjProductName: "UPS", ObjModelName: "9000-40k",
		0x80: "serial 42",
	})
	return m
}

// startServer serves h on a loopback listener and returns the server and
// its address; configure, if not nil, runs before Serve starts.
func startServer(t *testing.T, h Handler, configure func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h, Options{})
	if configure != nil {
		configure(s)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want %v", err, ErrServerClosed)
		}
	})
	return s, ln.Addr().String()
}

func newClient(t *testing.T, addr string, unit byte, timeout time.Duration) (*modbus.TCPClientHandler, modbus.Client) {
	t.Helper()
	h := modbus.NewTCPClientHandler(addr)
	h.SlaveId = unit
	h.Timeout = timeout
	h.IdleTimeout = 0
	t.Cleanup(func() { h.Close() })
	return h, modbus.NewClient(h)
}

// rawRequest sends one PDU through goburrow's TCP handler.
func rawRequest(h *modbus.TCPClientHandler, fc byte, data []byte) (*modbus.ProtocolDataUnit, error) {
	req, err := h.Encode(&modbus.ProtocolDataUnit{FunctionCode: fc, Data: data})
	if err != nil {
		return nil, err
	}
	resp, err := h.Send(req)
	if err != nil {
		return nil, err
	}
	if err := h.Verify(req, resp); err != nil {
		return nil, err
	}
	return h.Decode(resp)
}

func u16s(vals ...uint16) []byte {
	b := make([]byte, 0, 2*len(vals))
	for _, v := range vals {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

func exceptionCode(err error) (byte, bool) {
	var me *modbus.ModbusError
	if errors.As(err, &me) {
		return me.ExceptionCode, true
	}
	return 0, false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestFunctionCodes(t *testing.T) {
	m := testMemory(t)
	_, addr := startServer(t, m, nil)
	_, c := newClient(t, addr, 1, okTimeout)
	tests := []struct {
		name  string
		call  func() ([]byte, error)
		want  []byte
		check func() error
	}{
		{"read coils", func() ([]byte, error) { return c.ReadCoils(0, 9) }, []byte{0x0D, 0x01}, nil},
		{"read discrete inputs", func() ([]byte, error) { return c.ReadDiscreteInputs(8, 4) }, []byte{0x0C}, nil},
		{"read holding registers", func() ([]byte, error) { return c.ReadHoldingRegisters(0, 3) }, u16s(0x1234, 0xABCD, 7), nil},
		{"read input registers", func() ([]byte, error) { return c.ReadInputRegisters(100, 2) }, u16s(2300, 2310), nil},
		{"write single coil", func() ([]byte, error) { return c.WriteSingleCoil(5, 0xFF00) }, u16s(0xFF00),
			func() error { return wantBits(m, 1, Coils, 4, false, true, false) }},
		{"write single coil off", func() ([]byte, error) { return c.WriteSingleCoil(0, 0x0000) }, u16s(0),
			func() error { return wantBits(m, 1, Coils, 0, false, false, true) }},
		{"write single register", func() ([]byte, error) { return c.WriteSingleRegister(7, 0xBEEF) }, u16s(0xBEEF),
			func() error { return wantRegs(m, 1, 6, 0, 0xBEEF, 0) }},
		{"write multiple coils", func() ([]byte, error) { return c.WriteMultipleCoils(20, 10, []byte{0xFF, 0x02}) }, u16s(10),
			func() error {
				return wantBits(m, 1, Coils, 19, false, true, true, true, true, true, true, true, true, false, true, false)
			}},
		{"write multiple registers", func() ([]byte, error) { return c.WriteMultipleRegisters(50, 2, u16s(1, 2)) }, u16s(2),
			func() error { return wantRegs(m, 1, 50, 1, 2) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got % x, want % x", got, tt.want)
			}
			if tt.check != nil {
				if err := tt.check(); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func wantBits(m *Memory, unit uint8, tab Table, addr uint16, want ...bool) error {
	got, err := m.Bits(unit, tab, addr, uint16(len(want)))
	if err != nil {
		return err
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("%v at %d: got %v, want %v", tab, addr, got, want)
	}
	return nil
}

func wantRegs(m *Memory, unit uint8, addr uint16, want ...uint16) error {
	got, err := m.Registers(unit, HoldingRegisters, addr, uint16(len(want)))
	if err != nil {
		return err
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Errorf("holding registers at %d: got %v, want %v", addr, got, want)
	}
	return nil
}

// errHandler answers every request with err, or with short data if err is nil.
type errHandler struct{ err error }

func (h errHandler) ReadCoils(uint8, uint16, uint16) ([]bool, error) { return nil, h.err }
func (h errHandler) ReadDiscreteInputs(uint8, uint16, uint16) ([]bool, error) {
	return []bool{true}, h.err
}
func (h errHandler) ReadHoldingRegisters(uint8, uint16, uint16) ([]uint16, error) { return nil, h.err }
func (h errHandler) ReadInputRegisters(uint8, uint16, uint16) ([]uint16, error)   { return nil, h.err }
func (h errHandler) WriteCoils(uint8, uint16, []bool) error                       { return h.err }
func (h errHandler) WriteRegisters(uint8, uint16, []uint16) error                 { return h.err }

func TestExceptions(t *testing.T) {
	_, addr := startServer(t, testMemory(t), nil)
	_, c := newClient(t, addr, 1, okTimeout)
	tests := []struct {
		name string
		call func(c modbus.Client) ([]byte, error)
		want byte
	}{
		{"read unmapped coil", func(c modbus.Client) ([]byte, error) { return c.ReadCoils(2000, 1) }, 2},
		{"read partly unmapped registers", func(c modbus.Client) ([]byte, error) { return c.ReadHoldingRegisters(199, 2) }, 2},
		{"write unmapped coil", func(c modbus.Client) ([]byte, error) { return c.WriteSingleCoil(3000, 0xFF00) }, 2},
		{"write unmapped register", func(c modbus.Client) ([]byte, error) { return c.WriteSingleRegister(200, 1) }, 2},
		{"write partly unmapped registers", func(c modbus.Client) ([]byte, error) {
			return c.WriteMultipleRegisters(199, 2, u16s(1, 2))
		}, 2},
		{"mask write register (fc 22)", func(c modbus.Client) ([]byte, error) { return c.MaskWriteRegister(0, 1, 2) }, 1},
		{"read/write registers (fc 23)", func(c modbus.Client) ([]byte, error) {
			return c.ReadWriteMultipleRegisters(0, 1, 0, 1, u16s(1))
		}, 1},
		{"read FIFO queue (fc 24)", func(c modbus.Client) ([]byte, error) { return c.ReadFIFOQueue(0) }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.call(c)
			if got, ok := exceptionCode(err); !ok || got != tt.want {
				t.Errorf("got error %v, want exception %d", err, tt.want)
			}
		})
	}

	handlerErrs := []struct {
		name string
		err  error
		want byte
	}{
		{"plain error", errors.New("sensor bus down"), 4},
		{"wrapped exception", fmt.Errorf("busy: %w", &Exception{Code: ServerDeviceBusy}), 6},
		{"gateway path", &Exception{Code: GatewayPathUnavailable}, 0x0A},
		{"gateway target", &Exception{Code: GatewayTargetFailedToRespond}, 0x0B},
		{"zero code", &Exception{}, 4},
	}
	for _, tt := range handlerErrs {
		t.Run("handler "+tt.name, func(t *testing.T) {
			_, addr := startServer(t, errHandler{tt.err}, nil)
			_, c := newClient(t, addr, 1, okTimeout)
			for _, call := range []func() ([]byte, error){
				func() ([]byte, error) { return c.ReadHoldingRegisters(0, 1) },
				func() ([]byte, error) { return c.WriteMultipleCoils(0, 3, []byte{5}) },
			} {
				_, err := call()
				if got, ok := exceptionCode(err); !ok || got != tt.want {
					t.Errorf("got error %v, want exception %d", err, tt.want)
				}
			}
		})
	}
	t.Run("handler returns too few values", func(t *testing.T) {
		_, addr := startServer(t, errHandler{}, nil)
		_, c := newClient(t, addr, 1, okTimeout)
		_, err := c.ReadDiscreteInputs(0, 2)
		if got, ok := exceptionCode(err); !ok || got != 4 {
			t.Errorf("got error %v, want exception 4", err)
		}
	})
}

// writeCoilsBody returns the fc 15 request body for qty zero coils.
func writeCoilsBody(addr, qty uint16) []byte {
	n := (int(qty) + 7) / 8
	return append(append(u16s(addr, qty), byte(n)), make([]byte, n)...)
}

func writeRegsBody(addr, qty uint16) []byte {
	return append(append(u16s(addr, qty), byte(2*qty)), make([]byte, 2*qty)...)
}

func TestLimitsAndMalformedPDUs(t *testing.T) {
	_, addr := startServer(t, testMemory(t), nil)
	h, _ := newClient(t, addr, 1, okTimeout)
	tests := []struct {
		name   string
		fc     byte
		data   []byte
		wantEx byte // 0: a normal reply
	}{
		{"read coils qty 0", 1, u16s(0, 0), 3},
		{"read coils qty 2000", 1, u16s(0, 2000), 0},
		{"read coils qty 2001", 1, u16s(0, 2001), 3},
		{"read discrete inputs qty 2000", 2, u16s(0, 2000), 0},
		{"read discrete inputs qty 2001", 2, u16s(0, 2001), 3},
		{"read holding qty 125", 3, u16s(0, 125), 0},
		{"read holding qty 126", 3, u16s(0, 126), 3},
		{"read input qty 0", 4, u16s(0, 0), 3},
		{"read input qty 126", 4, u16s(0, 126), 3},
		{"read holding past 0xFFFF", 3, u16s(0xFFFF, 2), 2},
		{"read holding short body", 3, []byte{0, 0, 0}, 3},
		{"read holding long body", 3, []byte{0, 0, 0, 1, 0}, 3},
		{"read coils empty body", 1, nil, 3},
		{"write coil value 0x1234", 5, u16s(0, 0x1234), 3},
		{"write coil short body", 5, []byte{0, 0, 0xFF}, 3},
		{"write register long body", 6, []byte{0, 0, 0, 1, 2}, 3},
		{"write coils qty 1968", 15, writeCoilsBody(0, 1968), 0},
		{"write coils qty 1969", 15, writeCoilsBody(0, 1969), 3},
		{"write coils qty 0", 15, append(u16s(0, 0), 0), 3},
		{"write coils byte count too small", 15, append(u16s(0, 10), 1, 0xFF), 3},
		{"write coils data missing", 15, append(u16s(0, 10), 2, 0xFF), 3},
		{"write registers qty 123", 16, writeRegsBody(0, 123), 0},
		{"write registers qty 124", 16, append(u16s(0, 124), 0), 3},
		{"write registers odd byte count", 16, append(u16s(0, 1), 3, 0, 0, 0), 3},
		{"write registers truncated header", 16, []byte{0, 0, 0}, 3},
		{"write registers past 0xFFFF", 16, writeRegsBody(0xFFFF, 2), 2},
		{"unknown function 0x07", 0x07, nil, 1},
		{"unknown function 0x41", 0x41, []byte{1, 2, 3}, 1},
		{"encapsulated MEI 0x0D", 0x2B, []byte{0x0D, 1, 0}, 1},
		{"encapsulated empty", 0x2B, nil, 1},
		{"device id read code 5", 0x2B, []byte{0x0E, 5, 0}, 3},
		{"device id read code 0", 0x2B, []byte{0x0E, 0, 0}, 3},
		{"device id short", 0x2B, []byte{0x0E, 1}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := rawRequest(h, tt.fc, tt.data)
			if err != nil {
				t.Fatalf("got error %v, want a reply", err)
			}
			if tt.wantEx == 0 {
				if resp.FunctionCode != tt.fc {
					t.Errorf("got function %#x data % x, want a normal reply to %#x", resp.FunctionCode, resp.Data, tt.fc)
				}
				return
			}
			if resp.FunctionCode != tt.fc|0x80 || len(resp.Data) != 1 || resp.Data[0] != tt.wantEx {
				t.Errorf("got function %#x data % x, want exception %d to %#x", resp.FunctionCode, resp.Data, tt.wantEx, tt.fc)
			}
		})
	}
}

type devID struct {
	code, conformity, more, next byte
	objs                         []string // "id=value"
}

func parseDevID(t *testing.T, resp *modbus.ProtocolDataUnit) devID {
	t.Helper()
	d := resp.Data
	if resp.FunctionCode != 0x2B || len(d) < 6 || d[0] != 0x0E {
		t.Fatalf("got function %#x data % x, want a device identification reply", resp.FunctionCode, d)
	}
	out := devID{code: d[1], conformity: d[2], more: d[3], next: d[4]}
	n, rest := int(d[5]), d[6:]
	for range n {
		if len(rest) < 2 || len(rest) < 2+int(rest[1]) {
			t.Fatalf("got truncated object list in % x", d)
		}
		out.objs = append(out.objs, fmt.Sprintf("%#02x=%s", rest[0], rest[2:2+rest[1]]))
		rest = rest[2+rest[1]:]
	}
	if len(rest) != 0 {
		t.Fatalf("got %d trailing bytes in % x", len(rest), d)
	}
	return out
}

func TestDeviceIdentification(t *testing.T) {
	m := testMemory(t)
	long := map[byte]string{
		0: strings.Repeat("v", 200), 1: strings.Repeat("p", 200), 2: "1.0", 0x90: strings.Repeat("x", 300),
	}
	m.SetDeviceIdentification(2, long)
	_, addr := startServer(t, m, nil)
	h, _ := newClient(t, addr, 1, okTimeout)
	basic := []string{"0x00=Acme Power", "0x01=UPS-9000", "0x02=2.1"}
	regular := append(basic[:3:3], "0x03=http://acme.invalid", "0x04=UPS", "0x05=9000-40k")
	tests := []struct {
		name           string
		unit, code, id byte
		want           devID
	}{
		{"basic", 1, 1, 0, devID{1, 0x83, 0, 0, basic}},
		{"basic from object 1", 1, 1, 1, devID{1, 0x83, 0, 0, basic[1:]}},
		{"basic from unknown object restarts", 1, 1, 0x42, devID{1, 0x83, 0, 0, basic}},
		{"basic from regular object restarts", 1, 1, 0x04, devID{1, 0x83, 0, 0, basic}},
		{"regular", 1, 2, 0, devID{2, 0x83, 0, 0, regular}},
		{"extended", 1, 3, 0, devID{3, 0x83, 0, 0, append(regular, "0x80=serial 42")}},
		{"individual", 1, 4, 5, devID{4, 0x83, 0, 0, []string{"0x05=9000-40k"}}},
		{"more follows", 2, 3, 0, devID{3, 0x83, 0xFF, 1, []string{"0x00=" + long[0]}}},
		{"continued", 2, 3, 1, devID{3, 0x83, 0xFF, 0x90, []string{"0x01=" + long[1], "0x02=1.0"}}},
		{"continued to the end", 2, 3, 0x90, devID{3, 0x83, 0, 0, []string{"0x90=" + long[0x90][:244]}}},
		{"oversized object truncated", 2, 4, 0x90, devID{4, 0x83, 0, 0, []string{"0x90=" + long[0x90][:244]}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.SlaveId = tt.unit
			resp, err := rawRequest(h, 0x2B, []byte{0x0E, tt.code, tt.id})
			if err != nil {
				t.Fatalf("got error %v, want a reply", err)
			}
			if got := parseDevID(t, resp); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	exTests := []struct {
		name           string
		unit, code, id byte
		want           byte
	}{
		{"individual unknown object", 1, 4, 0x42, 2},
		{"unit without identification", 3, 1, 0, 1},
	}
	for _, tt := range exTests {
		t.Run(tt.name, func(t *testing.T) {
			h.SlaveId = tt.unit
			resp, err := rawRequest(h, 0x2B, []byte{0x0E, tt.code, tt.id})
			if err != nil {
				t.Fatalf("got error %v, want a reply", err)
			}
			if resp.FunctionCode != 0xAB || len(resp.Data) != 1 || resp.Data[0] != tt.want {
				t.Errorf("got function %#x data % x, want exception %d", resp.FunctionCode, resp.Data, tt.want)
			}
		})
	}
	t.Run("handler without DeviceIdentifier", func(t *testing.T) {
		_, addr := startServer(t, errHandler{}, nil)
		h, _ := newClient(t, addr, 1, okTimeout)
		resp, err := rawRequest(h, 0x2B, []byte{0x0E, 1, 0})
		if err != nil || resp.FunctionCode != 0xAB || resp.Data[0] != 1 {
			t.Errorf("got %+v, %v, want exception 1", resp, err)
		}
	})
}

func TestSeveralUnitsOneConnection(t *testing.T) {
	m := testMemory(t)
	_, addr := startServer(t, m, nil)
	h, c := newClient(t, addr, 1, okTimeout)
	for round := range 2 {
		for _, unit := range []byte{1, 2, 3} {
			h.SlaveId = unit
			got, err := c.ReadHoldingRegisters(0, 1)
			want := map[byte][]byte{1: u16s(0x1234), 2: u16s(200), 3: u16s(300)}[unit]
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("round %d unit %d: got % x, %v, want % x", round, unit, got, err, want)
			}
		}
		// An absent unit gets no reply; the connection stays usable.
		h.SlaveId, h.Timeout = 9, shortTimeout
		if _, err := c.ReadHoldingRegisters(0, 1); !isTimeout(err) {
			t.Errorf("round %d absent unit: got error %v, want a timeout", round, err)
		}
		h.Timeout = okTimeout
	}
	m.SetAbsentResponse(GatewayTargetFailedToRespond)
	_, err := c.ReadHoldingRegisters(0, 1)
	if got, ok := exceptionCode(err); !ok || got != 0x0B {
		t.Errorf("absent unit with exception configured: got %v, want exception 11", err)
	}
	h.SlaveId = 2
	if got, err := c.ReadHoldingRegisters(1, 1); err != nil || !bytes.Equal(got, u16s(201)) {
		t.Errorf("unit 2 after absent unit: got % x, %v, want % x", got, err, u16s(201))
	}
}

// rawConn dials addr for hand-made frames.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(okTimeout)) // a guard, not an assertion
	return c
}

func mbapFrame(tid, pid uint16, unit byte, pdu []byte) []byte {
	return append(u16s(tid, pid, uint16(1+len(pdu)), uint16(unit)<<8)[:7], pdu...)
}

func TestMBAPFraming(t *testing.T) {
	_, addr := startServer(t, testMemory(t), nil)
	read := append([]byte{3}, u16s(1, 1)...)
	want := mbapFrame(0x0102, 0, 1, append([]byte{3, 2}, u16s(0xABCD)...))

	t.Run("pipelined requests answered in order", func(t *testing.T) {
		c := rawConn(t, addr)
		req := append(mbapFrame(0x0102, 0, 1, read), mbapFrame(0x0103, 0, 2, read)...)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 2*len(want))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		want2 := append(want[:len(want):len(want)], mbapFrame(0x0103, 0, 2, append([]byte{3, 2}, u16s(201)...))...)
		if !bytes.Equal(got, want2) {
			t.Errorf("got % x, want % x", got, want2)
		}
	})
	t.Run("non-Modbus protocol id is discarded", func(t *testing.T) {
		c := rawConn(t, addr)
		req := append(mbapFrame(0x0101, 7, 1, read), mbapFrame(0x0102, 0, 1, read)...)
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
			t.Errorf("got % x, %v, want % x", got, err, want)
		}
	})
	for _, length := range []uint16{0, 1, 255, 0xFFFF} {
		t.Run(fmt.Sprintf("length %d closes the connection", length), func(t *testing.T) {
			c := rawConn(t, addr)
			if _, err := c.Write(append(u16s(1, 0, length), 1, 3, 0, 0, 0, 1)); err != nil {
				t.Fatal(err)
			}
			if n, err := c.Read(make([]byte, 16)); err != io.EOF {
				t.Errorf("got %d bytes, error %v, want %v", n, err, io.EOF)
			}
		})
	}
}

func TestFaultSilent(t *testing.T) {
	s, addr := startServer(t, testMemory(t), nil)
	s.SetFault(1, Fault{Kind: FaultSilent})
	h, c := newClient(t, addr, 1, shortTimeout)
	if _, err := c.WriteSingleRegister(0, 99); !isTimeout(err) {
		t.Fatalf("got error %v, want a timeout", err)
	}
	h.SlaveId, h.Timeout = 2, okTimeout // same connection, healthy unit
	if got, err := c.ReadHoldingRegisters(0, 1); err != nil || !bytes.Equal(got, u16s(200)) {
		t.Errorf("unit 2: got % x, %v, want % x", got, err, u16s(200))
	}
	s.SetFault(1, Fault{})
	h.SlaveId = 1
	// The silent request was not executed and left nothing in the stream.
	if got, err := c.ReadHoldingRegisters(0, 1); err != nil || !bytes.Equal(got, u16s(0x1234)) {
		t.Errorf("unit 1 after clearing: got % x, %v, want % x", got, err, u16s(0x1234))
	}
}

// TestFaultLate reproduces goburrow/modbus issue #64: after a timeout the
// client keeps the connection, so the late reply is taken as the answer to
// the next request and every later transaction is off by one.
func TestFaultLate(t *testing.T) {
	wrote := make(chan uint8, 64)
	s, addr := startServer(t, testMemory(t), func(s *Server) { s.wrote = func(u uint8) { wrote <- u } })
	waitWrote := func() {
		t.Helper()
		select {
		case <-wrote:
		case <-time.After(10 * time.Second): // a guard against hanging, not a timing assertion
			t.Fatal("no reply was written")
		}
	}
	s.SetFault(1, Fault{Kind: FaultLate, Delay: time.Second})
	h, c := newClient(t, addr, 1, shortTimeout)
	if _, err := c.ReadHoldingRegisters(0, 1); !isTimeout(err) {
		t.Fatalf("request 1: got error %v, want a timeout", err)
	}
	waitWrote() // the late reply to request 1 now waits in the client's socket
	s.SetFault(1, Fault{})
	h.Timeout = okTimeout
	for i, want := range []string{
		"response transaction id '1' does not match request '2'",
		"response transaction id '2' does not match request '3'",
	} {
		_, err := c.ReadHoldingRegisters(0, 1)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("request %d: got error %v, want %q", i+2, err, want)
		}
		waitWrote()
	}
	_, fresh := newClient(t, addr, 1, okTimeout)
	if got, err := fresh.ReadHoldingRegisters(0, 1); err != nil || !bytes.Equal(got, u16s(0x1234)) {
		t.Errorf("new connection: got % x, %v, want % x", got, err, u16s(0x1234))
	}
}

func TestFaultException(t *testing.T) {
	s, addr := startServer(t, testMemory(t), nil)
	_, c := newClient(t, addr, 1, okTimeout)
	for _, tt := range []struct {
		set  ExceptionCode
		want byte
	}{{ServerDeviceBusy, 6}, {GatewayTargetFailedToRespond, 0x0B}, {0, 4}} {
		s.SetFault(1, Fault{Kind: FaultException, Exception: tt.set})
		for _, call := range []func() ([]byte, error){
			func() ([]byte, error) { return c.ReadHoldingRegisters(0, 1) },
			func() ([]byte, error) { return c.WriteSingleCoil(0, 0xFF00) },
		} {
			_, err := call()
			if got, ok := exceptionCode(err); !ok || got != tt.want {
				t.Errorf("fault exception %d: got error %v, want exception %d", tt.set, err, tt.want)
			}
		}
	}
}

func TestFaultGarbage(t *testing.T) {
	s, addr := startServer(t, testMemory(t), nil)
	tests := []struct {
		mode GarbageMode
		want string // substring of the client error; "" for a timeout
	}{
		{GarbageRandom, "modbus:"},
		{GarbageLength, "does not match count"},
		{GarbageByteCount, "does not match count"},
		{GarbageTxID, "transaction id"},
		{GarbageTruncated, ""},
		{GarbageFuncOnly, "response data is empty"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("mode ", tt.mode), func(t *testing.T) {
			s.SetFault(1, Fault{Kind: FaultGarbage, Garbage: tt.mode})
			timeout := okTimeout
			if tt.want == "" {
				timeout = shortTimeout
			}
			for range 3 {
				_, c := newClient(t, addr, 1, timeout)
				_, err := c.ReadHoldingRegisters(0, 2)
				if tt.want == "" && !isTimeout(err) || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
					t.Errorf("got error %v, want %q", err, tt.want)
				}
			}
		})
	}
	t.Run("cycle", func(t *testing.T) {
		s.SetFault(1, Fault{Kind: FaultGarbage})
		for i := range 2 * len(tests) {
			_, c := newClient(t, addr, 1, shortTimeout)
			if got, err := c.WriteSingleRegister(9, 1); err == nil {
				t.Errorf("request %d: got % x, want an error", i, got)
			}
		}
	})
	s.SetFault(1, Fault{})
	_, c := newClient(t, addr, 1, okTimeout)
	if got, err := c.ReadHoldingRegisters(0, 1); err != nil || !bytes.Equal(got, u16s(0x1234)) {
		t.Errorf("after clearing: got % x, %v, want % x", got, err, u16s(0x1234))
	}
}

func TestFaultDrop(t *testing.T) {
	s, addr := startServer(t, testMemory(t), nil)
	s.SetFault(2, Fault{Kind: FaultDrop})
	h, c := newClient(t, addr, 1, okTimeout)
	if _, err := c.ReadHoldingRegisters(0, 1); err != nil {
		t.Fatalf("unit 1: got error %v, want none", err)
	}
	h.SlaveId = 2 // same connection, dropping unit
	_, err := c.ReadHoldingRegisters(0, 1)
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("unit 2: got error %v, want EOF or connection reset", err)
	}
	_, fresh := newClient(t, addr, 1, okTimeout)
	if _, err := fresh.ReadHoldingRegisters(0, 1); err != nil {
		t.Errorf("new connection to unit 1: got error %v, want none", err)
	}
}

func TestFaultAccessors(t *testing.T) {
	s := NewServer(NewMemory(), Options{})
	f := Fault{Kind: FaultLate, Delay: time.Minute}
	s.SetFault(7, f)
	if got := s.Fault(7); got != f {
		t.Errorf("got %+v, want %+v", got, f)
	}
	s.ClearFaults()
	if got := s.Fault(7); got != (Fault{}) {
		t.Errorf("after ClearFaults: got %+v, want %+v", got, Fault{})
	}
}

func TestCloseEndsConnectionsAndPendingDelays(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(testMemory(t), Options{})
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	s.SetFault(1, Fault{Kind: FaultLate, Delay: time.Hour})
	c := rawConn(t, ln.Addr().String())
	if _, err := c.Write(mbapFrame(1, 0, 1, append([]byte{3}, u16s(0, 1)...))); err != nil {
		t.Fatal(err)
	}
	// Make sure the connection is being served before closing.
	c2 := rawConn(t, ln.Addr().String())
	if _, err := c2.Write(mbapFrame(1, 0, 2, append([]byte{3}, u16s(0, 1)...))); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c2, make([]byte, 11)); err != nil {
		t.Fatal(err)
	}
	s.Close() // must not wait for the hour-long delay
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: got %v, want %v", err, ErrServerClosed)
	}
	if n, err := c.Read(make([]byte, 16)); err == nil {
		t.Errorf("read after Close: got %d bytes, want an error", n)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: got %v, want %v", err, ErrServerClosed)
	}
	s.Close() // idempotent
}

func TestConcurrentClientsAndUpdates(t *testing.T) {
	m := testMemory(t)
	_, addr := startServer(t, m, nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for v := uint16(0); ; v++ {
			select {
			case <-stop:
				return
			default:
			}
			m.SetRegisters(1, InputRegisters, 0, v, v)
			runtime.Gosched()
		}
	})
	var clients sync.WaitGroup
	for i := range 6 {
		clients.Go(func() {
			_, c := newClient(t, addr, 1, okTimeout)
			for range 50 {
				got, err := c.ReadInputRegisters(0, 2)
				if err != nil {
					t.Errorf("client %d: got error %v, want none", i, err)
					return
				}
				if !bytes.Equal(got[:2], got[2:]) {
					t.Errorf("client %d: got torn read % x, want two equal registers", i, got)
				}
				if _, err := c.WriteSingleRegister(uint16(100+i), 1); err != nil {
					t.Errorf("client %d: got error %v, want none", i, err)
					return
				}
			}
		})
	}
	clients.Wait()
	close(stop)
	wg.Wait()
}

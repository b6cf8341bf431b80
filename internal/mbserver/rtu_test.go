package mbserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/goburrow/modbus"
)

func TestCRC16(t *testing.T) {
	// The example of the Modbus over Serial Line specification, section 6.2.2.
	if got, want := CRC16([]byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A}), uint16(0xCDC5); got != want {
		t.Errorf("got %#04x, want %#04x", got, want)
	}
	if got, want := EncodeRTU(1, []byte{0x03, 0x00, 0x00, 0x00, 0x0A}), []byte{1, 3, 0, 0, 0, 0x0A, 0xC5, 0xCD}; !bytes.Equal(got, want) {
		t.Errorf("got % x, want % x", got, want)
	}
	// Cross-check against goburrow's RTU packager.
	pk := modbus.NewRTUClientHandler("unused")
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		pdu := make([]byte, 1+r.IntN(250))
		for i := range pdu {
			pdu[i] = byte(r.Uint32())
		}
		pk.SlaveId = byte(r.Uint32())
		want, err := pk.Encode(&modbus.ProtocolDataUnit{FunctionCode: pdu[0], Data: pdu[1:]})
		if err != nil {
			t.Fatal(err)
		}
		if got := EncodeRTU(pk.SlaveId, pdu); !bytes.Equal(got, want) {
			t.Fatalf("got % x, want % x", got, want)
		}
	}
}

// pipeTransporter is a goburrow Transporter over one end of a net.Pipe.
type pipeTransporter struct {
	conn    net.Conn
	timeout time.Duration
}

func (p *pipeTransporter) Send(req []byte) ([]byte, error) {
	p.conn.SetDeadline(time.Now().Add(p.timeout))
	if _, err := p.conn.Write(req); err != nil {
		return nil, err
	}
	return readRTUReply(p.conn)
}

// readRTUReply reads one RTU reply frame, delimited by its function code.
func readRTUReply(r io.Reader) ([]byte, error) {
	b := make([]byte, 2, 260)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	more := 0
	switch fc := b[1]; {
	case fc&0x80 != 0:
		more = 3
	case fc >= 1 && fc <= 4:
		b = b[:3]
		if _, err := io.ReadFull(r, b[2:]); err != nil {
			return nil, err
		}
		more = int(b[2]) + 2
	default:
		more = 6
	}
	b = b[:len(b)+more]
	_, err := io.ReadFull(r, b[len(b)-more:])
	return b, err
}

type rtuFixture struct {
	s      *Server
	m      *Memory
	pk     *modbus.RTUClientHandler
	tr     *pipeTransporter
	client modbus.Client
	errc   chan error
	cancel context.CancelFunc
}

func startRTU(t *testing.T) *rtuFixture {
	t.Helper()
	m := testMemory(t)
	srv, cli := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	f := &rtuFixture{s: NewServer(m, Options{}), m: m, errc: make(chan error, 1), cancel: cancel}
	go func() { f.errc <- f.s.ServeRTU(ctx, srv) }()
	f.pk = modbus.NewRTUClientHandler("unused") // only its packager is used
	f.pk.SlaveId = 1
	f.tr = &pipeTransporter{conn: cli, timeout: okTimeout}
	f.client = modbus.NewClient2(f.pk, f.tr)
	t.Cleanup(func() {
		cancel()
		if err := <-f.errc; !errors.Is(err, context.Canceled) {
			t.Errorf("ServeRTU returned %v, want %v", err, context.Canceled)
		}
		cli.Close()
		srv.Close()
	})
	return f
}

// write sends raw bytes to the server.
func (f *rtuFixture) write(t *testing.T, b []byte) {
	t.Helper()
	f.tr.conn.SetDeadline(time.Now().Add(okTimeout))
	if _, err := f.tr.conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestRTUFunctions(t *testing.T) {
	f := startRTU(t)
	c := f.client
	if got, err := c.ReadHoldingRegisters(0, 3); err != nil || !bytes.Equal(got, u16s(0x1234, 0xABCD, 7)) {
		t.Errorf("read holding: got % x, %v, want % x", got, err, u16s(0x1234, 0xABCD, 7))
	}
	if got, err := c.ReadCoils(0, 9); err != nil || !bytes.Equal(got, []byte{0x0D, 0x01}) {
		t.Errorf("read coils: got % x, %v, want 0d 01", got, err)
	}
	if _, err := c.WriteMultipleRegisters(10, 2, u16s(5, 6)); err != nil {
		t.Errorf("write registers: got error %v, want none", err)
	}
	if err := wantRegs(f.m, 1, 10, 5, 6); err != nil {
		t.Error(err)
	}
	if _, err := c.WriteMultipleCoils(30, 3, []byte{0x05}); err != nil {
		t.Errorf("write coils: got error %v, want none", err)
	}
	if err := wantBits(f.m, 1, Coils, 30, true, false, true); err != nil {
		t.Error(err)
	}
	if _, err := c.ReadInputRegisters(500, 1); err == nil || !strings.Contains(err.Error(), "exception '2'") {
		t.Errorf("read unmapped: got error %v, want exception 2", err)
	}
	f.pk.SlaveId = 2
	if got, err := c.ReadHoldingRegisters(1, 1); err != nil || !bytes.Equal(got, u16s(201)) {
		t.Errorf("unit 2: got % x, %v, want % x", got, err, u16s(201))
	}
	f.pk.SlaveId, f.tr.timeout = 9, shortTimeout
	if _, err := c.ReadHoldingRegisters(0, 1); !isTimeout(err) {
		t.Errorf("absent unit: got error %v, want a timeout", err)
	}
	f.pk.SlaveId, f.tr.timeout = 1, okTimeout
	if got, err := c.ReadHoldingRegisters(1, 1); err != nil || !bytes.Equal(got, u16s(0xABCD)) {
		t.Errorf("unit 1 after absent unit: got % x, %v, want % x", got, err, u16s(0xABCD))
	}
}

func TestRTUBroadcast(t *testing.T) {
	f := startRTU(t)
	f.write(t, EncodeRTU(0, append([]byte{6}, u16s(1, 777)...)))  // write, executed
	f.write(t, EncodeRTU(0, append([]byte{3}, u16s(0, 1)...)))    // read, ignored
	f.write(t, EncodeRTU(0, append([]byte{6}, u16s(150, 1)...)))  // mapped in unit 1 only
	f.write(t, EncodeRTU(0, append([]byte{6}, u16s(5000, 1)...))) // mapped nowhere
	for _, unit := range []byte{1, 2, 3} {
		f.pk.SlaveId = unit
		// Requests are served in order, so this reply follows the broadcasts.
		got, err := f.client.ReadHoldingRegisters(1, 1)
		if err != nil || !bytes.Equal(got, u16s(777)) {
			t.Errorf("unit %d: got % x, %v, want % x", unit, got, err, u16s(777))
		}
	}
	if err := wantRegs(f.m, 1, 150, 1); err != nil {
		t.Error(err)
	}
}

func TestRTUResync(t *testing.T) {
	f := startRTU(t)
	read := EncodeRTU(1, append([]byte{3}, u16s(0, 1)...))
	want := EncodeRTU(1, append([]byte{3, 2}, u16s(0x1234)...))
	bad := bytes.Clone(read)
	bad[len(bad)-1] ^= 0xFF
	tests := []struct {
		name string
		in   []byte
	}{
		{"junk byte before frame", append([]byte{0xAA}, read...)},
		{"junk bytes before frame", append([]byte{0x10, 0x10, 0x01, 0x2B}, read...)},
		{"frame with bad CRC before frame", append(bad, read...)},
		{"frame for another unit before frame", append(EncodeRTU(7, append([]byte{3}, u16s(0, 1)...)), read...)},
		{"truncated frame before frame", append(read[:5:5], read...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.write(t, tt.in)
			got, err := readRTUReply(f.tr.conn)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("got % x, %v, want % x", got, err, want)
			}
		})
	}
	t.Run("bad CRC alone, then frame", func(t *testing.T) {
		f.write(t, bad)
		f.write(t, read)
		got, err := readRTUReply(f.tr.conn)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("got % x, %v, want % x", got, err, want)
		}
	})
	t.Run("unknown function code", func(t *testing.T) {
		f.write(t, EncodeRTU(1, []byte{0x41, 1, 2, 3}))
		got, err := readRTUReply(f.tr.conn)
		if want := EncodeRTU(1, []byte{0xC1, 1}); err != nil || !bytes.Equal(got, want) {
			t.Errorf("got % x, %v, want % x", got, err, want)
		}
	})
	// Nothing else is pending: a normal request gets its own reply.
	if got, err := f.client.ReadHoldingRegisters(2, 1); err != nil || !bytes.Equal(got, u16s(7)) {
		t.Errorf("final request: got % x, %v, want % x", got, err, u16s(7))
	}
}

func TestRTUFaults(t *testing.T) {
	f := startRTU(t)
	f.s.SetFault(1, Fault{Kind: FaultException, Exception: ServerDeviceBusy})
	if _, err := f.client.ReadHoldingRegisters(0, 1); err == nil || !strings.Contains(err.Error(), "exception '6'") {
		t.Errorf("exception: got error %v, want exception 6", err)
	}
	// A wrong byte count or a truncated frame leaves the client waiting for
	// bytes that never come.
	for _, tt := range []struct {
		mode GarbageMode
		want string // substring of the client error; "" for a timeout
	}{
		{GarbageLength, "crc"},
		{GarbageTxID, "slave id"},
		{GarbageByteCount, ""},
		{GarbageTruncated, ""},
		// GarbageRandom is left out: its frame can be longer than what the
		// client reads, and net.Pipe's unbuffered writes would then block.
	} {
		f.s.SetFault(1, Fault{Kind: FaultGarbage, Garbage: tt.mode})
		f.tr.timeout = okTimeout
		if tt.want == "" {
			f.tr.timeout = shortTimeout
		}
		_, err := f.client.ReadHoldingRegisters(0, 1)
		if tt.want == "" && err == nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("garbage mode %d: got error %v, want %q", tt.mode, err, tt.want)
		}
	}
	f.tr.timeout = shortTimeout
	for _, kind := range []FaultKind{FaultSilent, FaultDrop} {
		f.s.SetFault(1, Fault{Kind: kind})
		if _, err := f.client.ReadHoldingRegisters(0, 1); !isTimeout(err) {
			t.Errorf("fault %d: got error %v, want a timeout", kind, err)
		}
	}
	f.s.SetFault(1, Fault{})
	f.tr.timeout = okTimeout
	if _, err := f.client.ReadHoldingRegisters(0, 1); err != nil {
		t.Errorf("after clearing: got error %v, want none", err)
	}
}

// closerRW is an io.ReadWriteCloser without read deadlines.
type closerRW struct {
	*io.PipeReader
	io.Writer
}

func TestServeRTUStops(t *testing.T) {
	t.Run("server closed, stream with deadlines", func(t *testing.T) {
		srv, cli := net.Pipe()
		defer cli.Close()
		s := NewServer(NewMemory(), Options{})
		errc := make(chan error, 1)
		go func() { errc <- s.ServeRTU(context.Background(), srv) }()
		s.Close()
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("got %v, want %v", err, ErrServerClosed)
		}
	})
	t.Run("context cancelled, stream without deadlines", func(t *testing.T) {
		pr, _ := io.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- ServeRTU(ctx, closerRW{pr, io.Discard}, NewMemory()) }()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want %v", err, context.Canceled)
		}
	})
	t.Run("end of stream", func(t *testing.T) {
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(EncodeRTU(1, append([]byte{3}, u16s(0, 1)...))), new(bytes.Buffer)}
		if err := ServeRTU(context.Background(), rw, testMemory(t)); err != io.EOF {
			t.Errorf("got %v, want %v", err, io.EOF)
		}
		want := EncodeRTU(1, append([]byte{3, 2}, u16s(0x1234)...))
		if got := rw.Writer.(*bytes.Buffer).Bytes(); !bytes.Equal(got, want) {
			t.Errorf("got % x, want % x", got, want)
		}
	})
}

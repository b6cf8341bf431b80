//go:build linux

// RTU over pseudo-terminals (socat's, and the kernel's /dev/ptmx): Linux only.

package modbus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	mb "github.com/goburrow/modbus"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/testpeer"
)

// rtuTimeout is the per-request timeout of the RTU tests: ample for a pty
// and a local pymodbus, short enough that a silent unit costs little. On a
// loaded machine pymodbus may still miss it now and then; the devices then
// retry, and the tests check values, not that no request ever failed.
const rtuTimeout = time.Second

// checkStats checks what must hold on any RTU connection whatever the load:
// every failure was a timeout or framing error that reset the line, none
// was an exception.
func checkStats(t *testing.T, s mbdrv.ConnStats) {
	t.Helper()
	if s.Exceptions != 0 || s.Resets != s.Errors {
		t.Errorf("got %+v, want no exceptions and a reset after every error", s)
	}
}

// typesLayout returns raw registers for every point of testdata/types.yaml
// at the addresses the profile reads, and the values they must decode to
// (as TestPymodbusIntegration does over TCP).
func typesLayout() (testpeer.PymodbusUnit, map[string]any) {
	f32 := func(v float32) (uint16, uint16) { b := math.Float32bits(v); return uint16(b >> 16), uint16(b) }
	hi, lo := f32(-47.25)
	f64b := math.Float64bits(8765.4321)
	holding := map[uint16]uint16{
		0: 4242, 1: testpeer.S16(-395),
		2: 0x0003, 3: 0x0004, // 196612 ABCD
		4: 0x0004, 5: 0x0003, // 196612 CDAB
		6: hi, 7: lo,
		8: hi>>8 | hi<<8, 9: lo>>8 | lo<<8, // BADC
		10: lo>>8 | lo<<8, 11: hi>>8 | hi<<8, // DCBA
		12: 0xFFFE, 13: 0x7960, // -100000
		14: uint16(f64b >> 48), 15: uint16(f64b >> 32), 16: uint16(f64b >> 16), 17: uint16(f64b),
		18: 0, 19: 0x0002, 20: 0, 21: 0x0001, // 2^33 + 1
		22: 0b000001, 23: 1, 24: 0xFFFF, 25: testpeer.S16(-401),
		40: 0x5244, 41: 0x552D, 42: 0x3700, 43: 0, // "RDU-7"
	}
	for a := uint16(26); a < 40; a++ {
		holding[a] = 0 // mapped, so the planner's bridged gaps read fine
	}
	unit := testpeer.PymodbusUnit{
		Holding:  holding,
		Input:    map[uint16]uint16{100: 6001},
		Coils:    map[uint16]bool{3: false},
		Discrete: map[uint16]bool{7: true},
	}
	want := map[string]any{
		"t.u16": 4242.0, "t.s16": -39.5, "t.u32_abcd": 196612.0, "t.u32_cdab": 196612.0,
		"t.f32_abcd": float64(float32(-47.25)), "t.f32_badc": float64(float32(-47.25)), "t.f32_dcba": float64(float32(-47.25)),
		"t.s32": -100000.0, "t.f64": 8765.4321, "t.u64": 8589934593.0,
		"t.status.bit0": true, "t.status.bit5": false, "t.mode": "on", "t.name": "RDU-7",
		"t.in": 60.01, "t.coil": false, "t.di": true,
	}
	return unit, want
}

// checkValues checks that every point in want is good with that value.
func checkValues(t *testing.T, pts map[string]point.Point, want map[string]any) {
	t.Helper()
	for name, w := range want {
		p, ok := pts[name]
		if !ok {
			t.Errorf("%s: missing", name)
			continue
		}
		if p.Quality != point.Good {
			t.Errorf("%s: got quality %v (%s), want good", name, p.Quality, p.Reason)
			continue
		}
		got := p.Value()
		if f, ok := w.(float64); ok {
			if g, ok := got.(float64); !ok || math.Abs(g-f) > 1e-9*math.Max(1, math.Abs(f)) {
				t.Errorf("%s: got %v, want %v", name, got, w)
			}
			continue
		}
		if got != w {
			t.Errorf("%s: got %#v, want %#v", name, got, w)
		}
	}
}

// TestPymodbusRTUIntegration polls a real Modbus RTU server that is not ours
// (Debian's pymodbus with its RTU framer) over a pseudo-terminal pair made by
// socat, through goburrow's RTU transport as the gateway uses it, and checks
// every decoded value. (A pty ignores baud rate, parity and stop bits: the
// cases prove each line setting is accepted end to end, not enforced.)
func TestPymodbusRTUIntegration(t *testing.T) {
	cases := []struct {
		baud     int
		parity   string
		stopBits int
	}{
		{9600, "E", 1},
		{19200, "N", 2},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d-8%s%d", c.baud, c.parity, c.stopBits), func(t *testing.T) {
			prof := loadTypes(t)
			unit, want := typesLayout()
			client, server := testpeer.StartPTYPair(t)
			testpeer.StartPymodbusRTU(t, server, c.baud, c.parity, testpeer.PymodbusLayout{Units: map[uint8]testpeer.PymodbusUnit{5: unit}})

			conn := mbdrv.NewRTUConn(mbdrv.SerialConfig{Port: client, Baud: c.baud, DataBits: 8, Parity: c.parity, StopBits: c.stopBits, Timeout: rtuTimeout})
			defer conn.Close()
			if got, wantKey := conn.Key(), "rtu://"+client; got != wantKey {
				t.Errorf("Key() = %q, want %q", got, wantKey)
			}
			dev := mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "dut", Unit: 5, Profile: prof, Retries: 2}, conn)
			for i := range 2 { // the second poll reuses the open port
				pts := byName(dev.Poll(context.Background(), "default"))
				checkValues(t, pts, want)
				if p := pts["t.absent"]; p.Quality != point.Bad || p.Reason != "absent: device reports 65535 (no sensor)" {
					t.Errorf("poll %d: t.absent: got %v %q, want bad absent", i, p.Quality, p.Reason)
				}
				if p := pts["t.range"]; p.Quality != point.Bad || p.Reason != "out of range: -40.1 outside -40..150" {
					t.Errorf("poll %d: t.range: got %v %q, want bad out of range", i, p.Quality, p.Reason)
				}
			}
			if n := len(dev.Plan("default")); n != 5 {
				t.Errorf("got %d reads in the plan, want 5: %v", n, dev.Plan("default"))
			}
			s := conn.Stats()
			if s.Requests-s.Errors != 10 {
				t.Errorf("got %+v, want 10 successful requests (5 reads x 2 polls)", s)
			}
			checkStats(t, s)
		})
	}
}

// unitLayout is holding 0..9 = unit*1000+i, what tenRegs() reads.
func unitLayout(unit uint8) testpeer.PymodbusUnit {
	h := map[uint16]uint16{}
	for i := uint16(0); i < 10; i++ {
		h[i] = uint16(unit)*1000 + i
	}
	return testpeer.PymodbusUnit{Holding: h}
}

// checkUnit returns an error unless pts are tenRegs() of unit, all good.
func checkUnit(unit uint8, pts []point.Point) error {
	if len(pts) != 10 {
		return fmt.Errorf("unit %d: got %d points, want 10", unit, len(pts))
	}
	for j, p := range pts {
		if want := float64(int(unit)*1000 + j); p.Quality != point.Good || p.Num != want {
			return fmt.Errorf("unit %d %s: got %v %v %q, want good %v", unit, p.Name, p.Num, p.Quality, p.Reason, want)
		}
	}
	return nil
}

// TestRTUSharedBus: several unit ids on one serial line share one Conn.
// Polled concurrently, each device gets its own values; a unit id nobody
// answers to gives bad timeout points while the one that answers stays good
// on the same bus (and the line reopened after each timeout still works).
func TestRTUSharedBus(t *testing.T) {
	client, server := testpeer.StartPTYPair(t)
	testpeer.StartPymodbusRTU(t, server, 9600, "E", testpeer.PymodbusLayout{Units: map[uint8]testpeer.PymodbusUnit{
		1: unitLayout(1),
		2: unitLayout(2),
	}})
	conn := mbdrv.NewRTUConn(mbdrv.SerialConfig{Port: client, Baud: 9600, DataBits: 8, Parity: "E", StopBits: 1, Timeout: rtuTimeout})
	defer conn.Close()
	devs := map[uint8]*mbdrv.Device{}
	for _, u := range []uint8{1, 2, 9} { // 9 is not served: pymodbus stays silent
		retries := 2 // rides out a reply pymodbus was too slow to send on a loaded machine
		if u == 9 {
			retries = 0 // each try costs a full timeout
		}
		devs[u] = mbdrv.NewDevice(mbdrv.DeviceConfig{ID: fmt.Sprintf("u%d", u), Unit: u, Profile: tenRegs(),
			Retries: retries, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}, conn)
	}

	t.Run("two units", func(t *testing.T) {
		const polls = 10
		done := make(chan error, 2)
		for _, u := range []uint8{1, 2} {
			go func() {
				for range polls {
					if err := checkUnit(u, devs[u].Poll(context.Background(), "default")); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
		s := conn.Stats()
		if s.Requests-s.Errors != 2*polls {
			t.Errorf("got %+v, want %d successful requests", s, 2*polls)
		}
		checkStats(t, s)
	})

	t.Run("silent unit", func(t *testing.T) {
		before := conn.Stats()
		const silentPolls = 3
		silentDone := make(chan []string, 1)
		go func() {
			var bad []string
			for i := range silentPolls {
				for _, p := range devs[9].Poll(context.Background(), "default") {
					if p.Quality != point.Bad || !strings.HasPrefix(p.Reason, point.ReasonTimeout) {
						bad = append(bad, fmt.Sprintf("poll %d: %s: got %v %q, want bad %s", i, p.Name, p.Quality, p.Reason, point.ReasonTimeout))
					}
				}
			}
			silentDone <- bad
		}()
		// Poll the served unit alongside until the silent one is done, and
		// at least a few times after: every poll must be good.
		good, after := 0, 0
		var silentBad []string
		for finished := false; !finished || after < 3; {
			if !finished {
				select {
				case silentBad = <-silentDone:
					finished = true
				default:
				}
			}
			if err := checkUnit(1, devs[1].Poll(context.Background(), "default")); err != nil {
				t.Fatalf("served unit on the bus with a silent one, poll %d: %v", good, err)
			}
			good++
			if finished {
				after++
			}
		}
		for _, msg := range silentBad {
			t.Error(msg)
		}
		s := conn.Stats()
		if s.Errors == before.Errors {
			t.Errorf("got %+v, want errors from the silent unit", s)
		}
		checkStats(t, s)
		t.Logf("served unit polled %d times while unit 9 timed out; %+v", good, s)
	})
}

// openPTY returns the master of a new pseudo-terminal and the path of its
// slave, which a test opens as a serial port; the test plays the device on
// the master, whose writes land in the slave's input queue at once (no
// relay in between, unlike socat). Like socat, it holds the slave open in
// raw mode for the whole test, so a client that closes and reopens the
// port finds what was written meanwhile, and its raw settings.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	ioctl := func(f *os.File, req uintptr, arg unsafe.Pointer) error {
		rc, err := f.SyscallConn()
		if err != nil {
			return err
		}
		var errno syscall.Errno
		if err := rc.Control(func(fd uintptr) {
			_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg))
		}); err != nil {
			return err
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
	var unlock int32
	var n uint32
	if err := ioctl(master, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	if err := ioctl(master, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	slave, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	var tio syscall.Termios
	if err := ioctl(slave, syscall.TCGETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatalf("tcgetattr: %v", err)
	}
	// cfmakeraw
	tio.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP | syscall.INLCR | syscall.IGNCR | syscall.ICRNL | syscall.IXON
	tio.Oflag &^= syscall.OPOST
	tio.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
	tio.Cflag = tio.Cflag&^(syscall.CSIZE|syscall.PARENB) | syscall.CS8
	if err := ioctl(slave, syscall.TCSETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatalf("tcsetattr: %v", err)
	}
	return master, path
}

// TestRTULateReplyIsDiscarded is TestLateReplyDoesNotDesync on a serial
// line. A reply that comes after the timeout waits in the port's input queue
// (closing the port does not drop it on a pty); RTU has no transaction id,
// and a late reply to "read holding 0" looks exactly like the reply to the
// next "read holding 1" of the same unit. The request after the timeout
// must get its own answer, not the late one.
func TestRTULateReplyIsDiscarded(t *testing.T) {
	master, port := openPTY(t) // no peer program: runs in -short mode too
	conn := mbdrv.NewRTUConn(mbdrv.SerialConfig{Port: port, Baud: 19200, DataBits: 8, Parity: "E", StopBits: 1, Timeout: 300 * time.Millisecond})
	defer conn.Close()
	prof := tenRegs()
	dev0 := mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "r0", Unit: 1, Profile: prof, Only: []string{"r0"}}, conn)
	dev1 := mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "r1", Unit: 1, Profile: prof, Only: []string{"r1"}}, conn)

	// reply encodes the RTU reply of unit 1 to "read one holding register".
	enc := mb.NewRTUClientHandler("")
	enc.SlaveId = 1
	reply := func(v uint16) []byte {
		adu, err := enc.Encode(&mb.ProtocolDataUnit{FunctionCode: 3, Data: []byte{2, byte(v >> 8), byte(v)}})
		if err != nil {
			panic(err)
		}
		return adu
	}
	late0, reply1 := reply(100), reply(201)

	// The device: it answers the read of holding 0 only when told (after
	// the client gave up), then the read of holding 1 at once.
	sendLate, lateSent := make(chan struct{}), make(chan struct{})
	devErr := make(chan error, 1)
	go func() {
		devErr <- func() error {
			var req [8]byte // unit, function, address, count, crc
			if _, err := io.ReadFull(master, req[:]); err != nil {
				return err
			}
			if req[0] != 1 || req[1] != 3 || req[3] != 0 {
				return fmt.Errorf("first request % x, want a read of unit 1 holding 0", req)
			}
			<-sendLate
			if _, err := master.Write(late0); err != nil {
				return err
			}
			close(lateSent)
			if _, err := io.ReadFull(master, req[:]); err != nil {
				return err
			}
			if req[0] != 1 || req[1] != 3 || req[3] != 1 {
				return fmt.Errorf("second request % x, want a read of unit 1 holding 1", req)
			}
			_, err := master.Write(reply1)
			return err
		}()
	}()

	p0 := dev0.Poll(context.Background(), "default")
	if len(p0) != 1 || p0[0].Quality != point.Bad || p0[0].Reason != "timeout [holding 0]" {
		t.Fatalf("unanswered read: got %+v, want r0 bad with reason timeout [holding 0]", p0)
	}
	close(sendLate)
	select {
	case <-lateSent:
	case err := <-devErr:
		t.Fatalf("device: %v", err)
	}
	p1 := dev1.Poll(context.Background(), "default")
	if len(p1) != 1 || p1[0].Quality != point.Good || p1[0].Num != 201 {
		t.Errorf("read after the late reply: got %+v, want r1 good 201 (100 is the late reply to r0)", p1)
	}
	if err := <-devErr; err != nil && !errors.Is(err, os.ErrClosed) {
		t.Errorf("device: %v", err)
	}
}

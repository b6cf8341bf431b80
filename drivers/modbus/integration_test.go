package modbus_test

import (
	"context"
	"math"
	"net"
	"sync/atomic"
	"testing"
	"time"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/mbserver"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/testpeer"
	"github.com/facgw/facgw/pipeline"
)

func loadTypes(t *testing.T) *profiles.Profile {
	t.Helper()
	reg := profiles.NewRegistry()
	p, err := reg.AddFile("testdata/types.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func byName(pts []point.Point) map[string]point.Point {
	m := map[string]point.Point{}
	for _, p := range pts {
		m[p.Name] = p
	}
	return m
}

// TestPymodbusIntegration polls a real Modbus server that is not ours
// (Debian's pymodbus) holding raw registers this test chose, and checks
// every decoded value.
func TestPymodbusIntegration(t *testing.T) {
	prof := loadTypes(t)
	f32 := func(v float32) (uint16, uint16) { b := math.Float32bits(v); return uint16(b >> 16), uint16(b) }
	hi, lo := f32(123.45)
	f64b := math.Float64bits(-1234.5678)
	holding := map[uint16]uint16{
		0: 54321, 1: testpeer.S16(-125),
		2: 0x0001, 3: 0x0002, // 65538 ABCD
		4: 0x0002, 5: 0x0001, // 65538 CDAB
		6: hi, 7: lo,
		8: hi>>8 | hi<<8, 9: lo>>8 | lo<<8, // BADC
		10: lo>>8 | lo<<8, 11: hi>>8 | hi<<8, // DCBA
		12: 0xFFFF, 13: 0xFF38, // -200
		14: uint16(f64b >> 48), 15: uint16(f64b >> 32), 16: uint16(f64b >> 16), 17: uint16(f64b),
		18: 0, 19: 0x0001, 20: 0, 21: 0x0000, // 2^32
		22: 0b100001, 23: 2, 24: 0xFFFF, 25: 6000,
		40: 0x5550, 41: 0x532D, 42: 0x4100, 43: 0,
	}
	for a := uint16(26); a < 40; a++ {
		holding[a] = 0 // mapped, so the planner's bridged gaps read fine
	}
	layout := testpeer.PymodbusLayout{Units: map[uint8]testpeer.PymodbusUnit{
		3: {Holding: holding, Input: map[uint16]uint16{100: 4998}, Coils: map[uint16]bool{3: true}, Discrete: map[uint16]bool{7: true}},
	}}
	addr := testpeer.StartPymodbus(t, layout)
	conn := mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: addr, Timeout: 2 * time.Second})
	defer conn.Close()
	dev := mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "dut", Unit: 3, Profile: prof, Retries: 1}, conn)
	pts := byName(dev.Poll(context.Background(), "default"))

	want := map[string]any{
		"t.u16": 54321.0, "t.s16": -12.5, "t.u32_abcd": 65538.0, "t.u32_cdab": 65538.0,
		"t.f32_abcd": float64(float32(123.45)), "t.f32_badc": float64(float32(123.45)), "t.f32_dcba": float64(float32(123.45)),
		"t.s32": -200.0, "t.f64": -1234.5678, "t.u64": 4294967296.0,
		"t.status.bit0": true, "t.status.bit5": true, "t.mode": "standby", "t.name": "UPS-A",
		"t.in": 49.98, "t.coil": true, "t.di": true,
	}
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
	if p := pts["t.absent"]; p.Quality != point.Bad || p.Reason != "absent: device reports 65535 (no sensor)" {
		t.Errorf("t.absent: got %v %q, want bad absent", p.Quality, p.Reason)
	}
	if p := pts["t.range"]; p.Quality != point.Bad || p.Reason != "out of range: 600 outside -40..150" {
		t.Errorf("t.range: got %v %q, want bad out of range", p.Quality, p.Reason)
	}
	// The planner coalesced 19 points into one read per table and block.
	if n := len(dev.Plan("default")); n != 5 {
		t.Errorf("got %d reads in the plan, want 5: %v", n, dev.Plan("default"))
	}
}

// TestPymodbusUnmappedIntegration: pymodbus answers exception 02 for a
// block touching an unmapped register; the driver then reads the block's
// points one by one, so only the unmapped point is bad.
func TestPymodbusUnmappedIntegration(t *testing.T) {
	prof := loadTypes(t)
	holding := map[uint16]uint16{0: 7, 1: 8}
	addr := testpeer.StartPymodbus(t, testpeer.PymodbusLayout{Units: map[uint8]testpeer.PymodbusUnit{1: {Holding: holding}}})
	conn := mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: addr, Timeout: 2 * time.Second})
	defer conn.Close()
	dev := mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "dut", Unit: 1, Profile: prof, Only: []string{"t.u16", "t.s16", "t.u32_abcd"}}, conn)
	for i := 0; i < 2; i++ {
		pts := byName(dev.Poll(context.Background(), "default"))
		if p := pts["t.u16"]; p.Quality != point.Good || p.Num != 7 {
			t.Errorf("poll %d: t.u16: got %v %v %q, want good 7", i, p.Num, p.Quality, p.Reason)
		}
		if p := pts["t.u32_abcd"]; p.Quality != point.Bad || p.Reason != "exception: illegal data address (02) [holding 2]" {
			t.Errorf("poll %d: t.u32_abcd: got %v %q, want bad with exception 02", i, p.Quality, p.Reason)
		}
	}
	if got := len(dev.Plan("default")); got != 3 {
		t.Errorf("after exception 02 the plan has %d reads, want 3 single reads", got)
	}
}

// faultyDevice serves unit 1 with holding 0..9 = 100..109 on our own
// server, whose faults can be switched per test.
func faultyDevice(t *testing.T) (*mbserver.Server, string) {
	t.Helper()
	mem := mbserver.NewMemory()
	if err := mem.Map(1, mbserver.HoldingRegisters, 0, 10); err != nil {
		t.Fatal(err)
	}
	for i := uint16(0); i < 10; i++ {
		mem.SetRegisters(1, mbserver.HoldingRegisters, i, 100+i)
	}
	srv := mbserver.NewServer(mem, mbserver.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String()
}

func tenRegs() *profiles.Profile {
	p := &profiles.Profile{Model: "ten", Class: "sensor", Protocol: "modbus"}
	for i := 0; i < 10; i++ {
		p.Points = append(p.Points, profiles.PointDef{Name: "r" + string(rune('0'+i)), Table: "holding", Address: uint16(i), Type: "u16"})
	}
	return p
}

// TestLateReplyDoesNotDesync reproduces goburrow/modbus issue #64: a reply
// that arrives after the timeout must not be taken as the answer to the
// next request. After the fault clears, the very next poll is correct.
func TestLateReplyDoesNotDesync(t *testing.T) {
	srv, addr := faultyDevice(t)
	conn := mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: addr, Timeout: 150 * time.Millisecond})
	defer conn.Close()
	dev := mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "late", Unit: 1, Profile: tenRegs(), Backoff: time.Millisecond, MaxBackoff: time.Millisecond}, conn)
	srv.SetFault(1, mbserver.Fault{Kind: mbserver.FaultLate, Delay: 400 * time.Millisecond})
	for _, p := range dev.Poll(context.Background(), "default") {
		if p.Quality != point.Bad || p.Reason != "timeout [holding "+p.Name[1:]+"]" {
			t.Fatalf("late reply: %s got %v %q, want bad timeout", p.Name, p.Quality, p.Reason)
		}
	}
	srv.SetFault(1, mbserver.Fault{})
	for i := 0; i < 3; i++ {
		for j, p := range dev.Poll(context.Background(), "default") {
			if p.Quality != point.Good || p.Num != float64(100+j) {
				t.Fatalf("poll %d after the late reply: %s got %v %v %q, want good %d", i, p.Name, p.Num, p.Quality, p.Reason, 100+j)
			}
		}
	}
}

// TestFaultsBecomeBadPoints: each kind of broken device gives bad points
// with a reason, never a crash, and the device recovers when fixed.
func TestFaultsBecomeBadPoints(t *testing.T) {
	cases := []struct {
		name   string
		fault  mbserver.Fault
		reason string
	}{
		{"silent", mbserver.Fault{Kind: mbserver.FaultSilent}, "timeout"},
		{"exception busy", mbserver.Fault{Kind: mbserver.FaultException, Exception: 6}, "exception: server device busy (06)"},
		{"exception failure", mbserver.Fault{Kind: mbserver.FaultException, Exception: 4}, "exception: server device failure (04)"},
		{"drop", mbserver.Fault{Kind: mbserver.FaultDrop}, "connection: closed by device"},
		{"garbage random", mbserver.Fault{Kind: mbserver.FaultGarbage, Garbage: mbserver.GarbageRandom}, "protocol: "},
		{"garbage length", mbserver.Fault{Kind: mbserver.FaultGarbage, Garbage: mbserver.GarbageLength}, ""},
		{"garbage byte count", mbserver.Fault{Kind: mbserver.FaultGarbage, Garbage: mbserver.GarbageByteCount}, "protocol"},
		{"garbage tx id", mbserver.Fault{Kind: mbserver.FaultGarbage, Garbage: mbserver.GarbageTxID}, "protocol: response transaction id"},
		{"garbage truncated", mbserver.Fault{Kind: mbserver.FaultGarbage, Garbage: mbserver.GarbageTruncated}, "timeout"},
		{"garbage function only", mbserver.Fault{Kind: mbserver.FaultGarbage, Garbage: mbserver.GarbageFuncOnly}, "protocol"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, addr := faultyDevice(t)
			conn := mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: addr, Timeout: 150 * time.Millisecond})
			defer conn.Close()
			dev := mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "f", Unit: 1, Profile: tenRegs(), Backoff: time.Millisecond, MaxBackoff: time.Millisecond}, conn)
			srv.SetFault(1, c.fault)
			sawBad := false
			for _, p := range dev.Poll(context.Background(), "default") {
				if p.Quality == point.Good && p.Num != float64(100+int(p.Name[1]-'0')) {
					t.Fatalf("%s: good point with wrong value %v", p.Name, p.Num)
				}
				if p.Quality == point.Bad {
					sawBad = true
					if len(p.Reason) < len(c.reason) || p.Reason[:len(c.reason)] != c.reason {
						t.Errorf("%s: got reason %q, want prefix %q", p.Name, p.Reason, c.reason)
					}
				}
			}
			if !sawBad && c.reason != "" {
				t.Errorf("no bad point under fault %s", c.name)
			}
			srv.SetFault(1, mbserver.Fault{})
			time.Sleep(5 * time.Millisecond) // past the 1 ms backoff
			for j, p := range dev.Poll(context.Background(), "default") {
				if p.Quality != point.Good || p.Num != float64(100+j) {
					t.Fatalf("after clearing %s: %s got %v %v %q, want good %d", c.name, p.Name, p.Num, p.Quality, p.Reason, 100+j)
				}
			}
		})
	}
}

// countingSource wraps a driver and counts completed polls.
type countingSource struct {
	*mbdrv.Device
	polls atomic.Int64
}

func (c *countingSource) Poll(ctx context.Context, g string) []point.Point {
	defer c.polls.Add(1)
	return c.Device.Poll(ctx, g)
}

// TestHungDeviceDoesNotSlowOthers runs the poller over a healthy device
// and one that never answers. Progress is measured in cycles, not time:
// while the hung device completes a few (each a full timeout), the healthy
// one, polled every 10 ms, must complete many.
func TestHungDeviceDoesNotSlowOthers(t *testing.T) {
	hungSrv, hungAddr := faultyDevice(t)
	hungSrv.SetFault(1, mbserver.Fault{Kind: mbserver.FaultSilent})
	_, okAddr := faultyDevice(t)
	hung := &countingSource{Device: mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "hung", Unit: 1, Profile: tenRegs(), Retries: 1, Backoff: time.Millisecond, MaxBackoff: time.Millisecond},
		mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: hungAddr, Timeout: 200 * time.Millisecond}))}
	healthy := &countingSource{Device: mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "ok", Unit: 1, Profile: tenRegs()},
		mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: okAddr, Timeout: 200 * time.Millisecond}))}
	hub := pipeline.NewHub(pipeline.NewState(3))
	poller := pipeline.NewPoller(hub.Publish)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		poller.Run(ctx, []pipeline.Schedule{
			{Source: hung, Group: "default", Interval: 10 * time.Millisecond, Deadline: time.Second},
			{Source: healthy, Group: "default", Interval: 10 * time.Millisecond},
		})
		close(done)
	}()
	for hung.polls.Load() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	// Three hung polls take at least 3 x 2 x 200 ms; at 10 ms the healthy
	// device has room for over 100 cycles. Ask for a tenth of that.
	if got := healthy.polls.Load(); got < 12 {
		t.Errorf("healthy device completed %d polls while the hung one completed %d, want at least 12", got, hung.polls.Load())
	}
	for _, p := range hub.State.Points("ok") {
		if p.Quality != point.Good {
			t.Errorf("healthy %s: %v %q", p.Name, p.Quality, p.Reason)
		}
	}
	for _, p := range hub.State.Points("hung") {
		if p.Quality == point.Good {
			t.Errorf("hung %s: good, want bad", p.Name)
		}
	}
}

// TestSharedGatewaySerialises: several unit ids behind one TCP-to-RTU
// gateway share one connection; polling them concurrently gives every
// device its own values.
func TestSharedGatewaySerialises(t *testing.T) {
	mem := mbserver.NewMemory()
	for u := uint8(1); u <= 4; u++ {
		mem.Map(u, mbserver.HoldingRegisters, 0, 10)
		for i := uint16(0); i < 10; i++ {
			mem.SetRegisters(u, mbserver.HoldingRegisters, i, uint16(u)*1000+i)
		}
	}
	srv := mbserver.NewServer(mem, mbserver.Options{})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	conn := mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: ln.Addr().String(), Timeout: time.Second})
	defer conn.Close()
	done := make(chan error, 4)
	for u := byte(1); u <= 4; u++ {
		dev := mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "u", Unit: u, Profile: tenRegs()}, conn)
		go func() {
			for range 25 {
				for j, p := range dev.Poll(context.Background(), "default") {
					if want := float64(int(u)*1000 + j); p.Quality != point.Good || p.Num != want {
						done <- &mismatch{u, p.Name, p.Num, want}
						return
					}
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if s := conn.Stats(); s.Resets != 0 || s.Errors != 0 {
		t.Errorf("got %+v, want no errors or resets", s)
	}
}

type mismatch struct {
	unit      byte
	name      string
	got, want float64
}

func (m *mismatch) Error() string {
	return "unit " + string(rune('0'+m.unit)) + " " + m.name + ": got another device's value"
}

package facsim

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goburrow/modbus"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	profiles "github.com/facgw/facgw/firmware-profiles"
)

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isDrop(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || (err != nil && strings.Contains(err.Error(), "connection reset"))
}

// TestFaults switches a device to each fault and checks what a Modbus
// client sees, then clears it.
func TestFaults(t *testing.T) {
	tests := []struct {
		kind, param string
		timeout     time.Duration
		check       func(error) string // "" if err is what the fault should give
	}{
		{FaultSilent, "", 200 * time.Millisecond, func(err error) string {
			if !isTimeout(err) {
				return "want a timeout"
			}
			return ""
		}},
		{FaultLate, "2s", 200 * time.Millisecond, func(err error) string {
			if !isTimeout(err) {
				return "want a timeout"
			}
			return ""
		}},
		{FaultLate, "10ms", 5 * time.Second, func(err error) string {
			if err != nil {
				return "want the late reply within the client's timeout"
			}
			return ""
		}},
		{FaultException, "", time.Second, wantException(4)},
		{FaultException, "0x0B", time.Second, wantException(0x0B)},
		{FaultException, "6", time.Second, wantException(6)},
		{FaultDrop, "", time.Second, func(err error) string {
			if !isDrop(err) {
				return "want EOF or connection reset"
			}
			return ""
		}},
	}
	for mode := range garbageModes {
		tests = append(tests, struct {
			kind, param string
			timeout     time.Duration
			check       func(error) string
		}{FaultGarbage, mode, 300 * time.Millisecond, func(err error) string {
			if err == nil {
				return "want a client error"
			}
			return ""
		}})
	}
	s := startTest(t, testFacility, Options{})
	for _, tc := range tests {
		t.Run(tc.kind+":"+tc.param, func(t *testing.T) {
			if err := s.SetFault("crac-1", tc.kind, tc.param); err != nil {
				t.Fatal(err)
			}
			c := dialTimeout(t, s, "crac-1", tc.timeout)
			_, err := c.tryRead("crac.supply_temp")
			if msg := tc.check(err); msg != "" {
				t.Errorf("read with fault %s:%s: err %v (%T): %s", tc.kind, tc.param, err, err, msg)
			}
			if err := s.SetFault("crac-1", FaultNone, ""); err != nil {
				t.Fatal(err)
			}
			c2 := dial(t, s, "crac-1")
			if _, err := c2.tryRead("crac.supply_temp"); err != nil {
				t.Errorf("after clearing the fault: %v", err)
			}
		})
	}
}

func wantException(code byte) func(error) string {
	return func(err error) string {
		var me *modbus.ModbusError
		if !errors.As(err, &me) || me.ExceptionCode != code {
			return "want Modbus exception " + mbdrv.ExceptionName(code)
		}
		return ""
	}
}

// TestFaultIsPerUnit checks that a fault on one unit of a shared listener
// leaves the other unit answering, and that the status shows it.
func TestFaultIsPerUnit(t *testing.T) {
	s := startTest(t, testFacility, Options{})
	if err := s.SetFault("bms-1", FaultSilent, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := dialTimeout(t, s, "bms-1", 200*time.Millisecond).tryRead("bms.soc"); !isTimeout(err) {
		t.Errorf("silent bms-1: err %v, want timeout", err)
	}
	if _, err := dial(t, s, "bms-2").tryRead("bms.soc"); err != nil {
		t.Errorf("bms-2 behind the same gateway: %v", err)
	}
	for _, d := range s.Devices() {
		want := FaultNone
		if d.ID == "bms-1" {
			want = FaultSilent
		}
		if d.Fault != want {
			t.Errorf("%s fault %q, want %q", d.ID, d.Fault, want)
		}
	}
}

// TestSharedAddress checks that devices behind one listener answer on
// their own unit ids, and that other unit ids get no reply.
func TestSharedAddress(t *testing.T) {
	s := startTest(t, testFacility, Options{})
	addrs := s.Addrs()
	if addrs["bms-1"] != addrs["bms-2"] || addrs["panel"] != addrs["vesda"] {
		t.Fatalf("gateway devices on different addresses: %v", addrs)
	}
	if addrs["bms-1"] == addrs["panel"] || addrs["ups-a"] == addrs["ups-b"] || addrs["ups-a"] == addrs["crac-1"] {
		t.Fatalf("separate devices share an address: %v", addrs)
	}
	for id, want := range map[string]string{"bms-1": "1.4.2", "bms-2": "2.1.0", "panel": "3.2.0", "vesda": "1.8.3"} {
		if got := dial(t, s, id).str("ident.firmware"); got != want {
			t.Errorf("%s ident.firmware = %q, want %q", id, got, want)
		}
	}
	if got := dial(t, s, "panel").str("ident.model"); got != "Generic Fire Panel" {
		t.Errorf("panel model %q", got)
	}
	if got := dial(t, s, "vesda").str("ident.model"); got != "Generic Aspirating Detector" {
		t.Errorf("vesda model %q", got)
	}
	// Only bms-2's firmware has the H2 register.
	if _, err := dial(t, s, "bms-1").c.ReadInputRegisters(20, 1); err == nil {
		t.Error("bms-1 (firmware 1.x) answers the H2 register of firmware 2.x")
	}
	h := modbus.NewTCPClientHandler(addrs["bms-1"])
	h.SlaveId, h.Timeout = 9, 200*time.Millisecond
	defer h.Close()
	if _, err := modbus.NewClient(h).ReadInputRegisters(0, 1); !isTimeout(err) {
		t.Errorf("unit 9 behind the gateway: err %v, want no reply", err)
	}
}

// TestUnreadableRanges checks that gaps between a profile's points read
// as zeros, as inside a device's register block, while an unreadable
// range answers exception 02.
func TestUnreadableRanges(t *testing.T) {
	s := startTest(t, testFacility, Options{})
	regs, err := dial(t, s, "ups-a").c.ReadHoldingRegisters(3, 15) // between points 2 and 18
	if err != nil || len(regs) != 30 {
		t.Errorf("gap inside a block: %v", err)
	}
	c := dial(t, s, "bms-2")
	if _, err := c.c.ReadInputRegisters(0, 17); err != nil {
		t.Errorf("measurement block: %v", err)
	}
	_, err = c.c.ReadInputRegisters(16, 5) // crosses the unreadable 17-19
	if msg := wantException(2)(err); msg != "" {
		t.Errorf("across an unreadable range: %v: %s", err, msg)
	}
}

// TestIdentify checks that the gateway's profile: auto identification
// picks the served profile and firmware of every device that has an
// identify section, including Read Device Identification.
func TestIdentify(t *testing.T) {
	s := startTest(t, testFacility, Options{})
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, d := range s.Devices() {
		p, _ := reg.Get(d.Profile)
		if p.Identify == nil {
			continue
		}
		t.Run(d.ID, func(t *testing.T) {
			conn := mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: d.Address, Timeout: time.Second})
			defer conn.Close()
			if p.Modbus.DeviceID {
				objs, err := mbdrv.ReadDeviceID(ctx, conn, d.Unit)
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]string{"vendor": p.Vendor, "product_code": p.Product, "revision": d.Firmware}
				for k, v := range want {
					if objs[k] != v {
						t.Errorf("device id %s = %q, want %q", k, objs[k], v)
					}
				}
			}
			id, err := mbdrv.Identify(ctx, conn, d.Unit, reg)
			if err != nil {
				t.Fatalf("identify: %v", err)
			}
			if id.Profile.Model != d.Profile {
				t.Errorf("identified as %s, want %s", id.Profile.Model, d.Profile)
			}
			if d.Firmware != "" && id.Firmware != d.Firmware {
				t.Errorf("firmware %q, want %q", id.Firmware, d.Firmware)
			}
		})
	}
}

// TestIdentifyMismatchFailsStart checks that a profile whose identify
// expressions cannot match what the simulator serves is refused at start.
func TestIdentifyMismatchFailsStart(t *testing.T) {
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.AddFile("testdata/mismatch-profile.yaml"); err != nil {
		t.Fatal(err)
	}
	f, err := LoadFacility("testdata/mismatch-facility.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(context.Background(), f, Options{Registry: reg, Manual: true})
	if err == nil {
		s.Close()
		t.Fatal("Start succeeded")
	}
	for _, want := range []string{"facsim:", `"widget"`, "identify.device_id.vendor", "^Nobody$", "Acme"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

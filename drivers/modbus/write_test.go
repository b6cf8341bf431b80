package modbus_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	snmpdrv "github.com/facgw/facgw/drivers/snmp"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/facsim"
	"github.com/facgw/facgw/internal/point"
)

// TestWriteReadBackAgainstFacsim switches outlets of facsim's Modbus
// outlet bank (coils) and its rPDU2 (SNMP SET with the write community)
// off and reads each back through the feedback point, as the load shed
// does; a point not marked writable is refused before anything is sent.
func TestWriteReadBackAgainstFacsim(t *testing.T) {
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	f, err := facsim.DefaultFacility()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := facsim.Start(ctx, f, facsim.Options{Registry: reg, FreePorts: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	bankProf, _ := reg.Get("generic-modbus-outlet-bank")
	conn := mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: sim.Addr("outlets-lab"), Timeout: time.Second})
	defer conn.Close()
	bank := mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "outlets-lab", Unit: 1, Profile: bankProf}, conn)

	pduProf, _ := reg.Get("apc-rpdu2-snmp")
	host, port, err := net.SplitHostPort(sim.Addr("pdu-a1"))
	if err != nil {
		t.Fatal(err)
	}
	pn, _ := strconv.Atoi(port)
	// The write community: the read community "public" cannot SET.
	cfg := snmpdrv.DeviceConfig{ID: "pdu-a1", Target: host, Port: uint16(pn), Version: "2c", Community: "private", Profile: pduProf}
	pdu := snmpdrv.NewDevice(cfg)
	defer pdu.Close()

	type actuator interface {
		WritePoint(ctx context.Context, name, index string, value float64) error
		ReadPoint(ctx context.Context, name, index string) point.Point
	}
	tests := []struct {
		name          string
		dev           actuator
		write, verify string
		index         string
		before, value float64
		want          float64
	}{
		{"modbus coil 3 off", bank, "pdu.outlet.command.3", "pdu.outlet.state.3", "", 1, 0, 0},
		{"modbus coil 3 on again", bank, "pdu.outlet.command.3", "pdu.outlet.state.3", "", 0, 1, 1},
		{"snmp outlet 7 immediateOff", pdu, "pdu.outlet.command", "pdu.outlet.state", "7", 2, 2, 1}, // rPDU2: on 2, off 1
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p := tt.dev.ReadPoint(ctx, tt.verify, tt.index); p.Quality != point.Good || p.Num != tt.before {
				t.Fatalf("before: got %v (%s %s), want %g", p.Num, p.Quality, p.Reason, tt.before)
			}
			if err := tt.dev.WritePoint(ctx, tt.write, tt.index, tt.value); err != nil {
				t.Fatal(err)
			}
			if p := tt.dev.ReadPoint(ctx, tt.verify, tt.index); p.Quality != point.Good || p.Num != tt.want {
				t.Errorf("read-back: got %v (%s %s), want %g", p.Num, p.Quality, p.Reason, tt.want)
			}
		})
	}
	refused := []struct {
		name string
		err  error
	}{
		{"modbus feedback contact", bank.WritePoint(ctx, "pdu.outlet.state.1", "", 0)},
		{"snmp outlet state", pdu.WritePoint(ctx, "pdu.outlet.state", "1", 1)},
		{"snmp column without row", pdu.WritePoint(ctx, "pdu.outlet.command", "", 2)},
	}
	for _, r := range refused {
		if r.err == nil {
			t.Errorf("%s: got nil, want a refusal", r.name)
		}
	}
}

package modbus_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/mbserver"
)

// BenchmarkPlanShipped reports, per shipped profile, the reads one poll
// cycle of all its points needs: with the profile's own gap setting
// (reads/cycle), one read per point (baseline), and the fewest possible
// given only the protocol limits and unreadable ranges (minimum).
func BenchmarkPlanShipped(b *testing.B) {
	reg, err := profiles.Shipped()
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range reg.List() {
		r := p.Resolve("")
		b.Run(p.Model, func(b *testing.B) {
			var reads []mbdrv.Read
			for b.Loop() {
				reads = mbdrv.Plan(r.Points, r.Unreadable, mbdrv.PlanLimits{MaxGap: r.MaxGap, MaxRegs: r.MaxRegs, MaxBits: r.MaxBits})
			}
			minimum := mbdrv.Plan(r.Points, r.Unreadable, mbdrv.PlanLimits{MaxGap: 1 << 16, MaxRegs: r.MaxRegs, MaxBits: r.MaxBits})
			b.ReportMetric(float64(len(r.Points)), "points")
			b.ReportMetric(float64(len(reads)), "reads/cycle")
			b.ReportMetric(float64(len(minimum)), "min-reads")
			b.ReportMetric(float64(len(r.Points))/float64(len(reads)), "points/read")
		})
	}
}

// BenchmarkPollCycle measures one full poll of a 60-point device over
// loopback TCP against our in-process server: request round trips, decode
// and allocation per cycle.
func BenchmarkPollCycle(b *testing.B) {
	mem := mbserver.NewMemory()
	mem.Map(1, mbserver.InputRegisters, 0, 200)
	mem.Map(1, mbserver.HoldingRegisters, 0, 200)
	srv := mbserver.NewServer(mem, mbserver.Options{})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	p := &profiles.Profile{Model: "bench", Class: "sensor", Protocol: "modbus"}
	for i := 0; i < 60; i++ {
		table, typ := "input", "u16"
		if i%3 == 2 {
			table = "holding"
		}
		if i%6 == 3 {
			typ = "f32"
		}
		p.Points = append(p.Points, profiles.PointDef{Name: fmt.Sprintf("p.x%02d", i), Table: table, Address: uint16(2 * i), Type: typ})
	}
	conn := mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: ln.Addr().String(), Timeout: time.Second})
	defer conn.Close()
	dev := mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "bench", Unit: 1, Profile: p}, conn)
	ctx := context.Background()
	dev.Poll(ctx, "default")
	b.ReportAllocs()
	for b.Loop() {
		dev.Poll(ctx, "default")
	}
	b.ReportMetric(float64(len(dev.Plan("default"))), "reads/cycle")
}

package snmp

import (
	"context"
	"fmt"
	"testing"

	"github.com/gosnmp/gosnmp"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

// BenchmarkPollShipped polls every group of each shipped SNMP profile once
// per iteration against a fake agent serving generated data (3 UPS lines,
// 24 PDU outlets, 48 switch ports, 10 sensors). It reports the requests
// one cycle costs, the varbinds each reply carries on average and the
// points a cycle yields; ns/op is the CPU cost of a cycle, driver and
// in-memory fake agent together, the network excluded.
func BenchmarkPollShipped(b *testing.B) {
	for _, cfg := range []struct {
		name string
		dc   DeviceConfig
	}{
		{"defaults", DeviceConfig{}},
		{"max_repetitions=25", DeviceConfig{MaxRepetitions: 25}},
	} {
		for _, p := range shippedSNMP(b) {
			b.Run(p.Model+"/"+cfg.name, func(b *testing.B) {
				agent := fakeFromRecords(profileRecords(p))
				d, clk := fakeDevice(b, agent, p, cfg.dc)
				groups := p.Resolve("").Groups()
				ctx := context.Background()
				points := 0
				for _, g := range groups { // the first cycle sets up rates and labels
					points += len(d.Poll(ctx, g))
				}
				agent.reset()
				b.ResetTimer()
				for range b.N {
					clk.add(1e9)
					for _, g := range groups {
						d.Poll(ctx, g)
					}
				}
				b.StopTimer()
				reqs, varbinds := 0, 0
				for _, r := range agent.log {
					reqs++
					varbinds += r.resp
				}
				b.ReportMetric(float64(reqs)/float64(b.N), "req/cycle")
				b.ReportMetric(float64(varbinds)/float64(reqs), "varbinds/req")
				b.ReportMetric(float64(points), "points/cycle")
			})
		}
	}
}

// BenchmarkDecodeValue is the decode cost of one varbind, by kind.
func BenchmarkDecodeValue(b *testing.B) {
	f := 0.1
	cases := []struct {
		name string
		def  profiles.PointDef
		pdu  gosnmp.SnmpPDU
	}{
		{"integer-scaled", profiles.PointDef{Type: "integer", Scale: &f, Unit: "V"}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 545}},
		{"enum", profiles.PointDef{Type: "integer", Enum: map[int64]string{1: "up", 2: "down"}}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 1}},
		{"bool", profiles.PointDef{Type: "integer", TrueValues: []int64{3, 6, 7}}, gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: 6}},
		{"counter64", profiles.PointDef{Type: "counter64"}, gosnmp.SnmpPDU{Type: gosnmp.Counter64, Value: uint64(1 << 40)}},
		{"string", profiles.PointDef{Type: "string"}, gosnmp.SnmpPDU{Type: gosnmp.OctetString, Value: []byte("Smart-UPS 3000")}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var p point.Point
			for range b.N {
				decodeValue(&c.def, c.pdu, &p)
			}
			if p.Quality != point.Good {
				b.Fatal(p.Reason)
			}
		})
	}
}

// BenchmarkEntitySensor is the cost of one ENTITY-SENSOR-MIB reading.
func BenchmarkEntitySensor(b *testing.B) {
	var sink float64
	for i := range b.N {
		v, _ := entityValue(8, 9, 2, int64(2345+i%7))
		sink += v
	}
	_ = fmt.Sprint(sink)
}

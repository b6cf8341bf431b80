package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
)

// BenchmarkFeed feeds polls of 250 devices (100 battery racks, 50 UPSs,
// 50 VESDAs, 50 CRACs in 10 rooms) through the package's test packs
// (fire, power, data-quality: windows, group votes, device-level
// functions), one poll of one device per operation, each poll 10 points,
// time advancing by a second per round. It reports points per second.
func BenchmarkFeed(b *testing.B) {
	set, err := LoadFiles("testdata/packs/fire.yaml", "testdata/packs/power.yaml", "testdata/packs/quality.yaml")
	if err != nil {
		b.Fatal(err)
	}
	type kind struct {
		class, profile string
		n              int
		points         func(i int) []point.Point
	}
	kinds := []kind{
		{"battery", "generic-liion-bms", 100, func(i int) []point.Point {
			return []point.Point{num("bms.offgas_ppm", float64(i%7)), boolean("bms.alarm.offgas", false), num("bms.cell_temp_max", 25+float64(i%5)*0.1),
				num("bms.cell_temp_min", 24), num("bms.soc", 80), num("bms.voltage", 800), num("bms.current", 10), num("bms.cell_voltage_spread", 12),
				num("bms.h2_ppm", 0), num("bms.module_temp_max", 27)}
		}},
		{"ups", "apc-smart-ups-modbus", 50, func(i int) []point.Point {
			return []point.Point{boolean("ups.status.on_battery", false), num("battery.runtime", 1800), num("battery.charge", 100), boolean("ups.status.online", true),
				num("ups.output.load", 40), num("battery.voltage", 54), num("battery.temperature", 24), num("ups.output.voltage", 230), num("ups.input.voltage", 231), boolean("ups.status.fault", false)}
		}},
		{"fire", "generic-vesda", 50, func(i int) []point.Point {
			return []point.Point{boolean("vesda.fire1", false), boolean("vesda.airflow_fault", false), boolean("vesda.fire2", false), boolean("vesda.alert", false),
				boolean("vesda.action", false), boolean("vesda.fault", false), boolean("vesda.minor_fault", false), num("vesda.obscuration", 0.01), num("vesda.airflow", 100), enum("vesda.level", "normal", 0)}
		}},
		{"cooling", "liebert-icom-crac", 50, func(i int) []point.Point {
			return []point.Point{num("crac.return_temp", 24+float64(i%3)), num("crac.supply_temp", 18), num("crac.return_humidity", 45), num("crac.fan_speed", 60),
				enum("crac.state", "on", 1), enum("crac.status", "normal", 1), num("crac.chilled_water_temp", 9), num("crac.compressor_utilization", 50), boolean("crac.alarm.fan", false), boolean("crac.alarm.unit_fault", false)}
		}},
	}
	var devs []Device
	var polls [][]point.Point
	for _, k := range kinds {
		for i := range k.n {
			id := fmt.Sprintf("%s-%03d", k.class, i)
			devs = append(devs, Device{ID: id, Class: k.class, Profile: k.profile, Labels: map[string]string{"room": fmt.Sprintf("room-%d", len(devs)%10)}})
			pts := k.points(i)
			for j := range pts {
				pts[j].Device = id
			}
			polls = append(polls, pts)
		}
	}
	e, err := NewEngine(set, devs, Options{})
	if err != nil {
		b.Fatal(err)
	}
	nInst := len(e.all)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pts := polls[i%len(polls)]
		t := t0.Add(time.Duration(i/len(polls)) * time.Second)
		for j := range pts {
			pts[j].Time = t
		}
		e.Feed(pts)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(float64(nInst), "instances")
}

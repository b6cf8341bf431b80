package rules

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	snmpdrv "github.com/facgw/facgw/drivers/snmp"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/facsim"
	"github.com/facgw/facgw/internal/point"
)

// The shipped-pack benchmarks feed the engine what the gateway itself
// feeds it: the batches the real drivers decode from the demo facility
// (deploy/facility.yaml, simulated in-process, polled over loopback once
// at setup), one batch per device and poll group, for a site of
// packBenchDevices devices made of copies of deploy/demo.yaml's eleven
// (UPSs over Modbus and SNMP, battery racks, CRACs, a fire panel, a VESDA,
// a rack PDU, a core switch). Copy k of a device is "<id>-kk" and carries
// the demo's labels with "-kk" appended to its room, so group rules
// (fire/confirmed-fire votes per room) see one room per copy, as in the
// demo.
const (
	packBenchDevices = 250
	// packBenchRounds is how many polls of each batch are recorded, the
	// simulation stepped a second between them, so values and windows
	// move as they do live.
	packBenchRounds = 4
)

// packBatch is one poll of one poll group of one device, with the number
// of instances the engine steps for it.
type packBatch struct {
	device int // index into packSite.devices
	points []point.Point
	evals  int
	every  time.Duration // the poll group's interval in deploy/demo.yaml
}

// packSite is the benchmarks' input: the engine's devices and, per
// recorded round, every batch of every device.
type packSite struct {
	devices []Device
	rounds  [packBenchRounds][]packBatch
}

// loadPackSite polls the demo facility with the real drivers and copies
// its devices up to packBenchDevices.
func loadPackSite(b *testing.B) *packSite {
	b.Helper()
	data, err := os.ReadFile("../deploy/demo.yaml")
	if err != nil {
		b.Fatal(err)
	}
	var demo struct {
		Defaults struct {
			Poll map[string]time.Duration `yaml:"poll"`
		} `yaml:"defaults"`
		Devices []struct {
			ID     string                   `yaml:"id"`
			Labels map[string]string        `yaml:"labels"`
			Poll   map[string]time.Duration `yaml:"poll"`
		} `yaml:"devices"`
	}
	if err := yaml.Unmarshal(data, &demo); err != nil {
		b.Fatalf("deploy/demo.yaml: %v", err)
	}
	reg, err := profiles.Shipped()
	if err != nil {
		b.Fatal(err)
	}
	fac, err := facsim.LoadFacility("../deploy/facility.yaml")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := facsim.Start(ctx, fac, facsim.Options{Registry: reg, FreePorts: true, Manual: true, Seed: 11})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	specs := map[string]facsim.DeviceSpec{}
	for _, s := range fac.Devices {
		specs[s.ID] = s
	}

	type recorded struct {
		dev    Device
		src    poller
		groups []string
		every  []time.Duration                  // per group
		rounds [packBenchRounds][][]point.Point // per round, one batch per group
	}
	var recs []*recorded
	for _, dd := range demo.Devices {
		spec, ok := specs[dd.ID]
		if !ok {
			b.Fatalf("deploy/demo.yaml: device %q is not in deploy/facility.yaml", dd.ID)
		}
		prof, ok := reg.Get(spec.Profile)
		if !ok {
			b.Fatalf("deploy/facility.yaml: device %q: unknown profile %q", dd.ID, spec.Profile)
		}
		src, err := packSource(spec, prof, reg, sim.Addr(spec.ID))
		if err != nil {
			b.Fatal(err)
		}
		rec := &recorded{dev: Device{ID: dd.ID, Profile: prof.Model, Class: prof.Class, Labels: dd.Labels}, src: src}
		for g := range prof.GroupNames() {
			rec.groups = append(rec.groups, g)
			rec.every = append(rec.every, demoInterval(g, dd.Poll, demo.Defaults.Poll))
		}
		recs = append(recs, rec)
	}
	// Round -1 is not kept: a counter's rate needs a reading before it.
	for r := -1; r < packBenchRounds; r++ {
		for _, rec := range recs {
			for _, g := range rec.groups {
				pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
				pts := rec.src.Poll(pctx, g)
				pcancel()
				if r < 0 {
					continue
				}
				for _, p := range pts {
					if p.Quality == point.Bad && commFailed(p.Reason) {
						b.Fatalf("device %q group %q: point %s is bad (%s): the simulated facility did not answer", rec.dev.ID, g, p.Name, p.Reason)
					}
				}
				rec.rounds[r] = append(rec.rounds[r], pts)
			}
		}
		sim.Step(time.Second)
	}

	site := &packSite{}
	for i := 0; i < packBenchDevices; i++ {
		rec := recs[i%len(recs)]
		k := i / len(recs)
		d := rec.dev
		d.ID = fmt.Sprintf("%s-%02d", rec.dev.ID, k)
		d.Labels = map[string]string{}
		for l, v := range rec.dev.Labels {
			if l == "room" {
				v = fmt.Sprintf("%s-%02d", v, k)
			}
			d.Labels[l] = v
		}
		site.devices = append(site.devices, d)
		for r := range packBenchRounds {
			for g, pts := range rec.rounds[r] {
				cp := make([]point.Point, len(pts))
				copy(cp, pts)
				for j := range cp {
					cp[j].Device = d.ID
				}
				site.rounds[r] = append(site.rounds[r], packBatch{device: i, points: cp, every: rec.every[g]})
			}
		}
	}
	return site
}

// demoInterval is a poll group's interval as internal/config resolves it:
// the device's group, the defaults' group, the device's default, the
// defaults' default, else 5 s.
func demoInterval(group string, dev, defaults map[string]time.Duration) time.Duration {
	for _, m := range []struct {
		poll  map[string]time.Duration
		group string
	}{{dev, group}, {defaults, group}, {dev, "default"}, {defaults, "default"}} {
		if iv, ok := m.poll[m.group]; ok {
			return iv
		}
	}
	return 5 * time.Second
}

// commFailed reports whether a bad point's reason says the device did not
// answer (as opposed to an absent sensor or an out-of-range value, which
// belong to a real map).
func commFailed(reason string) bool {
	for _, r := range []string{point.ReasonTimeout, point.ReasonConnection, point.ReasonProtocol, point.ReasonNotPolled} {
		if strings.HasPrefix(reason, r) {
			return true
		}
	}
	return false
}

// poller is the driver side of pipeline.Source.
type poller interface {
	Poll(ctx context.Context, group string) []point.Point
}

// packSource builds the driver the gateway would build for a simulated
// device.
func packSource(spec facsim.DeviceSpec, prof *profiles.Profile, reg *profiles.Registry, addr string) (poller, error) {
	if spec.SNMP == nil {
		conn := mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: addr, Timeout: 2 * time.Second})
		return mbdrv.NewDevice(mbdrv.DeviceConfig{ID: spec.ID, Unit: spec.UnitID(), Profile: prof, Firmware: spec.Firmware, Registry: reg, Retries: 1}, conn), nil
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("device %q: %w", spec.ID, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("device %q: port %q: %w", spec.ID, portStr, err)
	}
	cfg := snmpdrv.DeviceConfig{ID: spec.ID, Target: host, Port: uint16(port), Version: "2c", Community: spec.SNMP.Community,
		Timeout: 2 * time.Second, Retries: 1, Profile: prof, Firmware: spec.Firmware, Registry: reg}
	if spec.SNMP.Community == "" {
		u := spec.SNMP.Users[0]
		cfg.Version = "3"
		cfg.V3 = snmpdrv.V3Config{User: u.Name, AuthProto: u.AuthProtocol, AuthPass: u.AuthPassword, PrivProto: u.PrivProtocol, PrivPass: u.PrivPassword}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("device %q: %w", spec.ID, err)
	}
	return snmpdrv.NewDevice(cfg), nil
}

// evaluations counts the instances Feed steps for a batch: those that
// read one of its points and those that call device-level functions. It
// mirrors the queueing in feedDevice, so the benchmarks can report
// evaluations and not only batches.
func (e *Engine) evaluations(pts []point.Point) int {
	d := e.devices[pts[0].Device]
	if d == nil {
		return 0
	}
	seen := map[*instance]bool{}
	for i := range pts {
		for _, in := range d.deps[pts[i].Name] {
			seen[in] = true
		}
	}
	for _, in := range d.anyDeps {
		seen[in] = true
	}
	return len(seen)
}

// packStats describes the benchmark's site, reported with its results.
type packStats struct {
	instances, batches, evals, points int // evals and points of one round
	// demand is the evaluations per second the site needs when polled at
	// deploy/demo.yaml's intervals (the safety groups of battery racks
	// four times a second, fire devices twice, most others every 1-2 s).
	demand float64
}

// report adds the site's figures to the benchmark's; evalsPerSec is the
// rate measured.
func (s packStats) report(b *testing.B, evalsPerSec float64) {
	b.ReportMetric(float64(s.instances), "instances")
	b.ReportMetric(float64(s.evals)/float64(s.batches), "evals/batch")
	b.ReportMetric(float64(s.points)/float64(s.batches), "points/batch")
	b.ReportMetric(s.demand, "site-evals/s")
	b.ReportMetric(100*s.demand/evalsPerSec, "site-cpu-%")
}

// newPackBench builds the engine over the shipped packs and counts each
// batch's evaluations.
func newPackBench(b *testing.B) (*Engine, *packSite, packStats) {
	b.Helper()
	site := loadPackSite(b)
	set, err := Shipped()
	if err != nil {
		b.Fatal(err)
	}
	e, err := NewEngine(set, site.devices, Options{Site: "bench", Gateway: "gw-bench"})
	if err != nil {
		b.Fatal(err)
	}
	evals, pts, demand := 0, 0, 0.0
	for r := range site.rounds {
		for i := range site.rounds[r] {
			bt := &site.rounds[r][i]
			bt.evals = e.evaluations(bt.points)
			if r == 0 {
				evals += bt.evals
				pts += len(bt.points)
				demand += float64(bt.evals) / bt.every.Seconds()
			}
		}
	}
	return e, site, packStats{instances: len(e.all), batches: len(site.rounds[0]), evals: evals, points: pts, demand: demand}
}

// feedLoop feeds batches in order, every batch once per simulated second,
// for as long as next says, and returns the evaluations and points fed.
func feedLoop(e *Engine, rounds [packBenchRounds][]packBatch, next func() bool) (evals, pts int) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n := len(rounds[0])
	for i := 0; next(); i++ {
		round := i / n
		bt := rounds[round%packBenchRounds][i%n]
		t := t0.Add(time.Duration(round) * time.Second)
		for j := range bt.points {
			bt.points[j].Time = t
		}
		e.Feed(bt.points)
		evals += bt.evals
		pts += len(bt.points)
	}
	return evals, pts
}

// BenchmarkFeedShippedPacks feeds the shipped packs the polls of a
// 250-device site (see loadPackSite) on one goroutine, one batch (one
// poll of one device's poll group) per operation, every batch once per
// simulated second. It reports evaluations (rule instances stepped) and
// points per second; with -cpu 1 that is the figure per core.
func BenchmarkFeedShippedPacks(b *testing.B) {
	e, site, st := newPackBench(b)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	evals, pts := feedLoop(e, site.rounds, func() bool { i++; return i <= b.N })
	b.StopTimer()
	rate := float64(evals) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "evals/s")
	b.ReportMetric(float64(pts)/b.Elapsed().Seconds(), "points/s")
	st.report(b, rate)
}

// BenchmarkFeedShippedPacksParallel is BenchmarkFeedShippedPacks with the
// devices split among GOMAXPROCS goroutines, as the gateway's polling
// goroutines feed the engine concurrently (a group rule then takes its
// members' locks). Divide its rates by -cpu for the figure per core.
func BenchmarkFeedShippedPacksParallel(b *testing.B) {
	e, site, st := newPackBench(b)
	workers := runtime.GOMAXPROCS(0) // RunParallel's goroutines at parallelism 1
	// Each goroutine feeds its own devices, as each device has its own
	// polling goroutines in the gateway.
	mine := make([][packBenchRounds][]packBatch, workers)
	for r := range site.rounds {
		for _, bt := range site.rounds[r] {
			w := bt.device % workers
			mine[w][r] = append(mine[w][r], bt)
		}
	}
	var next atomic.Int64
	var evals, pts atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := int(next.Add(1)-1) % workers
		ev, p := feedLoop(e, mine[w], pb.Next)
		evals.Add(int64(ev))
		pts.Add(int64(p))
	})
	b.StopTimer()
	rate := float64(evals.Load()) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "evals/s")
	b.ReportMetric(float64(pts.Load())/b.Elapsed().Seconds(), "points/s")
	st.report(b, rate)
}

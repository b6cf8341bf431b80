package loadshed

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/internal/facsim"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/rules"
)

// BenchmarkTriggerToFirstOutletOff measures, against facsim's Modbus
// outlet bank, the time from the batch that makes the trigger hold
// (its for-duration already met: for: 0s) to the first outlet confirmed
// off by read-back: trigger evaluation, the decision, the durable state
// and audit writes (fsync), the coil write and the read-back of the
// feedback contact. It reports the median and p99 in ms.
func BenchmarkTriggerToFirstOutletOff(b *testing.B) {
	reg, err := profiles.Shipped()
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load("testdata/bench.yaml", reg)
	if err != nil {
		b.Fatal(err)
	}
	fac, err := facsim.LoadFacility("../../deploy/facility.yaml")
	if err != nil {
		b.Fatal(err)
	}
	sim, err := facsim.Start(context.Background(), fac, facsim.Options{FreePorts: true, Manual: true, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	prof, _ := reg.Get("generic-modbus-outlet-bank")
	bank := mbdrv.NewDevice(mbdrv.DeviceConfig{ID: "outlets-lab", Unit: 1, Profile: prof, Registry: reg},
		mbdrv.NewTCPConn(mbdrv.TCPConfig{Address: sim.Addr("outlets-lab"), Timeout: time.Second}))
	var (
		mu  sync.Mutex
		off time.Time
	)
	var devs []rules.Device
	for _, d := range cfg.Devices {
		devs = append(devs, rules.Device{ID: d.ID, Profile: d.Profile, Class: d.ProfileDef().Class})
	}
	ctl, err := New(Options{
		Config: cfg.Loadshed, Site: "bench", Gateway: "gw-1", Devices: devs, Dir: b.TempDir(),
		Actuators: map[string]Actuator{"outlets-lab": bank},
		Publish: func(_ string, p []byte) error {
			var r Record
			if json.Unmarshal(p, &r) == nil && r.Event == EventAction && r.Action.Verified && r.Action.Skipped == "" {
				mu.Lock()
				if off.IsZero() {
					off = time.Now()
				}
				mu.Unlock()
			}
			return nil
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer ctl.Close()
	ups := func(onBattery bool, runtime float64) {
		v := 0.0
		if onBattery {
			v = 1
		}
		now := time.Now()
		ctl.Feed([]point.Point{
			{Device: "ups-c", Name: "ups.status.on_battery", Kind: point.Bool, Num: v, Quality: point.Good, Time: now},
			{Device: "ups-c", Name: "battery.runtime", Kind: point.Number, Num: runtime, Unit: "min", Quality: point.Good, Time: now},
		})
	}
	ctx := context.Background()
	// Identify the bank once, as the poller would have long before.
	if p := bank.ReadPoint(ctx, "pdu.outlet.state.1", ""); p.Quality != point.Good {
		b.Fatalf("outlet bank: %s", p.Reason)
	}
	var ds []time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		ups(false, 30) // mains: the last episode ends
		ctl.Step(ctx)
		if err := sim.SetScenario("outlets-lab", facsim.ScenarioNormal); err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		off = time.Time{}
		mu.Unlock()
		b.StartTimer()
		start := time.Now()
		ups(true, 8)
		ctl.Step(ctx)
		mu.Lock()
		at := off
		mu.Unlock()
		if at.IsZero() {
			b.Fatal("no outlet confirmed off after the trigger held")
		}
		ds = append(ds, at.Sub(start))
	}
	b.StopTimer()
	slices.Sort(ds)
	ms := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(ms(0.5), "median-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// Command facbench measures facgw as a whole process under load: it serves
// N simulated Modbus devices of P points each on loopback, starts a real
// facgw binary polling them all at the given interval, and samples the
// gateway's CPU time and resident memory from /proc. `make bench` runs it
// with the figures that docs/benchmarks.md reports (200 devices x 60 points
// at 1 s).
//
// With -alerts it also measures detection-to-delivery latency: it toggles
// an alarm bit on the first device, lets a site rule raise and resolve an
// alert on it, and records when each event reaches each delivery path (the
// embedded brokers, a webhook receiver, and with -alertmanager a real
// Alertmanager). With -fsync N it only measures what an fsync costs on the
// disk of the temp dir.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/facgw/facgw/internal/mbserver"
	"github.com/facgw/facgw/internal/snmpagent"
	"github.com/facgw/facgw/pipeline/mqtt"
)

func main() {
	devices := flag.Int("devices", 200, "simulated devices, each on its own loopback port")
	points := flag.Int("points", 60, "points per device")
	interval := flag.Duration("interval", time.Second, "poll interval")
	warmup := flag.Duration("warmup", 10*time.Second, "time before measuring")
	duration := flag.Duration("duration", 60*time.Second, "measured time")
	facgw := flag.String("facgw", "bin/facgw", "facgw binary")
	snmpDevices := flag.Int("snmp-devices", 0, "simulated SNMP agents, each on its own loopback UDP port")
	snmpPoints := flag.Int("snmp-points", 40, "points per SNMP device")
	snmpInterval := flag.Duration("snmp-interval", 5*time.Second, "SNMP poll interval")
	brokers := flag.Int("mqtt-brokers", 0, "publish to this many brokers (embedded in facbench, on loopback)")
	pointHistory := flag.Int("point-history", -1, "the gateway's http.history (samples kept per point for charts); -1: facgw's default")
	alerts := flag.Bool("alerts", false, "measure detection-to-delivery latency of an alarm toggled on "+alarmDevice+" (MQTT brokers, webhook, Alertmanager)")
	alarmEvery := flag.Duration("alarm-every", 1500*time.Millisecond, "with -alerts: toggle the alarm this often (longer than -interval)")
	alertmanager := flag.Bool("alertmanager", false, "with -alerts: also deliver to a real Alertmanager, if installed")
	amBin := flag.String("alertmanager-bin", "/usr/bin/prometheus-alertmanager", "Alertmanager binary for -alertmanager")
	history := flag.Int("alerts-history", 500, "with -alerts: events in the gateway's ledger history before the start (its maximum is 500)")
	grace := flag.Duration("grace", 15*time.Second, "with -alerts: after the run, wait at most this long for deliveries on their way")
	alertsCSV := flag.String("alerts-csv", "", "with -alerts: write one row per event (seq, kind, at, poll end and each path's receive time in ms after at) to this file")
	facgwLog := flag.String("facgw-log", "", "write the gateway's log to this file (default: discard)")
	fsyncN := flag.Int("fsync", 0, "only measure the cost of N fsyncs on the temp dir's disk, as the ledger and the outboxes make them")
	flag.Parse()
	if *fsyncN > 0 {
		if err := measureFsync(os.Stdout, os.TempDir(), *fsyncN); err != nil {
			fmt.Fprintln(os.Stderr, "facbench:", err)
			os.Exit(1)
		}
		return
	}
	// An interrupted run still stops the gateway and Alertmanager and
	// removes its temp dir.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := settings{
		ctx: ctx,
		load: load{devices: *devices, points: *points, interval: *interval, snmpDevices: *snmpDevices, snmpPoints: *snmpPoints, snmpInterval: *snmpInterval,
			brokers: *brokers, history: *pointHistory},
		warmup: *warmup, duration: *duration, bin: *facgw, facgwLog: *facgwLog, out: os.Stdout,
	}
	if *alerts {
		if *alarmEvery <= *interval {
			fmt.Fprintf(os.Stderr, "facbench: -alarm-every %s must be longer than -interval %s, or a toggle may go unseen\n", *alarmEvery, *interval)
			os.Exit(2)
		}
		s.alerts = &alertOptions{every: *alarmEvery, history: *history, grace: *grace, csv: *alertsCSV}
		if *alertmanager {
			if _, err := os.Stat(*amBin); err != nil {
				fmt.Fprintf(os.Stderr, "facbench: %s: %v\n", *amBin, errNoAlertmanager)
			} else {
				s.alerts.alertmanager = *amBin
			}
		}
	}
	if _, err := run(s); err != nil {
		fmt.Fprintln(os.Stderr, "facbench:", err)
		stop()
		os.Exit(1)
	}
}

// settings are one facbench run.
type settings struct {
	ctx context.Context // ends the run early (an interrupt)
	load
	warmup, duration time.Duration
	bin              string // the facgw binary
	facgwLog         string // file for the gateway's log; "" discards it
	alerts           *alertOptions
	out              io.Writer
}

// outcome is what a run measured.
type outcome struct {
	Cycles     uint64
	Expected   float64
	CPUPercent float64
	PeakRSSMB  float64
	Bad, Total int
	// MachineBusy is the share of all CPUs' time not idle during the
	// measurement, in percent.
	MachineBusy float64
	Alerts      *alertResult
}

// profileYAML is a synthetic profile: points spread over input and holding
// registers in a few blocks with gaps, mixed types and a status word, like
// a BMS or UPS map.
func profileYAML(n int) string {
	s, _ := syntheticProfile("bench-device", n)
	return s
}

// alarmProfileYAML is the synthetic profile plus the alarm: bit 0 of the
// holding register after the last point, which it returns.
func alarmProfileYAML(n int) (string, uint16) {
	s, next := syntheticProfile(alarmProfile, n)
	return s + fmt.Sprintf("  - {name: %s, table: holding, address: %d, type: u16, bit: 0}\n", alarmPoint, next), uint16(next)
}

// syntheticProfile returns the profile of n points and the first address
// after them.
func syntheticProfile(model string, n int) (string, int) {
	var b strings.Builder
	fmt.Fprintf(&b, "model: %s\nclass: sensor\nprotocol: modbus\nsource: generic (facbench synthetic load)\npoints:\n", model)
	addr := 0
	for i := 0; i < n; i++ {
		table := "input"
		if i%3 == 2 {
			table = "holding"
		}
		typ, w := "u16", 1
		switch i % 6 {
		case 1:
			typ, w = "s16", 1
		case 3:
			typ, w = "f32", 2
		case 4:
			typ, w = "u32", 2
		}
		if i%20 == 19 {
			addr += 12 // a gap the planner must not bridge
		}
		extra := ""
		if typ == "u16" || typ == "s16" {
			extra = ", scale: 0.1, unit: degC"
		}
		fmt.Fprintf(&b, "  - {name: p.x%03d, table: %s, address: %d, type: %s%s}\n", i, table, addr, typ, extra)
		addr += w
	}
	return b.String(), addr
}

// load is what facbench simulates.
type load struct {
	devices, points         int
	interval                time.Duration
	snmpDevices, snmpPoints int
	snmpInterval            time.Duration
	brokers                 int
	history                 int // http.history; -1 leaves facgw's default
}

// snmpProfileYAML is a synthetic SNMP profile: scalars (gauges, integers
// with a scale, counters) under a private enterprise arc.
func snmpProfileYAML(n int) string {
	var b strings.Builder
	b.WriteString("model: bench-snmp\nclass: sensor\nprotocol: snmp\nsource: generic (facbench synthetic load)\npoints:\n")
	for i := 0; i < n; i++ {
		typ, extra := "gauge", ""
		switch i % 4 {
		case 1:
			typ, extra = "integer", ", scale: 0.1, unit: degC"
		case 3:
			typ = "counter64"
		}
		fmt.Fprintf(&b, "  - {name: s.x%03d, oid: 1.3.6.1.4.1.99999.1.%d.0, type: %s%s}\n", i, i+1, typ, extra)
	}
	return b.String()
}

func run(s settings) (*outcome, error) {
	l := s.load
	nDev, nPts, interval := l.devices, l.points, l.interval
	dir, err := os.MkdirTemp("", "facbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "profiles"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "profiles", "bench.yaml"), []byte(profileYAML(nPts)), 0o644); err != nil {
		return nil, err
	}
	if l.snmpDevices > 0 {
		if err := os.WriteFile(filepath.Join(dir, "profiles", "bench-snmp.yaml"), []byte(snmpProfileYAML(l.snmpPoints)), 0o644); err != nil {
			return nil, err
		}
	}
	newMemory := func() (*mbserver.Memory, error) {
		mem := mbserver.NewMemory()
		for _, t := range []mbserver.Table{mbserver.InputRegisters, mbserver.HoldingRegisters} {
			if err := mem.Map(1, t, 0, 2*nPts+100); err != nil {
				return nil, err
			}
		}
		return mem, nil
	}
	mem, err := newMemory()
	if err != nil {
		return nil, err
	}
	srv := mbserver.NewServer(mem, mbserver.Options{})
	defer srv.Close()

	// With -alerts the first device is the alarm device: its own memory
	// and server, so that toggling its alarm changes nothing on the other
	// devices, and its replies are time-stamped.
	var alarmMem *mbserver.Memory
	var alarmAddr uint16
	replies := &replyLog{}
	if s.alerts != nil {
		prof, addr := alarmProfileYAML(nPts)
		alarmAddr = addr
		if err := os.WriteFile(filepath.Join(dir, "profiles", "bench-alarm.yaml"), []byte(prof), 0o644); err != nil {
			return nil, err
		}
		if alarmMem, err = newMemory(); err != nil {
			return nil, err
		}
	}
	var cfg strings.Builder
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	history := ""
	if l.history >= 0 {
		history = fmt.Sprintf(", history: %d", l.history)
	}
	fmt.Fprintf(&cfg, "site: %s\ngateway: %s\nstate_dir: %s\nprofile_dirs: [profiles]\nhttp: {listen: 127.0.0.1:%d%s}\ndefaults:\n  timeout: 2s\n  retries: 1\n  poll: {default: %s}\ndevices:\n",
		benchSite, benchGateway, filepath.Join(dir, "var"), httpPort, history, interval)
	for i := 0; i < nDev; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		profile := "bench-device"
		if i == 0 && alarmMem != nil {
			asrv := mbserver.NewServer(alarmMem, mbserver.Options{})
			defer asrv.Close()
			go asrv.Serve(stampListener{Listener: ln, log: replies})
			profile = alarmProfile
		} else {
			go srv.Serve(ln)
		}
		fmt.Fprintf(&cfg, "  - {id: dev-%03d, profile: %s, transport: modbus-tcp, address: %q, unit: 1}\n", i, profile, ln.Addr().String())
	}
	var brokerURLs []string
	if l.brokers > 0 {
		cfg.WriteString("mqtt:\n  brokers:\n")
		for i := 0; i < l.brokers; i++ {
			b, err := mqtt.StartEmbeddedBroker("127.0.0.1:0", nil)
			if err != nil {
				return nil, err
			}
			defer b.Close()
			brokerURLs = append(brokerURLs, b.URL())
			fmt.Fprintf(&cfg, "    - {name: b%d, url: %q}\n", i, b.URL())
		}
	}
	if l.snmpDevices > 0 {
		store := snmpagent.NewStore()
		for i := 0; i < l.snmpPoints; i++ {
			oid := fmt.Sprintf("1.3.6.1.4.1.99999.1.%d.0", i+1)
			v := snmpagent.Gauge32(uint32(1000 + i))
			switch i % 4 {
			case 1:
				v = snmpagent.Integer(int32(215 + i))
			case 3:
				v = snmpagent.Counter64(uint64(1e9 + i))
			}
			if err := store.Set(oid, v); err != nil {
				return nil, err
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for i := 0; i < l.snmpDevices; i++ {
			agent, err := snmpagent.New(store, snmpagent.Config{Communities: []string{"public"}})
			if err != nil {
				return nil, err
			}
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			go agent.Serve(ctx, pc)
			fmt.Fprintf(&cfg, "  - {id: snmp-%03d, profile: bench-snmp, transport: snmp, address: %q, snmp: {version: 2c, community: public}, poll: {default: %s}}\n",
				i, pc.LocalAddr().String(), l.snmpInterval)
		}
	}
	var ab *alertBench
	if s.alerts != nil {
		if ab, err = newAlertBench(dir, *s.alerts, brokerURLs); err != nil {
			return nil, err
		}
		defer ab.close()
		cfg.WriteString(ab.config)
		if err := prefillLedger(filepath.Join(dir, "var", "alerts", "ledger"), s.alerts.history); err != nil {
			return nil, err
		}
	}
	cfgFile := filepath.Join(dir, "facgw.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(s.bin, "run", "-config", cfgFile)
	cmd.SysProcAttr = childAttr()
	cmd.Stdout, cmd.Stderr = nil, nil
	if s.facgwLog != "" {
		f, err := os.Create(s.facgwLog)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	out := s.out
	fmt.Fprintf(out, "facbench: %d Modbus devices x %d points at %s, %d SNMP devices x %d points at %s; warming up %s, measuring %s; gateway pid %d\n",
		nDev, nPts, interval, l.snmpDevices, l.snmpPoints, l.snmpInterval, s.warmup, s.duration, cmd.Process.Pid)
	if !sleepCtx(s.ctx, s.warmup) {
		return nil, errInterrupted
	}
	select {
	case err := <-exited:
		exited <- err // for the deferred cleanup
		return nil, fmt.Errorf("the gateway exited during the warm-up (%v); run with -facgw-log FILE to see why", err)
	default:
	}
	cpu0, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	cycles0, _, _ := pollStats(httpPort)
	busy0, total0, _ := machineCPU()
	t0 := time.Now()
	var toggled chan int
	stopToggling := func() {}
	if s.alerts != nil {
		ctx, cancel := context.WithCancel(context.Background())
		toggled = make(chan int, 1)
		go func() { toggled <- toggle(ctx, alarmMem, alarmAddr, s.alerts.every) }()
		stopToggling = cancel
	}
	defer stopToggling()
	var peakRSS int64
	for time.Since(t0) < s.duration {
		if !sleepCtx(s.ctx, time.Second) {
			return nil, errInterrupted
		}
		if rss, err := rssKB(cmd.Process.Pid); err == nil && rss > peakRSS {
			peakRSS = rss
		}
	}
	cpu1, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(t0)
	busy1, total1, _ := machineCPU()
	cycles1, bad, total := pollStats(httpPort)
	res := &outcome{
		Cycles:     cycles1 - cycles0,
		Expected:   float64(nDev)*elapsed.Seconds()/interval.Seconds() + float64(l.snmpDevices)*elapsed.Seconds()/l.snmpInterval.Seconds(),
		CPUPercent: 100 * (cpu1 - cpu0).Seconds() / elapsed.Seconds(),
		PeakRSSMB:  float64(peakRSS) / 1024,
		Bad:        bad, Total: total,
	}
	if total1 > total0 {
		res.MachineBusy = 100 * float64(busy1-busy0) / float64(total1-total0)
	}
	fmt.Fprintf(out, "| Modbus devices x points @ interval | SNMP devices x points @ interval | MQTT brokers | polls done / expected | CPU (%% of one core) | peak RSS (MB) | bad points |\n|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(out, "| %d x %d @ %s | %d x %d @ %s | %d | %d / %.0f | %.2f | %.1f | %d of %d |\n", nDev, nPts, interval, l.snmpDevices, l.snmpPoints, l.snmpInterval,
		l.brokers, res.Cycles, res.Expected, res.CPUPercent, res.PeakRSSMB, bad, total)
	// The machine is shared: say how busy it was, so a figure can be
	// read against it.
	loadavg, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(loadavg))
	fmt.Fprintf(out, "machine: %d CPUs %.0f %% busy during the measurement (everything: the gateway, facbench, other work); load average at the end %s\n",
		runtime.NumCPU(), res.MachineBusy, strings.Join(f[:min(3, len(f))], " "))
	if s.alerts != nil {
		stopToggling()
		n := <-toggled
		ab.wait(t0, n)
		// A poll of the alarm device takes milliseconds; half an interval
		// holds all of its replies and none of the next poll's.
		pollEnd := func(start time.Time) (time.Time, bool) { return replies.pollEnd(start, interval/2) }
		r := ab.d.result(t0, pollEnd)
		r.Toggles = n
		// The gateway's own figure for the same poll, for comparison: its
		// poll statistics, sampled after the run so that the snapshot of
		// every point the API takes does not disturb the measurement.
		for i := 0; i < 5; i++ {
			if d, err := lastPollDuration(httpPort, alarmDevice); err == nil {
				r.GatewayPoll = append(r.GatewayPoll, d)
			}
			sleepCtx(s.ctx, interval+interval/10)
		}
		r.print(out, *s.alerts, interval)
		res.Alerts = &r
		if s.alerts.csv != "" {
			f, err := os.Create(s.alerts.csv)
			if err != nil {
				return res, err
			}
			err = ab.d.writeCSV(f, t0, pollEnd)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return res, fmt.Errorf("write %s: %w", s.alerts.csv, err)
			}
		}
	}
	return res, nil
}

var errInterrupted = errors.New("interrupted")

// sleepCtx sleeps for d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// cpuTime reads user+system CPU time of a process from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / hz, nil
}

// machineCPU returns the busy and total CPU time of the machine, in
// USER_HZ ticks, from /proc/stat (idle and iowait count as not busy).
func machineCPU() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}

func rssKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

// lastPollDuration returns the duration of the latest poll of a device,
// as the gateway measured it (its poll statistics' last_duration).
func lastPollDuration(port int, device string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://127.0.0.1:%d/api/v1/devices/%s", port, device), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var doc struct {
		Polls []struct {
			LastDuration time.Duration `json:"last_duration_ns"`
		} `json:"polls"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return 0, fmt.Errorf("device %s: %w", device, err)
	}
	if len(doc.Polls) == 0 {
		return 0, fmt.Errorf("device %s: no poll statistics", device)
	}
	return doc.Polls[0].LastDuration, nil
}

// pollStats sums completed poll cycles and counts bad points from the
// gateway's state endpoint.
func pollStats(port int) (cycles uint64, bad, total int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://127.0.0.1:%d/api/v1/state", port), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, 0
	}
	defer resp.Body.Close()
	var doc struct {
		Devices []struct {
			Points []struct {
				Quality string `json:"quality"`
			} `json:"points"`
			Polls []struct {
				Cycles uint64 `json:"cycles"`
			} `json:"polls"`
		} `json:"devices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return 0, 0, 0
	}
	for _, d := range doc.Devices {
		for _, p := range d.Polls {
			cycles += p.Cycles
		}
		for _, p := range d.Points {
			total++
			if p.Quality != "good" {
				bad++
			}
		}
	}
	return cycles, bad, total
}

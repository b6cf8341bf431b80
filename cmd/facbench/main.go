// Command facbench measures facgw as a whole process under load: it serves
// N simulated Modbus devices of P points each on loopback, starts a real
// facgw binary polling them all at the given interval, and samples the
// gateway's CPU time and resident memory from /proc. `make bench` runs it
// with the figures that docs/benchmarks.md reports (200 devices x 60 points
// at 1 s).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	flag.Parse()
	load := load{devices: *devices, points: *points, interval: *interval, snmpDevices: *snmpDevices, snmpPoints: *snmpPoints, snmpInterval: *snmpInterval,
		brokers: *brokers}
	if err := run(load, *warmup, *duration, *facgw); err != nil {
		fmt.Fprintln(os.Stderr, "facbench:", err)
		os.Exit(1)
	}
}

// profileYAML is a synthetic profile: points spread over input and holding
// registers in a few blocks with gaps, mixed types and a status word, like
// a BMS or UPS map.
func profileYAML(n int) string {
	var b strings.Builder
	b.WriteString("model: bench-device\nclass: sensor\nprotocol: modbus\nsource: generic (facbench synthetic load)\npoints:\n")
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
	return b.String()
}

// load is what facbench simulates.
type load struct {
	devices, points         int
	interval                time.Duration
	snmpDevices, snmpPoints int
	snmpInterval            time.Duration
	brokers                 int
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

func run(l load, warmup, duration time.Duration, bin string) error {
	nDev, nPts, interval := l.devices, l.points, l.interval
	dir, err := os.MkdirTemp("", "facbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "profiles"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "profiles", "bench.yaml"), []byte(profileYAML(nPts)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "profiles", "bench-snmp.yaml"), []byte(snmpProfileYAML(l.snmpPoints)), 0o644); err != nil {
		return err
	}
	mem := mbserver.NewMemory()
	for _, t := range []mbserver.Table{mbserver.InputRegisters, mbserver.HoldingRegisters} {
		if err := mem.Map(1, t, 0, 2*nPts+100); err != nil {
			return err
		}
	}
	srv := mbserver.NewServer(mem, mbserver.Options{})
	defer srv.Close()
	var cfg strings.Builder
	httpPort, err := freePort()
	if err != nil {
		return err
	}
	fmt.Fprintf(&cfg, "site: bench\ngateway: gw-bench\nstate_dir: %s\nprofile_dirs: [profiles]\nhttp: {listen: 127.0.0.1:%d}\ndefaults:\n  timeout: 2s\n  retries: 1\n  poll: {default: %s}\ndevices:\n", filepath.Join(dir, "var"), httpPort, interval)
	for i := 0; i < nDev; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go srv.Serve(ln)
		fmt.Fprintf(&cfg, "  - {id: dev-%03d, profile: bench-device, transport: modbus-tcp, address: %q, unit: 1}\n", i, ln.Addr().String())
	}
	if l.brokers > 0 {
		cfg.WriteString("mqtt:\n  brokers:\n")
		for i := 0; i < l.brokers; i++ {
			b, err := mqtt.StartEmbeddedBroker("127.0.0.1:0", nil)
			if err != nil {
				return err
			}
			defer b.Close()
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
				return err
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for i := 0; i < l.snmpDevices; i++ {
			agent, err := snmpagent.New(store, snmpagent.Config{Communities: []string{"public"}})
			if err != nil {
				return err
			}
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			go agent.Serve(ctx, pc)
			fmt.Fprintf(&cfg, "  - {id: snmp-%03d, profile: bench-snmp, transport: snmp, address: %q, snmp: {version: 2c, community: public}, poll: {default: %s}}\n",
				i, pc.LocalAddr().String(), l.snmpInterval)
		}
	}
	cfgFile := filepath.Join(dir, "facgw.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(bin, "run", "-config", cfgFile)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	fmt.Printf("facbench: %d Modbus devices x %d points at %s, %d SNMP devices x %d points at %s; warming up %s, measuring %s\n",
		nDev, nPts, interval, l.snmpDevices, l.snmpPoints, l.snmpInterval, warmup, duration)
	time.Sleep(warmup)
	cpu0, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return err
	}
	cycles0, _, _ := pollStats(httpPort)
	t0 := time.Now()
	var peakRSS int64
	for time.Since(t0) < duration {
		time.Sleep(time.Second)
		if rss, err := rssKB(cmd.Process.Pid); err == nil && rss > peakRSS {
			peakRSS = rss
		}
	}
	cpu1, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return err
	}
	elapsed := time.Since(t0)
	cycles1, bad, total := pollStats(httpPort)
	cpuPct := 100 * (cpu1 - cpu0).Seconds() / elapsed.Seconds()
	expected := float64(nDev)*elapsed.Seconds()/interval.Seconds() + float64(l.snmpDevices)*elapsed.Seconds()/l.snmpInterval.Seconds()
	fmt.Printf("| Modbus devices x points @ interval | SNMP devices x points @ interval | MQTT brokers | polls done / expected | CPU (%% of one core) | peak RSS (MB) | bad points |\n|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %d x %d @ %s | %d x %d @ %s | %d | %d / %.0f | %.2f | %.1f | %d of %d |\n", nDev, nPts, interval, l.snmpDevices, l.snmpPoints, l.snmpInterval,
		l.brokers, cycles1-cycles0, expected, cpuPct, float64(peakRSS)/1024, bad, total)
	return nil
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

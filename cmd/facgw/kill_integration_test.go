package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facgw/facgw/internal/facsim"
	"github.com/facgw/facgw/internal/testpeer"
)

// gate is a TCP proxy the test opens and closes, standing for the network
// link between the gateway and a broker.
type gate struct {
	ln       net.Listener
	upstream string
	open     atomic.Bool
	mu       sync.Mutex
	conns    []net.Conn
}

func newGate(t *testing.T, upstream string) *gate {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, upstream: upstream}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !g.open.Load() {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			g.mu.Lock()
			g.conns = append(g.conns, c, up)
			g.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); g.close() })
	return g
}

func (g *gate) close() {
	g.open.Store(false)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

func startMosquitto(t *testing.T) string { return testpeer.StartMosquitto(t, "").Addr }

// seen collects (device, seq) of telemetry messages from one broker.
type seen struct {
	mu     sync.Mutex
	seqs   map[string]map[uint64]int
	marked map[string]bool // devices whose stream announced a restart jump
}

func subscribeAll(t *testing.T, addr string) *seen {
	s := &seen{seqs: map[string]map[uint64]int{}, marked: map[string]bool{}}
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("test-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(true)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect to %s: %v", addr, tok.Error())
	}
	tok := c.Subscribe("facgw/+/+/telemetry/+", 1, func(_ paho.Client, m paho.Message) {
		var msg struct {
			Device  string `json:"device"`
			Seq     uint64 `json:"seq"`
			Restart bool   `json:"restart"`
		}
		if json.Unmarshal(m.Payload(), &msg) != nil {
			return
		}
		s.mu.Lock()
		if s.seqs[msg.Device] == nil {
			s.seqs[msg.Device] = map[uint64]int{}
		}
		s.seqs[msg.Device][msg.Seq]++
		if msg.Restart {
			s.marked[msg.Device] = true
		}
		s.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return s
}

func (s *seen) restartMarked(dev string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.marked[dev]
}

func (s *seen) max(dev string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m uint64
	for q := range s.seqs[dev] {
		m = max(m, q)
	}
	return m
}

// has reports whether every seq from 1 to upto arrived, and how many
// arrived more than once.
func (s *seen) has(dev string, upto uint64) (complete bool, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	complete = true
	for q := uint64(1); q <= upto; q++ {
		n := s.seqs[dev][q]
		if n == 0 {
			complete = false
		}
		if n > 1 {
			dups += n - 1
		}
	}
	return complete, dups
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1500; i++ {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func outboxDepth(httpAddr, broker string) int {
	resp, err := http.Get("http://" + httpAddr + "/api/v1/state")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var doc struct {
		Destinations []struct {
			Name   string
			Outbox struct{ Depth int }
		}
	}
	if json.NewDecoder(resp.Body).Decode(&doc) != nil {
		return -1
	}
	for _, d := range doc.Destinations {
		if d.Name == broker {
			return d.Outbox.Depth
		}
	}
	return -1
}

// TestKillGatewayIntegration is the "nothing lost" proof across a crash:
// facgw publishes to two real mosquitto brokers while its link to broker A
// is down, so A's messages wait in A's outbox on disk; facgw is killed
// with SIGKILL, started again on the same state directory, and the link
// comes back. Broker A must then receive every message broker B saw
// before the kill (B is a witness of what was taken), with no gap;
// duplicates are allowed and reported.
func TestKillGatewayIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds facgw and starts brokers")
	}
	brokerA, brokerB := startMosquitto(t), startMosquitto(t)
	link := newGate(t, brokerA)
	subA, subB := subscribeAll(t, brokerA), subscribeAll(t, brokerB)

	sim := startSim(t, facsim.Options{Seed: 3})

	dir := t.TempDir()
	bin := facgwBinary(t)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	cfg := fmt.Sprintf(`site: kill-test
gateway: gw-1
state_dir: %s
http: {listen: %q}
defaults: {timeout: 500ms, retries: 0, poll: {default: 100ms}}
mqtt:
  brokers:
    - {name: a, url: %q}
    - {name: b, url: "tcp://%s"}
devices:
  - {id: ups-b, profile: socomec-delphys-jbus, transport: modbus-tcp, address: %q}
  - {id: crac-1, profile: liebert-icom-crac, transport: modbus-tcp, address: %q}
`, filepath.Join(dir, "state"), httpAddr, "tcp://"+link.ln.Addr().String(), brokerB, sim.Addr("ups-b"), sim.Addr("crac-1"))
	cfgFile := filepath.Join(dir, "facgw.yaml")
	os.WriteFile(cfgFile, []byte(cfg), 0o644)

	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "-config", cfgFile)
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("facgw-%d.log", time.Now().UnixNano())))
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}

	devices := []string{"ups-b", "crac-1"}
	first := start()
	waitUntil(t, "broker B receiving from the first run", func() bool { return subB.max("ups-b") >= 20 && subB.max("crac-1") >= 20 })
	waitUntil(t, "messages waiting in broker A's outbox", func() bool { return outboxDepth(httpAddr, "a") > 40 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	before := map[string]uint64{}
	for _, d := range devices {
		before[d] = subB.max(d)
		if n := subA.max(d); n != 0 {
			t.Fatalf("broker A got seq %d of %s through a closed link", n, d)
		}
	}

	link.open.Store(true)
	start()
	for _, d := range devices {
		waitUntil(t, "broker A receiving everything "+d+" published before the kill", func() bool {
			ok, _ := subA.has(d, before[d])
			return ok
		})
		_, dupsA := subA.has(d, before[d])
		okB, dupsB := subB.has(d, before[d])
		if !okB {
			t.Errorf("%s: broker B has a gap below seq %d", d, before[d])
		}
		t.Logf("%s: seqs 1..%d delivered to both brokers across the kill; duplicates A=%d B=%d", d, before[d], dupsA, dupsB)
		// The second run continues above everything the first issued and
		// says so, so a consumer tells the jump from lost data.
		waitUntil(t, "second run publishing "+d, func() bool { return subB.max(d) > before[d] })
		if !subB.restartMarked(d) {
			t.Errorf("%s: the first message after the unclean restart is not marked restart", d)
		}
	}
	if t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(dir, "facgw-*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", l, strings.TrimSpace(string(b)))
		}
	}
}

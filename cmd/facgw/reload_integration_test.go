package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/facsim"
)

// TestSighupReloadIntegration runs facgw as systemd would for a reload
// (ExecReload sends SIGHUP): each SIGHUP gives RELOADING=1 with the
// monotonic time, then READY=1; a valid new file is applied (the state
// endpoint shows the changed device), a broken one is refused and the
// process keeps running with the old one.
func TestSighupReloadIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs facgw")
	}
	sim := startSim(t, facsim.Options{Manual: true, Seed: 5})
	dir := t.TempDir()
	conn, sock := listenNotify(t, dir)
	cfgFile := filepath.Join(dir, "facgw.yaml")
	write := func(crac1Poll string) {
		t.Helper()
		cfg := fmt.Sprintf(`site: hup-test
gateway: gw-1
state_dir: %s
http: {listen: "127.0.0.1:0"}
devices:
  - {id: crac-1, profile: liebert-icom-crac, transport: modbus-tcp, address: %q, poll: {default: %s}}
  - {id: crac-2, profile: liebert-icom-crac, transport: modbus-tcp, address: %q, poll: {default: 100ms}}
`, filepath.Join(dir, "state"), sim.Addr("crac-1"), crac1Poll, sim.Addr("crac-2"))
		if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("100ms")
	cmd := exec.Command(facgwBinary(t), "run", "-config", cfgFile)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	var logs strings.Builder
	cmd.Stderr = &logs
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	addrc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`dashboard: +http://([0-9.:]+)/`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()

	buf := make([]byte, 4096)
	next := func() string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("notify socket: %v\nlogs:\n%s", err, logs.String())
		}
		return string(buf[:n])
	}
	if got := next(); !strings.HasPrefix(got, "READY=1") {
		t.Fatalf("first notification: got %q, want READY=1", got)
	}
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(30 * time.Second):
		t.Fatal("facgw printed no dashboard address")
	}
	state := func() (reload struct {
		Last struct {
			OK      bool     `json:"ok"`
			Errors  []string `json:"errors"`
			Changed []string `json:"devices_changed"`
		} `json:"last"`
		Succeeded, Failed int
	}) {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/api/v1/state")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct {
			Reload json.RawMessage `json:"reload"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Reload) == 0 {
			t.Fatal("state has no reload object after a SIGHUP")
		}
		if err := json.Unmarshal(doc.Reload, &reload); err != nil {
			t.Fatal(err)
		}
		return reload
	}
	reloadAndWait := func() string {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if got := next(); !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*$`).MatchString(got) {
			t.Fatalf("after SIGHUP: got %q, want RELOADING=1 with MONOTONIC_USEC", got)
		}
		got := next()
		if !strings.HasPrefix(got, "READY=1\n") {
			t.Fatalf("after RELOADING: got %q, want READY=1", got)
		}
		return got
	}

	write("150ms")
	if got := reloadAndWait(); !strings.Contains(got, "STATUS=configuration reloaded") {
		t.Errorf("READY after a good reload: got %q, want the reloaded status", got)
	}
	if r := state(); !r.Last.OK || r.Succeeded != 1 || len(r.Last.Changed) != 1 || r.Last.Changed[0] != "crac-1" {
		t.Errorf("state after a good reload: got %+v, want ok with crac-1 changed", r)
	}

	os.WriteFile(cfgFile, []byte("site: hup-test\ngateway: gw-1\ndevices: [\n"), 0o644)
	if got := reloadAndWait(); !strings.Contains(got, "refused") {
		t.Errorf("READY after a refused reload: got %q, want the refused status", got)
	}
	if r := state(); r.Last.OK || r.Failed != 1 || len(r.Last.Errors) == 0 || !strings.Contains(r.Last.Errors[0], "facgw.yaml:") {
		t.Errorf("state after a broken file: got %+v, want a failed attempt located in facgw.yaml", r)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("facgw died after a refused reload: %v\n%s", err, logs.String())
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	if !strings.Contains(logs.String(), "configuration reload refused") || !strings.Contains(logs.String(), "configuration reloaded") {
		t.Errorf("the log lacks the reload outcomes:\n%s", logs.String())
	}
}

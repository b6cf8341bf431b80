package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/facsim"
	"github.com/facgw/facgw/internal/testpeer"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// facgwBinary builds facgw once for the tests that run it as a process.
func facgwBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "facgw-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "facgw")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// TestServiceUnitVerifies runs systemd's own checker on deploy/facgw.service.
// The unit names /usr/bin/facgw, which verify requires to exist: the copy
// checked points at a built binary instead, nothing else changes.
func TestServiceUnitVerifies(t *testing.T) {
	testpeer.Require(t, "systemd", "/usr/bin/systemd-analyze")
	unit, err := os.ReadFile("../../deploy/facgw.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "WatchdogSec=", "Restart=always", "StateDirectory=facgw", "ConfigurationDirectory=facgw",
		"ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "SupplementaryGroups=dialout", "User=facgw"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %s", want)
		}
	}
	path := filepath.Join(t.TempDir(), "facgw.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/bin/facgw", facgwBinary(t))), 0o644)
	out, err := exec.Command("/usr/bin/systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSdNotifyIntegration runs facgw as systemd would for Type=notify with
// a watchdog: a socket in NOTIFY_SOCKET receives READY=1 once polling has
// started, then regular WATCHDOG=1 pings.
func TestSdNotifyIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs facgw")
	}
	sim := startSim(t, facsim.Options{Manual: true, Seed: 5})
	dir := t.TempDir()
	conn, sock := listenNotify(t, dir)
	// Secrets configured three ways (environment, file, literal) and used
	// on failing paths (a broker that refuses connections, a v3 agent
	// given wrong passphrases) must never reach the log.
	secrets := []string{"mqtt-secret-from-env", "auth-secret-from-file", "priv-secret-literal"}
	os.WriteFile(filepath.Join(dir, "auth.pass"), []byte(secrets[1]+"\n"), 0o600)
	cfg := fmt.Sprintf(`site: sd-test
gateway: gw-1
state_dir: %s
http: {listen: "127.0.0.1:0"}
mqtt:
  brokers:
    - {name: a, url: "tcp://127.0.0.1:%d", username: facgw, password: {env: FACGW_TEST_MQTT_SECRET}}
devices:
  - {id: crac-1, profile: liebert-icom-crac, transport: modbus-tcp, address: %q, poll: {default: 100ms}}
  - id: sw-core1
    profile: generic-switch-snmp
    transport: snmp
    address: %q
    poll: {default: 100ms}
    snmp: {version: "3", user: facgw, auth_protocol: SHA-256, auth_password: {file: auth.pass}, priv_protocol: AES-256, priv_password: %s}
`, filepath.Join(dir, "state"), testpeer.FreePort(t), sim.Addr("crac-1"), sim.Addr("sw-core1"), secrets[2])
	cfgFile := filepath.Join(dir, "facgw.yaml")
	os.WriteFile(cfgFile, []byte(cfg), 0o644)
	cmd := exec.Command(facgwBinary(t), "run", "-config", cfgFile)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=1000000", "JOURNAL_STREAM=8:1234", "FACGW_TEST_MQTT_SECRET="+secrets[0])
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	var got []string
	buf := make([]byte, 4096)
	for len(got) < 4 {
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v\nlogs:\n%s", got, err, logs.String())
		}
		got = append(got, string(buf[:n]))
	}
	if !strings.HasPrefix(got[0], "READY=1\nSTATUS=polling 2 devices") {
		t.Errorf("first notification: got %q, want READY=1 with a status", got[0])
	}
	for _, g := range got[1:] {
		if g != "WATCHDOG=1" {
			t.Errorf("got %q, want WATCHDOG=1 pings after READY", g)
		}
	}
	// Let the failing paths log (refused broker, refused v3 credentials).
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := 0; i < 3; i++ {
		conn.Read(buf)
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	for _, sec := range secrets {
		if strings.Contains(logs.String(), sec) {
			t.Errorf("the log contains the secret %q", sec)
		}
	}
	if !strings.Contains(logs.String(), "mqtt") || !strings.Contains(logs.String(), "refused") {
		t.Errorf("the log does not show the refused broker, so the secret check saw nothing:\n%s", logs.String())
	}
	// Under systemd (JOURNAL_STREAM set) the log is one JSON object a line.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.HasPrefix(line, "{") {
			t.Errorf("log line is not JSON: %q", line)
			break
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// listenNotify opens the socket a test gives facgw as NOTIFY_SOCKET, as
// systemd would for Type=notify, in dir; it is closed when the test ends.
func listenNotify(t testing.TB, dir string) (*net.UnixConn, string) {
	t.Helper()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, sock
}

// Package testpeer starts real peer programs (a Modbus TCP server, and later
// an MQTT broker, SNMP agents, VictoriaMetrics, Alertmanager...) for facgw's
// integration tests. It is a normal (non-_test) package so that the tests of
// every other package can import it; production code must not.
//
// Contracts shared by every helper here:
//
//   - A peer listens on 127.0.0.1 only, on a port chosen at run time
//     ([FreePort]); nothing uses a fixed port, because other programs on the
//     machine may hold one.
//   - A peer keeps its configuration, state and logs in the test's
//     t.TempDir(), so nothing outside the temp dir is touched.
//   - A peer runs in its own process group and is stopped through t.Cleanup
//     by its own PID / process group, also when the test fails. Nothing here
//     ever signals a process it did not start.
//   - A test that needs software which is not installed is skipped, naming
//     the Debian package to install (run `make test`, which installs them
//     with deploy/test-deps.sh); with CI=true it fails instead ([Require]).
//     In -short mode every integration test is skipped.
//   - Functions and methods that take or hold a testing.TB may call
//     t.Fatal / t.Skip and so must be called from the test's own goroutine.
//   - Nothing asserts on timing: readiness is polled a bounded number of
//     times and only the outcome is checked.
package testpeer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// DefaultTries is the default number of readiness polls made by
// [StartProcess] (and so by [StartPymodbus]). Polls are [PollInterval] apart,
// so a peer gets at least DefaultTries*PollInterval to come up.
const DefaultTries = 200

// PollInterval is the pause between two readiness polls.
const PollInterval = 50 * time.Millisecond

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// binds 127.0.0.1:0, reads the port the kernel chose and closes the listener.
// Another process could take the port before the peer binds it; that is rare
// enough on a test machine, and the peer then fails to start with a clear
// error rather than talking to the wrong program.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testpeer: find free tcp port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("testpeer: close probe listener: %v", err)
	}
	return port
}

// FreeUDPPort is [FreePort] for UDP (SNMP agents and trap receivers): it binds
// udp 127.0.0.1:0, closes the socket and returns the port.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testpeer: find free udp port: %v", err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	if err := c.Close(); err != nil {
		t.Fatalf("testpeer: close probe socket: %v", err)
	}
	return port
}

// Require skips the test unless every one of paths exists. what names the
// Debian package that provides them (e.g. "python3-pymodbus"), and is what
// the skip message tells the developer to install. A path containing a slash
// is checked with os.Stat (use absolute paths for programs in /usr/sbin,
// which may not be on PATH); a bare name is looked up on PATH.
//
// With the environment variable CI=true a missing path fails the test
// (t.Fatalf) instead of skipping it, so CI cannot pass by skipping its
// integration tests. In -short mode (go test -short) Require always skips:
// every integration test calls it, directly or through a Start helper.
func Require(t testing.TB, what string, paths ...string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("testpeer: skipping integration test needing %s in -short mode", what)
	}
	var missing []string
	for _, p := range paths {
		if strings.ContainsRune(p, '/') {
			if _, err := os.Stat(p); err != nil {
				missing = append(missing, p)
			}
			continue
		}
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("testpeer: %s not found: install the Debian package %s "+
		"(apt-get install %s, or run `make test`, which installs the test dependencies with deploy/test-deps.sh)",
		strings.Join(missing, ", "), what, what)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s [CI=true: missing test dependencies are an error]", msg)
	}
	t.Skip(msg)
}

// WaitTCP waits until addr ("host:port") accepts a TCP connection, trying at
// most tries times, [PollInterval] apart (tries < 1 means [DefaultTries]).
// The probe connection is closed at once. If addr never accepts, the test
// fails with the last dial error. To also notice a peer process that exits
// while being waited for, use [WithReadyTCP] with [StartProcess] instead.
func WaitTCP(t testing.TB, addr string, tries int) {
	t.Helper()
	if err := pollReady(tries, nil, func() error { return dialTCP(addr) }); err != nil {
		t.Fatalf("testpeer: %s never accepted a connection: %v", addr, err)
	}
}

// dialTCP connects to addr and closes the connection.
func dialTCP(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	return c.Close()
}

// errExited is returned by pollReady when exited is closed before check
// succeeds.
var errExited = fmt.Errorf("process exited")

// pollReady calls check until it returns nil, at most tries times (tries < 1
// means DefaultTries), sleeping PollInterval between calls. It gives up early
// with errExited when exited (which may be nil) is closed. It returns the last
// error of check when all tries fail.
func pollReady(tries int, exited <-chan struct{}, check func() error) error {
	if tries < 1 {
		tries = DefaultTries
	}
	var last error
	for i := 0; i < tries; i++ {
		select {
		case <-exited:
			return errExited
		default:
		}
		if last = check(); last == nil {
			return nil
		}
		if i == tries-1 {
			break
		}
		select {
		case <-exited:
			return errExited
		case <-time.After(PollInterval):
		}
	}
	return fmt.Errorf("not ready after %d tries: %w", tries, last)
}

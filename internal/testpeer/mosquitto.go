package testpeer

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Mosquitto is a broker process started for a test.
type Mosquitto struct {
	*Process
	Addr string // 127.0.0.1:port of the default listener
	Dir  string // the broker's temp dir (config, files the test adds)
}

// URL returns tcp://Addr.
func (m *Mosquitto) URL() string { return "tcp://" + m.Addr }

// StartMosquitto runs Debian's mosquitto on a free loopback port with the
// test settings below plus extra config lines, and stops it when the test
// ends. If extra starts its own "listener" lines, the default anonymous
// listener is still the first one; readyAddrs are extra addresses to wait
// for. Without a password_file in extra, anonymous clients are allowed.
func StartMosquitto(t testing.TB, extra string, readyAddrs ...string) *Mosquitto {
	t.Helper()
	Require(t, "mosquitto", "/usr/sbin/mosquitto")
	dir := t.TempDir()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	_, port, _ := net.SplitHostPort(addr)
	// user root: run as root, mosquitto drops to its own user, which cannot
	// read a 0700 temp dir.
	conf := fmt.Sprintf(`# written by %s
user root
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
# a slow test subscriber must not lose QoS 1 messages in the broker
max_queued_messages 0
per_listener_settings false
%s
listener %s 127.0.0.1
`, t.Name(), extra, port)
	if !strings.Contains(extra, "password_file") {
		conf += "allow_anonymous true\n"
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := []Option{WithDir(dir), WithReadyTCP(addr)}
	for _, a := range readyAddrs {
		opts = append(opts, WithReadyTCP(a))
	}
	p := StartProcess(t, "/usr/sbin/mosquitto", []string{"-c", path}, opts...)
	return &Mosquitto{Process: p, Addr: addr, Dir: dir}
}

package testpeer

import (
	"fmt"
	"path/filepath"
	"testing"
)

// StartVictoriaMetrics runs Debian's victoria-metrics (it accepts InfluxDB
// v2 line-protocol writes on /api/v2/write) on a free loopback port with a
// data directory of its own, and stops it when the test ends. It returns
// the base URL, http://127.0.0.1:port.
func StartVictoriaMetrics(t testing.TB) (url string, p *Process) {
	t.Helper()
	Require(t, "victoria-metrics", "/usr/bin/victoria-metrics")
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	args := []string{
		"-httpListenAddr=" + addr,
		"-storageDataPath=" + filepath.Join(t.TempDir(), "vm"),
		"-retentionPeriod=100y",
		"-search.latencyOffset=0s",
		"-search.disableCache",
	}
	p = StartProcess(t, "/usr/bin/victoria-metrics", args, WithReadyTCP(addr))
	return "http://" + addr, p
}

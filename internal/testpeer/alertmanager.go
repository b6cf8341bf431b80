package testpeer

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// AlertmanagerPath is Debian's Prometheus Alertmanager (0.25 on bookworm).
const AlertmanagerPath = "/usr/bin/prometheus-alertmanager"

// alertmanagerConfig routes every alert to a receiver without integrations:
// the tests read alerts back through the API, nothing is notified. (Not
// "null": YAML reads that as nothing.)
const alertmanagerConfig = `route:
  receiver: blackhole
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: blackhole
`

// AlertmanagerOption configures [StartAlertmanager].
type AlertmanagerOption func(*amConfig)

type amConfig struct {
	config      string
	clusterPort int
	peers       []string
}

// AlertmanagerConfig replaces the default configuration (one route to a
// receiver without integrations) with yaml.
func AlertmanagerConfig(yaml string) AlertmanagerOption {
	return func(c *amConfig) { c.config = yaml }
}

// AlertmanagerCluster makes the Alertmanager a cluster member listening
// for gossip on 127.0.0.1:port (a [FreePort]) and joining the members at
// peers ("127.0.0.1:port" of their cluster ports). Without this option
// clustering is disabled.
func AlertmanagerCluster(port int, peers ...string) AlertmanagerOption {
	return func(c *amConfig) { c.clusterPort, c.peers = port, peers }
}

// StartAlertmanager starts a real Prometheus Alertmanager on 127.0.0.1 at a
// free port, with its configuration and storage in the test's temp dir, and
// returns its base URL ("http://127.0.0.1:port") once GET /-/ready answers
// 200. The Process lets an outage test Kill it and Restart it on the same
// port (alerts live in memory and are lost; silences are kept in its
// storage). The test is skipped if prometheus-alertmanager is not installed
// (failed with CI=true), see [Require].
func StartAlertmanager(t testing.TB, opts ...AlertmanagerOption) (url string, p *Process) {
	t.Helper()
	Require(t, "prometheus-alertmanager", AlertmanagerPath)
	c := amConfig{config: alertmanagerConfig}
	for _, o := range opts {
		o(&c)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte(c.config), 0o644); err != nil {
		t.Fatalf("testpeer: write alertmanager config: %v", err)
	}
	storage := filepath.Join(dir, "data")
	if err := os.Mkdir(storage, 0o755); err != nil {
		t.Fatalf("testpeer: alertmanager storage: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	url = "http://" + addr
	args := []string{
		"--config.file=" + conf,
		"--storage.path=" + storage,
		"--web.listen-address=" + addr,
		"--log.level=debug",
	}
	if c.clusterPort == 0 {
		args = append(args, "--cluster.listen-address=") // empty: no clustering
	} else {
		args = append(args,
			"--cluster.listen-address=127.0.0.1:"+strconv.Itoa(c.clusterPort),
			"--cluster.advertise-address=127.0.0.1:"+strconv.Itoa(c.clusterPort))
		for _, peer := range c.peers {
			args = append(args, "--cluster.peer="+peer)
		}
	}
	client := &http.Client{Timeout: time.Second}
	ready := func() error {
		resp, err := client.Get(url + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /-/ready: %s", resp.Status)
		}
		return nil
	}
	p = StartProcess(t, AlertmanagerPath, args, WithDir(dir), WithReadyTCP(addr), WithReady(ready))
	return url, p
}

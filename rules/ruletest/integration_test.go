package ruletest

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/testpeer"
	"github.com/facgw/facgw/rules"
)

// TestReplayMosquittoSubIntegration publishes the telemetry of
// testdata/replay.mqtt (with the status and retained-state messages around
// it) through a real mosquitto, records it with mosquitto_sub -v, which
// is how an operator captures a replay, and replays the recording.
func TestReplayMosquittoSubIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	testpeer.Require(t, "mosquitto-clients", "/usr/bin/mosquitto_pub", "/usr/bin/mosquitto_sub")
	broker := testpeer.StartMosquitto(t, "")
	host, port := "127.0.0.1", strings.TrimPrefix(broker.Addr, "127.0.0.1:")
	sub := testpeer.StartProcess(t, "/usr/bin/mosquitto_sub",
		[]string{"-h", host, "-p", port, "-q", "1", "-v", "-t", "facgw/#"})
	pub := func(topic, payload string) {
		t.Helper()
		out, err := exec.Command("/usr/bin/mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-t", topic, "-m", payload).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
	}
	// The subscription is up once a probe comes through.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; !strings.Contains(sub.Stdout(), "facgw/probe"); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto_sub never received a probe; stdout %q", sub.Stdout())
		}
		pub("facgw/probe", strconv.Itoa(i))
		time.Sleep(50 * time.Millisecond)
	}

	data, err := os.ReadFile("testdata/replay.mqtt")
	if err != nil {
		t.Fatal(err)
	}
	last := ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		topic, payload := "facgw/pangyo-b3/gw-1/telemetry/ups-1", line
		if !strings.HasPrefix(line, "{") {
			topic, payload, _ = strings.Cut(line, " ")
		}
		pub(topic, payload)
		last = payload
	}
	for !strings.Contains(sub.Stdout(), last) {
		if time.Now().After(deadline) {
			t.Fatalf("the last message never arrived; got %q", sub.Stdout())
		}
		time.Sleep(50 * time.Millisecond)
	}
	sub.Stop()

	set, err := rules.LoadFiles("../testdata/packs/power.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = Replay(set, []rules.Device{{ID: "ups-1", Class: "ups", Profile: "apc-smart-ups-snmp"}}, strings.NewReader(sub.Stdout()), FormatMQTTJSON, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := "2026-11-26T12:00:06Z firing power/on-battery@ups-1 major ups-1 on battery, runtime 1740 s\n" +
		"2026-11-26T12:00:12Z resolved power/on-battery@ups-1 major ups-1 on battery, runtime 1740 s\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s\nfrom the recording\n%s", out.String(), want, sub.Stdout())
	}
}

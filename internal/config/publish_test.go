package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPublishingBad(t *testing.T) {
	t.Setenv("FACGW_TEST_MQTT_PASS", "pw")
	_, err := Load("testdata/publish/bad.yaml", testRegistry(t))
	if err == nil {
		t.Fatal("bad publishing config accepted")
	}
	want := []string{
		`testdata/publish/bad.yaml:6:3: mqtt.prefix: topic prefix "facgw/#" must not contain + or # nor start or end with /`,
		`testdata/publish/bad.yaml:7:3: mqtt.keepalive: keepalive must be 1s..10m, got 100ms`,
		`testdata/publish/bad.yaml:8:12: mqtt.outbox.max_bytes: outbox max_bytes must be at least 1MiB, got 10000 bytes`,
		`testdata/publish/bad.yaml:8:29: mqtt.outbox.max_age: outbox max_age must be 0 (no bound) or at least 1m, got 5s`,
		`testdata/publish/bad.yaml:10:17: mqtt.brokers[0].url: broker url "http://127.0.0.1:1883": scheme must be tcp://, ssl://, mqtt:// or mqtts://`,
		`testdata/publish/bad.yaml:11:8: mqtt.brokers[1].name: duplicate broker name "a" (first at line 10)`,
		`testdata/publish/bad.yaml:11:17: mqtt.brokers[1].url: broker url "tcp://127.0.0.1": missing port in address, want host:port`,
		`testdata/publish/bad.yaml:14:7: mqtt.brokers[2].password: a password needs a username`,
		`testdata/publish/bad.yaml:15:7: mqtt.brokers[2].tls: tls settings need an ssl:// (or mqtts://) url`,
		`testdata/publish/bad.yaml:16:52: mqtt.brokers[3].tls.ca_file: ca_file: stat testdata/publish/missing.pem: no such file or directory`,
		`testdata/publish/bad.yaml:18:3: influx.url: influx url "127.0.0.1:8428": want http://host:port or https://host:port`,
		`testdata/publish/bad.yaml:21:3: influx.flush_interval: flush_interval must be 10ms..1m, got 5m0s`,
		`testdata/publish/bad.yaml:22:23: influx.outbox.max_bytes: want a size such as 256MiB, got "12 parsecs"`,
	}
	got := messages(err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPublishingGood(t *testing.T) {
	t.Setenv("FACGW_TEST_MQTT_PASS", "pw")
	t.Setenv("FACGW_TEST_INFLUX_TOKEN", "tok")
	cfg, err := Load("testdata/publish/good.yaml", testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.MQTT
	if m.Prefix != "facgw/lab" || m.KeepAlive != DefaultKeepAlive || m.Outbox.MaxBytes != 64<<20 || m.Outbox.MaxAge != 24*time.Hour {
		t.Errorf("mqtt defaults: got prefix %q keepalive %s outbox %+v", m.Prefix, m.KeepAlive, m.Outbox)
	}
	b := m.Brokers[1]
	if b.ClientID != "facgw-lab-gw-1" || b.Password.Reveal() != "pw" || b.TLS.CAFile != filepath.Join("testdata", "publish", "ca.pem") {
		t.Errorf("broker b: got client id %q, tls %+v", b.ClientID, b.TLS)
	}
	in := cfg.Influx
	if in.Token.Reveal() != "tok" || in.BatchSize != DefaultBatchSize || in.FlushInterval != DefaultFlushInterval || in.Outbox.MaxBytes != DefaultOutboxBytes {
		t.Errorf("influx defaults: got %+v", in)
	}
}

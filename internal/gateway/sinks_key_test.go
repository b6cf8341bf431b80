package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/pipeline/mqtt"
)

// selfSignedCA returns a CA certificate in PEM.
func selfSignedCA(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestPlanMQTTSeesRenewedCA: a broker's CA file renewed in place (same
// path, new contents) is a changed broker for a reload; the same file
// unchanged is not.
func TestPlanMQTTSeesRenewedCA(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, selfSignedCA(t, "ca-2025"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &config.MQTT{Prefix: "facgw/s", KeepAlive: 30 * time.Second,
		Brokers: []config.Broker{{Name: "a", URL: "ssl://127.0.0.1:8883", TLS: &config.TLS{CAFile: ca}}}}
	g := &Gateway{cfg: &config.Config{Site: "s", Gateway: "g", StateDir: dir, MQTT: m}, log: slog.New(slog.DiscardHandler)}
	g.pub = &publishing{info: mqtt.StatusInfo{Prefix: "facgw/s", Site: "s", Gateway: "g"}}
	pub, err := mqtt.New(g.brokerConfig(m, m.Brokers[0]), g.pub.info, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	running := map[string]*mqtt.Publisher{"a": pub}
	keys := map[string]string{"a": brokerKey(m.Brokers[0])}

	p := &sinksPlan{reconf: map[string]mqtt.BrokerConfig{}}
	if err := g.planMQTT(p, m, m, running, keys); err != nil {
		t.Fatal(err)
	}
	if p.mqttApply || len(p.reconf) != 0 {
		t.Errorf("unchanged: got apply %v, reconf %v; want nothing", p.mqttApply, p.reconf)
	}
	if err := os.WriteFile(ca, selfSignedCA(t, "ca-2026"), 0o644); err != nil {
		t.Fatal(err)
	}
	p = &sinksPlan{reconf: map[string]mqtt.BrokerConfig{}}
	if err := g.planMQTT(p, m, m, running, keys); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.reconf["a"]; !ok || len(p.summary) != 1 || p.summary[0] != "mqtt.brokers[a] changed" {
		t.Errorf("renewed CA: got reconf %v, summary %v; want broker a changed", p.reconf, p.summary)
	}
}

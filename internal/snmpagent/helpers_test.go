package snmpagent

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// OIDs of the test device: a UPS (RFC 1628), an APC rack PDU outlet and a
// switch port, as the simulator will serve them.
const (
	oidUpsManufacturer  = "1.3.6.1.2.1.33.1.1.1.0"
	oidUpsBatteryStatus = "1.3.6.1.2.1.33.1.2.1.0"
	oidUpsSecondsOnBatt = "1.3.6.1.2.1.33.1.2.2.0"
	oidUpsMinutesLeft   = "1.3.6.1.2.1.33.1.2.3.0"
	oidUpsCharge        = "1.3.6.1.2.1.33.1.2.4.0"
	oidUpsInputLineBads = "1.3.6.1.2.1.33.1.3.1.0"
	oidUpsOutputSource  = "1.3.6.1.2.1.33.1.4.1.0"
	oidUpsOutputVolts1  = "1.3.6.1.2.1.33.1.4.4.1.2.1"
	oidUpsAlarmsPresent = "1.3.6.1.2.1.33.1.6.1.0"
	oidSysObjectID      = "1.3.6.1.2.1.1.2.0"
	oidSysName          = "1.3.6.1.2.1.1.5.0"
	oidIfOperStatus1    = "1.3.6.1.2.1.2.2.1.8.1"
	oidIfOperStatus10   = "1.3.6.1.2.1.2.2.1.8.10"
	oidIPAdEntAddr      = "1.3.6.1.2.1.4.20.1.1.10.0.0.21"
	oidIfHCInOctets1    = "1.3.6.1.2.1.31.1.1.1.6.1"
	oidOutletCommand3   = "1.3.6.1.4.1.318.1.1.12.3.3.1.1.4.3" // rPDUOutletControlOutletCommand
	oidOutletState3     = "1.3.6.1.4.1.318.1.1.12.3.5.1.1.4.3" // rPDUOutletStatusOutletState
	oidUpsTrapOnBattery = "1.3.6.1.2.1.33.2.1"
)

// testStore returns the test device's data. Setting the outlet command to
// immediateOff(2) or immediateOn(1) switches the outlet state; other
// commands are rejected with wrongValue.
func testStore(t testing.TB) *Store {
	t.Helper()
	s := NewStore()
	for _, vb := range []Varbind{
		{oidSysObjectID, ObjectIdentifier("1.3.6.1.4.1.318.1.3.27")},
		{oidIfOperStatus1, Integer(1)},
		{oidIfOperStatus10, Integer(2)},
		{oidIPAdEntAddr, IPAddress("10.0.0.21")},
		{oidIfHCInOctets1, Counter64(1 << 40)},
		{oidUpsManufacturer, OctetString("facsim")},
		{oidUpsBatteryStatus, Integer(2)},
		{oidUpsSecondsOnBatt, Integer(0)},
		{oidUpsMinutesLeft, Integer(42)},
		{oidUpsCharge, Integer(100)},
		{oidUpsInputLineBads, Counter32(7)},
		{oidUpsOutputSource, Integer(3)},
		{oidUpsOutputVolts1, Integer(230)},
		{oidUpsAlarmsPresent, Gauge32(0)},
		{oidOutletState3, Integer(1)},
		{"1.3.6.1.2.1.1.3.0", TimeTicks(12345)},
	} {
		if err := s.Set(vb.OID, vb.Value); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetWritable(oidSysName, OctetString("ups-1"), nil); err != nil {
		t.Fatal(err)
	}
	err := s.SetWritable(oidOutletCommand3, Integer(1), func(_ string, v Value) error {
		switch v.Int {
		case 1, 2:
			return s.Set(oidOutletState3, Integer(int32(v.Int)))
		}
		return StatusError(gosnmp.WrongValue)
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startAgent serves a with cfg on a new 127.0.0.1 port and returns the
// agent and its "host:port". The test's cleanup stops it.
func startAgent(t testing.TB, cfg Config) (*Agent, string) {
	t.Helper()
	a, err := New(testStore(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, serve(t, a)
}

func serve(t testing.TB, a *Agent) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return pc.LocalAddr().String()
}

// v3Users are the users every test agent knows, one per protocol pairing
// the tests exercise.
var v3Users = []User{
	{Name: "sha256aes256", AuthProto: AuthSHA256, AuthPass: "auth-pass-256", PrivProto: PrivAES256, PrivPass: "priv-pass-256"},
	{Name: "shaaes", AuthProto: AuthSHA, AuthPass: "auth-pass-sha", PrivProto: PrivAES, PrivPass: "priv-pass-aes"},
	{Name: "shaaes256", AuthProto: AuthSHA, AuthPass: "auth-pass-sha", PrivProto: PrivAES256, PrivPass: "priv-pass-aes"},
	{Name: "sha256auth", AuthProto: AuthSHA256, AuthPass: "auth-only-256"},
	{Name: "shaauth", AuthProto: AuthSHA, AuthPass: "auth-only-sha"},
	{Name: "md5des", AuthProto: AuthMD5, AuthPass: "auth-pass-md5", PrivProto: PrivDES, PrivPass: "priv-pass-des"},
	{Name: "sha512aes192", AuthProto: AuthSHA512, AuthPass: "auth-pass-512", PrivProto: PrivAES192, PrivPass: "priv-pass-192"},
	{Name: "readonly", AuthProto: AuthSHA256, AuthPass: "auth-pass-ro!", PrivProto: PrivAES, PrivPass: "priv-pass-ro!", ReadOnly: true},
}

func testConfig() Config {
	return Config{
		Communities:      []string{"public"},
		WriteCommunities: []string{"private"},
		Users:            v3Users,
	}
}

// client returns a connected gosnmp client for addr. The timeout bounds
// each attempt; tests never assert on it.
func client(t testing.TB, addr string, v gosnmp.SnmpVersion, community string, timeout time.Duration) *gosnmp.GoSNMP {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	g := &gosnmp.GoSNMP{
		Target:    host,
		Port:      uint16(p),
		Version:   v,
		Community: community,
		Timeout:   timeout,
		Retries:   0,
		MaxOids:   gosnmp.MaxOids,
	}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Conn.Close() })
	return g
}

// v3Client returns a connected gosnmp SNMPv3 client for u.
func v3Client(t testing.TB, addr string, u User, timeout time.Duration) *gosnmp.GoSNMP {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	n, err := u.normalize()
	if err != nil {
		t.Fatal(err)
	}
	g := &gosnmp.GoSNMP{
		Target:        host,
		Port:          uint16(p),
		Version:       gosnmp.Version3,
		Timeout:       timeout,
		Retries:       0,
		MaxOids:       gosnmp.MaxOids,
		SecurityModel: gosnmp.UserSecurityModel,
		MsgFlags:      n.level(),
		SecurityParameters: &gosnmp.UsmSecurityParameters{
			UserName:                 n.Name,
			AuthenticationProtocol:   n.AuthProto.gosnmp(),
			AuthenticationPassphrase: n.AuthPass,
			PrivacyProtocol:          n.PrivProto.gosnmp(),
			PrivacyPassphrase:        n.PrivPass,
		},
	}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Conn.Close() })
	return g
}

// storeVarbinds lists the store in OID order, without Counter64 values if
// v1 is set.
func storeVarbinds(s *Store, v1 bool) []Varbind {
	var out []Varbind
	s.Walk(func(name string, v Value) bool {
		if !v1 || v.Type != gosnmp.Counter64 {
			out = append(out, Varbind{name, v})
		}
		return true
	})
	return out
}

func varbinds(pdus []gosnmp.SnmpPDU) []Varbind {
	out := make([]Varbind, len(pdus))
	for i, p := range pdus {
		out[i] = Varbind{trimDot(p.Name), ValueFromPDU(p)}
	}
	return out
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func logContains(path, s string) error {
	if strings.Contains(readFile(path), s) {
		return nil
	}
	return fmt.Errorf("%s does not contain %q yet", path, s)
}

// eventually polls cond until it holds, failing after a minute: for
// counters the agent updates on its own goroutine after a client gave up.
// The deadline only guards against a hang; nothing asserts on timing.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

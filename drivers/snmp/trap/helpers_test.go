package trap

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/snmpagent"
)

const (
	oidOnBattery    = "1.3.6.1.2.1.33.2.1"
	oidLinkDown     = "1.3.6.1.6.3.1.1.5.3"
	oidMinutesLeft  = "1.3.6.1.2.1.33.1.2.3.0"
	oidIfIndex1     = "1.3.6.1.2.1.2.2.1.1.1"
	oidAPCOnBattery = "1.3.6.1.4.1.318.0.5" // PowerNet-MIB upsOnBattery, as v1 enterprise 318 specific 5
)

// Test users: one per protocol pairing the tests exercise.
var (
	userSHA256 = User{Name: "ups-sha256", AuthProto: snmpagent.AuthSHA256, AuthPass: "trap-auth-256", PrivProto: snmpagent.PrivAES256, PrivPass: "trap-priv-256"}
	userSHA    = User{Name: "ups-sha", AuthProto: snmpagent.AuthSHA, AuthPass: "trap-auth-sha", PrivProto: snmpagent.PrivAES, PrivPass: "trap-priv-aes"}
	userAuth   = User{Name: "ups-auth", AuthProto: snmpagent.AuthSHA256, AuthPass: "trap-auth-only"}
)

// testConfig accepts community "public" and the test users from two
// loopback devices.
func testConfig() Config {
	return Config{
		Listen:      "127.0.0.1:0",
		Communities: []string{"public"},
		V3Users:     []User{userSHA256, userSHA, userAuth},
		Sources:     map[string]string{"127.0.0.1": "ups-1", "127.0.0.2": "pdu-1"},
		Names:       map[string]string{oidAPCOnBattery: "apcUpsOnBattery"},
		QueueSize:   4096,
	}
}

// startListener starts a listener with cfg whose events arrive on the
// returned channel; it is closed by the test's cleanup.
func startListener(t testing.TB, cfg Config) (*Listener, string, <-chan Event) {
	t.Helper()
	events := make(chan Event, 4096)
	l, err := New(cfg, func(ev Event) { events <- ev })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		l.Close()
	})
	return l, l.Addr().String(), events
}

// waitEvent returns the next event; the long deadline only guards against
// a hang, nothing asserts on timing.
func waitEvent(t testing.TB, events <-chan Event) Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no event")
		return Event{}
	}
}

// noEvent checks that nothing is queued for the handler once the
// listener has read n datagrams in all.
func noEvent(t testing.TB, l *Listener, events <-chan Event, n uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for l.Stats().Received < n {
		if time.Now().After(deadline) {
			t.Fatalf("listener read %d datagrams, want %d", l.Stats().Received, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	l.Close() // drains the queue into events
	select {
	case ev := <-events:
		t.Errorf("refused notification passed on: %+v", ev)
	default:
	}
}

var loopback = netip.MustParseAddrPort("127.0.0.1:40000")

// encodeV1 encodes an SNMPv1 trap.
func encodeV1(t testing.TB, community, enterprise string, generic, specific int, vars []gosnmp.SnmpPDU) []byte {
	t.Helper()
	p := &gosnmp.SnmpPacket{Version: gosnmp.Version1, Community: community, PDUType: gosnmp.Trap, Variables: vars}
	p.Enterprise, p.AgentAddress, p.GenericTrap, p.SpecificTrap, p.Timestamp = enterprise, "10.0.0.21", generic, specific, 4242
	b, err := p.MarshalMsg()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// notification returns the varbinds of an SNMPv2 notification.
func notification(trapOID string, vars ...gosnmp.SnmpPDU) []gosnmp.SnmpPDU {
	return append([]gosnmp.SnmpPDU{
		{Name: oidSysUpTime, Type: gosnmp.TimeTicks, Value: uint32(4242)},
		{Name: oidSnmpTrapOID, Type: gosnmp.ObjectIdentifier, Value: trapOID},
	}, vars...)
}

// encodeV2c encodes an SNMPv2c trap or inform.
func encodeV2c(t testing.TB, community string, pdu gosnmp.PDUType, vars []gosnmp.SnmpPDU) []byte {
	t.Helper()
	p := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: community, PDUType: pdu, RequestID: 77, Variables: vars}
	b, err := p.MarshalMsg()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encodeV3Trap encodes an SNMPv3 trap from the engine engineID as u.
func encodeV3Trap(t testing.TB, u User, engineID string, vars []gosnmp.SnmpPDU) []byte {
	t.Helper()
	level := gosnmp.NoAuthNoPriv
	auth, priv := gosnmp.NoAuth, gosnmp.NoPriv
	switch u.AuthProto {
	case snmpagent.AuthSHA:
		auth = gosnmp.SHA
	case snmpagent.AuthSHA256:
		auth = gosnmp.SHA256
	}
	switch u.PrivProto {
	case snmpagent.PrivAES:
		priv = gosnmp.AES
	case snmpagent.PrivAES256:
		priv = gosnmp.AES256
	}
	if auth != gosnmp.NoAuth {
		level = gosnmp.AuthNoPriv
	}
	if priv != gosnmp.NoPriv {
		level = gosnmp.AuthPriv
	}
	sp := &gosnmp.UsmSecurityParameters{
		AuthoritativeEngineID: engineID, AuthoritativeEngineBoots: 3, AuthoritativeEngineTime: 1000,
		UserName: u.Name, AuthenticationProtocol: auth, AuthenticationPassphrase: u.AuthPass,
		PrivacyProtocol: priv, PrivacyPassphrase: u.PrivPass, PrivacyParameters: binary.BigEndian.AppendUint64(nil, 99),
	}
	if err := sp.InitSecurityKeys(); err != nil {
		t.Fatal(err)
	}
	p := &gosnmp.SnmpPacket{
		Version: gosnmp.Version3, MsgFlags: level, SecurityModel: gosnmp.UserSecurityModel, SecurityParameters: sp,
		PDUType: gosnmp.SNMPv2Trap, MsgID: 5, RequestID: 6, ContextEngineID: engineID, Variables: vars,
	}
	b, err := p.MarshalMsg()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// udpSend sends b from a new socket on local ("" for any) to addr.
func udpSend(t testing.TB, local, addr string, b []byte) {
	t.Helper()
	var la *net.UDPAddr
	if local != "" {
		la = net.UDPAddrFromAddrPort(netip.MustParseAddrPort(local))
	}
	c, err := net.DialUDP("udp", la, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func netipAddrPort(t testing.TB, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

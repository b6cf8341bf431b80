package trap

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/snmpagent"
)

// handleOne runs one datagram through a listener that is not started and
// returns the queued event (if any) and the reply.
func handleOne(t *testing.T, l *Listener, msg []byte, from string) (*Event, []byte) {
	t.Helper()
	q := make(chan Event, 1)
	reply := l.handle(msg, netipAddrPort(t, from), time.Unix(1000, 0), q)
	select {
	case ev := <-q:
		return &ev, reply
	default:
		return nil, reply
	}
}

func newListener(t *testing.T, cfg Config) *Listener {
	t.Helper()
	l, err := New(cfg, func(Event) {})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestEvents(t *testing.T) {
	l := newListener(t, testConfig())
	minutes := gosnmp.SnmpPDU{Name: oidMinutesLeft, Type: gosnmp.Integer, Value: 17}
	ifIndex := gosnmp.SnmpPDU{Name: oidIfIndex1, Type: gosnmp.Integer, Value: 1}
	for _, tc := range []struct {
		name    string
		msg     []byte
		from    string
		want    Event
		wantAck bool
	}{
		{"v1 ups on battery", encodeV1(t, "public", "1.3.6.1.2.1.33.2", 6, 1, []gosnmp.SnmpPDU{minutes}), "127.0.0.1:1",
			Event{Device: "ups-1", Version: gosnmp.Version1, TrapOID: "1.3.6.1.2.1.33.2.0.1", Name: NameUPSOnBattery, Uptime: 4242,
				Varbinds: []Varbind{{OID: oidMinutesLeft, Value: snmpagent.Integer(17)}},
				V1:       &V1Header{Enterprise: "1.3.6.1.2.1.33.2", AgentAddress: "10.0.0.21", Generic: 6, Specific: 1}}, false},
		{"v1 link down", encodeV1(t, "public", "1.3.6.1.4.1.9", 2, 0, []gosnmp.SnmpPDU{ifIndex}), "127.0.0.2:1",
			Event{Device: "pdu-1", Version: gosnmp.Version1, TrapOID: oidLinkDown, Name: NameLinkDown, Uptime: 4242,
				Varbinds: []Varbind{{OID: oidIfIndex1, Value: snmpagent.Integer(1)}},
				V1:       &V1Header{Enterprise: "1.3.6.1.4.1.9", AgentAddress: "10.0.0.21", Generic: 2}}, false},
		{"v1 vendor trap named in config", encodeV1(t, "public", "1.3.6.1.4.1.318", 6, 5, nil), "127.0.0.1:1",
			Event{Device: "ups-1", Version: gosnmp.Version1, TrapOID: oidAPCOnBattery, Name: "apcUpsOnBattery", Uptime: 4242,
				Varbinds: []Varbind{}, V1: &V1Header{Enterprise: "1.3.6.1.4.1.318", AgentAddress: "10.0.0.21", Generic: 6, Specific: 5}}, false},
		{"v2c trap", encodeV2c(t, "public", gosnmp.SNMPv2Trap, notification(oidOnBattery, minutes)), "127.0.0.1:1",
			Event{Device: "ups-1", Version: gosnmp.Version2c, TrapOID: oidOnBattery, Name: NameUPSOnBattery, Uptime: 4242,
				Varbinds: []Varbind{{OID: oidMinutesLeft, Value: snmpagent.Integer(17)}}}, false},
		{"v2c inform", encodeV2c(t, "public", gosnmp.InformRequest, notification(oidLinkDown, ifIndex)), "127.0.0.2:1",
			Event{Device: "pdu-1", Version: gosnmp.Version2c, Inform: true, TrapOID: oidLinkDown, Name: NameLinkDown, Uptime: 4242,
				Varbinds: []Varbind{{OID: oidIfIndex1, Value: snmpagent.Integer(1)}}}, true},
		{"v2c unnamed", encodeV2c(t, "public", gosnmp.SNMPv2Trap, notification("1.3.6.1.4.1.99.0.1")), "127.0.0.1:1",
			Event{Device: "ups-1", Version: gosnmp.Version2c, TrapOID: "1.3.6.1.4.1.99.0.1", Uptime: 4242, Varbinds: []Varbind{}}, false},
		{"v3 authPriv SHA-256/AES-256 trap", encodeV3Trap(t, userSHA256, "\x80\x00\x00\x00\x05sender", notification(oidOnBattery, minutes)), "127.0.0.1:1",
			Event{Device: "ups-1", Version: gosnmp.Version3, User: userSHA256.Name, TrapOID: oidOnBattery, Name: NameUPSOnBattery, Uptime: 4242,
				Varbinds: []Varbind{{OID: oidMinutesLeft, Value: snmpagent.Integer(17)}}}, false},
		{"v3 authPriv SHA/AES trap", encodeV3Trap(t, userSHA, "\x80\x00\x00\x00\x05other1", notification(oidLinkDown)), "127.0.0.2:1",
			Event{Device: "pdu-1", Version: gosnmp.Version3, User: userSHA.Name, TrapOID: oidLinkDown, Name: NameLinkDown, Uptime: 4242, Varbinds: []Varbind{}}, false},
		{"v3 authNoPriv trap", encodeV3Trap(t, userAuth, "\x80\x00\x00\x00\x05other2", notification(oidLinkDown)), "127.0.0.2:1",
			Event{Device: "pdu-1", Version: gosnmp.Version3, User: userAuth.Name, TrapOID: oidLinkDown, Name: NameLinkDown, Uptime: 4242, Varbinds: []Varbind{}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, reply := handleOne(t, l, tc.msg, tc.from)
			if ev == nil {
				t.Fatalf("no event; stats %+v", l.Stats())
			}
			tc.want.Time = time.Unix(1000, 0)
			tc.want.Source = netipAddrPort(t, tc.from)
			if !equalEvent(*ev, tc.want) {
				t.Errorf("event:\ngot  %+v %+v\nwant %+v %+v", *ev, ev.V1, tc.want, tc.want.V1)
			}
			if (reply != nil) != tc.wantAck {
				t.Errorf("reply: got %d bytes, want ack %v", len(reply), tc.wantAck)
			}
			if reply != nil {
				res, err := (&gosnmp.GoSNMP{Version: gosnmp.Version2c}).SnmpDecodePacket(reply)
				if err != nil || res.PDUType != gosnmp.GetResponse || res.RequestID != 77 || len(res.Variables) != 3 {
					t.Errorf("inform ack: got %+v, %v", res, err)
				}
			}
		})
	}
}

func equalEvent(a, b Event) bool {
	if (a.V1 == nil) != (b.V1 == nil) || (a.V1 != nil && *a.V1 != *b.V1) {
		return false
	}
	va, vb := a.Varbinds, b.Varbinds
	a.V1, b.V1, a.Varbinds, b.Varbinds = nil, nil, nil, nil
	return a.Time.Equal(b.Time) && slices.Equal(va, vb) && a.Device == b.Device && a.Source == b.Source &&
		a.Version == b.Version && a.Inform == b.Inform && a.User == b.User && a.TrapOID == b.TrapOID &&
		a.Name == b.Name && a.Uptime == b.Uptime
}

func TestRefusals(t *testing.T) {
	trap := notification(oidOnBattery)
	wrongAuth := userSHA256
	wrongAuth.AuthPass = "not-the-passphrase"
	wrongPriv := userSHA256
	wrongPriv.PrivPass = "not-the-passphrase"
	unknown := userSHA256
	unknown.Name = "nobody"
	lower := userSHA256
	lower.PrivProto, lower.PrivPass = snmpagent.PrivNone, ""
	engine := "\x80\x00\x00\x00\x05sender"
	for _, tc := range []struct {
		name string
		msg  []byte
		from string
		want Reason
	}{
		{"unknown source", encodeV2c(t, "public", gosnmp.SNMPv2Trap, trap), "127.0.0.9:1", ReasonUnknownSource},
		{"wrong community", encodeV2c(t, "private", gosnmp.SNMPv2Trap, trap), "127.0.0.1:1", ReasonBadCommunity},
		{"wrong community v1", encodeV1(t, "secret", "1.3.6.1.2.1.33.2", 6, 1, nil), "127.0.0.1:1", ReasonBadCommunity},
		{"wrong v3 auth passphrase", encodeV3Trap(t, wrongAuth, engine, trap), "127.0.0.1:1", ReasonWrongDigest},
		{"wrong v3 priv passphrase", encodeV3Trap(t, wrongPriv, engine, trap), "127.0.0.1:1", ReasonDecryption},
		{"unknown v3 user", encodeV3Trap(t, unknown, engine, trap), "127.0.0.1:1", ReasonUnknownUser},
		{"v3 below the user's level", encodeV3Trap(t, lower, engine, trap), "127.0.0.1:1", ReasonUnsupportedSecLevel},
		{"no snmpTrapOID", encodeV2c(t, "public", gosnmp.SNMPv2Trap, trap[:1]), "127.0.0.1:1", ReasonMalformed},
		{"a GET", encodeV2c(t, "public", gosnmp.GetRequest, []gosnmp.SnmpPDU{{Name: oidSysUpTime, Type: gosnmp.Null}}), "127.0.0.1:1", ReasonNotNotification},
		{"garbage", []byte("\x30\x03\x02\x01\x09"), "127.0.0.1:1", ReasonBadVersion},
		{"truncated", encodeV2c(t, "public", gosnmp.SNMPv2Trap, trap)[:20], "127.0.0.1:1", ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newListener(t, testConfig())
			ev, reply := handleOne(t, l, tc.msg, tc.from)
			if ev != nil || reply != nil {
				t.Errorf("refused notification: got event %+v, reply %d bytes", ev, len(reply))
			}
			s := l.Stats()
			for r, n := range s.Rejected {
				want := uint64(0)
				if r == tc.want {
					want = 1
				}
				if n != want {
					t.Errorf("Rejected[%s]: got %d, want %d", r, n, want)
				}
			}
			if s.Events != 0 {
				t.Errorf("Events: got %d, want 0", s.Events)
			}
		})
	}
}

func TestQueueFullDropsAndDoesNotAck(t *testing.T) {
	l := newListener(t, testConfig())
	q := make(chan Event) // nobody receives: always full
	inform := encodeV2c(t, "public", gosnmp.InformRequest, notification(oidOnBattery))
	if reply := l.handle(inform, netipAddrPort(t, "127.0.0.1:1"), time.Now(), q); reply != nil {
		t.Error("inform acknowledged although its event was dropped")
	}
	if n := l.Stats().Rejected[ReasonQueueFull]; n != 1 {
		t.Errorf("Rejected[queue full]: got %d, want 1", n)
	}
}

func TestRefusalLogIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	cfg := testConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	cfg.LogEvery = time.Hour
	l := newListener(t, cfg)
	msg := encodeV2c(t, "private", gosnmp.SNMPv2Trap, notification(oidOnBattery))
	from := netipAddrPort(t, "127.0.0.1:1")
	q := make(chan Event, 10)
	start := time.Unix(1000, 0)
	for i := range 5 {
		l.handle(msg, from, start.Add(time.Duration(i)*time.Second), q)
	}
	l.handle(msg, from, start.Add(2*time.Hour), q)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log lines: got %d, want 2:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[1], "suppressed=4") || !strings.Contains(lines[0], `reason="wrong community"`) {
		t.Errorf("log lines:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), "private") {
		t.Errorf("log shows the wrong community:\n%s", buf.String())
	}
	if n := l.Stats().Rejected[ReasonBadCommunity]; n != 6 {
		t.Errorf("Rejected[wrong community]: got %d, want 6", n)
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := New(Config{
		Listen:      "127.0.0.1:notaport",
		Communities: []string{""},
		Sources:     map[string]string{"10.0.0.300": "ups", "10.0.0.1": ""},
		Names:       map[string]string{"1..2": "x", "1.3.6.1.4.1.1": ""},
		EngineID:    "0102",
		V3Users:     []User{{Name: "u", AuthProto: "SHA", AuthPass: "short"}},
	}, nil)
	if err == nil {
		t.Fatal("New: got nil error")
	}
	for _, want := range []string{"nil handler", "listen", "community", "10.0.0.300", "10.0.0.1 has no device", "1..2", "has no name", "engine id", "passphrase"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestV1TrapOID(t *testing.T) {
	for _, tc := range []struct {
		ent       string
		gen, spec int
		want      string
		ok        bool
	}{
		{"1.3.6.1.2.1.33.2", 6, 1, "1.3.6.1.2.1.33.2.0.1", true},
		{"1.3.6.1.4.1.9", 0, 0, "1.3.6.1.6.3.1.1.5.1", true},
		{"1.3.6.1.4.1.9", 3, 0, "1.3.6.1.6.3.1.1.5.4", true},
		{"1.3.6.1.4.1.9", 7, 0, "", false},
		{"1.3.6.1.4.1.9", 6, -1, "", false},
	} {
		got, ok := v1TrapOID(tc.ent, tc.gen, tc.spec)
		if got != tc.want || ok != tc.ok {
			t.Errorf("v1TrapOID(%s, %d, %d): got %q %v, want %q %v", tc.ent, tc.gen, tc.spec, got, ok, tc.want, tc.ok)
		}
	}
}

// TestFromAgent sends every version and kind of notification from
// snmpagent (whose senders are gosnmp's) over loopback, from two
// devices.
func TestFromAgent(t *testing.T) {
	l, addr, events := startListener(t, testConfig())
	a, err := snmpagent.New(snmpagent.NewStore(), snmpagent.Config{})
	if err != nil {
		t.Fatal(err)
	}
	vbs := []snmpagent.Varbind{{OID: oidMinutesLeft, Value: snmpagent.Integer(9)}}
	for _, tc := range []struct {
		name   string
		r      snmpagent.Receiver
		device string
	}{
		{"v1", snmpagent.Receiver{Version: gosnmp.Version1, Community: "public"}, "ups-1"},
		{"v2c trap", snmpagent.Receiver{Version: gosnmp.Version2c, Community: "public", LocalAddr: "127.0.0.2:0"}, "pdu-1"},
		{"v2c inform", snmpagent.Receiver{Version: gosnmp.Version2c, Community: "public", Inform: true}, "ups-1"},
		{"v3 trap", snmpagent.Receiver{Version: gosnmp.Version3, V3: userSHA256}, "ups-1"},
		{"v3 inform", snmpagent.Receiver{Version: gosnmp.Version3, V3: userSHA, Inform: true, LocalAddr: "127.0.0.2:0"}, "pdu-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.Addr, tc.r.Timeout = addr, 5*time.Second
			if err := a.SendTrap(context.Background(), tc.r, oidOnBattery, vbs); err != nil {
				t.Fatal(err)
			}
			ev := waitEvent(t, events)
			if ev.Name != NameUPSOnBattery || ev.Device != tc.device || ev.Inform != tc.r.Inform || ev.Version != tc.r.Version {
				t.Errorf("event: got %s %s inform=%v %v, want %s %s inform=%v %v", ev.Name, ev.Device, ev.Inform, ev.Version,
					NameUPSOnBattery, tc.device, tc.r.Inform, tc.r.Version)
			}
			if len(ev.Varbinds) != 1 || ev.Varbinds[0].Value != snmpagent.Integer(9) {
				t.Errorf("varbinds: got %v", ev.Varbinds)
			}
		})
	}
	if s := l.Stats(); s.InformsAcked != 2 || s.Discoveries != 1 {
		t.Errorf("stats: got %d informs acked, %d discoveries; want 2, 1", s.InformsAcked, s.Discoveries)
	}
}

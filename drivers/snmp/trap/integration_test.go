package trap

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/testpeer"
)

// Integration tests: net-snmp's snmptrap and snmpinform (Debian package
// snmp) send into the listener on 127.0.0.1.

// v3Args are the net-snmp options for user u at its security level.
func v3Args(u User) []string {
	args := []string{"-v", "3", "-u", u.Name, "-l", "authNoPriv", "-a", string(u.AuthProto), "-A", u.AuthPass}
	if u.PrivProto != "" {
		args[5] = "authPriv"
		args = append(args, "-x", string(u.PrivProto), "-X", u.PrivPass)
	}
	return args
}

func TestNetSNMPIntegration(t *testing.T) {
	testpeer.Require(t, "snmp", "/usr/bin/snmptrap", "/usr/bin/snmpinform")
	l, addr, events := startListener(t, testConfig())
	// The engine id net-snmp's snmptrap sends v3 traps from (-e): the
	// sending device's, which the listener need not know.
	sender := "0x8000000005" + hex.EncodeToString([]byte("ups-1-engine"))
	once := []string{"-t", "5", "-r", "1"} // informs: one retry, should the first datagram be lost
	for _, tc := range []struct {
		name   string
		tool   string
		args   []string
		device string
		want   Event
	}{
		{"v1 ups on battery", "snmptrap", []string{"-v", "1", "-c", "public", addr, "1.3.6.1.2.1.33.2", "", "6", "1", "", oidMinutesLeft, "i", "17"},
			"ups-1", Event{Version: gosnmp.Version1, TrapOID: "1.3.6.1.2.1.33.2.0.1", Name: NameUPSOnBattery}},
		{"v1 link down", "snmptrap", []string{"--clientaddr=127.0.0.2", "-v", "1", "-c", "public", addr, "1.3.6.1.4.1.9", "", "2", "0", "", oidIfIndex1, "i", "1"},
			"pdu-1", Event{Version: gosnmp.Version1, TrapOID: oidLinkDown, Name: NameLinkDown}},
		{"v2c trap", "snmptrap", []string{"-v", "2c", "-c", "public", addr, "", oidOnBattery, oidMinutesLeft, "i", "17"},
			"ups-1", Event{Version: gosnmp.Version2c, TrapOID: oidOnBattery, Name: NameUPSOnBattery}},
		{"v2c inform", "snmpinform", append(once, "--clientaddr=127.0.0.2", "-v", "2c", "-c", "public", addr, "", oidLinkDown, oidIfIndex1, "i", "1"),
			"pdu-1", Event{Version: gosnmp.Version2c, Inform: true, TrapOID: oidLinkDown, Name: NameLinkDown}},
		{"v3 trap SHA-256/AES-256", "snmptrap", append(append(v3Args(userSHA256), "-e", sender), addr, "", oidOnBattery, oidMinutesLeft, "i", "17"),
			"ups-1", Event{Version: gosnmp.Version3, User: userSHA256.Name, TrapOID: oidOnBattery, Name: NameUPSOnBattery}},
		{"v3 trap SHA/AES", "snmptrap", append(append(v3Args(userSHA), "-e", sender), addr, "", oidOnBattery, oidMinutesLeft, "i", "17"),
			"ups-1", Event{Version: gosnmp.Version3, User: userSHA.Name, TrapOID: oidOnBattery, Name: NameUPSOnBattery}},
		{"v3 inform SHA-256/AES-256", "snmpinform", append(append(once, v3Args(userSHA256)...), addr, "", oidOnBattery, oidMinutesLeft, "i", "17"),
			"ups-1", Event{Version: gosnmp.Version3, Inform: true, User: userSHA256.Name, TrapOID: oidOnBattery, Name: NameUPSOnBattery}},
		{"v3 inform authNoPriv", "snmpinform", append(append(once, v3Args(userAuth)...), addr, "", oidLinkDown),
			"ups-1", Event{Version: gosnmp.Version3, Inform: true, User: userAuth.Name, TrapOID: oidLinkDown, Name: NameLinkDown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := testpeer.NetSNMP(t, tc.tool, tc.args...)
			if err != nil {
				t.Fatalf("%s failed (an inform exits non-zero when not acknowledged): %v\n%s", tc.tool, err, out)
			}
			ev := waitEvent(t, events)
			if ev.Device != tc.device || ev.Version != tc.want.Version || ev.Inform != tc.want.Inform ||
				ev.User != tc.want.User || ev.TrapOID != tc.want.TrapOID || ev.Name != tc.want.Name {
				t.Errorf("event: got device %s %v inform=%v user %q %s %q; want %s %v inform=%v user %q %s %q",
					ev.Device, ev.Version, ev.Inform, ev.User, ev.TrapOID, ev.Name,
					tc.device, tc.want.Version, tc.want.Inform, tc.want.User, tc.want.TrapOID, tc.want.Name)
			}
		})
	}
	if s := l.Stats(); s.InformsAcked != 3 || s.Events != 8 {
		t.Errorf("stats: got %d events, %d informs acked; want 8, 3", s.Events, s.InformsAcked)
	}
}

func TestNetSNMPIntegrationRefused(t *testing.T) {
	testpeer.Require(t, "snmp", "/usr/bin/snmptrap", "/usr/bin/snmpinform")
	cfg := testConfig()
	delete(cfg.Sources, "127.0.0.2") // a device nobody configured
	l, addr, events := startListener(t, cfg)
	sender := "0x80000000050102030405"
	wrongAuth, wrongPriv, unknown := userSHA256, userSHA256, userSHA256
	wrongAuth.AuthPass = "not-the-auth-passphrase"
	wrongPriv.PrivPass = "not-the-priv-passphrase"
	unknown.Name = "intruder"
	short := []string{"-t", "0.5", "-r", "0"} // an unacknowledged inform fails; nothing asserts on time
	var sent uint64
	for _, tc := range []struct {
		name   string
		tool   string
		args   []string
		reason Reason
	}{
		{"unknown source", "snmptrap", []string{"--clientaddr=127.0.0.2", "-v", "2c", "-c", "public", addr, "", oidOnBattery}, ReasonUnknownSource},
		{"wrong community", "snmptrap", []string{"-v", "2c", "-c", "private", addr, "", oidOnBattery}, ReasonBadCommunity},
		{"wrong community v1", "snmptrap", []string{"-v", "1", "-c", "private", addr, "1.3.6.1.2.1.33.2", "", "6", "1", ""}, ReasonBadCommunity},
		{"wrong community inform", "snmpinform", append(short, "-v", "2c", "-c", "private", addr, "", oidOnBattery), ReasonBadCommunity},
		{"wrong v3 auth passphrase", "snmptrap", append(append(v3Args(wrongAuth), "-e", sender), addr, "", oidOnBattery), ReasonWrongDigest},
		{"wrong v3 priv passphrase", "snmptrap", append(append(v3Args(wrongPriv), "-e", sender), addr, "", oidOnBattery), ReasonDecryption},
		{"unknown v3 user", "snmptrap", append(append(v3Args(unknown), "-e", sender), addr, "", oidOnBattery), ReasonUnknownUser},
		{"wrong v3 passphrase inform", "snmpinform", append(append(short, v3Args(wrongAuth)...), addr, "", oidOnBattery), ReasonWrongDigest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := l.Stats().Rejected[tc.reason]
			out, err := testpeer.NetSNMP(t, tc.tool, tc.args...)
			if tc.tool == "snmpinform" && err == nil {
				t.Errorf("snmpinform succeeded: the refused inform was acknowledged\n%s", out)
			}
			// A trap may still be on its way: wait for the count.
			deadline := time.Now().Add(30 * time.Second)
			for l.Stats().Rejected[tc.reason] == before {
				if time.Now().After(deadline) {
					t.Fatalf("refusal not counted under %q: %+v", tc.reason, l.Stats())
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	sent = l.Stats().Received
	noEvent(t, l, events, sent)
}

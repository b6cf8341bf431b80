package snmpnotify

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/testpeer"
)

// Integration tests: facgw's Sender against net-snmp 5.9.3's snmptrapd
// (Debian package snmptrapd) on 127.0.0.1. Each notification is checked in
// the log of an snmptrapd that loaded FACGW-MIB (names, enumerations and
// DateAndTime as an NMS shows them) and in the log of one that prints
// numeric OIDs and raw values (what goes on the wire).

// The v3 users of the receivers, one per protocol pairing tested.
var (
	trapEngine  = "80007ed905f00dcafe01" // Options.EngineID of the v3 trap case
	derivedFrom = "gw-a"                 // Options.Gateway of the derived-engine case
)

func trapdConf() string {
	return fmt.Sprintf(`authCommunity log public
createUser nms256 SHA-256 auth-pass-256 AES-256 priv-pass-256
createUser nms512 SHA-512 auth-pass-512 AES-192 priv-pass-512
createUser nmsblu SHA auth-pass-blu AES-256 priv-pass-blu
createUser nmsree SHA auth-pass-ree AES-256-C priv-pass-ree
createUser nmsauth SHA auth-pass-sha
createUser nmsnone
createUser -e 0x%s trapper SHA-256 trap-auth-pass AES-256 trap-priv-pass
createUser -e 0x%s trapgw SHA-384 gw-auth-pass AES-192 gw-priv-pass
authUser log nms256
authUser log nms512
authUser log nmsblu
authUser log nmsree
authUser log nmsauth
authUser log nmsnone noauth
authUser log trapper
authUser log trapgw
`, trapEngine, DeriveEngineID(derivedFrom))
}

// v3 returns Options for a v3 user of trapdConf.
func v3(addr, user, level, auth, authPass, priv, privPass string, inform bool) Options {
	return Options{Address: addr, Version: "3", Inform: inform, User: user, SecurityLevel: level,
		AuthProtocol: auth, AuthPassword: Secret(authPass), PrivProtocol: priv, PrivPassword: Secret(privPass),
		Timeout: 2 * time.Second, Retries: 1}
}

// namedVarbinds is how snmptrapd with FACGW-MIB loaded logs the varbinds
// of testEvent(id, seq) after sysUpTime.0, with its kind's notification.
func namedVarbinds(notification, id string, seq uint64, summary string) string {
	return strings.Join([]string{
		"= OID: FACGW-MIB::" + notification,
		"FACGW-MIB::facgwAlertId.0 = STRING: " + id,
		fmt.Sprintf("FACGW-MIB::facgwAlertSeq.0 = Counter64: %d", seq),
		"FACGW-MIB::facgwAlertRule.0 = STRING: power/ups-on-battery",
		"FACGW-MIB::facgwAlertClass.0 = STRING: power",
		"FACGW-MIB::facgwAlertSeverity.0 = INTEGER: critical(4)",
		"FACGW-MIB::facgwAlertState.0 = INTEGER: firing(2)",
		"FACGW-MIB::facgwAlertDevice.0 = STRING: ups-1",
		"FACGW-MIB::facgwAlertGroup.0 = STRING: ",
		"FACGW-MIB::facgwAlertSummary.0 = STRING: " + summary,
		"FACGW-MIB::facgwAlertActiveAt.0 = STRING: 2026-3-14,15:9:26.5,+0:0",
		"FACGW-MIB::facgwAlertSite.0 = STRING: fra1",
		"FACGW-MIB::facgwAlertGateway.0 = STRING: gw-a",
		"FACGW-MIB::facgwAlertSupervisionLost.0 = INTEGER: true(1)",
		"FACGW-MIB::facgwAlertAckBy.0 = STRING: ",
		"FACGW-MIB::facgwAlertEventAt.0 = STRING: 2026-3-14,15:10:0.0,+0:0",
	}, "\t")
}

// numericVarbinds is the same with -On and no MIB: numeric OIDs, raw
// integers, DateAndTime as its octets.
func numericVarbinds(trapOID, id string, seq uint64, summary string) string {
	return strings.Join([]string{
		"= OID: ." + trapOID,
		`.1.3.6.1.4.1.32473.1.1.1.0 = STRING: "` + id + `"`,
		fmt.Sprintf(".1.3.6.1.4.1.32473.1.1.2.0 = Counter64: %d", seq),
		`.1.3.6.1.4.1.32473.1.1.3.0 = STRING: "power/ups-on-battery"`,
		`.1.3.6.1.4.1.32473.1.1.4.0 = STRING: "power"`,
		".1.3.6.1.4.1.32473.1.1.5.0 = INTEGER: 4",
		".1.3.6.1.4.1.32473.1.1.6.0 = INTEGER: 2",
		`.1.3.6.1.4.1.32473.1.1.7.0 = STRING: "ups-1"`,
		`.1.3.6.1.4.1.32473.1.1.8.0 = ""`,
		".1.3.6.1.4.1.32473.1.1.9.0 = " + rawString(summary),
		".1.3.6.1.4.1.32473.1.1.10.0 = Hex-STRING: 07 EA 03 0E 0F 09 1A 05 2B 00 00 ",
		`.1.3.6.1.4.1.32473.1.1.11.0 = STRING: "fra1"`,
		`.1.3.6.1.4.1.32473.1.1.12.0 = STRING: "gw-a"`,
		".1.3.6.1.4.1.32473.1.1.13.0 = INTEGER: 1",
		`.1.3.6.1.4.1.32473.1.1.14.0 = ""`,
		".1.3.6.1.4.1.32473.1.1.15.0 = Hex-STRING: 07 EA 03 0E 0F 0A 00 00 2B 00 00 ",
	}, "\t")
}

// rawString is how net-snmp prints an OCTET STRING it knows no
// DISPLAY-HINT for: quoted if every octet is printable ASCII, else in hex.
func rawString(s string) string {
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("Hex-STRING: % X", []byte(s))
		}
	}
	return `STRING: "` + s + `"`
}

type trapd struct {
	addr, log string
	p         *testpeer.Process
}

// startTrapds starts a snmptrapd that prints names from FACGW-MIB and one
// that prints numbers, both with trapdConf.
func startTrapds(t *testing.T) (named, numeric trapd) {
	t.Helper()
	named.addr, named.log, named.p = testpeer.StartSnmptrapd(t, trapdConf(), "-m", "FACGW-MIB", "-M", netSNMPMIBPath(t))
	numeric.addr, numeric.log, numeric.p = testpeer.StartSnmptrapd(t, trapdConf(), "-On")
	return named, numeric
}

// logLine waits for the notification carrying facgwAlertId id and
// returns its log record: its line and any continuation lines (net-snmp
// breaks a Hex-STRING into lines of 16 octets), joined by newlines.
func logLine(t *testing.T, logPath, id string) string {
	t.Helper()
	first := testpeer.WaitLogLine(t, logPath, regexp.MustCompile(`facgwAlertId\.0 = STRING: `+regexp.QuoteMeta(id)+`\t|\.1\.3\.6\.1\.4\.1\.32473\.1\.1\.1\.0 = STRING: "`+regexp.QuoteMeta(id)+`"`))
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if l != first {
			continue
		}
		rec := []string{l}
		for _, next := range lines[i+1:] {
			if next == "" || strings.HasPrefix(next, "TRAP") || strings.HasPrefix(next, "NET-SNMP") {
				break
			}
			rec = append(rec, next)
		}
		return strings.Join(rec, "\n")
	}
	t.Fatalf("line %q vanished from %s", first, logPath)
	return ""
}

// fields collapses runs of white space (tabs between varbinds, newlines
// and spaces in Hex-STRINGs) to one space.
func fields(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestSnmptrapdIntegration(t *testing.T) {
	named, numeric := startTrapds(t)
	for _, tc := range []struct {
		name    string
		opts    func(addr string) Options
		summary string // testEvent's, unless set
		header  string // how snmptrapd's %P shows the PDU and security
	}{
		{"v2c trap", func(a string) Options { return v2cTo(a, false) }, "",
			"TRAP2, SNMP v2c, community public"},
		{"v2c inform", func(a string) Options { return v2cTo(a, true) }, "",
			"INFORM, SNMP v2c, community public"},
		{"v3 inform authPriv SHA-256 AES-256", func(a string) Options {
			return v3(a, "nms256", "authPriv", "SHA-256", "auth-pass-256", "AES-256", "priv-pass-256", true)
		}, "", "INFORM, SNMP v3, user nms256, context "},
		{"v3 inform authPriv SHA-512 AES-192", func(a string) Options {
			return v3(a, "nms512", "authPriv", "SHA-512", "auth-pass-512", "AES-192", "priv-pass-512", true)
		}, "Kühlung Raum 3: 27 °C – über Grenzwert", "INFORM, SNMP v3, user nms512, context "},
		// AES-256 needs a 32-octet key; SHA-1 gives 20, so the key is
		// extended, and the two extensions differ: net-snmp's AES-256 is
		// Blumenthal's (gosnmp AES256), its AES-256-C Reeder's (gosnmp
		// AES256C). With SHA-256 and longer digests there is nothing to
		// extend and both give the same key.
		{"v3 inform SHA AES-256 (Blumenthal key extension)", func(a string) Options {
			return v3(a, "nmsblu", "authPriv", "SHA", "auth-pass-blu", "AES-256", "priv-pass-blu", true)
		}, "", "INFORM, SNMP v3, user nmsblu, context "},
		{"v3 inform SHA AES-256C (Reeder key extension)", func(a string) Options {
			return v3(a, "nmsree", "authPriv", "SHA", "auth-pass-ree", "AES-256C", "priv-pass-ree", true)
		}, "", "INFORM, SNMP v3, user nmsree, context "},
		{"v3 inform authNoPriv SHA", func(a string) Options {
			return v3(a, "nmsauth", "authNoPriv", "SHA", "auth-pass-sha", "", "", true)
		}, "", "INFORM, SNMP v3, user nmsauth, context "},
		{"v3 inform noAuthNoPriv", func(a string) Options {
			return v3(a, "nmsnone", "noAuthNoPriv", "", "", "", "", true)
		}, "", "INFORM, SNMP v3, user nmsnone, context "},
		{"v3 trap with engine id", func(a string) Options {
			o := v3(a, "trapper", "authPriv", "SHA-256", "trap-auth-pass", "AES-256", "trap-priv-pass", false)
			o.EngineID = trapEngine
			return o
		}, "", "TRAP2, SNMP v3, user trapper, context "},
		{"v3 trap with the engine id derived from the gateway", func(a string) Options {
			o := v3(a, "trapgw", "authPriv", "SHA-384", "gw-auth-pass", "AES-192", "gw-priv-pass", false)
			o.Gateway = derivedFrom
			return o
		}, "", "TRAP2, SNMP v3, user trapgw, context "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			ev := testEvent(id, 42)
			summary := ev.Summary
			if tc.summary != "" {
				ev.Summary, summary = tc.summary, tc.summary
			}
			for _, r := range []struct {
				trapd
				want string
			}{
				{named, namedVarbinds("facgwAlertFiring", id, 42, summary)},
				{numeric, numericVarbinds("1.3.6.1.4.1.32473.0.1", id, 42, summary)},
			} {
				s := mustNew(t, tc.opts(r.addr))
				if retry, err := s.Send(sendCtx(t), []alert.Event{ev}); err != nil {
					t.Fatalf("Send to %s: retryable %v, %v", r.log, retry, err)
				}
				line := logLine(t, r.log, id)
				if !strings.HasPrefix(line, "TRAP2 ") || !strings.Contains(line, " "+tc.header+"\t") {
					t.Errorf("got line %q, want it to start TRAP2 and show %q", line, tc.header)
				}
				if !strings.HasSuffix(fields(line), fields(r.want)) {
					t.Errorf("got line\n%s\nwant it to end in\n%s", line, r.want)
				}
			}
		})
	}
}

func TestSnmptrapdIntegrationEveryKind(t *testing.T) {
	named, _ := startTrapds(t)
	s := mustNew(t, v2cTo(named.addr, true))
	for _, tc := range []struct {
		kind         alert.Kind
		notification string
	}{
		{alert.KindFiring, "facgwAlertFiring"},
		{alert.KindAcknowledged, "facgwAlertAcknowledged"},
		{alert.KindSilenced, "facgwAlertSilenced"},
		{alert.KindUnsilenced, "facgwAlertUnsilenced"},
		{alert.KindResolved, "facgwAlertResolved"},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			ev := testEvent("kind-"+string(tc.kind), 7)
			ev.Kind = tc.kind
			if _, err := s.Send(sendCtx(t), []alert.Event{ev}); err != nil {
				t.Fatal(err)
			}
			if line := logLine(t, named.log, ev.ID); !strings.Contains(line, "= OID: FACGW-MIB::"+tc.notification+"\t") {
				t.Errorf("got %q, want notification %s", line, tc.notification)
			}
		})
	}
}

func TestSnmptrapdIntegrationOutage(t *testing.T) {
	named, _ := startTrapds(t)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"v2c inform", v2cTo(named.addr, true)},
		{"v3 inform", v3(named.addr, "nms256", "authPriv", "SHA-256", "auth-pass-256", "AES-256", "priv-pass-256", true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, tc.opts)
			ev := testEvent("outage-"+strings.ReplaceAll(tc.name, " ", "-"), 9)
			named.p.Kill()
			retry, err := s.Send(sendCtx(t), []alert.Event{ev})
			if err == nil || !retry {
				t.Fatalf("Send to a stopped snmptrapd: got retryable %v, %v; want a retryable error", retry, err)
			}
			t.Logf("while down: %v", err)
			// The same port, config and (persisted) engine id; boots went up.
			named.p.Restart()
			if retry, err := s.Send(sendCtx(t), []alert.Event{ev}); err != nil {
				t.Fatalf("Send after the restart: retryable %v, %v", retry, err)
			}
			logLine(t, named.log, ev.ID)
			if n := testpeer.CountLogLines(named.log, regexp.MustCompile(regexp.QuoteMeta(ev.ID))); n != 1 {
				t.Errorf("got %d notifications of %s, want 1", n, ev.ID)
			}
		})
	}
}

func TestSnmptrapdIntegrationRefusedCredentials(t *testing.T) {
	named, _ := startTrapds(t)
	refused := func(user string) string { return `the receiver refused SNMPv3 user "` + user + `"` }
	const undecryptable = "although the receiver answered SNMPv3 engine discovery: wrong privacy passphrase or protocol?"
	for _, tc := range []struct {
		name string
		opts Options
		// net-snmp answers a failed authentication with a report, but
		// drops a message it cannot decrypt without one: then the Sender
		// can only suspect the passphrase, and a lost datagram would look
		// the same, so it stays retryable.
		retryable bool
		want      string
	}{
		{"wrong auth passphrase", v3(named.addr, "nms256", "authPriv", "SHA-256", "not-the-auth-pass", "AES-256", "priv-pass-256", true),
			false, refused("nms256")},
		{"wrong auth protocol", v3(named.addr, "nms256", "authPriv", "SHA-512", "auth-pass-256", "AES-256", "priv-pass-256", true),
			false, refused("nms256")},
		{"unknown user", v3(named.addr, "intruder", "authPriv", "SHA-256", "auth-pass-256", "AES-256", "priv-pass-256", true),
			false, refused("intruder")},
		{"wrong priv passphrase", v3(named.addr, "nms256", "authPriv", "SHA-256", "auth-pass-256", "AES-256", "not-the-priv-pass", true),
			true, undecryptable},
		{"wrong priv protocol", v3(named.addr, "nms256", "authPriv", "SHA-256", "auth-pass-256", "AES", "priv-pass-256", true),
			true, undecryptable},
		{"the other AES-256 key extension", v3(named.addr, "nmsblu", "authPriv", "SHA", "auth-pass-blu", "AES-256C", "priv-pass-blu", true),
			true, undecryptable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Timeout, o.Retries = time.Second, 1
			s := mustNew(t, o)
			id := "refused-" + strings.ReplaceAll(tc.name, " ", "-")
			// sendCtx only turns a hang into a failure: the Sender must give
			// up by itself, after its timeouts and retries.
			retry, err := s.Send(sendCtx(t), []alert.Event{testEvent(id, 1)})
			if err == nil {
				t.Fatal("Send with wrong credentials succeeded")
			}
			t.Logf("error: %v", err)
			if retry != tc.retryable {
				t.Errorf("got retryable %v, want %v", retry, tc.retryable)
			}
			if strings.Contains(err.Error(), "context deadline exceeded") {
				t.Errorf("Send ran into the test's deadline instead of giving up: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to say %q", err, tc.want)
			}
			for _, secret := range []string{string(o.AuthPassword), string(o.PrivPassword)} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error reveals a passphrase: %v", err)
				}
			}
			if n := testpeer.CountLogLines(named.log, regexp.MustCompile(regexp.QuoteMeta(id))); n != 0 {
				t.Errorf("snmptrapd logged %d refused notifications", n)
			}
		})
	}
}

// TestSnmptrapdIntegrationV3TrapsAfterRestart: the receiver keeps the
// highest engine boots and time it saw from a trap sender and drops traps
// that go back (RFC 3414 3.2 step 7b), so a restarted gateway, whose
// engine time starts again at 0, must come back with higher boots.
func TestSnmptrapdIntegrationV3TrapsAfterRestart(t *testing.T) {
	named, _ := startTrapds(t)
	start := func() *Sender {
		o := v3(named.addr, "trapper", "authPriv", "SHA-256", "trap-auth-pass", "AES-256", "trap-priv-pass", false)
		o.EngineID = trapEngine
		return mustNew(t, o)
	}
	send := func(s *Sender, id string) {
		t.Helper()
		if _, err := s.Send(sendCtx(t), []alert.Event{testEvent(id, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	// A gateway that has been up for an hour...
	before := start()
	before.start = before.start.Add(-time.Hour)
	before.boots = engineBoots(before.start)
	send(before, "up-for-an-hour")
	logLine(t, named.log, "up-for-an-hour")
	// ...restarts: its traps must still be taken.
	send(start(), "restarted")
	logLine(t, named.log, "restarted")

	// The receiver does enforce it: a sender whose boots went back is
	// dropped without a word (the trap after it shows it was not merely
	// slow: loopback keeps the order).
	back := start()
	back.boots = before.boots - 1
	send(back, "boots-went-back")
	send(start(), "after-boots-went-back")
	logLine(t, named.log, "after-boots-went-back")
	if n := testpeer.CountLogLines(named.log, regexp.MustCompile("STRING: boots-went-back\t")); n != 0 {
		t.Errorf("snmptrapd took a trap whose engine boots went back: the check above proves nothing")
	}
}

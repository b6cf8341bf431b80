package snmpagent

import (
	"context"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/testpeer"
)

// Integration tests against net-snmp's command-line tools (Debian package
// snmp) and snmptrapd (package snmptrapd), on 127.0.0.1 only.

func requireNetSNMP(t *testing.T) {
	t.Helper()
	testpeer.Require(t, "snmp", "/usr/bin/snmpget", "/usr/bin/snmpwalk", "/usr/bin/snmpbulkwalk", "/usr/bin/snmpset")
}

// v2c flags for the tools: numeric OIDs, one attempt of a few seconds.
func v2c(community, addr string) []string {
	return []string{"-v2c", "-c", community, "-On", "-t", "5", "-r", "1", addr}
}

// outputLines returns the "OID = TYPE: value" lines of a tool's output,
// with the leading dot of the OID removed.
func outputLines(out string) []string {
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, ".") && strings.Contains(l, " = ") && !strings.Contains(l, "No more variables left") {
			lines = append(lines, strings.TrimPrefix(l, "."))
		}
	}
	return lines
}

// netsnmpLine renders vb as net-snmp prints it with -On.
func netsnmpLine(vb Varbind) string {
	v := vb.Value
	switch v.Type.String() {
	case "ObjectIdentifier":
		return vb.OID + " = OID: ." + v.Str
	case "TimeTicks":
		return vb.OID + " = Timeticks: (" + itoa(int(v.Uint)) + ") " + ticks(v.Uint)
	case "OctetString":
		return vb.OID + " = STRING: \"" + v.Str + "\""
	case "Counter64":
		return vb.OID + " = Counter64: " + itoa(int(v.Uint))
	}
	return vb.String()
}

// ticks renders hundredths of a second as net-snmp does: 0:02:03.45.
func ticks(cs uint64) string {
	return fmt.Sprintf("%d:%02d:%02d.%02d", cs/360000, cs/6000%60, cs/100%60, cs%100)
}

func TestNetSNMPIntegrationV2c(t *testing.T) {
	requireNetSNMP(t)
	a, addr := startAgent(t, testConfig())
	want := storeVarbinds(a.Store(), false)
	wantLines := make([]string, len(want))
	for i, vb := range want {
		wantLines[i] = netsnmpLine(vb)
	}

	out, err := testpeer.NetSNMP(t, "snmpget", append(v2c("public", addr), oidUpsBatteryStatus, oidUpsInputLineBads, oidSysObjectID, oidIPAdEntAddr, oidIfHCInOctets1, oidUpsAlarmsPresent)...)
	if err != nil {
		t.Fatalf("snmpget: %v", err)
	}
	got := outputLines(out)
	wantGet := []string{
		oidUpsBatteryStatus + " = INTEGER: 2",
		oidUpsInputLineBads + " = Counter32: 7",
		oidSysObjectID + " = OID: .1.3.6.1.4.1.318.1.3.27",
		oidIPAdEntAddr + " = IpAddress: 10.0.0.21",
		oidIfHCInOctets1 + " = Counter64: 1099511627776",
		oidUpsAlarmsPresent + " = Gauge32: 0",
	}
	if strings.Join(got, "\n") != strings.Join(wantGet, "\n") {
		t.Errorf("snmpget:\ngot  %q\nwant %q", got, wantGet)
	}

	out, err = testpeer.NetSNMP(t, "snmpget", append(v2c("public", addr), "1.3.6.1.4.1.99999.1.0", "1.3.6.1.2.1.33.1.2.1")...)
	if err != nil {
		t.Fatalf("snmpget of absent OIDs: %v", err)
	}
	if !strings.Contains(out, "No Such Object available on this agent at this OID") ||
		!strings.Contains(out, "No Such Instance currently exists at this OID") {
		t.Errorf("snmpget of absent OIDs: got %q, want noSuchObject and noSuchInstance", out)
	}

	for _, tool := range []string{"snmpwalk", "snmpbulkwalk"} {
		args := v2c("public", addr)
		if tool == "snmpbulkwalk" {
			args = append([]string{"-Cr3"}, args...)
		}
		out, err := testpeer.NetSNMP(t, tool, append(args, "1.3")...)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if got := outputLines(out); strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
			t.Errorf("%s:\ngot  %q\nwant %q", tool, got, wantLines)
		}
	}

	out, err = testpeer.NetSNMP(t, "snmpset", append(v2c("private", addr), oidOutletCommand3, "i", "2")...)
	if err != nil {
		t.Fatalf("snmpset: %v", err)
	}
	if v, _ := a.Store().Get(oidOutletState3); v != Integer(2) {
		t.Errorf("outlet state after snmpset: got %v, want INTEGER: 2", v)
	}
	out, err = testpeer.NetSNMP(t, "snmpget", append(v2c("public", addr), oidOutletState3)...)
	if err != nil || !strings.Contains(out, oidOutletState3+" = INTEGER: 2") {
		t.Errorf("snmpget after snmpset: got %q, %v", out, err)
	}

	for _, tc := range []struct {
		name, community string
		args            []string
		want            string
	}{
		{"wrong type", "private", []string{oidOutletCommand3, "s", "off"}, "wrongType"},
		{"read-only", "private", []string{oidUpsCharge, "i", "5"}, "notWritable"},
		{"bad value", "private", []string{oidOutletCommand3, "i", "9"}, "wrongValue"},
		{"read community", "public", []string{oidSysName, "s", "x"}, "noAccess"},
	} {
		out, err := testpeer.NetSNMP(t, "snmpset", append(v2c(tc.community, addr), tc.args...)...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("snmpset %s: got %q, %v; want a failure naming %s", tc.name, out, err, tc.want)
		}
	}

	_, err = testpeer.NetSNMP(t, "snmpget", "-v2c", "-c", "wrong", "-On", "-t", "0.3", "-r", "0", addr, oidUpsCharge)
	if err == nil {
		t.Error("snmpget with a wrong community: got an answer")
	}
	eventually(t, "wrong community counted", func() bool { return a.Stats().BadCommunities > 0 })
}

func TestNetSNMPIntegrationV1(t *testing.T) {
	requireNetSNMP(t)
	a, addr := startAgent(t, testConfig())
	v1 := func(args ...string) []string {
		return append([]string{"-v1", "-c", "private", "-On", "-t", "5", "-r", "1", addr}, args...)
	}
	out, err := testpeer.NetSNMP(t, "snmpget", v1(oidUpsCharge)...)
	if err != nil || !strings.Contains(out, oidUpsCharge+" = INTEGER: 100") {
		t.Errorf("snmpget -v1: got %q, %v", out, err)
	}
	out, _ = testpeer.NetSNMP(t, "snmpget", v1("1.3.6.1.4.1.99999.1.0")...)
	if !strings.Contains(out, "noSuchName") {
		t.Errorf("snmpget -v1 of an absent OID: got %q, want noSuchName", out)
	}
	out, err = testpeer.NetSNMP(t, "snmpwalk", v1("1.3")...)
	if err != nil {
		t.Fatalf("snmpwalk -v1: %v", err)
	}
	if got, want := len(outputLines(out)), len(storeVarbinds(a.Store(), true)); got != want {
		t.Errorf("snmpwalk -v1: got %d lines, want %d (Counter64 skipped)", got, want)
	}
	out, _ = testpeer.NetSNMP(t, "snmpset", v1(oidUpsCharge, "i", "5")...)
	if !strings.Contains(out, "noSuchName") {
		t.Errorf("snmpset -v1 of a read-only OID: got %q, want noSuchName", out)
	}
}

func TestNetSNMPIntegrationV3(t *testing.T) {
	requireNetSNMP(t)
	a, addr := startAgent(t, testConfig())
	upsOIDs := 0
	for _, vb := range storeVarbinds(a.Store(), false) {
		if strings.HasPrefix(vb.OID, "1.3.6.1.2.1.33.") {
			upsOIDs++
		}
	}
	v3 := func(u User, args ...string) []string {
		level := "noAuthNoPriv"
		f := []string{"-v3", "-u", u.Name, "-On", "-t", "5", "-r", "1"}
		if u.AuthProto != AuthNone {
			level = "authNoPriv"
			f = append(f, "-a", string(u.AuthProto), "-A", u.AuthPass)
		}
		if u.PrivProto != PrivNone {
			level = "authPriv"
			f = append(f, "-x", string(u.PrivProto), "-X", u.PrivPass)
		}
		return append(append(f, "-l", level, addr), args...)
	}
	for _, u := range v3Users {
		if u.Name == "md5des" || u.Name == "sha512aes192" {
			continue // exercised with gosnmp; the pairings that matter here are SHA/SHA-256 with AES/AES-256
		}
		t.Run(u.Name, func(t *testing.T) {
			out, err := testpeer.NetSNMP(t, "snmpget", v3(u, oidUpsCharge, oidUpsManufacturer)...)
			if err != nil || !strings.Contains(out, oidUpsCharge+" = INTEGER: 100") || !strings.Contains(out, `STRING: "facsim"`) {
				t.Errorf("snmpget: got %q, %v", out, err)
			}
			out, err = testpeer.NetSNMP(t, "snmpbulkwalk", v3(u, "1.3.6.1.2.1.33")...)
			if err != nil || len(outputLines(out)) != upsOIDs {
				t.Errorf("snmpbulkwalk of upsMIB: got %d lines, %v; want %d", len(outputLines(out)), err, upsOIDs)
			}
		})
	}
	set := v3Users[0]
	out, err := testpeer.NetSNMP(t, "snmpset", v3(set, oidOutletCommand3, "i", "2")...)
	if err != nil {
		t.Errorf("snmpset v3: got %q, %v", out, err)
	}
	if v, _ := a.Store().Get(oidOutletState3); v != Integer(2) {
		t.Errorf("outlet state after v3 snmpset: got %v", v)
	}

	for _, tc := range []struct {
		name string
		user User
		want string
	}{
		{"wrong auth passphrase", func() User { u := set; u.AuthPass = "wrong-passphrase"; return u }(), "Authentication failure"},
		{"wrong priv passphrase", func() User { u := set; u.PrivPass = "wrong-passphrase"; return u }(), "Decryption error"},
		{"unknown user", func() User { u := set; u.Name = "nobody"; return u }(), "Unknown user name"},
		{"wrong protocol", func() User { u := set; u.AuthProto = AuthSHA; return u }(), "Authentication failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := a.Stats()
			out, err := testpeer.NetSNMP(t, "snmpget", v3(tc.user, oidUpsCharge)...)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("snmpget: got %q, %v; want a failure saying %q", out, err, tc.want)
			}
			if after := a.Stats(); after.Gets != before.Gets {
				t.Errorf("refused request was served")
			}
		})
	}
}

// snmptrapd logs every notification it accepts with these formats.
const trapdFormats = `format1 TRAP1 %s %P enterprise=%N generic=%w specific=%q %v\n
format2 TRAP2 %s %P %v\n
`

// startSnmptrapd runs snmptrapd on a free port with conf (formats added)
// and returns its address and log file.
func startSnmptrapd(t *testing.T, conf string) (addr, logPath string) {
	t.Helper()
	testpeer.Require(t, "snmptrapd", "/usr/sbin/snmptrapd")
	dir := t.TempDir()
	port := testpeer.FreeUDPPort(t)
	addr = "127.0.0.1:" + itoa(port)
	logPath = dir + "/trapd.log"
	confPath := dir + "/snmptrapd.conf"
	writeFile(t, confPath, trapdFormats+conf)
	testpeer.StartProcess(t, "/usr/sbin/snmptrapd",
		[]string{"-f", "-Lf", logPath, "-On", "-C", "-c", confPath, "-X", "-p", dir + "/pid", "UDP:" + addr},
		testpeer.WithEnv("MIBS=", "SNMP_PERSISTENT_DIR="+dir),
		testpeer.WithReady(func() error { return logContains(logPath, "NET-SNMP version") }),
	)
	return addr, logPath
}

// waitLog polls the log until re matches a line, at most a minute (the
// deadline only guards against a hang; nothing asserts on timing).
func waitLog(t *testing.T, logPath string, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for l := range strings.SplitSeq(readFile(logPath), "\n") {
			if re.MatchString(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("snmptrapd never logged a line matching %q; log:\n%s", re, readFile(logPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSnmptrapdIntegration(t *testing.T) {
	requireNetSNMP(t)
	a, err := New(testStore(t), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	engine := hex.EncodeToString(a.EngineID())
	trapUser := User{Name: "trapper", AuthProto: AuthSHA256, AuthPass: "trap-auth-pass", PrivProto: PrivAES256, PrivPass: "trap-priv-pass"}
	informUser := User{Name: "informer", AuthProto: AuthSHA256, AuthPass: "inform-auth-pass", PrivProto: PrivAES256, PrivPass: "inform-priv-pass"}
	addr, logPath := startSnmptrapd(t, `authCommunity log public
createUser -e 0x`+engine+` trapper SHA-256 trap-auth-pass AES-256 trap-priv-pass
createUser informer SHA-256 inform-auth-pass AES-256 inform-priv-pass
authUser log trapper priv
authUser log informer priv
`)
	ctx := context.Background()
	vbs := []Varbind{
		{oidUpsMinutesLeft, Integer(17)},
		{oidUpsSecondsOnBatt, Integer(42)},
		{"1.3.6.1.2.1.33.1.9.7.0", Integer(5)}, // upsConfigLowBattTime
		{oidIfHCInOctets1, Counter64(5)},       // dropped from the v1 trap
	}
	for _, tc := range []struct {
		name string
		r    Receiver
		want string // regexp of the log line
	}{
		{"v1 trap", Receiver{Addr: addr, Version: 0, Community: "public"},
			`^TRAP1 0 TRAP, SNMP v1, community public enterprise=\.1\.3\.6\.1\.2\.1\.33\.2 generic=6 specific=\.?1 .*\.1\.3\.6\.1\.2\.1\.33\.1\.2\.3\.0 = INTEGER: 17`},
		{"v2c trap", Receiver{Addr: addr, Version: 1, Community: "public"},
			`^TRAP2 1 TRAP2, SNMP v2c, community public .*\.1\.3\.6\.1\.6\.3\.1\.1\.4\.1\.0 = OID: \.1\.3\.6\.1\.2\.1\.33\.2\.1\b.*\.1\.3\.6\.1\.2\.1\.33\.1\.2\.2\.0 = INTEGER: 42.*Counter64: 5`},
		{"v2c inform", Receiver{Addr: addr, Version: 1, Community: "public", Inform: true, Timeout: 5 * time.Second},
			`^TRAP2 1 INFORM, SNMP v2c, community public .*\.1\.3\.6\.1\.6\.3\.1\.1\.4\.1\.0 = OID: \.1\.3\.6\.1\.2\.1\.33\.2\.1\b`},
		{"v3 trap", Receiver{Addr: addr, Version: 3, V3: trapUser},
			`^TRAP2 3 TRAP2, SNMP v3, user trapper, .*\.1\.3\.6\.1\.6\.3\.1\.1\.4\.1\.0 = OID: \.1\.3\.6\.1\.2\.1\.33\.2\.1\b.*INTEGER: 17`},
		{"v3 inform", Receiver{Addr: addr, Version: 3, V3: informUser, Inform: true, Timeout: 5 * time.Second},
			`^TRAP2 3 INFORM, SNMP v3, user informer, .*\.1\.3\.6\.1\.6\.3\.1\.1\.4\.1\.0 = OID: \.1\.3\.6\.1\.2\.1\.33\.2\.1\b.*INTEGER: 17`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.SendTrap(ctx, tc.r, oidUpsTrapOnBattery, vbs); err != nil {
				t.Fatalf("SendTrap: %v", err)
			}
			l := waitLog(t, logPath, regexp.MustCompile(tc.want))
			if tc.r.Version == 0 && strings.Contains(l, "Counter64") {
				t.Errorf("v1 trap carries a Counter64: %s", l)
			}
		})
	}
	if s := a.Stats(); s.TrapsSent != 5 || s.InformsAcked != 2 || s.NotifyFailures != 0 {
		t.Errorf("stats: got traps %d informs acked %d failures %d, want 5 2 0", s.TrapsSent, s.InformsAcked, s.NotifyFailures)
	}
}

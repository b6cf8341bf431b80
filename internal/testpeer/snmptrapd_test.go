package testpeer

import (
	"regexp"
	"strings"
	"testing"
)

// Notifications are sent with net-snmp's own snmptrap and snmpinform, so
// these tests check the helper, not facgw's sender.

const (
	trapdTestOID = "1.3.6.1.4.1.32473.99.1"
	trapdTestVar = "1.3.6.1.4.1.32473.99.2.0"
)

func TestSnmptrapdIntegrationLogsNotifications(t *testing.T) {
	Require(t, "snmp", "/usr/bin/snmptrap", "/usr/bin/snmpinform")
	addr, logPath, _ := StartSnmptrapd(t, "authCommunity log public\n", "-On")
	for _, tc := range []struct {
		name string
		tool string
		args []string
		want string // regexp of the log line
	}{
		{"v2c trap", "snmptrap", []string{"-v", "2c", "-c", "public", addr, "", trapdTestOID, trapdTestVar, "s", "first"},
			`^TRAP2 1 TRAP2, SNMP v2c, community public\t.*\.1\.3\.6\.1\.6\.3\.1\.1\.4\.1\.0 = OID: \.1\.3\.6\.1\.4\.1\.32473\.99\.1\t\.1\.3\.6\.1\.4\.1\.32473\.99\.2\.0 = STRING: "first"$`},
		{"v2c inform", "snmpinform", []string{"-t", "5", "-r", "1", "-v", "2c", "-c", "public", addr, "", trapdTestOID, trapdTestVar, "s", "second"},
			`^TRAP2 1 INFORM, SNMP v2c, community public\t.*= STRING: "second"$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out, err := NetSNMP(t, tc.tool, tc.args...); err != nil {
				t.Fatalf("%s: %v\n%s", tc.tool, err, out)
			}
			WaitLogLine(t, logPath, regexp.MustCompile(tc.want))
		})
	}
}

func TestSnmptrapdIntegrationRefusesUnknownCommunity(t *testing.T) {
	Require(t, "snmp", "/usr/bin/snmpinform")
	addr, logPath, _ := StartSnmptrapd(t, "authCommunity log public\n", "-On")
	// An inform with a community snmptrapd does not accept is neither
	// logged nor acknowledged: the tool fails.
	out, err := NetSNMP(t, "snmpinform", "-t", "0.5", "-r", "0", "-v", "2c", "-c", "private", addr, "", trapdTestOID)
	if err == nil {
		t.Fatalf("snmpinform with an unknown community succeeded:\n%s", out)
	}
	if n := CountLogLines(logPath, regexp.MustCompile(`^TRAP2 `)); n != 0 {
		t.Errorf("got %d notifications logged, want 0; log:\n%s", n, readFile(logPath))
	}
}

func TestSnmptrapdIntegrationRestart(t *testing.T) {
	Require(t, "snmp", "/usr/bin/snmpinform")
	addr, logPath, p := StartSnmptrapd(t, "authCommunity log public\n", "-On")
	// Informs that must be acknowledged get a generous timeout (a loaded
	// machine); the one that must fail a short one.
	inform := func(value, timeout string) (string, error) {
		return NetSNMP(t, "snmpinform", "-t", timeout, "-r", "0", "-v", "2c", "-c", "public", addr, "", trapdTestOID, trapdTestVar, "s", value)
	}
	if out, err := inform("before", "5"); err != nil {
		t.Fatalf("snmpinform: %v\n%s", err, out)
	}
	p.Kill()
	if out, err := inform("while down", "0.5"); err == nil {
		t.Fatalf("an inform to a killed snmptrapd was acknowledged:\n%s", out)
	}
	p.Restart()
	if out, err := inform("after", "5"); err != nil {
		t.Fatalf("snmpinform after restart: %v\n%s", err, out)
	}
	log := readFile(logPath)
	for _, want := range []string{`"before"`, `"after"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s (the log must survive the restart):\n%s", want, log)
		}
	}
	if strings.Contains(log, `"while down"`) {
		t.Errorf("log has the inform sent while snmptrapd was down:\n%s", log)
	}
	if n := len(snmptrapdStarted.FindAllString(log, -1)); n != 2 {
		t.Errorf("got %d start lines, want 2 (one per run)", n)
	}
}

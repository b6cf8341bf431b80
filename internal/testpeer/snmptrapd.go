package testpeer

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SnmptrapdPath is net-snmp's notification receiver (Debian package
// snmptrapd).
const SnmptrapdPath = "/usr/sbin/snmptrapd"

// SnmptrapdFormats is the log format [StartSnmptrapd] puts before the
// caller's config: one line per notification, so a test can match one with
// a regexp. An SNMPv2c or SNMPv3 notification is logged as
//
//	TRAP2 <version> <PDU and security>\t<varbind>\t<varbind>...
//
// for example "TRAP2 1 INFORM, SNMP v2c, community public\t...", and an
// SNMPv1 trap as "TRAP1 ...". Varbinds print as "OID = TYPE: value", the OID
// numeric with -On, by name when a MIB that defines it is loaded (-m, -M).
// A format line in the caller's config replaces the one here.
const SnmptrapdFormats = "format1 TRAP1 %s %P enterprise=%N generic=%w specific=%q\\t%v\\n\n" +
	"format2 TRAP2 %s %P\\t%v\\n\n"

// snmptrapdStarted starts the line snmptrapd logs once its sockets are
// open, just before its main loop (the line it logs when stopping starts
// with a date).
var snmptrapdStarted = regexp.MustCompile(`(?m)^NET-SNMP version \S+\s*$`)

// StartSnmptrapd starts net-snmp's snmptrapd on 127.0.0.1 at a free UDP
// port, in the foreground, with SnmptrapdFormats followed by conf as its
// only configuration (-C -c), its persistent state (SNMPv3 engine id and
// boots) in its own temp dir, no MIBs unless args load some (MIBS=:), no
// AgentX (-X) and no DNS lookups (-n). args are further options, put before
// the listening address: "-On" for numeric OIDs, "-m", "FACGW-MIB", "-M",
// dir to print names from a MIB.
//
// A conf needs at least "authCommunity log public" (v2c) or "createUser"
// plus "authUser log NAME" lines (v3; "createUser -e ENGINEID ..." for
// traps, whose sender is the authoritative engine) for snmptrapd to log
// anything: without them it drops every notification.
//
// It returns the address ("127.0.0.1:PORT"), the log file (appended to
// across [Process.Restart], which keeps the port, the config and the engine
// id) and the process. It returns once snmptrapd logged that it is up,
// which it does after binding the port. The test is skipped if snmptrapd
// is not installed (failed with CI=true), see [Require].
func StartSnmptrapd(t testing.TB, conf string, args ...string) (addr, logPath string, p *Process) {
	t.Helper()
	Require(t, "snmptrapd", SnmptrapdPath)
	dir := t.TempDir()
	port := FreeUDPPort(t)
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logPath = filepath.Join(dir, "snmptrapd.log")
	confPath := filepath.Join(dir, "snmptrapd-test.conf")
	if err := os.WriteFile(confPath, []byte(SnmptrapdFormats+conf), 0o600); err != nil {
		t.Fatalf("testpeer: write snmptrapd config: %v", err)
	}
	argv := []string{"-f", "-A", "-Lf", logPath, "-C", "-c", confPath, "-X", "-n"}
	argv = append(argv, args...)
	argv = append(argv, "UDP:"+addr)
	// Each run logs one start line; waiting for as many as there were
	// runs makes a Restart wait for the new run, not accept the line the
	// previous one left in the appended log.
	ready := func() error {
		want := 1
		if p != nil {
			p.mu.Lock()
			want = p.runs
			p.mu.Unlock()
		}
		if n := len(snmptrapdStarted.FindAllString(readFile(logPath), -1)); n < want {
			return fmt.Errorf("snmptrapd logged %d start lines, want %d", n, want)
		}
		return nil
	}
	p = StartProcess(t, SnmptrapdPath, argv,
		WithDir(dir),
		// MIBS=: is an empty MIB list: without it net-snmp tries its
		// default modules, which Debian does not ship, and logs a
		// "Cannot find module" line for each. -m overrides it.
		WithEnv("MIBS=:", "SNMP_PERSISTENT_DIR="+dir, "HOME="+dir),
		WithReady(ready))
	return addr, logPath, p
}

// WaitLogLine polls the file at path until a line matches re and returns
// that line. It fails the test with the whole file after 30 s: the deadline
// only guards against a hang, nothing asserts on timing.
func WaitLogLine(t testing.TB, path string, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for line := range strings.SplitSeq(readFile(path), "\n") {
			if re.MatchString(line) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpeer: no line of %s matches %q; the file:\n%s", path, re, tail(readFile(path), logTail))
		}
		time.Sleep(PollInterval / 2)
	}
}

// CountLogLines returns how many lines of the file at path match re (0 if
// it cannot be read).
func CountLogLines(path string, re *regexp.Regexp) int {
	n := 0
	for line := range strings.SplitSeq(readFile(path), "\n") {
		if re.MatchString(line) {
			n++
		}
	}
	return n
}

package snmpnotify

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/testpeer"
)

// These tests keep the "SNMP notifications" section of docs/alerting.md
// honest: its tables, its engine id example and its snmptrapd config.

// snmpSection returns the "## SNMP notifications" section of the doc.
func snmpSection(t testing.TB) string {
	t.Helper()
	doc, err := os.ReadFile("../../../docs/alerting.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(doc), "\n## SNMP notifications\n")
	if !ok {
		t.Fatal("docs/alerting.md has no ## SNMP notifications section")
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	return sec
}

// exampleBlock returns the fenced block after <!-- example: name -->.
func exampleBlock(t testing.TB, sec, name string) string {
	t.Helper()
	_, rest, ok := strings.Cut(sec, "<!-- example: "+name+" -->\n")
	if !ok {
		t.Fatalf("the SNMP section has no %s example", name)
	}
	rest, ok = strings.CutPrefix(rest, "```\n")
	end := strings.Index(rest, "```")
	if !ok || end < 0 {
		t.Fatalf("%s example is not a fenced block", name)
	}
	return rest[:end]
}

func TestDocsTables(t *testing.T) {
	sec := snmpSection(t)
	oids := mibOIDs(DefaultEnterpriseOID)
	rows := regexp.MustCompile("(?m)^\\| `(\\w+)` \\| `(\\w+)` \\| `([\\d.]+)` \\|$").FindAllStringSubmatch(sec, -1)
	if len(rows) != len(notificationArcs) {
		t.Fatalf("got %d rows in the notification table, want %d", len(rows), len(notificationArcs))
	}
	for i, r := range rows {
		n := notificationArcs[i]
		if alert.Kind(r[1]) != n.kind || r[2] != n.name || r[3] != oids[n.name] {
			t.Errorf("notification row %d: got %s %s %s, want %s %s %s", i, r[1], r[2], r[3], n.kind, n.name, oids[n.name])
		}
	}
	objs := regexp.MustCompile("(?m)^\\| (\\d+) \\| `(\\w+)` \\|").FindAllStringSubmatch(sec, -1)
	if len(objs) != numObjects {
		t.Fatalf("got %d rows in the varbind table, want %d", len(objs), numObjects)
	}
	for _, r := range objs {
		i, _ := strconv.Atoi(r[1])
		if i < 1 || i > numObjects {
			t.Errorf("varbind row %s %s: the code sends objects 1..%d", r[1], r[2], numObjects)
		} else if objectNames[i] != r[2] {
			t.Errorf("varbind row %s: the doc says %s, the code sends %s", r[1], r[2], objectNames[i])
		}
	}
}

func TestDocsEngineIDExample(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(exampleBlock(t, snmpSection(t), "engine-id")), "\n")
	if len(lines) != 3 {
		t.Fatalf("engine-id example: got %d lines, want 3", len(lines))
	}
	m := regexp.MustCompile(`'facgw snmp engine\\0%s' (\S+) \|`).FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("engine-id example: no gateway name in %q", lines[0])
	}
	want := DeriveEngineID(m[1])
	if got := "80007ed905" + lines[1]; got != want {
		t.Errorf("engine-id example: the command's output gives %s, DeriveEngineID(%q) %s", got, m[1], want)
	}
	if got := strings.TrimPrefix(lines[2], "engine id: "); got != want {
		t.Errorf("engine-id example: the doc says %s, DeriveEngineID(%q) gives %s", got, m[1], want)
	}
}

// TestDocsSnmptrapdConfIntegration runs the doc's snmptrapd config and
// sends to it as the doc's facgw config would: a v3 inform as the doc's
// inform user, a v3 trap from gateway gw-1's derived engine.
func TestDocsSnmptrapdConfIntegration(t *testing.T) {
	conf := exampleBlock(t, snmpSection(t), "snmptrapd-conf")
	addr, logPath, _ := testpeer.StartSnmptrapd(t, conf, "-m", "FACGW-MIB", "-M", netSNMPMIBPath(t))
	// createUser [-e ENGINE] NAME AUTH AUTHPASS PRIV PRIVPASS
	users := regexp.MustCompile(`(?m)^createUser (?:-e 0x(\w+) )?(\S+) (\S+) (\S+) (\S+) (\S+)$`).FindAllStringSubmatch(conf, -1)
	if len(users) != 2 {
		t.Fatalf("got %d createUser lines, want an inform user and a trap user", len(users))
	}
	for _, u := range users {
		engine, name := u[1], u[2]
		o := Options{Address: addr, Version: "3", User: name, SecurityLevel: "authPriv",
			AuthProtocol: u[3], AuthPassword: Secret(u[4]), PrivProtocol: u[5], PrivPassword: Secret(u[6]),
			Inform: engine == "", Gateway: "gw-1"}
		s := mustNew(t, o)
		if engine != "" && s.EngineID() != engine {
			t.Errorf("user %s: the doc's engine id %s is not gw-1's, %s", name, engine, s.EngineID())
		}
		id := "docs-" + name
		if _, err := s.Send(sendCtx(t), []alert.Event{testEvent(id, 1)}); err != nil {
			t.Fatalf("user %s: %v", name, err)
		}
		line := logLine(t, logPath, id)
		if !strings.Contains(line, "SNMP v3, user "+name+",") || !strings.Contains(line, "= OID: FACGW-MIB::facgwAlertFiring") {
			t.Errorf("user %s: got %q", name, line)
		}
	}
	if b, _ := os.ReadFile(logPath); bytes.Contains(b, []byte("Cannot find module")) {
		t.Errorf("snmptrapd could not load a module:\n%s", b)
	}
}

package snmpnotify

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/testpeer"
)

// The MIB file and the code must not drift: these tests load
// deploy/mib/FACGW-MIB.txt with net-snmp (and parse it with pysmi's strict
// SMIv2 grammar) and compare every name and OID with what Send sends.

// snmptranslate runs net-snmp's snmptranslate with FACGW-MIB loaded from
// mibPath and nothing else (no config files, no default MIB list) and
// returns its stdout and stderr.
func snmptranslate(t testing.TB, mibPath string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	dir := t.TempDir()
	// Pre-created, or net-snmp says on stderr that it created it.
	if err := os.Mkdir(filepath.Join(dir, "cert_indexes"), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/snmptranslate", append([]string{"-m", "FACGW-MIB", "-M", mibPath}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "MIBS=:", "SNMPCONFPATH=" + dir, "SNMP_PERSISTENT_DIR=" + dir, "HOME=" + dir}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func TestMIBMatchesCodeIntegration(t *testing.T) {
	testpeer.Require(t, "snmp", "/usr/bin/snmptranslate")
	mib, err := os.ReadFile(filepath.Join(mibDir(t), "FACGW-MIB.txt"))
	if err != nil {
		t.Fatal(err)
	}
	path := netSNMPMIBPath(t)
	// A site that moves the MIB under its own enterprise number edits the
	// one facgwMIB line and sets EnterpriseOID: both must agree.
	ownPEN := t.TempDir()
	moved := strings.Replace(string(mib), "::= { enterprises 32473 }", "::= { enterprises 99999 }", 1)
	if moved == string(mib) {
		t.Fatal("the MIB has no line '::= { enterprises 32473 }' (the one docs tell sites to change)")
	}
	if err := os.WriteFile(filepath.Join(ownPEN, "FACGW-MIB.txt"), []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	_, ietf, _ := strings.Cut(path, ":")

	for _, tc := range []struct {
		name, path, base string
	}{
		{"as shipped", path, DefaultEnterpriseOID},
		{"moved to a site's own number", ownPEN + ":" + ietf, "1.3.6.1.4.1.99999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := mibOIDs(tc.base)

			// The whole tree loads without a word on stderr.
			tree, stderr, err := snmptranslate(t, tc.path, "-Tp", "-IR", "facgwMIB")
			if err != nil || stderr != "" || !strings.Contains(tree, "facgwAlertFiring(1)") {
				t.Fatalf("snmptranslate -Tp: %v\nstderr:\n%s\nstdout:\n%s", err, stderr, tree)
			}

			// Each name the code sends translates to the OID it sends.
			for name, oid := range want {
				out, stderr, err := snmptranslate(t, tc.path, "-On", "FACGW-MIB::"+name)
				if err != nil || stderr != "" {
					t.Errorf("snmptranslate -On %s: %v, stderr %q", name, err, stderr)
					continue
				}
				if got := strings.TrimPrefix(strings.TrimSpace(out), "."); got != oid {
					t.Errorf("%s: the MIB says %s, the code sends %s", name, got, oid)
				}
			}

			// And the MIB defines no notification or alert object the
			// code does not send.
			all, stderr, err := snmptranslate(t, tc.path, "-Tz")
			if err != nil || stderr != "" {
				t.Fatalf("snmptranslate -Tz: %v, stderr %q", err, stderr)
			}
			for _, m := range regexp.MustCompile(`"(\w+)"\s+"([\d.]+)"`).FindAllStringSubmatch(all, -1) {
				name, oid := m[1], m[2]
				parent := oid[:strings.LastIndex(oid, ".")]
				if parent != tc.base+".0" && parent != tc.base+".1.1" {
					continue
				}
				if want[name] != oid {
					t.Errorf("the MIB defines %s as %s; the code sends it as %q", name, oid, want[name])
				}
			}

			// Every notification lists its objects in the order the code
			// sends the varbinds (RFC 3416 4.2.6: in the OBJECTS order).
			wantObjects := strings.Join(objectNames[1:], ", ")
			for _, n := range notificationArcs {
				def, stderr, err := snmptranslate(t, tc.path, "-Td", "FACGW-MIB::"+n.name)
				if err != nil || stderr != "" {
					t.Fatalf("snmptranslate -Td %s: %v, stderr %q", n.name, err, stderr)
				}
				m := regexp.MustCompile(`OBJECTS\s+\{ ([^}]*) \}`).FindStringSubmatch(def)
				if m == nil || m[1] != wantObjects {
					t.Errorf("%s OBJECTS: got %q, want %q", n.name, m, wantObjects)
				}
			}
		})
	}
}

// TestMIBErrorsAreSeenIntegration shows the checks above can fail: net-snmp
// reports a broken copy of the MIB on stderr.
func TestMIBErrorsAreSeenIntegration(t *testing.T) {
	testpeer.Require(t, "snmp", "/usr/bin/snmptranslate")
	mib, err := os.ReadFile(filepath.Join(mibDir(t), "FACGW-MIB.txt"))
	if err != nil {
		t.Fatal(err)
	}
	path := netSNMPMIBPath(t)
	_, ietf, _ := strings.Cut(path, ":")
	for _, tc := range []struct{ name, from, to string }{
		{"undefined parent", "::= { facgwAlertObjects 15 }", "::= { facgwAlertObjekts 15 }"},
		{"missing clause", "    STATUS      current\n", ""},
		{"unknown import", "DateAndTime, TruthValue", "DateAndTime, TruthValue, NoSuchTC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := strings.Replace(string(mib), tc.from, tc.to, 1)
			if broken == string(mib) {
				t.Fatalf("the MIB has no %q to break", tc.from)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "FACGW-MIB.txt"), []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, _ := snmptranslate(t, dir+":"+ietf, "-Tp", "-IR", "facgwMIB")
			if stderr == "" {
				t.Errorf("net-snmp loaded a broken MIB without a word")
			}
		})
	}
}

// pysmiScript parses the MIB with pysmi's SMIv2 grammar (stricter than
// net-snmp's parser) and prints each definition's kind and name.
const pysmiScript = `
import sys
from pysmi.parser.smi import parserFactory
from pysmi.parser.dialect import smiV2
ast = parserFactory(**smiV2)().parse(open(sys.argv[1]).read())
for d in ast[0][3]:
    print(d[0], d[1])
`

func TestMIBGrammarIntegration(t *testing.T) {
	testpeer.Require(t, "python3-pysmi", testpeer.PythonPath, "/usr/lib/python3/dist-packages/pysmi/parser/smi.py")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name, edit string // edit: a line to delete, "" for the file as is
		ok         bool
	}{
		{"as shipped", "", true},
		{"a clause missing", "    STATUS      current\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mib, err := os.ReadFile(filepath.Join(mibDir(t), "FACGW-MIB.txt"))
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "FACGW-MIB.txt")
			if err := os.WriteFile(file, []byte(strings.Replace(string(mib), tc.edit, "", 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(ctx, testpeer.PythonPath, "-I", "-c", pysmiScript, file)
			out, err := cmd.CombinedOutput()
			if !tc.ok {
				if err == nil {
					t.Errorf("pysmi parsed a broken MIB:\n%s", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("pysmi: %v\n%s", err, out)
			}
			var objects, notifications []string
			for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
				kind, name, _ := strings.Cut(line, " ")
				switch kind {
				case "objectTypeClause":
					objects = append(objects, name)
				case "notificationTypeClause":
					notifications = append(notifications, name)
				}
			}
			if !slices.Equal(objects, objectNames[1:]) {
				t.Errorf("objects: the MIB defines %v, the code sends %v", objects, objectNames[1:])
			}
			var want []string
			for _, n := range notificationArcs {
				want = append(want, n.name)
			}
			if !slices.Equal(notifications, want) {
				t.Errorf("notifications: the MIB defines %v, the code sends %v", notifications, want)
			}
		})
	}
}

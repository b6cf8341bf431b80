package testpeer

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// NetSNMP runs a net-snmp command-line tool (/usr/bin/TOOL: snmpget,
// snmptrap, snmpinform, ...) without MIBs and with its persistent state in
// a temp dir, logs the command and its output, and returns the combined
// output. The tools' own -t/-r options bound each run; the one-minute
// context only guards against a hung tool.
func NetSNMP(t testing.TB, tool string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/"+tool, args...)
	dir := t.TempDir()
	cmd.Env = []string{"MIBS=", "SNMP_PERSISTENT_DIR=" + dir, "HOME=" + dir, "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	t.Logf("%s %s\n%s", tool, strings.Join(args, " "), out)
	return string(out), err
}

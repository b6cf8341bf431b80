package testpeer

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// SocatPath is Debian's socat (package socat).
const SocatPath = "/usr/bin/socat"

// StartPTYPair starts socat joining two pseudo-terminals back to back, a
// null-modem cable with no hardware: what is written to one end is read from
// the other. It returns the paths of the two ends (symlinks to /dev/pts/N in
// a temp dir), once both exist; open each like a serial port (e.g. a for the
// client, b for a server). socat is stopped at the end of the test; start it
// before the programs that open the ends, so that they are stopped first.
//
// Either end may be closed and opened again while socat runs. A pty pair
// ignores baud rate, parity and stop bits (both ends may set them, nothing
// enforces them), and, unlike a closed UART, it keeps bytes written to an
// end while nobody has it open: they are read by whoever opens it next.
//
// The test is skipped if socat is not installed (failed with CI=true), see
// [Require].
func StartPTYPair(t testing.TB) (a, b string) {
	t.Helper()
	Require(t, "socat", SocatPath)
	dir := t.TempDir()
	a, b = filepath.Join(dir, "a"), filepath.Join(dir, "b")
	// -d -d logs the pty names (/dev/pts/N) to stderr, which the cleanup
	// shows if the test fails. raw,echo=0: pass every byte through as is.
	StartProcess(t, SocatPath, []string{"-d", "-d",
		"pty,raw,echo=0,link=" + a,
		"pty,raw,echo=0,link=" + b,
	}, WithDir(dir), WithReady(func() error {
		for _, p := range []string{a, b} {
			// Stat follows the link: the pty itself must exist.
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("pty link: %w", err)
			}
		}
		return nil
	}))
	return a, b
}

package testpeer

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Debian packages the pymodbus 3.0.0 serial server needs besides
// python3-pymodbus (which only recommends them).
const (
	pyserialModule        = "/usr/lib/python3/dist-packages/serial/__init__.py"
	pyserialAsyncioModule = "/usr/lib/python3/dist-packages/serial_asyncio/__init__.py"
)

//go:embed pymodbus_rtu_server.py
var pymodbusRTUScript []byte

// StartPymodbusRTU starts a real Modbus RTU server (Debian's pymodbus 3.0.0
// run by [PythonPath], with its ModbusRtuFramer) on the serial line port,
// e.g. one end of a [StartPTYPair], serving layout exactly as [StartPymodbus]
// does over TCP (see [PymodbusLayout]: a unit id not served gets no reply).
// It returns once the server has opened port and listens on it. The server
// is stopped at the end of the test.
//
// The line is 8 data bits at baud with parity "N", "E" or "O"; stop bits
// follow the Modbus serial line rule: 1 with parity, 2 without (8E1, 8O1,
// 8N2). On a pty, which has no parity, the server opens the line without
// it (pyserial cannot set it there on Debian); the client's setting is as
// meaningless. The test is skipped if pymodbus or pyserial is not installed
// (failed with CI=true), see [Require].
func StartPymodbusRTU(t testing.TB, port string, baud int, parity string, layout PymodbusLayout) {
	t.Helper()
	StartPymodbusRTUProcess(t, port, baud, parity, layout)
}

// StartPymodbusRTUProcess is [StartPymodbusRTU] that also returns the
// server's [Process], for outage tests: Kill it, then Restart it on the same
// line with the same layout (values written by clients are not kept).
func StartPymodbusRTUProcess(t testing.TB, port string, baud int, parity string, layout PymodbusLayout) *Process {
	t.Helper()
	Require(t, "python3-pymodbus", PythonPath, pymodbusModule)
	Require(t, "python3-serial", pyserialModule)
	Require(t, "python3-serial-asyncio", pyserialAsyncioModule)
	if len(layout.Units) == 0 {
		t.Fatalf("testpeer: pymodbus layout serves no unit id")
	}
	stopBits := 1
	switch parity {
	case "N":
		stopBits = 2
	case "E", "O":
	default:
		t.Fatalf("testpeer: parity %q: want N, E or O", parity)
	}

	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	doc := pymodbusJSON(layout, 0)
	delete(doc, "host")
	delete(doc, "port")
	doc["serial"] = map[string]any{
		"port":     port,
		"baudrate": baud,
		"bytesize": 8,
		"parity":   parity,
		"stopbits": stopBits,
	}
	doc["ready_file"] = ready
	spec, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatalf("testpeer: encode pymodbus layout: %v", err)
	}
	script := filepath.Join(dir, "pymodbus_rtu_server.py")
	layoutFile := filepath.Join(dir, "layout.json")
	if err := os.WriteFile(script, pymodbusRTUScript, 0o644); err != nil {
		t.Fatalf("testpeer: write pymodbus rtu script: %v", err)
	}
	// The RTU script imports the shared datastore code from the TCP one.
	if err := os.WriteFile(filepath.Join(dir, "pymodbus_server.py"), pymodbusScript, 0o644); err != nil {
		t.Fatalf("testpeer: write pymodbus script: %v", err)
	}
	if err := os.WriteFile(layoutFile, spec, 0o644); err != nil {
		t.Fatalf("testpeer: write pymodbus layout: %v", err)
	}
	// The server writes its PID to ready once the port is open. Checking
	// the PID makes a Restart wait for the new run, not accept the file
	// the previous run left.
	var p *Process
	isReady := func() error {
		b, err := os.ReadFile(ready)
		if err != nil {
			return err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("ready file %q: %w", b, err)
		}
		if p != nil && pid != p.PID() {
			return fmt.Errorf("ready file is from pid %d, not the current run", pid)
		}
		return nil
	}
	// -I and -u as for the TCP server (see StartPymodbusProcess).
	p = StartProcess(t, PythonPath, []string{"-I", "-u", script, layoutFile},
		WithDir(dir), WithReady(isReady))
	return p
}

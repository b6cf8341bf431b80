package testpeer

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// PythonPath is Debian's python3, the only interpreter on the test machines
// that can import python3-pymodbus (the python3 first on PATH may be another
// one, e.g. pyenv's).
const PythonPath = "/usr/bin/python3"

// pymodbusModule is checked by Require before starting the server.
const pymodbusModule = "/usr/lib/python3/dist-packages/pymodbus/__init__.py"

//go:embed pymodbus_server.py
var pymodbusScript []byte

// PymodbusLayout is what a pymodbus server started by [StartPymodbus] serves.
// The expected values of a test come from here, not from facgw's own code.
type PymodbusLayout struct {
	// Units maps each unit id (slave id) served to its registers. It must
	// not be empty. A request for a unit id not in Units gets no reply at
	// all (the client times out), as pymodbus 3.0.0 drops it; but if unit
	// id 0 or 255 is served, pymodbus accepts every unit id and answers
	// the unknown ones with exception 0x0B (Gateway Target Device Failed
	// to Respond) instead.
	Units map[uint8]PymodbusUnit

	// Identity, if not nil, is served to Read Device Identification
	// (function 0x2B, MEI type 0x0E) requests. pymodbus serves one identity
	// for all unit ids. With nil, such requests are answered with no
	// objects.
	Identity *DeviceIdentity

	// LogLevel is the Python logging level of the server's stderr log
	// ("DEBUG" logs every frame); default "WARNING".
	LogLevel string
}

// PymodbusUnit is the data of one unit id, as address → value maps with
// addresses as on the wire (0-based, PDU addresses). Exactly the mapped
// addresses exist: a read or write that touches any other address (also one
// that is only partly mapped) is answered with exception 02 (Illegal Data
// Address). Writes to mapped addresses are stored.
type PymodbusUnit struct {
	Holding  map[uint16]uint16 // holding registers (function 03)
	Input    map[uint16]uint16 // input registers (function 04)
	Coils    map[uint16]bool   // coils (function 01)
	Discrete map[uint16]bool   // discrete inputs (function 02)
}

// DeviceIdentity holds the Read Device Identification objects. Empty strings
// are left out of responses. A basic read (read code 01) returns objects
// 0x00–0x02 (VendorName, ProductCode, MajorMinorRevision); a regular read
// (02) also 0x03–0x06.
type DeviceIdentity struct {
	VendorName          string // object 0x00
	ProductCode         string // object 0x01
	MajorMinorRevision  string // object 0x02
	VendorURL           string // object 0x03
	ProductName         string // object 0x04
	ModelName           string // object 0x05
	UserApplicationName string // object 0x06
}

// S16 returns the register value of a signed 16-bit number (two's
// complement, v & 0xFFFF), as a device stores it.
func S16(v int16) uint16 { return uint16(v) }

// StartPymodbus starts a real Modbus TCP server (Debian's pymodbus 3.0.0 run
// by [PythonPath]) on 127.0.0.1 at a free port, serving layout, and returns
// its "127.0.0.1:port" once it accepts connections. The server is stopped at
// the end of the test. The test is skipped if python3-pymodbus is not
// installed (failed with CI=true), see [Require].
func StartPymodbus(t testing.TB, layout PymodbusLayout) (addr string) {
	t.Helper()
	_, addr = StartPymodbusProcess(t, layout)
	return addr
}

// StartPymodbusProcess is [StartPymodbus] that also returns the server's
// [Process], for outage tests: Kill it, then Restart it on the same address
// with the same layout (values written by clients are not kept).
func StartPymodbusProcess(t testing.TB, layout PymodbusLayout) (*Process, string) {
	t.Helper()
	Require(t, "python3-pymodbus", PythonPath, pymodbusModule)
	if len(layout.Units) == 0 {
		t.Fatalf("testpeer: pymodbus layout serves no unit id")
	}

	dir := t.TempDir()
	port := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	spec, err := json.MarshalIndent(pymodbusJSON(layout, port), "", "  ")
	if err != nil {
		t.Fatalf("testpeer: encode pymodbus layout: %v", err)
	}
	script := filepath.Join(dir, "pymodbus_server.py")
	layoutFile := filepath.Join(dir, "layout.json")
	if err := os.WriteFile(script, pymodbusScript, 0o644); err != nil {
		t.Fatalf("testpeer: write pymodbus script: %v", err)
	}
	if err := os.WriteFile(layoutFile, spec, 0o644); err != nil {
		t.Fatalf("testpeer: write pymodbus layout: %v", err)
	}
	// -I: ignore PYTHON* variables and the user site dir (a pyenv or
	// virtualenv setting must not change which pymodbus is imported);
	// -u: unbuffered, so the log is complete when the process is killed.
	p := StartProcess(t, PythonPath, []string{"-I", "-u", script, layoutFile},
		WithDir(dir), WithReadyTCP(addr))
	return p, addr
}

// pymodbusJSON converts layout to the JSON document read by
// pymodbus_server.py.
func pymodbusJSON(layout PymodbusLayout, port int) map[string]any {
	units := make(map[string]any, len(layout.Units))
	for id, u := range layout.Units {
		units[strconv.Itoa(int(id))] = map[string]any{
			"hr": registers(u.Holding),
			"ir": registers(u.Input),
			"co": bits(u.Coils),
			"di": bits(u.Discrete),
		}
	}
	doc := map[string]any{
		"host":      "127.0.0.1",
		"port":      port,
		"units":     units,
		"log_level": layout.LogLevel,
	}
	if id := layout.Identity; id != nil {
		info := map[string]string{}
		for name, v := range map[string]string{
			"VendorName":          id.VendorName,
			"ProductCode":         id.ProductCode,
			"MajorMinorRevision":  id.MajorMinorRevision,
			"VendorUrl":           id.VendorURL,
			"ProductName":         id.ProductName,
			"ModelName":           id.ModelName,
			"UserApplicationName": id.UserApplicationName,
		} {
			if v != "" {
				info[name] = v
			}
		}
		doc["identity"] = info
	}
	return doc
}

func registers(m map[uint16]uint16) map[string]int {
	out := make(map[string]int, len(m))
	for a, v := range m {
		out[fmt.Sprint(a)] = int(v)
	}
	return out
}

func bits(m map[uint16]bool) map[string]int {
	out := make(map[string]int, len(m))
	for a, v := range m {
		if v {
			out[fmt.Sprint(a)] = 1
		} else {
			out[fmt.Sprint(a)] = 0
		}
	}
	return out
}

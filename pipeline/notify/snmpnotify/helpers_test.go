package snmpnotify

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/alert"
)

// testEvent returns a firing event with every field FACGW-MIB carries set;
// id tells the events of one test apart in a receiver's log.
func testEvent(id string, seq uint64) alert.Event {
	return alert.Event{
		ID:       id,
		Seq:      seq,
		Kind:     alert.KindFiring,
		State:    alert.Firing,
		Rule:     "power/ups-on-battery",
		Class:    "power",
		Severity: alert.Critical,
		Device:   "ups-1",
		Site:     "fra1",
		Gateway:  "gw-a",
		Summary:  "UPS ups-1 on battery: 17 min left",
		ActiveAt: time.Date(2026, 3, 14, 15, 9, 26, 512_000_000, time.UTC),
		At:       time.Date(2026, 3, 14, 15, 10, 0, 0, time.UTC),
		// The rule fired on lost supervision: a varbind that is not the
		// zero value, so a dropped field shows.
		SupervisionLost: true,
	}
}

// mustNew builds a Sender or fails the test.
func mustNew(t testing.TB, o Options) *Sender {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// sendCtx bounds a Send in a test: generous, only so a hang fails the test
// instead of blocking it; nothing asserts on timing.
func sendCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mibDir is the absolute path of deploy/mib.
func mibDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", filepath.Dir(MIBFile)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "FACGW-MIB.txt")); err != nil {
		t.Fatalf("the MIB is not where MIBFile says: %v", err)
	}
	return dir
}

// The modules FACGW-MIB imports, and the definitions it takes from each.
var baseModules = []string{"SNMPv2-SMI", "SNMPv2-TC", "SNMP-FRAMEWORK-MIB"}

// ietfMIBDirs are where the IETF modules are when a machine has them:
// FACGW_IETF_MIBS, Debian's snmp-mibs-downloader (non-free), net-snmp
// built from upstream source.
func ietfMIBDirs() []string {
	dirs := []string{"/usr/share/snmp/mibs/ietf", "/var/lib/mibs/ietf", "/usr/share/snmp/mibs", "/usr/local/share/snmp/mibs"}
	if d := os.Getenv("FACGW_IETF_MIBS"); d != "" {
		dirs = append([]string{d}, dirs...)
	}
	return dirs
}

// standIns defines, for net-snmp, the few symbols FACGW-MIB imports, as
// RFC 2578 (enterprises), RFC 2579 (DateAndTime, TruthValue) and RFC 3411
// (SnmpAdminString) define them. They are not the IETF modules and are
// never installed anywhere: Debian ships no IETF MIB (libsnmp-base has
// net-snmp's own, libsmi2-common is emptied for licence reasons, the
// modules are in non-free snmp-mibs-downloader, which fetches them from
// the RFCs at install time), and net-snmp 5.9.3 has no built-in
// SNMPv2-SMI. net-snmp needs no SNMPv2-CONF: it knows the conformance
// macros itself. The MIB macros and Counter64 are keywords of its parser.
var standIns = map[string]string{
	"SNMPv2-SMI": `SNMPv2-SMI DEFINITIONS ::= BEGIN
-- facgw test stand-in (RFC 2578 section 2): only what FACGW-MIB imports.
org         OBJECT IDENTIFIER ::= { iso 3 }
dod         OBJECT IDENTIFIER ::= { org 6 }
internet    OBJECT IDENTIFIER ::= { dod 1 }
private     OBJECT IDENTIFIER ::= { internet 4 }
enterprises OBJECT IDENTIFIER ::= { private 1 }
END
`,
	"SNMPv2-TC": `SNMPv2-TC DEFINITIONS ::= BEGIN
-- facgw test stand-in (RFC 2579): only what FACGW-MIB imports.
TruthValue ::= TEXTUAL-CONVENTION
    STATUS       current
    DESCRIPTION  "RFC 2579."
    SYNTAX       INTEGER { true(1), false(2) }
DateAndTime ::= TEXTUAL-CONVENTION
    DISPLAY-HINT "2d-1d-1d,1d:1d:1d.1d,1a1d:1d"
    STATUS       current
    DESCRIPTION  "RFC 2579."
    SYNTAX       OCTET STRING (SIZE (8 | 11))
END
`,
	"SNMP-FRAMEWORK-MIB": `SNMP-FRAMEWORK-MIB DEFINITIONS ::= BEGIN
-- facgw test stand-in (RFC 3411): only what FACGW-MIB imports.
SnmpAdminString ::= TEXTUAL-CONVENTION
    DISPLAY-HINT "255t"
    STATUS       current
    DESCRIPTION  "RFC 3411."
    SYNTAX       OCTET STRING (SIZE (0..255))
END
`,
}

// netSNMPMIBPath returns the -M path that lets net-snmp load FACGW-MIB:
// deploy/mib, then a directory with the modules it imports, the real ones
// if the machine has them, else the stand-ins written to a temp dir.
func netSNMPMIBPath(t testing.TB) string {
	t.Helper()
	for _, dir := range ietfMIBDirs() {
		if hasModules(dir, baseModules) {
			t.Logf("IETF MIB modules from %s", dir)
			return mibDir(t) + ":" + dir
		}
	}
	dir := t.TempDir()
	for name, text := range standIns {
		if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("no IETF MIB modules on this machine (set FACGW_IETF_MIBS to use some): FACGW-MIB's imports come from stand-ins")
	return mibDir(t) + ":" + dir
}

// hasModules reports whether dir holds a file for each module (net-snmp
// finds a module by the name on its first line; the files are named after
// it, with or without .txt, in every distribution of them).
func hasModules(dir string, modules []string) bool {
	for _, m := range modules {
		_, err1 := os.Stat(filepath.Join(dir, m))
		_, err2 := os.Stat(filepath.Join(dir, m+".txt"))
		if err1 != nil && err2 != nil {
			return false
		}
	}
	return true
}

// fakeReceiver is an SNMPv2c notification receiver for unit tests: it
// records every notification and acknowledges the informs ack allows.
type fakeReceiver struct {
	pc  net.PacketConn
	ack func(n int) bool // whether to answer the n-th inform (from 0)
	// status is the error status of the answers.
	status gosnmp.SNMPError

	mu      sync.Mutex
	got     []*gosnmp.SnmpPacket
	informs int
}

// startFake starts a fake receiver on 127.0.0.1; ack nil answers every
// inform. It is stopped by the test's cleanup.
func startFake(t testing.TB, ack func(n int) bool) *fakeReceiver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if ack == nil {
		ack = func(int) bool { return true }
	}
	f := &fakeReceiver{pc: pc, ack: ack}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.serve()
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return f
}

func (f *fakeReceiver) addr() string { return f.pc.LocalAddr().String() }

func (f *fakeReceiver) serve() {
	buf := make([]byte, 65536)
	dec := &gosnmp.GoSNMP{Version: gosnmp.Version2c}
	for {
		n, from, err := f.pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		pkt, err := dec.SnmpDecodePacket(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		f.mu.Lock()
		f.got = append(f.got, pkt)
		answer := false
		if pkt.PDUType == gosnmp.InformRequest {
			answer = f.ack(f.informs)
			f.informs++
		}
		status := f.status
		f.mu.Unlock()
		if !answer {
			continue
		}
		res := &gosnmp.SnmpPacket{Version: pkt.Version, Community: pkt.Community, PDUType: gosnmp.GetResponse,
			RequestID: pkt.RequestID, Error: status, Variables: pkt.Variables}
		b, err := res.MarshalMsg()
		if err == nil {
			_, _ = f.pc.WriteTo(b, from)
		}
	}
}

// packets returns what the receiver got so far.
func (f *fakeReceiver) packets() []*gosnmp.SnmpPacket {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*gosnmp.SnmpPacket(nil), f.got...)
}

// waitPackets waits (up to 30 s, a guard against a hang) until the
// receiver got n packets, and returns them.
func (f *fakeReceiver) waitPackets(t testing.TB, n int) []*gosnmp.SnmpPacket {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := f.packets()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("fake receiver got %d packets, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// varbind returns the varbind named oid in p and whether p has it.
func varbind(p *gosnmp.SnmpPacket, oid string) (gosnmp.SnmpPDU, bool) {
	for _, v := range p.Variables {
		if strings.TrimPrefix(v.Name, ".") == oid {
			return v, true
		}
	}
	return gosnmp.SnmpPDU{}, false
}

package snmpagent

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// clientTimeout bounds one request of a client that expects an answer;
// no test asserts on it.
const clientTimeout = 5 * time.Second

func TestStoreOrder(t *testing.T) {
	s := NewStore()
	for _, o := range []string{"1.3.6.1.10.1", "1.3.6.1.2.1", ".1.3.6.1.2", "1.3.6.1.2.1.0", "1.3.6.1.9"} {
		if err := s.Set(o, Integer(1)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	s.Walk(func(name string, _ Value) bool { got = append(got, name); return true })
	want := []string{"1.3.6.1.2", "1.3.6.1.2.1", "1.3.6.1.2.1.0", "1.3.6.1.9", "1.3.6.1.10.1"}
	if !slices.Equal(got, want) {
		t.Fatalf("walk order: got %v, want %v", got, want)
	}
	if n, _, ok := s.Next("1.3.6.1.2.1.0"); !ok || n != "1.3.6.1.9" {
		t.Errorf("Next(1.3.6.1.2.1.0): got %q %v, want 1.3.6.1.9", n, ok)
	}
	if n, _, ok := s.Next("1.3.6.1.3"); !ok || n != "1.3.6.1.9" {
		t.Errorf("Next(1.3.6.1.3) (absent): got %q %v, want 1.3.6.1.9", n, ok)
	}
	if _, _, ok := s.Next("1.3.6.1.10.1"); ok {
		t.Error("Next(last): got a successor, want none")
	}
	if !s.Delete("1.3.6.1.9") || s.Delete("1.3.6.1.9") {
		t.Error("Delete: want true then false")
	}
	if n, _, _ := s.Next("1.3.6.1.2.1.0"); n != "1.3.6.1.10.1" {
		t.Errorf("Next after Delete: got %q, want 1.3.6.1.10.1", n)
	}
}

func TestStoreRejects(t *testing.T) {
	s := NewStore()
	for _, tc := range []struct {
		name string
		oid  string
		v    Value
	}{
		{"empty oid", "", Integer(1)},
		{"bad arc", "1.3.x.1", Integer(1)},
		{"first arc 3", "3.1", Integer(1)},
		{"second arc 40", "1.40.1", Integer(1)},
		{"integer overflow", "1.3.6", Value{Type: gosnmp.Integer, Int: 1 << 31}},
		{"gauge overflow", "1.3.6", Value{Type: gosnmp.Gauge32, Uint: 1 << 32}},
		{"bad ip", "1.3.6", IPAddress("::1")},
		{"bad oid value", "1.3.6", ObjectIdentifier("1..3")},
		{"null", "1.3.6", Value{Type: gosnmp.Null}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Set(tc.oid, tc.v); err == nil {
				t.Errorf("Set(%q, %v): got nil error", tc.oid, tc.v)
			}
		})
	}
	if s.Len() != 0 {
		t.Errorf("Len after rejected sets: got %d, want 0", s.Len())
	}
}

func TestV2cGetTypes(t *testing.T) {
	a, addr := startAgent(t, testConfig())
	g := client(t, addr, gosnmp.Version2c, "public", clientTimeout)
	want := storeVarbinds(a.Store(), false)
	oids := make([]string, len(want))
	for i, vb := range want {
		oids[i] = "." + vb.OID
	}
	res, err := g.Get(oids)
	if err != nil {
		t.Fatal(err)
	}
	if got := varbinds(res.Variables); !slices.Equal(got, want) {
		t.Errorf("GET all:\ngot  %v\nwant %v", got, want)
	}
}

func TestV2cGetMissing(t *testing.T) {
	_, addr := startAgent(t, testConfig())
	g := client(t, addr, gosnmp.Version2c, "public", clientTimeout)
	for _, tc := range []struct {
		oid  string
		want gosnmp.Asn1BER
	}{
		{"1.3.6.1.2.1.33.1.2.1", gosnmp.NoSuchInstance},  // upsBatteryStatus without .0
		{"1.3.6.1.2.1.2.2.1.8.5", gosnmp.NoSuchInstance}, // ifOperStatus of an absent port
		{"1.3.6.1.4.1.99999.1.0", gosnmp.NoSuchObject},
		{"1.3.6.1.2.1.99", gosnmp.NoSuchObject},
	} {
		res, err := g.Get([]string{tc.oid})
		if err != nil {
			t.Fatal(err)
		}
		if res.Error != gosnmp.NoError || len(res.Variables) != 1 || res.Variables[0].Type != tc.want {
			t.Errorf("GET %s: got %v %v, want %v", tc.oid, res.Error, res.Variables, tc.want)
		}
	}
}

func TestV2cWalks(t *testing.T) {
	a, addr := startAgent(t, testConfig())
	g := client(t, addr, gosnmp.Version2c, "public", clientTimeout)
	want := storeVarbinds(a.Store(), false)
	for _, tc := range []struct {
		name string
		walk func(string) ([]gosnmp.SnmpPDU, error)
	}{
		{"getnext", g.WalkAll},
		{"getbulk", g.BulkWalkAll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.walk(".1.3")
			if err != nil {
				t.Fatal(err)
			}
			if got := varbinds(res); !slices.Equal(got, want) {
				t.Errorf("walk:\ngot  %v\nwant %v", got, want)
			}
		})
	}
	// Non-repeaters: sysObjectID's successor once, then rows of two columns.
	res, err := g.GetBulk([]string{oidSysObjectID, "1.3.6.1.2.1.2.2.1.8", "1.3.6.1.4.1.318.1.1.12.3.5"}, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	got := varbinds(res.Variables)
	wantBulk := []string{
		"1.3.6.1.2.1.1.3.0",
		oidIfOperStatus1, oidOutletState3,
		oidIfOperStatus10, "", // the outlet column ran off the end of the MIB
		oidIPAdEntAddr, "",
	}
	if len(got) != len(wantBulk) {
		t.Fatalf("GETBULK nonRepeaters=1 maxRepetitions=3: got %d varbinds %v, want %d", len(got), got, len(wantBulk))
	}
	for i, w := range wantBulk {
		if w == "" {
			if got[i].Value.Type != gosnmp.EndOfMibView {
				t.Errorf("GETBULK varbind %d: got %v, want endOfMibView", i, got[i])
			}
			continue
		}
		if got[i].OID != w {
			t.Errorf("GETBULK varbind %d: got %s, want %s", i, got[i].OID, w)
		}
	}
}

// A GETBULK larger than the agent's message size is cut to fit: the
// manager gets a prefix of the walk, and a walk still completes.
func TestGetBulkFitsMessageSize(t *testing.T) {
	s := testStore(t)
	for i := range 200 {
		s.MustSet("1.3.6.1.4.1.99.1."+itoa(i+1), OctetString("a fairly long description of outlet number "+itoa(i+1)))
	}
	a, err := New(s, Config{Communities: []string{"public"}, MaxMessageSize: 484})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, a)
	g := client(t, addr, gosnmp.Version2c, "public", clientTimeout)
	res, err := g.GetBulk([]string{"1.3.6.1.4.1.99"}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Variables); n == 0 || n >= 100 {
		t.Errorf("GETBULK max-repetitions 100 in 484 bytes: got %d varbinds, want a cut reply", n)
	}
	g.MaxRepetitions = 100
	all, err := g.BulkWalkAll("1.3.6.1.4.1.99")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 200 {
		t.Errorf("bulk walk in 484-byte replies: got %d varbinds, want 200", len(all))
	}
	// A GET whose reply cannot fit is answered tooBig.
	oids := make([]string, 40)
	for i := range oids {
		oids[i] = "1.3.6.1.4.1.99.1." + itoa(i+1)
	}
	r2, err := g.Get(oids)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Error != gosnmp.TooBig {
		t.Errorf("GET of 40 long strings in 484 bytes: got %v, want tooBig", r2.Error)
	}
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

func TestV2cSet(t *testing.T) {
	a, addr := startAgent(t, testConfig())
	g := client(t, addr, gosnmp.Version2c, "private", clientTimeout)
	set := func(p gosnmp.SnmpPDU) *gosnmp.SnmpPacket {
		t.Helper()
		res, err := g.Set([]gosnmp.SnmpPDU{p})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Switching the outlet off changes its state through the callback.
	res := set(gosnmp.SnmpPDU{Name: oidOutletCommand3, Type: gosnmp.Integer, Value: 2})
	if res.Error != gosnmp.NoError {
		t.Fatalf("SET outlet off: got %v", res.Error)
	}
	if v, _ := a.Store().Get(oidOutletState3); v != Integer(2) {
		t.Errorf("outlet state after SET off: got %v, want INTEGER: 2", v)
	}
	res = set(gosnmp.SnmpPDU{Name: oidSysName, Type: gosnmp.OctetString, Value: []byte("ups-renamed")})
	if res.Error != gosnmp.NoError {
		t.Fatalf("SET sysName: got %v", res.Error)
	}
	if v, _ := a.Store().Get(oidSysName); v != OctetString("ups-renamed") {
		t.Errorf("sysName after SET: got %v", v)
	}
	for _, tc := range []struct {
		name string
		pdus []gosnmp.SnmpPDU
		want gosnmp.SNMPError
		idx  uint8
	}{
		{"wrong type", []gosnmp.SnmpPDU{{Name: oidOutletCommand3, Type: gosnmp.OctetString, Value: []byte("off")}}, gosnmp.WrongType, 1},
		{"read-only", []gosnmp.SnmpPDU{{Name: oidUpsBatteryStatus, Type: gosnmp.Integer, Value: 3}}, gosnmp.NotWritable, 1},
		{"absent", []gosnmp.SnmpPDU{{Name: "1.3.6.1.4.1.99999.1.0", Type: gosnmp.Integer, Value: 3}}, gosnmp.NoCreation, 1},
		{"rejected by callback", []gosnmp.SnmpPDU{{Name: oidOutletCommand3, Type: gosnmp.Integer, Value: 7}}, gosnmp.WrongValue, 1},
		{"second of two bad", []gosnmp.SnmpPDU{
			{Name: oidSysName, Type: gosnmp.OctetString, Value: []byte("never")},
			{Name: oidUpsCharge, Type: gosnmp.Integer, Value: 5},
		}, gosnmp.NotWritable, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := g.Set(tc.pdus)
			if err != nil {
				t.Fatal(err)
			}
			if res.Error != tc.want || res.ErrorIndex != tc.idx {
				t.Errorf("got %v index %d, want %v index %d", res.Error, res.ErrorIndex, tc.want, tc.idx)
			}
		})
	}
	if v, _ := a.Store().Get(oidSysName); v != OctetString("ups-renamed") {
		t.Errorf("sysName after failed multi-varbind SET: got %v, want unchanged", v)
	}
	// A read community cannot SET.
	ro := client(t, addr, gosnmp.Version2c, "public", clientTimeout)
	res, err := ro.Set([]gosnmp.SnmpPDU{{Name: oidSysName, Type: gosnmp.OctetString, Value: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != gosnmp.NoAccess {
		t.Errorf("SET with read community: got %v, want noAccess", res.Error)
	}
}

func TestWrongCommunityIsNotAnswered(t *testing.T) {
	a, addr := startAgent(t, testConfig())
	g := client(t, addr, gosnmp.Version2c, "wrong", 200*time.Millisecond)
	if _, err := g.Get([]string{oidUpsCharge}); err == nil {
		t.Fatal("GET with a wrong community: got an answer")
	}
	eventually(t, "wrong community counted", func() bool { return a.Stats().BadCommunities == 1 })
}

func TestV1(t *testing.T) {
	a, addr := startAgent(t, testConfig())
	g := client(t, addr, gosnmp.Version1, "private", clientTimeout)
	res, err := g.Get([]string{oidUpsCharge, "1.3.6.1.4.1.99999.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != gosnmp.NoSuchName || res.ErrorIndex != 2 {
		t.Errorf("v1 GET of an absent OID: got %v index %d, want noSuchName index 2", res.Error, res.ErrorIndex)
	}
	res, err = g.Get([]string{oidIfHCInOctets1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != gosnmp.NoSuchName {
		t.Errorf("v1 GET of a Counter64: got %v, want noSuchName", res.Error)
	}
	walk, err := g.WalkAll(".1.3")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := varbinds(walk), storeVarbinds(a.Store(), true); !slices.Equal(got, want) {
		t.Errorf("v1 walk (Counter64 skipped):\ngot  %v\nwant %v", got, want)
	}
	for _, tc := range []struct {
		name string
		pdu  gosnmp.SnmpPDU
		want gosnmp.SNMPError
	}{
		{"read-only", gosnmp.SnmpPDU{Name: oidUpsCharge, Type: gosnmp.Integer, Value: 1}, gosnmp.NoSuchName},
		{"wrong type", gosnmp.SnmpPDU{Name: oidOutletCommand3, Type: gosnmp.Gauge32, Value: uint32(2)}, gosnmp.BadValue},
		{"ok", gosnmp.SnmpPDU{Name: oidOutletCommand3, Type: gosnmp.Integer, Value: 2}, gosnmp.NoError},
	} {
		res, err := g.Set([]gosnmp.SnmpPDU{tc.pdu})
		if err != nil {
			t.Fatal(err)
		}
		if res.Error != tc.want {
			t.Errorf("v1 SET %s: got %v, want %v", tc.name, res.Error, tc.want)
		}
	}
}

func TestV3Users(t *testing.T) {
	a, addr := startAgent(t, testConfig())
	for _, u := range v3Users {
		t.Run(u.Name, func(t *testing.T) {
			want := storeVarbinds(a.Store(), false)
			g := v3Client(t, addr, u, clientTimeout)
			res, err := g.Get([]string{oidUpsCharge, oidUpsOutputSource})
			if err != nil {
				t.Fatal(err)
			}
			if got := varbinds(res.Variables); len(got) != 2 || got[0].Value != Integer(100) || got[1].Value != Integer(3) {
				t.Errorf("GET: got %v", got)
			}
			all, err := g.BulkWalkAll(".1.3")
			if err != nil {
				t.Fatal(err)
			}
			if got := varbinds(all); !slices.Equal(got, want) {
				t.Errorf("bulk walk: got %d varbinds, want %d", len(got), len(want))
			}
			set, err := g.Set([]gosnmp.SnmpPDU{{Name: oidSysName, Type: gosnmp.OctetString, Value: []byte(u.Name)}})
			if err != nil {
				t.Fatal(err)
			}
			wantSet := gosnmp.NoError
			if u.ReadOnly {
				wantSet = gosnmp.NoAccess
			}
			if set.Error != wantSet {
				t.Errorf("SET: got %v, want %v", set.Error, wantSet)
			}
		})
	}
}

func TestV3Refused(t *testing.T) {
	good := v3Users[0]
	// The agent answers with an unauthenticated report, as net-snmp's
	// snmpd does; gosnmp v1.47.0 discards it once it knows the engine id
	// ("incoming packet is not authentic") and fails after its retries,
	// which is all the test asserts.
	for _, tc := range []struct {
		name string
		user func(User) User
		stat func(USMStats) uint64
	}{
		{"wrong auth passphrase", func(u User) User { u.AuthPass = "not-the-pass"; return u },
			func(s USMStats) uint64 { return s.WrongDigests }},
		{"wrong priv passphrase", func(u User) User { u.PrivPass = "not-the-pass"; return u },
			func(s USMStats) uint64 { return s.DecryptionErrors }},
		{"unknown user", func(u User) User { u.Name = "nobody"; return u },
			func(s USMStats) uint64 { return s.UnknownUserNames }},
		{"lower security level", func(u User) User { u.PrivProto, u.PrivPass = PrivNone, ""; return u },
			func(s USMStats) uint64 { return s.UnsupportedSecLevels }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, addr := startAgent(t, testConfig())
			g := v3Client(t, addr, tc.user(good), 500*time.Millisecond)
			_, err := g.Get([]string{oidUpsCharge})
			if err == nil {
				t.Fatal("GET: got an answer, want an error")
			}
			eventually(t, "refusal counted", func() bool { return tc.stat(a.Stats().USM) > 0 })
			if s := a.Stats(); s.Gets != 0 {
				t.Errorf("refused request was served: %+v", s)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	a, addr := startAgent(t, testConfig())
	get := func(v gosnmp.SnmpVersion, timeout time.Duration) (*gosnmp.SnmpPacket, error) {
		return client(t, addr, v, "private", timeout).Get([]string{oidUpsCharge})
	}
	a.SetFault(Fault{Kind: FaultSilent})
	if _, err := get(gosnmp.Version2c, 200*time.Millisecond); err == nil {
		t.Error("silent: got an answer")
	}
	a.SetFault(Fault{Kind: FaultGarbage})
	if _, err := get(gosnmp.Version2c, 200*time.Millisecond); err == nil {
		t.Error("garbage: got a valid answer")
	}
	a.SetFault(Fault{Kind: FaultTruncated})
	if _, err := get(gosnmp.Version2c, 200*time.Millisecond); err == nil {
		t.Error("truncated: got a valid answer")
	}
	a.SetFault(Fault{Kind: FaultError})
	if res, err := get(gosnmp.Version2c, clientTimeout); err != nil || res.Error != gosnmp.GenErr || res.ErrorIndex != 1 {
		t.Errorf("error: got %v, %v; want genErr index 1", res, err)
	}
	a.SetFault(Fault{Kind: FaultError, Status: gosnmp.ResourceUnavailable})
	if res, err := get(gosnmp.Version2c, clientTimeout); err != nil || res.Error != gosnmp.ResourceUnavailable {
		t.Errorf("error resourceUnavailable on v2c: got %v, %v", res, err)
	}
	if res, err := get(gosnmp.Version1, clientTimeout); err != nil || res.Error != gosnmp.GenErr {
		t.Errorf("error resourceUnavailable on v1: got %v, %v; want genErr", res, err)
	}
	a.SetFault(Fault{Kind: FaultLate, Delay: 100 * time.Millisecond})
	if res, err := get(gosnmp.Version2c, clientTimeout); err != nil || len(res.Variables) != 1 || res.Variables[0].Value != 100 {
		t.Errorf("late: got %v, %v; want the value", res, err)
	}
	a.SetFault(Fault{})
	if res, err := get(gosnmp.Version2c, clientTimeout); err != nil || res.Error != gosnmp.NoError {
		t.Errorf("after clearing the fault: got %v, %v", res, err)
	}
	eventually(t, "faults counted", func() bool {
		s := a.Stats()
		return s.Silenced == 1 && s.Mangled == 2 && s.Delayed == 1
	})
}

// A SET answered with an error fault is not executed.
func TestErrorFaultSkipsSet(t *testing.T) {
	a, addr := startAgent(t, testConfig())
	a.SetFault(Fault{Kind: FaultError})
	g := client(t, addr, gosnmp.Version2c, "private", clientTimeout)
	res, err := g.Set([]gosnmp.SnmpPDU{{Name: oidOutletCommand3, Type: gosnmp.Integer, Value: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != gosnmp.GenErr {
		t.Errorf("SET under error fault: got %v, want genErr", res.Error)
	}
	if v, _ := a.Store().Get(oidOutletState3); v != Integer(1) {
		t.Errorf("outlet state: got %v, want unchanged INTEGER: 1", v)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"short engine id", Config{EngineID: []byte{1, 2, 3}}},
		{"short passphrase", Config{Users: []User{{Name: "u", AuthProto: AuthSHA, AuthPass: "short"}}}},
		{"priv without auth", Config{Users: []User{{Name: "u", PrivProto: PrivAES, PrivPass: "long-enough"}}}},
		{"unknown protocol", Config{Users: []User{{Name: "u", AuthProto: "SHA-3", AuthPass: "long-enough"}}}},
		{"duplicate user", Config{Users: []User{{Name: "u"}, {Name: "u"}}}},
		{"message size", Config{MaxMessageSize: 100}},
		{"empty community", Config{Communities: []string{""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(NewStore(), tc.cfg); err == nil {
				t.Error("New: got nil error")
			}
		})
	}
}

func TestParseProtocols(t *testing.T) {
	for in, want := range map[string]AuthProtocol{"sha256": AuthSHA256, "SHA-256": AuthSHA256, "sha": AuthSHA, "": AuthNone} {
		if got, err := ParseAuthProtocol(in); err != nil || got != want {
			t.Errorf("ParseAuthProtocol(%q): got %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]PrivProtocol{"aes": PrivAES, "AES128": PrivAES, "aes-256": PrivAES256, "AES256C": PrivAES256C} {
		if got, err := ParsePrivProtocol(in); err != nil || got != want {
			t.Errorf("ParsePrivProtocol(%q): got %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParsePrivProtocol("3des"); err == nil {
		t.Error("ParsePrivProtocol(3des): got nil error")
	}
}

func TestV1TrapHeader(t *testing.T) {
	for _, tc := range []struct {
		trap, enterprise     string
		wantEnt              string
		wantGeneric, wantSpc int
	}{
		{oidUpsTrapOnBattery, "", "1.3.6.1.2.1.33.2", 6, 1},
		{"1.3.6.1.4.1.318.0.5", "", "1.3.6.1.4.1.318", 6, 5},
		{"1.3.6.1.6.3.1.1.5.3", "", OIDSnmpTraps, 2, 0},
		{"1.3.6.1.6.3.1.1.5.1", "1.3.6.1.4.1.318", "1.3.6.1.4.1.318", 0, 0},
	} {
		o, _ := parseOID(tc.trap)
		ent, gen, spc := v1TrapHeader(o, tc.enterprise)
		if ent != tc.wantEnt || gen != tc.wantGeneric || spc != tc.wantSpc {
			t.Errorf("v1TrapHeader(%s): got %s %d %d, want %s %d %d", tc.trap, ent, gen, spc, tc.wantEnt, tc.wantGeneric, tc.wantSpc)
		}
	}
}

// An inform nobody acknowledges fails after its retries.
func TestInformUnacknowledged(t *testing.T) {
	a, err := New(NewStore(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	r := Receiver{Addr: pc.LocalAddr().String(), Version: gosnmp.Version2c, Community: "public", Inform: true, Timeout: 100 * time.Millisecond, Retries: 1}
	if err := a.SendTrap(context.Background(), r, oidUpsTrapOnBattery, nil); err == nil {
		t.Fatal("SendTrap of an unacknowledged inform: got nil error")
	}
	if n := a.Stats().NotifyFailures; n != 1 {
		t.Errorf("NotifyFailures: got %d, want 1", n)
	}
	// Cancelling the context ends the wait for the acknowledgement (were it
	// not so, the test would hang for an hour).
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	r.Timeout = time.Hour
	if err := a.SendTrap(ctx, r, oidUpsTrapOnBattery, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("SendTrap with a cancelled context: got %v, want context.Canceled", err)
	}
}

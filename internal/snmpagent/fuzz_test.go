package snmpagent

import (
	"testing"

	"github.com/gosnmp/gosnmp"
)

// fuzzSeeds returns well-formed requests of every version and kind the
// agent serves, encoded by gosnmp, for a to answer.
func fuzzSeeds(t testing.TB, a *Agent) [][]byte {
	t.Helper()
	var seeds [][]byte
	enc := func(g *gosnmp.GoSNMP, pdu gosnmp.PDUType, pdus []gosnmp.SnmpPDU, nonRep uint8, maxRep uint32) {
		b, err := g.SnmpEncodePacket(pdu, pdus, nonRep, maxRep)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	get := []gosnmp.SnmpPDU{{Name: oidUpsCharge, Type: gosnmp.Null}, {Name: "1.3.6.1.2.1.33.1.2.1", Type: gosnmp.Null}}
	set := []gosnmp.SnmpPDU{{Name: oidOutletCommand3, Type: gosnmp.Integer, Value: 2}, {Name: oidSysName, Type: gosnmp.OctetString, Value: []byte("x")}}
	for _, v := range []gosnmp.SnmpVersion{gosnmp.Version1, gosnmp.Version2c} {
		g := &gosnmp.GoSNMP{Version: v, Community: "private"}
		enc(g, gosnmp.GetRequest, get, 0, 0)
		enc(g, gosnmp.GetNextRequest, get, 0, 0)
		enc(g, gosnmp.SetRequest, set, 0, 0)
		if v == gosnmp.Version2c {
			enc(g, gosnmp.GetBulkRequest, get, 1, 20)
		}
	}
	probe := &gosnmp.SnmpPacket{
		Version: gosnmp.Version3, MsgFlags: gosnmp.Reportable, SecurityModel: gosnmp.UserSecurityModel,
		SecurityParameters: &gosnmp.UsmSecurityParameters{}, PDUType: gosnmp.GetRequest, MsgID: 1, RequestID: 1,
	}
	b, err := probe.MarshalMsg()
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, b)
	for _, u := range v3Users[:4] {
		n, _ := u.normalize()
		g := &gosnmp.GoSNMP{
			Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel, MsgFlags: n.level(),
			ContextEngineID: string(a.EngineID()),
			SecurityParameters: &gosnmp.UsmSecurityParameters{
				UserName: n.Name, AuthoritativeEngineID: string(a.EngineID()),
				AuthoritativeEngineBoots: a.usm.EngineBoots(), AuthoritativeEngineTime: a.usm.EngineTime(),
				AuthenticationProtocol: n.AuthProto.gosnmp(), AuthenticationPassphrase: n.AuthPass,
				PrivacyProtocol: n.PrivProto.gosnmp(), PrivacyPassphrase: n.PrivPass,
			},
		}
		if err := g.SecurityParameters.InitSecurityKeys(); err != nil {
			t.Fatal(err)
		}
		enc(g, gosnmp.GetRequest, get, 0, 0)
		enc(g, gosnmp.GetBulkRequest, get, 0, 5)
		enc(g, gosnmp.SetRequest, set, 0, 0)
	}
	return seeds
}

// TestFuzzSeedsAnswered checks that the seeds are requests the agent
// answers, so the fuzzer starts from the interesting paths.
func TestFuzzSeedsAnswered(t *testing.T) {
	a, err := New(testStore(t), testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds(t, a) {
		if a.handle(s, Fault{}) == nil {
			t.Errorf("seed %d: no reply", i)
		}
	}
	if s := a.Stats(); s.USM.WrongDigests+s.USM.DecryptionErrors+s.USM.NotInTimeWindows+s.ParseErrors != 0 {
		t.Errorf("seeds refused: %+v", s)
	}
}

// FuzzAgentPacket feeds arbitrary datagrams to the packet handler, with no
// recover in between: decoding hostile input must not panic.
func FuzzAgentPacket(f *testing.F) {
	a, err := New(testStore(f), testConfig())
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range fuzzSeeds(f, a) {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x82, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		reply := a.handle(b, Fault{})
		if len(reply) > defaultMaxMsgSize {
			t.Fatalf("reply of %d bytes", len(reply))
		}
	})
}

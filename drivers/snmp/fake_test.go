package snmp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	profiles "github.com/facgw/facgw/firmware-profiles"
)

// fakeAgent is an in-memory SNMP agent behind the client interface: a
// sorted MIB, v1 or v2c error semantics, and knobs for the failures the
// driver must survive. It records every request so tests can pin how many
// requests a poll costs and what they carried.
type fakeAgent struct {
	mu     sync.Mutex
	v1     bool
	mib    map[string]gosnmp.SnmpPDU
	oids   []string // sorted when sorted is true
	sorted bool
	// maxVarbinds makes requests with more varbinds fail with tooBig;
	// maxResponse does the same to replies with more varbinds.
	maxVarbinds, maxResponse int
	// genErr answers a GET that includes this OID with genErr at its index.
	genErr string
	// fail is returned for every request while set.
	fail error
	log  []fakeReq
}

// fakeReq is one recorded request.
type fakeReq struct {
	op     string // get, next, bulk
	oids   []string
	maxRep uint32
	resp   int // varbinds in the reply
}

func (r fakeReq) String() string {
	if r.op == "bulk" {
		return fmt.Sprintf("%s(%d x%d)", r.op, len(r.oids), r.maxRep)
	}
	return fmt.Sprintf("%s(%d)", r.op, len(r.oids))
}

func newFake(v1 bool) *fakeAgent {
	return &fakeAgent{v1: v1, mib: map[string]gosnmp.SnmpPDU{}}
}

// set stores a value; typ is the BER type, val as gosnmp decodes it.
func (a *fakeAgent) set(oid string, typ gosnmp.Asn1BER, val any) *fakeAgent {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.mib[oid]; !ok {
		a.oids = append(a.oids, oid)
		a.sorted = false
	}
	a.mib[oid] = gosnmp.SnmpPDU{Name: "." + oid, Type: typ, Value: val}
	return a
}

// sortOIDs puts the OIDs in SNMP order; every request does it first if
// needed.
func (a *fakeAgent) sortOIDs() {
	if !a.sorted {
		sort.Slice(a.oids, func(i, j int) bool { return compareOID(a.oids[i], a.oids[j]) < 0 })
		a.sorted = true
	}
}

func (a *fakeAgent) del(oid string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.mib, oid)
	a.oids = slices.DeleteFunc(a.oids, func(o string) bool { return o == oid })
}

func (a *fakeAgent) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, r := range a.log {
		out = append(out, r.String())
	}
	return out
}

func (a *fakeAgent) reset() {
	a.mu.Lock()
	a.log = nil
	a.mu.Unlock()
}

// next returns the first varbind after oid, or false at the end.
func (a *fakeAgent) next(oid string) (gosnmp.SnmpPDU, bool) {
	i := sort.Search(len(a.oids), func(i int) bool { return compareOID(a.oids[i], oid) > 0 })
	if i == len(a.oids) {
		return gosnmp.SnmpPDU{}, false
	}
	return a.mib[a.oids[i]], true
}

func (a *fakeAgent) begin(op string, oids []string, maxRep uint32) (*gosnmp.SnmpPacket, error) {
	a.sortOIDs()
	a.log = append(a.log, fakeReq{op: op, oids: slices.Clone(oids), maxRep: maxRep})
	if a.fail != nil {
		return nil, a.fail
	}
	if a.maxVarbinds > 0 && len(oids) > a.maxVarbinds {
		return &gosnmp.SnmpPacket{Error: gosnmp.TooBig}, nil
	}
	return nil, nil
}

func (a *fakeAgent) get(ctx context.Context, oids []string) (*gosnmp.SnmpPacket, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if pkt, err := a.begin("get", oids, 0); pkt != nil || err != nil {
		return pkt, err
	}
	out := &gosnmp.SnmpPacket{}
	for i, o := range oids {
		if o == a.genErr {
			return &gosnmp.SnmpPacket{Error: gosnmp.GenErr, ErrorIndex: uint8(i + 1)}, nil
		}
		v, ok := a.mib[o]
		if !ok {
			if a.v1 {
				return &gosnmp.SnmpPacket{Error: gosnmp.NoSuchName, ErrorIndex: uint8(i + 1)}, nil
			}
			v = gosnmp.SnmpPDU{Name: "." + o, Type: gosnmp.NoSuchInstance}
		}
		out.Variables = append(out.Variables, v)
	}
	a.log[len(a.log)-1].resp = len(out.Variables)
	return out, nil
}

func (a *fakeAgent) getNext(ctx context.Context, oids []string) (*gosnmp.SnmpPacket, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if pkt, err := a.begin("next", oids, 0); pkt != nil || err != nil {
		return pkt, err
	}
	out := &gosnmp.SnmpPacket{}
	for i, o := range oids {
		v, ok := a.next(o)
		if !ok {
			if a.v1 {
				return &gosnmp.SnmpPacket{Error: gosnmp.NoSuchName, ErrorIndex: uint8(i + 1)}, nil
			}
			v = gosnmp.SnmpPDU{Name: "." + o, Type: gosnmp.EndOfMibView}
		}
		out.Variables = append(out.Variables, v)
	}
	a.log[len(a.log)-1].resp = len(out.Variables)
	return out, nil
}

func (a *fakeAgent) getBulk(ctx context.Context, oids []string, maxRep uint32) (*gosnmp.SnmpPacket, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.v1 {
		return nil, errors.New("GETBULK not supported in SNMPv1")
	}
	if pkt, err := a.begin("bulk", oids, maxRep); pkt != nil || err != nil {
		return pkt, err
	}
	out := &gosnmp.SnmpPacket{}
	cur := slices.Clone(oids)
	for r := 0; r < int(maxRep); r++ {
		for j, o := range cur {
			v, ok := a.next(o)
			if !ok {
				v = gosnmp.SnmpPDU{Name: "." + o, Type: gosnmp.EndOfMibView}
			} else {
				cur[j] = strings.TrimPrefix(v.Name, ".")
			}
			out.Variables = append(out.Variables, v)
		}
	}
	if a.maxResponse > 0 && len(out.Variables) > a.maxResponse {
		return &gosnmp.SnmpPacket{Error: gosnmp.TooBig}, nil
	}
	a.log[len(a.log)-1].resp = len(out.Variables)
	return out, nil
}

func (a *fakeAgent) close() error { return nil }

// fakeClock is a settable clock for rates.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeDevice returns a device polling agent with profile p.
func fakeDevice(t testing.TB, agent *fakeAgent, p *profiles.Profile, cfg DeviceConfig) (*Device, *fakeClock) {
	t.Helper()
	cfg.ID = "dev"
	cfg.Target = "fake"
	cfg.Profile = p
	if agent.v1 {
		cfg.Version = "1"
	}
	d := NewDevice(cfg)
	d.open = func(DeviceConfig) (client, error) { return agent, nil }
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	d.now = clk.now
	return d, clk
}

// mustProfile parses a profile from YAML text or stops the test.
func mustProfile(t testing.TB, text string) *profiles.Profile {
	t.Helper()
	p, errs := profiles.Parse("test.yaml", []byte(text))
	if len(errs) > 0 {
		t.Fatalf("profile: %v", errs)
	}
	return p
}

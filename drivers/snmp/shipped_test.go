package snmp

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

// rowsFor is how many rows a generated table has, by device class: three
// UPS lines, 24 PDU outlets, 48 switch ports.
var rowsFor = map[string]int{"ups": 3, "pdu": 24, "switch": 48}

// sensorRows is the number of ENTITY-SENSOR-MIB rows generated.
const sensorRows = 10

// profileRecords generates agent data that serves every point of a
// profile (base map) with a plausible value: the point's sim value when it
// has one, else a value inside its enum, true_values and min/max. Tables
// get rowsFor rows, labelled "Port N" when they have a label column; the
// alarm table one row holding the first contains OID.
func profileRecords(p *profiles.Profile) []record {
	rows := rowsFor[p.Class]
	if rows == 0 {
		rows = 2
	}
	seen := map[string]bool{}
	var recs []record
	add := func(oid string, tag int, val string) {
		if !seen[oid] {
			seen[oid] = true
			recs = append(recs, record{oid, tag, val})
		}
	}
	add(sysUpTimeOID, tagTimeTicks, "100000")
	for _, def := range p.Resolve("").Points {
		switch {
		case def.OID != "":
			tag, val := genValue(&def)
			add(def.OID, tag, val)
		case def.Contains != "":
			add(def.Walk+".1", tagOID, def.Contains)
		case def.Sensor == profiles.SensorEntity:
			for i := 1; i <= sensorRows; i++ {
				idx := strconv.Itoa(1000 + i)
				add(def.Walk+entType+"."+idx, tagInteger, "8")
				add(def.Walk+entScale+"."+idx, tagInteger, "9")
				add(def.Walk+entPrecision+"."+idx, tagInteger, "1")
				add(def.Walk+entValue+"."+idx, tagInteger, strconv.Itoa(200+i))
				add(def.Walk+entStatus+"."+idx, tagInteger, "1")
				if def.RowLabel != "" {
					add(def.RowLabel+"."+idx, tagString, fmt.Sprintf("Sensor %d", i))
				}
			}
		default:
			tag, val := genValue(&def)
			for i := 1; i <= rows; i++ {
				add(fmt.Sprintf("%s.%d", def.Walk, i), tag, val)
				if def.RowLabel != "" {
					add(fmt.Sprintf("%s.%d", def.RowLabel, i), tagString, fmt.Sprintf("Port %d", i))
				}
			}
		}
	}
	return recs
}

// genValue returns the snmprec tag and value for a point definition.
func genValue(def *profiles.PointDef) (int, string) {
	tag := map[string]int{"integer": tagInteger, "gauge": tagGauge32, "counter32": tagCounter32, "counter64": tagCounter64,
		"timeticks": tagTimeTicks, "string": tagString, "oid": tagOID}[def.Type]
	if s, ok := def.Sim.(string); ok {
		return tag, s
	}
	var raw float64
	switch v := def.Sim.(type) {
	case int:
		raw = float64(v)
	case float64:
		raw = v
	default:
		switch {
		case def.Type == "string":
			return tag, "text"
		case def.Type == "oid":
			return tag, "1.3.6.1.4.1.8072.3.2.10"
		case len(def.TrueValues) > 0:
			return tag, strconv.FormatInt(def.TrueValues[0], 10)
		case len(def.Enum) > 0:
			keys := make([]int64, 0, len(def.Enum))
			for k := range def.Enum {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
			return tag, strconv.FormatInt(keys[0], 10)
		case def.Min != nil && *def.Min > 0:
			raw = *def.Min
		default:
			raw = 1
		}
	}
	if len(def.Enum) == 0 && len(def.TrueValues) == 0 {
		raw = (raw - def.Offset) / def.ScaleOr1()
		if def.Type == "timeticks" {
			raw *= 100
		}
	}
	return tag, strconv.FormatInt(int64(math.Round(raw)), 10)
}

// fakeFromRecords loads records into a fake agent.
func fakeFromRecords(recs []record) *fakeAgent {
	a := newFake(false)
	defer a.sortOIDs()
	for _, r := range recs {
		switch r.tag {
		case tagString:
			a.set(r.oid, gosnmp.OctetString, []byte(r.val))
		case tagOID:
			a.set(r.oid, gosnmp.ObjectIdentifier, "."+r.val)
		case tagInteger:
			n, _ := strconv.Atoi(r.val)
			a.set(r.oid, gosnmp.Integer, n)
		case tagCounter64:
			n, _ := strconv.ParseUint(r.val, 10, 64)
			a.set(r.oid, gosnmp.Counter64, n)
		case tagTimeTicks:
			n, _ := strconv.ParseUint(r.val, 10, 32)
			a.set(r.oid, gosnmp.TimeTicks, uint32(n))
		default:
			n, _ := strconv.ParseUint(r.val, 10, 32)
			a.set(r.oid, map[int]gosnmp.Asn1BER{tagCounter32: gosnmp.Counter32, tagGauge32: gosnmp.Gauge32}[r.tag], uint(n))
		}
	}
	return a
}

func shippedSNMP(t testing.TB) []*profiles.Profile {
	t.Helper()
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	var out []*profiles.Profile
	for _, p := range reg.List() {
		if p.Protocol == profiles.SNMP {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatal("no shipped snmp profile")
	}
	return out
}

// checkShippedPoll polls every group of p twice against agent data
// generated from p and expects every point good the second time (rates
// need two readings), tables expanded to rows, and one point per
// definition that does not expand.
func checkShippedPoll(t *testing.T, p *profiles.Profile, d *Device, between func()) {
	t.Helper()
	pollAll(t, d)
	between()
	pts := pollAll(t, d)
	for name, pt := range pts {
		if pt.Quality != point.Good {
			t.Errorf("%s: %s %s", name, pt.Quality, pt.Reason)
		}
	}
	for _, def := range p.Points {
		_, single := pts[def.Name]
		switch expands := def.IsColumn() && def.Contains == ""; {
		case expands && single:
			t.Errorf("column %s did not expand", def.Name)
		case !expands && !single:
			t.Errorf("no point %s", def.Name)
		case expands:
			n := 0
			for name := range pts {
				if strings.HasPrefix(name, def.Name+".") && !strings.HasSuffix(name, profiles.RateSuffix) {
					n++
				}
			}
			if n == 0 {
				t.Errorf("column %s has no rows", def.Name)
			}
		}
	}
}

// TestShippedProfilesPoll serves every shipped SNMP profile from a fake
// agent and polls it with the driver: every point decodes, every table
// expands.
func TestShippedProfilesPoll(t *testing.T) {
	for _, p := range shippedSNMP(t) {
		t.Run(p.Model, func(t *testing.T) {
			d, clk := fakeDevice(t, fakeFromRecords(profileRecords(p)), p, DeviceConfig{})
			checkShippedPoll(t, p, d, func() { clk.add(time.Second) })
		})
	}
}

// TestShippedProfilesSnmpsimIntegration does the same against snmpsim,
// one community per profile, and checks that profile: auto finds each
// profile that has an identify section.
func TestShippedProfilesSnmpsimIntegration(t *testing.T) {
	data := map[string][]record{}
	for _, p := range shippedSNMP(t) {
		data[p.Model] = profileRecords(p)
	}
	port := startSnmpsim(t, data)
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range shippedSNMP(t) {
		t.Run(p.Model, func(t *testing.T) {
			d := NewDevice(DeviceConfig{ID: "dev", Target: "127.0.0.1", Port: port, Community: p.Model, Timeout: 3 * time.Second, Retries: 1, Profile: p})
			t.Cleanup(func() { d.Close() })
			// Real time passes between the polls, as rates need.
			checkShippedPoll(t, p, d, func() {})
			if p.Identify == nil {
				return
			}
			auto := NewDevice(DeviceConfig{ID: "dev", Target: "127.0.0.1", Port: port, Community: p.Model, Timeout: 3 * time.Second, Retries: 1, Auto: true, Registry: reg})
			t.Cleanup(func() { auto.Close() })
			id, err := auto.Identify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if id.Profile.Model != p.Model {
				t.Errorf("profile auto chose %s", id.Profile.Model)
			}
		})
	}
}

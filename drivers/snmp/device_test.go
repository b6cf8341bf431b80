package snmp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

// testProfile has every kind of SNMP point: scalars (one missing on the
// agent), an enum and a bool on one OID, a counter, a column, two
// alarm-table bools, a labelled Counter64 column and ENTITY-SENSOR-MIB
// sensors.
const testProfile = `
model: test-ups
class: ups
protocol: snmp
source: test
points:
  - {name: ident.model, oid: 1.3.6.1.2.1.33.1.1.2.0, type: string, group: inventory}
  - {name: battery.charge, oid: 1.3.6.1.2.1.33.1.2.4.0, type: integer, unit: "%"}
  - {name: battery.voltage, oid: 1.3.6.1.2.1.33.1.2.5.0, type: integer, scale: 0.1, unit: V}
  - {name: battery.temperature, oid: 1.3.6.1.2.1.33.1.2.7.0, type: integer, unit: degC}
  - {name: ups.output.source, oid: 1.3.6.1.2.1.33.1.4.1.0, type: integer, enum: {3: normal, 5: battery}}
  - {name: ups.status.on_battery, oid: 1.3.6.1.2.1.33.1.4.1.0, type: integer, true_values: [5]}
  - {name: ups.input.line_bads, oid: 1.3.6.1.2.1.33.1.3.1.0, type: counter32}
  - {name: ups.output.load, walk: 1.3.6.1.2.1.33.1.4.4.1.5, type: integer, unit: "%"}
  - {name: ups.status.input_bad, walk: 1.3.6.1.2.1.33.1.6.2.1.2, type: oid, contains: 1.3.6.1.2.1.33.1.6.3.6}
  - {name: ups.alarm.on_battery, walk: 1.3.6.1.2.1.33.1.6.2.1.2, type: oid, contains: 1.3.6.1.2.1.33.1.6.3.2}
  - {name: if.in_octets, walk: 1.3.6.1.2.1.31.1.1.1.6, row_label: 1.3.6.1.2.1.31.1.1.1.1, type: counter64}
  - {name: switch.sensor, walk: 1.3.6.1.2.1.99.1.1.1, row_label: 1.3.6.1.2.1.47.1.1.1.1.7, sensor: entity}
`

// testAgent serves testProfile's OIDs, without battery.temperature.
func testAgent(v1 bool) *fakeAgent {
	a := newFake(v1)
	a.set("1.3.6.1.2.1.1.3.0", gosnmp.TimeTicks, uint32(1000))
	a.set("1.3.6.1.2.1.33.1.1.2.0", gosnmp.OctetString, []byte("Smart-UPS 3000"))
	a.set("1.3.6.1.2.1.33.1.2.4.0", gosnmp.Integer, 87)
	a.set("1.3.6.1.2.1.33.1.2.5.0", gosnmp.Integer, 545)
	a.set("1.3.6.1.2.1.33.1.4.1.0", gosnmp.Integer, 5)
	a.set("1.3.6.1.2.1.33.1.3.1.0", gosnmp.Counter32, uint(4294967290))
	a.set("1.3.6.1.2.1.33.1.4.4.1.5.1", gosnmp.Integer, 41)
	a.set("1.3.6.1.2.1.33.1.4.4.1.5.2", gosnmp.Integer, 38)
	a.set("1.3.6.1.2.1.33.1.6.2.1.2.7", gosnmp.ObjectIdentifier, ".1.3.6.1.2.1.33.1.6.3.2")
	a.set("1.3.6.1.2.1.31.1.1.1.1.1", gosnmp.OctetString, []byte("Gi1/0/1"))
	a.set("1.3.6.1.2.1.31.1.1.1.1.2", gosnmp.OctetString, []byte("Gi1/0/2"))
	a.set("1.3.6.1.2.1.31.1.1.1.6.1", gosnmp.Counter64, uint64(1000))
	a.set("1.3.6.1.2.1.31.1.1.1.6.2", gosnmp.Counter64, uint64(18446744073709551000))
	// entPhySensorTable: a 23.45 degC sensor and an unavailable fan.
	for idx, row := range map[string][5]int{"1001": {8, 9, 2, 2345, 1}, "1002": {10, 9, 0, 5400, 2}} {
		for c, v := range row {
			a.set(fmt.Sprintf("1.3.6.1.2.1.99.1.1.1.%d.%s", c+1, idx), gosnmp.Integer, v)
		}
	}
	a.set("1.3.6.1.2.1.47.1.1.1.1.7.1001", gosnmp.OctetString, []byte("CPU Temp"))
	a.set("1.3.6.1.2.1.47.1.1.1.1.7.1002", gosnmp.OctetString, []byte("Fan 1"))
	return a
}

// want is an expected point: its value as point.Format renders it, or
// the start of its bad reason.
type want struct {
	value  string
	reason string
}

func checkPoints(t *testing.T, got []point.Point, wants map[string]want) {
	t.Helper()
	byName := map[string]point.Point{}
	for _, p := range got {
		if _, dup := byName[p.Name]; dup {
			t.Errorf("point %s twice", p.Name)
		}
		byName[p.Name] = p
		if p.Device != "dev" || p.Time.IsZero() {
			t.Errorf("%s: device %q time %v", p.Name, p.Device, p.Time)
		}
	}
	for name, w := range wants {
		p, ok := byName[name]
		switch {
		case !ok:
			t.Errorf("no point %s", name)
		case w.reason != "":
			if p.Quality != point.Bad || !strings.HasPrefix(p.Reason, w.reason) {
				t.Errorf("%s: %s %q, want bad %q", name, p.Quality, p.Reason, w.reason)
			}
		case p.Quality != point.Good:
			t.Errorf("%s: bad (%s), want %s", name, p.Reason, w.value)
		case p.Format() != w.value:
			t.Errorf("%s = %s, want %s", name, p.Format(), w.value)
		}
	}
	for name := range byName {
		if _, ok := wants[name]; !ok {
			t.Errorf("unexpected point %s", name)
		}
	}
}

func TestPollDecodesEveryKind(t *testing.T) {
	for _, v1 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v1=%v", v1), func(t *testing.T) {
			agent := testAgent(v1)
			d, _ := fakeDevice(t, agent, mustProfile(t, testProfile), DeviceConfig{})
			checkPoints(t, d.Poll(context.Background(), "default"), map[string]want{
				"battery.charge":            {value: "87 %"},
				"battery.voltage":           {value: "54.5 V"},
				"battery.temperature":       {reason: map[bool]string{false: "snmp: noSuchInstance", true: "snmp: error status noSuchName"}[v1]},
				"ups.output.source":         {value: "battery (5)"},
				"ups.status.on_battery":     {value: "true"},
				"ups.input.line_bads":       {value: "4294967290"},
				"ups.input.line_bads.rate":  {reason: "not polled: a rate needs a second reading"},
				"ups.output.load.1":         {value: "41 %"},
				"ups.output.load.2":         {value: "38 %"},
				"ups.status.input_bad":      {value: "false"},
				"ups.alarm.on_battery":      {value: "true"},
				"if.in_octets.gi1_0_1":      {value: "1000"},
				"if.in_octets.gi1_0_1.rate": {reason: "not polled"},
				"if.in_octets.gi1_0_2":      {value: "18446744073709552000"}, // 2^64-616 as a float64
				"if.in_octets.gi1_0_2.rate": {reason: "not polled"},
				"switch.sensor.cpu_temp":    {value: "23.45 degC"},
				"switch.sensor.fan_1":       {reason: "absent: sensor unavailable (entPhySensorOperStatus 2)"},
			})
			checkPoints(t, d.Poll(context.Background(), "inventory"), map[string]want{
				"ident.model": {value: `"Smart-UPS 3000"`},
			})
			if pts := d.Poll(context.Background(), "nosuchgroup"); pts != nil {
				t.Errorf("unknown group gave %d points", len(pts))
			}
		})
	}
}

// TestRequestsPerCycle pins the requests one poll sends: scalars batched
// into GETs of at most MaxVarbinds, columns walked side by side, and the
// splitting that tooBig, a named error status and v1 noSuchName cause.
func TestRequestsPerCycle(t *testing.T) {
	tests := []struct {
		name  string
		v1    bool
		cfg   DeviceConfig
		setup func(a *fakeAgent)
		want  []string
	}{
		{"v2c", false, DeviceConfig{}, nil,
			[]string{"get(6)", "bulk(10 x10)"}},
		{"v2c max_varbinds 4", false, DeviceConfig{MaxVarbinds: 4}, nil,
			[]string{"get(4)", "get(2)", "bulk(4 x10)", "bulk(4 x10)", "bulk(2 x10)"}},
		{"v2c max_repetitions 1", false, DeviceConfig{MaxRepetitions: 1}, nil,
			// Ten columns of at most two rows: two rows, then each column's
			// end; the alarm column's one row ends a round earlier.
			[]string{"get(6)", "bulk(10 x1)", "bulk(10 x1)", "bulk(9 x1)"}},
		{"v1 walks with getnext", true, DeviceConfig{}, nil,
			// noSuchName for battery.temperature splits the GET; each
			// GETNEXT round advances every column one row; in the third
			// the last column of the MIB (entPhysicalName) runs off its
			// end, which v1 answers with noSuchName for the whole request,
			// so the other eight ask again.
			[]string{"get(6)", "get(5)", "next(10)", "next(10)", "next(9)", "next(8)"}},
		{"genErr on one varbind", false, DeviceConfig{}, func(a *fakeAgent) { a.genErr = "1.3.6.1.2.1.33.1.2.5.0" },
			[]string{"get(6)", "get(5)", "bulk(10 x10)"}},
		{"tooBig on GET halves", false, DeviceConfig{}, func(a *fakeAgent) { a.maxVarbinds = 2 },
			// The bulk request carries 10 varbinds too: halving the
			// columns per request gets it through.
			// Then the 19 rows and the ten column ends go two columns at a
			// time; the last column walks alone.
			append([]string{"get(6)", "get(3)", "get(1)", "get(2)", "get(3)", "get(1)", "get(2)",
				"bulk(10 x10)", "bulk(10 x5)", "bulk(10 x2)", "bulk(10 x1)", "bulk(5 x1)"},
				append(slices.Repeat([]string{"bulk(2 x1)"}, 14), "bulk(1 x1)")...)},
		{"tooBig on a big GETBULK reply", false, DeviceConfig{}, func(a *fakeAgent) { a.maxResponse = 25 },
			// Two repetitions fit; the alarm column's single row ends it in
			// the first good reply.
			[]string{"get(6)", "bulk(10 x10)", "bulk(10 x5)", "bulk(10 x2)", "bulk(9 x2)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			agent := testAgent(tc.v1)
			if tc.setup != nil {
				tc.setup(agent)
			}
			d, _ := fakeDevice(t, agent, mustProfile(t, testProfile), tc.cfg)
			pts := d.Poll(context.Background(), "default")
			if got := agent.requests(); !slices.Equal(got, tc.want) {
				t.Errorf("requests\n got  %q\n want %q", got, tc.want)
			}
			if n := d.Requests(); n != uint64(len(tc.want)) {
				t.Errorf("Requests() = %d, want %d", n, len(tc.want))
			}
			good := map[string]bool{}
			for _, p := range pts {
				good[p.Name] = p.Quality == point.Good
			}
			// However the requests were split, the same points come back.
			for _, n := range []string{"battery.charge", "ups.output.load.2", "if.in_octets.gi1_0_2", "switch.sensor.cpu_temp", "ups.alarm.on_battery"} {
				if !good[n] {
					t.Errorf("%s is not good", n)
				}
			}
			// The limits a tooBig taught are kept: the next poll sends
			// nothing the agent refuses.
			agent.reset()
			d.Poll(context.Background(), "default")
			for _, r := range agent.log {
				if (agent.maxVarbinds > 0 && len(r.oids) > agent.maxVarbinds) || (agent.maxResponse > 0 && len(r.oids)*int(r.maxRep) > agent.maxResponse) {
					t.Errorf("second poll sent %s again", r)
				}
			}
			if tc.name == "genErr on one varbind" {
				for _, p := range pts {
					if p.Name == "battery.voltage" && p.Reason != "snmp: error status genErr" {
						t.Errorf("battery.voltage: %q", p.Reason)
					}
				}
			}
		})
	}
}

// TestDeadAgent checks that a silent agent costs one request per poll,
// gives every point the timeout reason, and is then left alone while it
// backs off, its column points keeping their row names.
func TestDeadAgent(t *testing.T) {
	agent := testAgent(false)
	d, clk := fakeDevice(t, agent, mustProfile(t, testProfile), DeviceConfig{Backoff: time.Second, MaxBackoff: time.Minute})
	ctx := context.Background()
	d.Poll(ctx, "default") // learns the row names
	agent.reset()
	agent.fail = fmt.Errorf("request timeout: %w", os.ErrDeadlineExceeded)
	for i := 1; i <= 2; i++ {
		pts := d.Poll(ctx, "default")
		if got := len(agent.requests()); got != i {
			t.Errorf("poll %d: %d requests so far, want %d", i, got, i)
		}
		names := map[string]bool{}
		for _, p := range pts {
			names[p.Name] = true
			if p.Quality != point.Bad || p.Reason != "timeout" {
				t.Errorf("poll %d: %s %s %q, want bad timeout", i, p.Name, p.Quality, p.Reason)
			}
		}
		for _, n := range []string{"ups.output.load.1", "if.in_octets.gi1_0_2", "if.in_octets.gi1_0_2.rate", "switch.sensor.fan_1", "ups.status.input_bad"} {
			if !names[n] {
				t.Errorf("poll %d: no bad point %s", i, n)
			}
		}
	}
	// Two failed polls: the third is not sent.
	pts := d.Poll(ctx, "default")
	if got := len(agent.requests()); got != 2 {
		t.Errorf("a backing-off device sent a request (%d in all)", got)
	}
	if len(pts) == 0 || !strings.HasPrefix(pts[0].Reason, "timeout (2 failed polls, next try in ") {
		t.Errorf("backing off: %q", pts[0].Reason)
	}
	clk.add(time.Hour)
	agent.fail = nil
	if pts := d.Poll(ctx, "default"); pts[0].Quality != point.Good {
		t.Errorf("after the backoff: %s %q", pts[0].Quality, pts[0].Reason)
	}
}

// TestRatesAcrossPolls polls twice (counter32 wrapping, counter64 at its
// top wrapping) and then after an agent restart.
func TestRatesAcrossPolls(t *testing.T) {
	agent := testAgent(false)
	d, clk := fakeDevice(t, agent, mustProfile(t, testProfile), DeviceConfig{})
	ctx := context.Background()
	d.Poll(ctx, "default")
	clk.add(10 * time.Second)
	agent.set("1.3.6.1.2.1.1.3.0", gosnmp.TimeTicks, uint32(2000))
	agent.set("1.3.6.1.2.1.33.1.3.1.0", gosnmp.Counter32, uint(14)) // wrapped: +20
	agent.set("1.3.6.1.2.1.31.1.1.1.6.1", gosnmp.Counter64, uint64(11000))
	agent.set("1.3.6.1.2.1.31.1.1.1.6.2", gosnmp.Counter64, uint64(384)) // wrapped: +1000
	checkRates(t, d.Poll(ctx, "default"), map[string]want{
		"ups.input.line_bads.rate":  {value: "2"},
		"if.in_octets.gi1_0_1.rate": {value: "1000"},
		"if.in_octets.gi1_0_2.rate": {value: "100"},
	})
	clk.add(10 * time.Second)
	agent.set("1.3.6.1.2.1.1.3.0", gosnmp.TimeTicks, uint32(300)) // restarted
	agent.set("1.3.6.1.2.1.33.1.3.1.0", gosnmp.Counter32, uint(1))
	checkRates(t, d.Poll(ctx, "default"), map[string]want{
		"ups.input.line_bads.rate":  {reason: "not polled: the agent restarted"},
		"if.in_octets.gi1_0_1.rate": {reason: "not polled: the agent restarted"},
	})
	clk.add(5 * time.Second)
	agent.set("1.3.6.1.2.1.1.3.0", gosnmp.TimeTicks, uint32(800))
	agent.set("1.3.6.1.2.1.33.1.3.1.0", gosnmp.Counter32, uint(11))
	checkRates(t, d.Poll(ctx, "default"), map[string]want{
		"ups.input.line_bads.rate": {value: "2"},
	})
}

func checkRates(t *testing.T, pts []point.Point, wants map[string]want) {
	t.Helper()
	for name, w := range wants {
		found := false
		for _, p := range pts {
			if p.Name != name {
				continue
			}
			found = true
			if w.reason != "" {
				if p.Quality != point.Bad || !strings.HasPrefix(p.Reason, w.reason) {
					t.Errorf("%s: %s %q, want bad %q", name, p.Quality, p.Reason, w.reason)
				}
			} else if p.Quality != point.Good || p.Format() != w.value {
				t.Errorf("%s: %s %s (%s), want %s", name, p.Quality, p.Format(), p.Reason, w.value)
			}
		}
		if !found {
			t.Errorf("no point %s", name)
		}
	}
}

// TestColumnChanges checks that an emptied table reports its known rows
// bad as absent, and that new rows appear under their labels.
func TestColumnChanges(t *testing.T) {
	agent := testAgent(false)
	d, clk := fakeDevice(t, agent, mustProfile(t, testProfile), DeviceConfig{Only: []string{"ups.output.load", "if.in_octets.rate"}})
	ctx := context.Background()
	d.Poll(ctx, "default")
	clk.add(time.Second)
	agent.del("1.3.6.1.2.1.33.1.4.4.1.5.1")
	agent.del("1.3.6.1.2.1.33.1.4.4.1.5.2")
	agent.set("1.3.6.1.2.1.31.1.1.1.1.3", gosnmp.OctetString, []byte("Po1"))
	agent.set("1.3.6.1.2.1.31.1.1.1.6.3", gosnmp.Counter64, uint64(5))
	got := map[string]string{}
	for _, p := range d.Poll(ctx, "default") {
		got[p.Name] = p.Quality.String() + " " + p.Reason
	}
	wantNames := map[string]string{
		"ups.output.load.1":         "bad absent: the agent has no rows in 1.3.6.1.2.1.33.1.4.4.1.5",
		"ups.output.load.2":         "bad absent: the agent has no rows in 1.3.6.1.2.1.33.1.4.4.1.5",
		"if.in_octets.gi1_0_1":      "good ",
		"if.in_octets.gi1_0_1.rate": "good ",
		"if.in_octets.gi1_0_2":      "good ",
		"if.in_octets.gi1_0_2.rate": "good ",
		"if.in_octets.po1":          "good ",
		"if.in_octets.po1.rate":     "bad not polled: a rate needs a second reading",
	}
	for n, w := range wantNames {
		if got[n] != w {
			t.Errorf("%s: %q, want %q", n, got[n], w)
		}
	}
	if len(got) != len(wantNames) {
		t.Errorf("points %v", got)
	}
}

// TestConcurrentGroups polls two groups of one device from two goroutines,
// as the poller does, under -race.
func TestConcurrentGroups(t *testing.T) {
	agent := testAgent(false)
	d, _ := fakeDevice(t, agent, mustProfile(t, testProfile), DeviceConfig{})
	var wg sync.WaitGroup
	for _, g := range []string{"default", "inventory", "default"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				for _, p := range d.Poll(context.Background(), g) {
					if p.Name == "ident.model" && p.Str != "Smart-UPS 3000" {
						t.Errorf("ident.model = %q", p.Str)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestPollCancelled checks that a poll whose context has ended sends
// nothing and reports its points bad.
func TestPollCancelled(t *testing.T) {
	agent := testAgent(false)
	d, _ := fakeDevice(t, agent, mustProfile(t, testProfile), DeviceConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pts := d.Poll(ctx, "default")
	if n := len(agent.requests()); n != 0 {
		t.Errorf("%d requests after cancel", n)
	}
	for _, p := range pts {
		if p.Quality != point.Bad || !strings.HasPrefix(p.Reason, "not polled") {
			t.Errorf("%s: %s %q", p.Name, p.Quality, p.Reason)
		}
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{errors.New("incoming packet is not authentic, discarding"), "snmp: authentication failure (wrong user or passphrase?)"},
		{gosnmp.ErrWrongDigest, "snmp: authentication failure (wrong passphrase?)"},
		{gosnmp.ErrDecryption, "snmp: decryption error (wrong privacy passphrase?)"},
		{gosnmp.ErrUnknownUsername, "snmp: unknown user name"},
		{fmt.Errorf("request timeout (after 1 retries): %w", gosnmp.ErrMaxRetriesExceeded), "timeout"},
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("read udp: %w", os.ErrDeadlineExceeded), "timeout"},
		{context.Canceled, "not polled: poll cancelled"},
		{fmt.Errorf("read: %w", errConnRefused()), "connection: refused (no agent on that port)"},
		{errors.New("recover: runtime error: index out of range"), "protocol: malformed reply"},
		{errors.New("unmarshal: bad tag"), "protocol: unmarshal: bad tag"},
	}
	for _, tc := range tests {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestIdentifyFake runs profile: auto against fake agents that look like
// an APC UPS, a plain RFC 1628 UPS, an APC rPDU2 and an unknown box.
func TestIdentifyFake(t *testing.T) {
	reg, err := profiles.Shipped()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		vars     map[string]any
		model    string
		firmware string
	}{
		{"apc ups", map[string]any{sysObjectIDOID: ".1.3.6.1.4.1.318.1.3.27", "1.3.6.1.4.1.318.1.1.1.1.1.1.0": "Smart-UPS 3000",
			"1.3.6.1.4.1.318.1.1.1.1.2.1.0": "UPS 09.3 (ID18)", "1.3.6.1.2.1.33.1.1.2.0": "SMT3000"}, "apc-smart-ups-snmp", "UPS 09.3 (ID18)"},
		{"rfc 1628 ups", map[string]any{sysObjectIDOID: ".1.3.6.1.4.1.8072.3.2.10", "1.3.6.1.2.1.33.1.1.2.0": "GXT5",
			"1.3.6.1.2.1.33.1.1.4.0": "4.2.0"}, "rfc1628-ups-snmp", "4.2.0"},
		{"apc rpdu2", map[string]any{sysObjectIDOID: ".1.3.6.1.4.1.318.1.3.4.5", "1.3.6.1.4.1.318.1.1.26.2.1.1.8.1": "AP8641",
			"1.3.6.1.4.1.318.1.1.26.2.1.1.6.1": "v6.5.6"}, "apc-rpdu2-snmp", "v6.5.6"},
		{"unknown", map[string]any{sysObjectIDOID: ".1.3.6.1.4.1.9.1.1"}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newFake(false)
			for oid, v := range tc.vars {
				if s, ok := v.(string); ok && strings.HasPrefix(s, ".") {
					a.set(oid, gosnmp.ObjectIdentifier, s)
				} else {
					a.set(oid, gosnmp.OctetString, []byte(v.(string)))
				}
			}
			d, _ := fakeDevice(t, a, nil, DeviceConfig{Auto: true, Registry: reg})
			id, err := d.Identify(context.Background())
			if tc.model == "" {
				if !errors.Is(err, ErrNotIdentified) {
					t.Errorf("Identify = %v, %v; want ErrNotIdentified", id, err)
				}
				pts := d.Poll(context.Background(), "default")
				if len(pts) != 0 {
					t.Errorf("an unidentified auto device gave %d points", len(pts))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Profile.Model != tc.model || id.Firmware != tc.firmware {
				t.Errorf("identified %s firmware %q, want %s %q", id.Profile.Model, id.Firmware, tc.model, tc.firmware)
			}
			d.Poll(context.Background(), "inventory")
			if r := d.Resolved(); r == nil || r.Profile.Model != tc.model {
				t.Errorf("Poll did not resolve %s", tc.model)
			}
		})
	}
	// A silent agent is an error, not "no match".
	a := newFake(false)
	a.fail = fmt.Errorf("request timeout: %w", gosnmp.ErrMaxRetriesExceeded)
	d, _ := fakeDevice(t, a, nil, DeviceConfig{Auto: true, Registry: reg})
	if _, err := d.Identify(context.Background()); err == nil || errors.Is(err, ErrNotIdentified) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("Identify on a silent agent: %v", err)
	}
}

// TestProfileVariantByFirmware reads the firmware point before polling a
// profile with variants.
func TestProfileVariantByFirmware(t *testing.T) {
	p := mustProfile(t, `
model: v
class: ups
protocol: snmp
source: test
identify: {points: {ident.model: "."}, firmware: ident.firmware}
points:
  - {name: ident.model, oid: 1.3.6.1.2.1.33.1.1.2.0, type: string}
  - {name: ident.firmware, oid: 1.3.6.1.2.1.33.1.1.4.0, type: string}
  - {name: battery.charge, oid: 1.3.6.1.2.1.33.1.2.4.0, type: integer, unit: "%"}
variants:
  - firmware: ">=6"
    points:
      - {name: battery.charge, oid: 1.3.6.1.4.1.318.1.1.1.2.3.1.0, type: gauge, scale: 0.1, unit: "%"}
`)
	a := newFake(false)
	a.set("1.3.6.1.2.1.33.1.1.2.0", gosnmp.OctetString, []byte("X"))
	a.set("1.3.6.1.2.1.33.1.1.4.0", gosnmp.OctetString, []byte("v6.1"))
	a.set("1.3.6.1.2.1.33.1.2.4.0", gosnmp.Integer, 50)
	a.set("1.3.6.1.4.1.318.1.1.1.2.3.1.0", gosnmp.Gauge32, uint(875))
	d, _ := fakeDevice(t, a, p, DeviceConfig{})
	for _, pt := range d.Poll(context.Background(), "default") {
		if pt.Name == "battery.charge" && pt.Format() != "87.5 %" {
			t.Errorf("battery.charge = %s, want the variant's 87.5 %%", pt.Format())
		}
	}
	if r := d.Resolved(); r.Variant == nil || r.Firmware != "v6.1" {
		t.Errorf("resolved %+v", r)
	}
}

func errConnRefused() error { return syscall.ECONNREFUSED }

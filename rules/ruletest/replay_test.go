package ruletest

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/rules"
)

func TestReplay(t *testing.T) {
	set, err := rules.LoadFiles("../testdata/packs/fire.yaml", "../testdata/packs/power.yaml")
	if err != nil {
		t.Fatal(err)
	}
	devs := []rules.Device{
		{ID: "bms-1", Class: "battery", Profile: "generic-liion-bms", Labels: map[string]string{"room": "b3"}},
		{ID: "ups-1", Class: "ups", Profile: "apc-smart-ups-snmp"},
	}
	tests := []struct {
		file, format string
		want         []string
	}{
		{"testdata/replay.csv", FormatCSV, []string{
			"2026-11-26T12:00:15Z firing fire/liion-offgas@bms-1 critical Off-gas 120 ppm on bms-1",
			"2026-11-26T12:00:25Z resolved fire/liion-offgas@bms-1 critical Off-gas 10 ppm on bms-1",
			"2026-11-26T12:00:40Z firing fire/liion-offgas@bms-1 critical Off-gas bad (timeout) on bms-1 (supervision lost)",
		}},
		{"testdata/replay.mqtt", FormatMQTTJSON, []string{
			"2026-11-26T12:00:06Z firing power/on-battery@ups-1 major ups-1 on battery, runtime 1740 s",
			"2026-11-26T12:00:12Z resolved power/on-battery@ups-1 major ups-1 on battery, runtime 1740 s",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			f, err := os.Open(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var out bytes.Buffer
			if err := Replay(set, devs, f, tt.format, &out); err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSpace(out.String()), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestReplayErrors(t *testing.T) {
	set, err := rules.LoadFiles("../testdata/packs/power.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, format, in, want string
	}{
		{"unknown format", "xml", "", `replay: unknown format "xml" (want csv or mqtt-json)`},
		{"csv bad time", FormatCSV, "time,device,point,value\n2026-11-26 12:00,ups-1,x,1\n", `replay: line 2: time "2026-11-26 12:00" is not RFC 3339`},
		{"csv too few fields", FormatCSV, "2026-11-26T12:00:00Z,ups-1,x\n", "replay: line 1: want time,device,point,value[,quality[,unit]], got 3 fields"},
		{"csv bad quality", FormatCSV, "2026-11-26T12:00:00Z,ups-1,x,1,great\n", `replay: line 1: quality "great": want good, bad or stale`},
		{"csv bad unit", FormatCSV, "2026-11-26T12:00:00Z,ups-1,x,1,good,volts\n", `replay: line 1: unknown unit "volts"`},
		{"json syntax", FormatMQTTJSON, "{\"device\":\"ups-1\",\"points\":[\n", "replay: line 1: unexpected end of JSON input"},
		{"json bad quality", FormatMQTTJSON, `{"device":"ups-1","points":[{"name":"x","value":1,"time":"2026-11-26T12:00:00Z","quality":"fine"}]}`, `replay: line 1: point "x": quality "fine": want good, bad or stale`},
		{"json bad value", FormatMQTTJSON, `{"device":"ups-1","points":[{"name":"x","value":[1],"time":"2026-11-26T12:00:00Z","quality":"good"}]}`, `replay: line 1: point "x": value [1] is not a number, bool, string or null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Replay(set, []rules.Device{{ID: "ups-1", Class: "ups"}}, strings.NewReader(tt.in), tt.format, &bytes.Buffer{})
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestReplayDocsMQTT decodes the telemetry examples of docs/mqtt.md, the
// wire contract, as replay reads them.
func TestReplayDocsMQTT(t *testing.T) {
	b, err := os.ReadFile("../../docs/mqtt.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- example: telemetry -->\\s*```json\\n(.*?)```")
	ms := re.FindAllStringSubmatch(string(b), -1)
	if len(ms) == 0 {
		t.Fatal("no telemetry examples in docs/mqtt.md")
	}
	var lines []string
	for _, m := range ms {
		var c bytes.Buffer
		if err := json.Compact(&c, []byte(m[1])); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, c.String())
	}
	var got []point.Point
	err = replayMQTT(strings.NewReader(strings.Join(lines, "\n")), func(pts []point.Point) error {
		got = append(got, pts...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]point.Point{}
	for _, p := range got {
		if p.Device != "bms-rack1" {
			t.Errorf("point %s: got device %q, want bms-rack1", p.Name, p.Device)
		}
		byName[p.Name] = p
	}
	st := byName["bms.state"]
	if st.Kind != point.Enum || st.Str != "discharging" || st.Num != 2 {
		t.Errorf("bms.state: got %+v, want enum discharging (2)", st)
	}
	soc := byName["bms.soc"]
	if soc.Quality != point.Bad || soc.Reason != "timeout" || soc.Unit != point.Percent {
		t.Errorf("bms.soc: got %+v, want bad, timeout, %%", soc)
	}
	if temp := byName["bms.cell_temp_max"]; temp.Kind != point.Number || temp.Num != 31.6 || temp.Time.Second() != 41 {
		t.Errorf("bms.cell_temp_max: got %+v, want 31.6 at :41 (the last example)", temp)
	}
}

func TestWirePointNull(t *testing.T) {
	p, err := wirePointToPoint("d", &wirePoint{Name: "x", Value: json.RawMessage("null"), Quality: "bad"})
	if err != nil || !math.IsNaN(p.Num) || p.Kind != point.Number {
		t.Errorf("null: got %+v, %v; want a NaN number", p, err)
	}
}

package point

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestMarshalJSON(t *testing.T) {
	ts := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		p    Point
		want string
	}{
		{"number", Point{Device: "ups-a", Name: "battery.charge", Num: 97.5, Unit: Percent, Time: ts},
			`{"device":"ups-a","name":"battery.charge","value":97.5,"unit":"%","time":"2026-11-26T12:00:00Z","quality":"good"}`},
		{"bool", Point{Name: "ups.status.on_battery", Kind: Bool, Num: 1, Time: ts},
			`{"name":"ups.status.on_battery","value":true,"time":"2026-11-26T12:00:00Z","quality":"good"}`},
		{"enum", Point{Name: "crac.state", Kind: Enum, Num: 2, Str: "standby", Time: ts},
			`{"name":"crac.state","value":"standby","code":2,"time":"2026-11-26T12:00:00Z","quality":"good"}`},
		{"bad keeps reason", Point{Name: "bms.cell_temp_max", Num: 0, Unit: Celsius, Time: ts, Quality: Bad, Reason: "timeout"},
			`{"name":"bms.cell_temp_max","value":0,"unit":"degC","time":"2026-11-26T12:00:00Z","quality":"bad","reason":"timeout"}`},
		{"NaN is null", Point{Name: "x", Num: math.NaN(), Time: ts, Quality: Bad, Reason: "decode: f32 is NaN"},
			`{"name":"x","value":null,"time":"2026-11-26T12:00:00Z","quality":"bad","reason":"decode: f32 is NaN"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		p    Point
		want string
	}{
		{Point{Num: 23.45678, Unit: Celsius}, "23.457 degC"},
		{Point{Num: 3}, "3"},
		{Point{Kind: Bool, Num: 0}, "false"},
		{Point{Kind: Enum, Num: 1, Str: "on"}, "on (1)"},
		{Point{Kind: Enum, Num: 9}, "9"},
		{Point{Kind: String, Str: "Smart-UPS"}, `"Smart-UPS"`},
	}
	for _, tt := range tests {
		if got := tt.p.Format(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestQuality(t *testing.T) {
	if Worst(Good, Stale) != Stale || Worst(Bad, Stale) != Bad || Worst(Good, Good) != Good {
		t.Error("Worst does not order good < stale < bad")
	}
	var q Quality
	if err := q.UnmarshalText([]byte("stale")); err != nil || q != Stale {
		t.Errorf("got %v %v, want stale", q, err)
	}
	if err := q.UnmarshalText([]byte("fine")); err == nil {
		t.Error("unknown quality accepted")
	}
}

func TestUnitVocabulary(t *testing.T) {
	seen := map[Unit]bool{}
	for _, u := range Units {
		if seen[u.Unit] {
			t.Errorf("unit %q listed twice", u.Unit)
		}
		seen[u.Unit] = true
	}
	if !Unit("degC").Known() || Unit("C").Known() || Unit("celsius").Known() {
		t.Error("Known accepts or rejects the wrong symbols")
	}
}

// reference is the reflection-based encoding AppendJSON must reproduce
// byte for byte.
type reference struct {
	Device  string    `json:"device,omitempty"`
	Name    string    `json:"name"`
	Value   any       `json:"value"`
	Code    any       `json:"code,omitempty"`
	Unit    Unit      `json:"unit,omitempty"`
	Time    time.Time `json:"time"`
	Quality Quality   `json:"quality"`
	Reason  string    `json:"reason,omitempty"`
}

func referenceJSON(p Point) ([]byte, error) {
	r := reference{Device: p.Device, Name: p.Name, Value: p.Value(), Unit: p.Unit, Time: p.Time, Quality: p.Quality, Reason: p.Reason}
	if p.Kind == Enum {
		// A code that JSON cannot carry is null, like a value.
		r.Code = p.Num
		if math.IsNaN(p.Num) || math.IsInf(p.Num, 0) {
			r.Code = json.RawMessage("null")
		}
	}
	if f, ok := r.Value.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		r.Value = nil
	}
	return json.Marshal(r)
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("ups-a", "battery.charge", uint8(0), 97.5, "", "%", int64(1764158400123456789), uint8(0), "")
	f.Add("", "x<y>&\u2028", uint8(2), math.Inf(1), "on\x00\xff", "degC", int64(-62135596800000000000/1e9), uint8(2), "timeout \"quoted\"\n")
	f.Add("d", "n", uint8(3), 1e-7, "text\t", "", int64(0), uint8(1), "stale")
	f.Add("d", "n", uint8(0), 1e21, "", "", int64(1), uint8(0), "")
	f.Fuzz(func(t *testing.T, dev, name string, kind uint8, num float64, str, unit string, ns int64, q uint8, reason string) {
		p := Point{Device: dev, Name: name, Kind: Kind(kind % 4), Num: num, Str: str, Unit: Unit(unit), Time: time.Unix(0, ns).UTC(), Quality: Quality(q % 3), Reason: reason}
		got, err := p.AppendJSON(nil)
		want, werr := referenceJSON(p)
		if (err != nil) != (werr != nil) {
			t.Fatalf("error mismatch: got %v, reference %v", err, werr)
		}
		if err == nil && string(got) != string(want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}

func BenchmarkMarshalJSON(b *testing.B) {
	p := Point{Device: "bms-rack1", Name: "bms.cell_temp_max", Num: 31.4, Unit: Celsius, Time: time.Now().UTC()}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = p.AppendJSON(buf[:0])
	}
}

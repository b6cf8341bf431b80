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

package alert

import (
	"strings"
	"testing"
	"time"
)

func TestEpisodeID(t *testing.T) {
	at := time.Date(2026, 11, 26, 19, 0, 0, 250e6, time.UTC)
	id := EpisodeID("fire/liion-offgas", "bms-1", at)
	tests := []struct {
		name string
		got  string
		same bool
	}{
		{"same inputs", EpisodeID("fire/liion-offgas", "bms-1", at), true},
		{"same instant in another zone", EpisodeID("fire/liion-offgas", "bms-1", at.In(time.FixedZone("KST", 9*3600))), true},
		{"other instance", EpisodeID("fire/liion-offgas", "bms-2", at), false},
		{"other rule", EpisodeID("fire/liion-offgas2", "bms-1", at), false},
		{"other start", EpisodeID("fire/liion-offgas", "bms-1", at.Add(time.Millisecond)), false},
		// The separator keeps ("ab","c") and ("a","bc") apart.
		{"shifted boundary", EpisodeID("fire/liion-offgasb", "ms-1", at), false},
	}
	for _, tt := range tests {
		if (tt.got == id) != tt.same {
			t.Errorf("%s: got %s vs %s, want same=%v", tt.name, tt.got, id, tt.same)
		}
	}
	if len(id) != 20 {
		t.Errorf("got id length %d, want 20", len(id))
	}
}

func TestEventRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 26, 19, 0, 0, 0, time.UTC)
	e := Event{ID: "abc", Seq: 7, Kind: KindFiring, State: Firing, Rule: "fire/x", Class: "fire", Severity: Critical,
		Device: "bms-1", Site: "s", Gateway: "g", Summary: "hot", ActiveAt: at, FiredAt: at.Add(time.Second), At: at.Add(time.Second),
		Values: map[string]Value{"bms.cell_temp_max": {Value: "71.5", Unit: "°C", Quality: "good"}},
		Ack:    &Ack{By: "kim", At: at, Comment: "on it"}}
	b := e.Marshal()
	if strings.Contains(string(b), "resolved_at") {
		t.Errorf("got %s, want no resolved_at for a firing event", b)
	}
	if !strings.Contains(string(b), `"severity":"critical"`) {
		t.Errorf("got %s, want severity by name", b)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Marshal()) != string(b) {
		t.Errorf("round trip: got %s, want %s", got.Marshal(), b)
	}
	if _, err := Unmarshal([]byte(`{"id":"x"}`)); err == nil {
		t.Error("got no error for an event without rule and kind")
	}
}

func TestSeverity(t *testing.T) {
	for i, n := range Severities {
		s, err := ParseSeverity(n)
		if err != nil || s.String() != n || int(s) != i+1 {
			t.Errorf("%s: got %v %v, want %d", n, s, err, i+1)
		}
	}
	if !(Critical > Major && Major > Warning && Warning > Info) {
		t.Error("severities out of order")
	}
	if _, err := ParseSeverity("fatal"); err == nil || !strings.Contains(err.Error(), "info, warning, major, critical") {
		t.Errorf("got %v, want an error listing the severities", err)
	}
}

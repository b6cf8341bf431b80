package notify

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

func TestMatchers(t *testing.T) {
	ev := firing("power/ups-on-battery", "ups-1", alert.Major, t0)
	ev.Labels = map[string]string{"room": "b3-battery", "row": "a"}
	tests := []struct {
		name string
		m    Matchers
		want bool
	}{
		{"rule exact", Matchers{Rule: "power/ups-on-battery"}, true},
		{"rule other", Matchers{Rule: "power/ups-overload"}, false},
		{"pack wildcard", Matchers{Rule: "power/*"}, true},
		{"other pack wildcard", Matchers{Rule: "fire/*"}, false},
		{"pack prefix is not a pack", Matchers{Rule: "pow/*"}, false},
		{"device", Matchers{Device: "ups-1"}, true},
		{"other device", Matchers{Device: "ups-2"}, false},
		{"group", Matchers{Group: "row-a"}, false},
		{"class", Matchers{Class: "power"}, true},
		{"label", Matchers{Labels: map[string]string{"room": "b3-battery"}}, true},
		{"label other value", Matchers{Labels: map[string]string{"room": "b2"}}, false},
		{"label absent", Matchers{Labels: map[string]string{"zone": "1"}}, false},
		{"all fields", Matchers{Rule: "power/*", Device: "ups-1", Class: "power", Labels: map[string]string{"row": "a"}}, true},
		{"one field off", Matchers{Rule: "power/*", Device: "ups-1", Class: "cooling"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.Matches(&ev); got != tt.want {
				t.Errorf("matches: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAddSilenceChecks(t *testing.T) {
	ok := Silence{Matchers: Matchers{Device: "ups-1"}, Until: t0.Add(time.Hour), Reason: "battery swap", By: "alice"}
	tests := []struct {
		name string
		edit func(*Silence)
		want string
	}{
		{"no reason", func(s *Silence) { s.Reason = " " }, "reason is required"},
		{"no by", func(s *Silence) { s.By = "" }, "by is required"},
		{"no matchers", func(s *Silence) { s.Matchers = Matchers{} }, "no matchers"},
		{"bad rule", func(s *Silence) { s.Matchers.Rule = "power" }, `rule "power": want "pack/name" or "pack/*"`},
		{"star in name", func(s *Silence) { s.Matchers.Rule = "power/ups-*" }, `rule "power/ups-*"`},
		{"star pack", func(s *Silence) { s.Matchers.Rule = "*/x" }, `rule "*/x"`},
		{"past", func(s *Silence) { s.Until = t0.Add(-time.Second) }, "is not in the future"},
		{"no until", func(s *Silence) { s.Until = time.Time{} }, "until is required"},
		{"too long", func(s *Silence) { s.Until = t0.Add(8 * 24 * time.Hour) }, "more than the maximum of 168h0m0s"},
		{"severity", func(s *Silence) { s.Severity = 9 }, "severity severity(9)"},
		{"two problems", func(s *Silence) { s.Reason, s.By = "", "" }, "reason is required; by is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openLedger(t, t.TempDir(), newClock())
			s := ok
			tt.edit(&s)
			_, _, err := l.AddSilence(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "notify: silence: ") {
				t.Fatalf("add silence: got %v, want an error containing %q", err, tt.want)
			}
			if n := len(l.Silences()); n != 0 {
				t.Errorf("silences: got %d, want 0", n)
			}
		})
	}
	t.Run("duplicate id", func(t *testing.T) {
		l := openLedger(t, t.TempDir(), newClock())
		s := ok
		s.ID = "s1"
		if _, _, err := l.AddSilence(s); err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.AddSilence(s); err == nil || !strings.Contains(err.Error(), `id "s1" already exists`) {
			t.Errorf("second add: got %v, want a duplicate id error", err)
		}
	})
}

func TestSilenceSeverityIsACeiling(t *testing.T) {
	c := newClock()
	l := openLedger(t, t.TempDir(), c)
	onBattery := firing("power/ups-on-battery", "ups-1", alert.Major, t0)
	other := firing("power/ups-on-battery", "ups-2", alert.Critical, t0)
	record(t, l, onBattery, other)

	s, evs, err := l.AddSilence(Silence{Matchers: Matchers{Device: "ups-1"}, Until: t0.Add(time.Hour), Reason: "battery swap", By: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Severity != alert.Major || s.ID == "" || !s.Created.Equal(t0) {
		t.Errorf("silence: got severity %s id %q created %s, want major (highest matched), an id, created now", s.Severity, s.ID, s.Created)
	}
	if len(evs) != 1 || evs[0].ID != onBattery.ID || evs[0].Kind != alert.KindSilenced || evs[0].Silence == nil || evs[0].Silence.ID != s.ID {
		t.Fatalf("events: got %+v, want one silenced event for %s", evs, onBattery.ID)
	}
	if evs[0].Silence.By != "alice" || evs[0].Silence.Reason != "battery swap" || !evs[0].Silence.Until.Equal(s.Until) {
		t.Errorf("silence ref: got %+v, want by, reason and until of the silence", evs[0].Silence)
	}

	worse := firing("power/ups-battery-depleted", "ups-1", alert.Critical, t0.Add(time.Minute))
	same := firing("power/ups-overload", "ups-1", alert.Warning, t0.Add(time.Minute))
	got := record(t, l, worse, same)
	if got[0].Silence != nil {
		t.Errorf("critical alert under a major silence: got silence %+v, want none (never hide a worse alert)", got[0].Silence)
	}
	if got[1].Silence == nil || got[1].Silence.ID != s.ID {
		t.Errorf("warning alert under a major silence: got silence %+v, want %s", got[1].Silence, s.ID)
	}
	// Still recorded and delivered: silenced events are in the undispatched list.
	und := l.Undispatched()
	if last := und[len(und)-1]; last.ID != same.ID {
		t.Errorf("last undispatched: got %s, want the silenced event %s (silenced alerts are delivered)", last.ID, same.ID)
	}

	s2, evs, err := l.AddSilence(Silence{Matchers: Matchers{Device: "crac-9"}, Until: t0.Add(time.Hour), Reason: "maintenance", By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Severity != alert.Warning || len(evs) != 0 {
		t.Errorf("silence matching nothing: got severity %s and %d events, want warning and none", s2.Severity, len(evs))
	}
}

func TestSilenceExpiryAndRemoval(t *testing.T) {
	dir, c := t.TempDir(), newClock()
	l := openLedger(t, dir, c)
	a := firing("power/ups-on-battery", "ups-1", alert.Major, t0)
	record(t, l, a)
	short, _, err := l.AddSilence(Silence{ID: "short", Matchers: Matchers{Rule: "power/*"}, Until: t0.Add(time.Hour), Reason: "swap", By: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	long, evs, err := l.AddSilence(Silence{ID: "long", Matchers: Matchers{Device: "ups-1"}, Until: t0.Add(3 * time.Hour), Reason: "swap", By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Errorf("second covering silence: got %d events, want none (already silenced)", len(evs))
	}

	if evs, err := l.PruneSilences(t0.Add(59 * time.Minute)); err != nil || len(evs) != 0 {
		t.Errorf("prune before the end: got %v, %v, want nothing", evs, err)
	}
	c.advance(time.Hour)
	evs, err = l.PruneSilences(c.now())
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != alert.KindSilenced || evs[0].Silence == nil || evs[0].Silence.ID != long.ID {
		t.Fatalf("expiry of %s with %s still covering: got %+v, want a silenced event with the new reference", short.ID, long.ID, evs)
	}

	if _, err := l.RemoveSilence("long", ""); err == nil || !strings.Contains(err.Error(), "by is required") {
		t.Errorf("remove without by: got %v, want an error", err)
	}
	if _, err := l.RemoveSilence("nope", "carol"); err == nil || !errors.Is(err, ErrUnknownSilence) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("remove unknown: got %v, want an error naming it", err)
	}
	evs, err = l.RemoveSilence("long", "carol")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != alert.KindUnsilenced || evs[0].Silence != nil {
		t.Fatalf("remove the last covering silence: got %+v, want an unsilenced event without a silence", evs)
	}

	// Expiry emits unsilenced too, and it is all persisted.
	if _, _, err := l.AddSilence(Silence{Matchers: Matchers{Class: "power"}, Until: c.now().Add(time.Minute), Reason: "x", By: "dave"}); err != nil {
		t.Fatal(err)
	}
	c.advance(time.Minute)
	evs, err = l.PruneSilences(c.now())
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != alert.KindUnsilenced {
		t.Fatalf("expiry: got %+v, want one unsilenced event", evs)
	}
	l.Close()
	l = openLedger(t, dir, c)
	if n := len(l.Silences()); n != 0 {
		t.Errorf("silences after reopen: got %d, want 0", n)
	}
	if act := l.Active(); len(act) != 1 || act[0].Silence != nil || act[0].Kind != alert.KindUnsilenced {
		t.Errorf("active after reopen: got %+v, want the unsilenced event", act)
	}
}

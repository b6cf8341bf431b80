package trap

import (
	"bytes"
	"testing"

	"github.com/gosnmp/gosnmp"
)

// TestUpdate: a listener told new communities, users and sources judges
// the next datagram by them, keeps its engine id, and an invalid update
// changes nothing.
func TestUpdate(t *testing.T) {
	l := newListener(t, testConfig())
	engine := bytes.Clone(l.EngineID())
	trap := notification(oidOnBattery)
	sender := "\x80\x00\x00\x00\x05sender"
	refused := func(what string, msg []byte, from string, want Reason) {
		t.Helper()
		before := l.Stats().Rejected[want]
		if ev, _ := handleOne(t, l, msg, from); ev != nil {
			t.Errorf("%s: accepted, want refused (%v)", what, want)
		}
		if got := l.Stats().Rejected[want]; got != before+1 {
			t.Errorf("%s: refusals for %v went %d -> %d, want one more", what, want, before, got)
		}
	}
	accepted := func(what string, msg []byte, from, dev string) {
		t.Helper()
		ev, _ := handleOne(t, l, msg, from)
		if ev == nil || ev.Device != dev {
			t.Errorf("%s: got %+v, want accepted as %s", what, ev, dev)
		}
	}
	refused("new source before the update", encodeV2c(t, "private", gosnmp.SNMPv2Trap, trap), "127.0.0.9:1", ReasonUnknownSource)

	bad := testConfig()
	bad.Sources = map[string]string{"not-an-ip": "x"}
	if err := l.Update(bad); err == nil {
		t.Fatal("update with a bad source: accepted")
	}
	accepted("old community after a refused update", encodeV2c(t, "public", gosnmp.SNMPv2Trap, trap), "127.0.0.1:1", "ups-1")

	cfg := testConfig()
	cfg.Communities = []string{"private"}
	cfg.Sources["127.0.0.9"] = "ats-1"
	cfg.V3Users = []User{userSHA256}
	if err := l.Update(cfg); err != nil {
		t.Fatal(err)
	}
	accepted("new source, new community", encodeV2c(t, "private", gosnmp.SNMPv2Trap, trap), "127.0.0.9:1", "ats-1")
	refused("removed community", encodeV2c(t, "public", gosnmp.SNMPv2Trap, trap), "127.0.0.1:1", ReasonBadCommunity)
	refused("removed v3 user", encodeV3Trap(t, userSHA, sender, trap), "127.0.0.1:1", ReasonUnknownUser)
	accepted("kept v3 user", encodeV3Trap(t, userSHA256, sender, trap), "127.0.0.1:1", "ups-1")
	if !bytes.Equal(l.EngineID(), engine) {
		t.Errorf("engine id changed on update: %x -> %x", engine, l.EngineID())
	}
}

package snmpagent

import (
	"bytes"
	"testing"
	"time"
)

// TestUSMWithUsers: the engine goes on with other users: same id and
// boots, an engine time that keeps counting (not back to 0), only the new
// users known, and a salt that does not repeat the old one's.
func TestUSMWithUsers(t *testing.T) {
	alice := User{Name: "alice", AuthProto: AuthSHA256, AuthPass: "alice-auth-pass"}
	bob := User{Name: "bob", AuthProto: AuthSHA, AuthPass: "bob-auth-pass", PrivProto: PrivAES, PrivPass: "bob-priv-pass"}
	u, err := NewUSM([]byte("\x80\x00\x00\x00\x05gw-1"), 7, []User{alice})
	if err != nil {
		t.Fatal(err)
	}
	u.start = time.Now().Add(-time.Hour) // up for an hour
	n, err := u.WithUsers([]User{bob})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(n.EngineID(), u.EngineID()) || n.EngineBoots() != 7 {
		t.Errorf("engine: got id %x boots %d, want %x and 7", n.EngineID(), n.EngineBoots(), u.EngineID())
	}
	if got := n.EngineTime(); got < 3600 {
		t.Errorf("engine time: got %d s, want it to go on from an hour (no reset)", got)
	}
	if _, ok := n.users["bob"]; !ok || len(n.users) != 1 {
		t.Errorf("users: got %v, want bob only", n.users)
	}
	if n.salt.Load() == u.salt.Load() {
		t.Error("salt: the new USM starts where the old one is")
	}
	if _, err := u.WithUsers([]User{{Name: "x", AuthProto: AuthSHA, AuthPass: "short"}}); err == nil {
		t.Error("a bad user: accepted")
	}
}

package outbox

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// updateFixtures rewrites testdata/v1 with this build's format. Run it
// only while format version 1 is what this build writes: once a version 2
// exists, testdata/v1 is the previous version's files and must stay as
// they are, so every later facgw is tested on reading them.
var updateFixtures = flag.Bool("update-fixtures", false, "rewrite the on-disk format fixtures in testdata/")

// fixtureDir holds an outbox written by format version 1: fixtureMessages
// appended into 1 KiB segments, the first fixtureAcked acknowledged.
const (
	fixtureDir   = "testdata/v1/outbox"
	fixtureAcked = 5
)

var fixtureTime = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

// fixtureMessages are the messages of the fixture (all appended at
// fixtureTime, the clock of the writer): every class, a
// retained one, an empty payload, keys for several devices.
func fixtureMessages() []Message {
	var out []Message
	for i := 1; i <= 30; i++ {
		m := Message{Class: Telemetry, Key: fmt.Sprintf("dev-%d", i%3), Topic: fmt.Sprintf("facgw/site/gw/telemetry/dev-%d", i%3),
			Payload: []byte(fmt.Sprintf(`{"seq":%d,"points":[{"name":"ups.load","value":%d.5}]}`, i, i)), Time: fixtureTime}
		switch i % 10 {
		case 4:
			m.Class, m.Topic = Alert, "facgw/site/gw/alerts/events"
		case 7:
			m.Class, m.Topic, m.Retain = Control, "facgw/site/gw/loadshed/audit", true
		case 9:
			m.Payload = nil
		}
		out = append(out, m)
	}
	return out
}

// TestWriteV1Fixture rewrites the fixture with -update-fixtures.
func TestWriteV1Fixture(t *testing.T) {
	if !*updateFixtures {
		t.Skip("rewrites testdata/v1 only with -update-fixtures")
	}
	if segVersion != 1 || stateVersion != 1 {
		t.Fatalf("this build writes segment version %d, state version %d: testdata/v1 must keep version 1's files", segVersion, stateVersion)
	}
	if err := os.RemoveAll(fixtureDir); err != nil {
		t.Fatal(err)
	}
	o, err := Open(Options{Dir: fixtureDir, SegmentBytes: 1024, MaxBytes: 1 << 20, now: func() time.Time { return fixtureTime }})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range fixtureMessages() {
		if _, err := o.Append(m); err != nil {
			t.Fatal(err)
		}
	}
	for seq := uint64(1); seq <= fixtureAcked; seq++ {
		if err := o.Ack(seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	// The lock file is this process's, not part of the format.
	os.Remove(filepath.Join(fixtureDir, "LOCK"))
}

// TestDrainV1Fixture opens the version 1 outbox of testdata with this
// build and drains it: every unacknowledged message comes back in order,
// byte for byte, and acknowledging them all empties it.
func TestDrainV1Fixture(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	copyFixture(t, fixtureDir, dir)
	o := open(t, Options{Dir: dir, SegmentBytes: 1024, MaxBytes: 1 << 20})
	got := peekAll(t, o)
	want := fixtureMessages()[fixtureAcked:]
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i, m := range got {
		w := want[i]
		if m.Seq != uint64(fixtureAcked+1+i) || m.Class != w.Class || m.Key != w.Key || m.Topic != w.Topic || string(m.Payload) != string(w.Payload) ||
			m.Retain != w.Retain || !m.Time.Equal(w.Time) {
			t.Errorf("message %d: got seq %d %v %q %q %q retain %v %v, want seq %d %v %q %q %q retain %v %v", i,
				m.Seq, m.Class, m.Key, m.Topic, m.Payload, m.Retain, m.Time, fixtureAcked+1+i, w.Class, w.Key, w.Topic, w.Payload, w.Retain, w.Time)
		}
		if err := o.Ack(m.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if st := o.Stats(); st.Depth != 0 || st.NextSeq != uint64(len(fixtureMessages())+1) {
		t.Errorf("after draining: got depth %d, next seq %d; want 0 and %d (seqs never reused)", st.Depth, st.NextSeq, len(fixtureMessages())+1)
	}
	if aside := asideFiles(t, dir); len(aside) != 0 {
		t.Errorf("files moved aside from a readable v1 outbox: %v", aside)
	}
}

// copyFixture copies a fixture directory, so the test never changes
// testdata (Open recovers and rewrites in place).
func copyFixture(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil || len(ents) == 0 {
		t.Fatalf("fixture %s: %v (entries %d); make it with go test -run TestWriteV1Fixture -update-fixtures", from, err, len(ents))
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

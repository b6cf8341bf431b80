package mqtt

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// updateFixtures rewrites testdata/seq-v1 with this build's format: only
// while the sequence store's format is the first one (seq.json and
// reserve.json without a version field). Once a later format exists, the
// fixture is the previous version's files and must stay as they are.
var updateFixtures = flag.Bool("update-fixtures", false, "rewrite the on-disk format fixtures in testdata/")

const seqFixture = "testdata/seq-v1"

// seqFixtureIssued is how many seqs the fixture's writer issued per
// device before a clean stop.
var seqFixtureIssued = map[string]uint64{"ups-a": 7, "bms-rack1": 120, "crac-1": 1}

func TestWriteSeqV1Fixture(t *testing.T) {
	if !*updateFixtures {
		t.Skip("rewrites testdata/seq-v1 only with -update-fixtures")
	}
	os.RemoveAll(seqFixture)
	s, err := OpenSequencer(seqFixture, nil)
	if err != nil {
		t.Fatal(err)
	}
	for dev, n := range seqFixtureIssued {
		for range n {
			s.Next(dev)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenSeqV1Fixture: the first format's sequence store, stopped
// cleanly, is read by this build: no unclean restart is announced and
// every device continues at the next seq, without a gap or a reuse.
func TestOpenSeqV1Fixture(t *testing.T) {
	ents, err := os.ReadDir(seqFixture)
	if err != nil || len(ents) == 0 {
		t.Fatalf("fixture %s: %v; make it with go test -run TestWriteSeqV1Fixture -update-fixtures", seqFixture, err)
	}
	dir := t.TempDir()
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(seqFixture, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
	}
	s, err := OpenSequencer(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Unclean() {
		t.Error("a cleanly stopped v1 store opened as unclean")
	}
	for dev, n := range seqFixtureIssued {
		if got := s.Issue(dev); got.Seq != n+1 || got.Restart {
			t.Errorf("%s: got seq %d (restart %v), want %d without a restart", dev, got.Seq, got.Restart, n+1)
		}
	}
	if got := s.Next("new-device"); got != 1 {
		t.Errorf("a device the store never saw: got seq %d, want 1", got)
	}
}

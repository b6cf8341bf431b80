package loadshed

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
)

// updateFixtures rewrites testdata/state-v1 with this build's format.
// Only while StateVersion is 1: once version 2 exists, the fixture is the
// previous version's file and must stay as it is, so every later facgw is
// tested on reading it.
var updateFixtures = flag.Bool("update-fixtures", false, "rewrite the on-disk format fixtures in testdata/")

const stateFixture = "testdata/state-v1/state.json"

// TestWriteStateV1Fixture records an armed shed of testdata/policy.yaml
// after its first stage: the state a gateway leaves when it stops between
// stages.
func TestWriteStateV1Fixture(t *testing.T) {
	if !*updateFixtures {
		t.Skip("rewrites " + stateFixture + " only with -update-fixtures")
	}
	if StateVersion != 1 {
		t.Fatalf("this build writes state version %d: %s must keep version 1's file", StateVersion, stateFixture)
	}
	r := newRig(t)
	r.arm()
	r.advance(4*time.Second, true, 8, point.Good) // stage 1 done
	b, err := os.ReadFile(filepath.Join(r.dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(stateFixture), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stateFixture, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestStateV1FixtureResumes: a controller of this build opens version 1's
// state, a shed stopped after stage 1, and goes on with stage 2 without
// writing stage 1's loads again.
func TestStateV1FixtureResumes(t *testing.T) {
	b, err := os.ReadFile(stateFixture)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"version": 1`) {
		t.Fatalf("%s does not say version 1", stateFixture)
	}
	r := newRig(t)
	r.ctl.Close()
	if err := os.WriteFile(filepath.Join(r.dir, stateFile), b, 0o640); err != nil {
		t.Fatal(err)
	}
	r.now = time.Date(2025, 1, 1, 0, 0, 5, 0, time.UTC) // just after the fixture's stage 1
	r.start()
	r.advance(8*time.Second, true, 6, point.Good)
	if got := r.bank.Writes(); len(got) != 0 {
		t.Errorf("bank writes after the upgrade: got %v, want none (stage 1 was done)", got)
	}
	if got, want := r.pdu.Writes(), []string{"pdu.outlet.command/5=2"}; !eq(got, want) {
		t.Errorf("pdu writes: got %v, want %v (stage 2 resumed)", got, want)
	}
}

// TestUnreadableStateMovedAside: a state file that is not JSON, or says a
// newer version, is moved aside with the reason audited; the controller
// starts without it, every policy inhibited by facgw (audited, persisted):
// a policy the config arms does not shed until an engineer releases it.
func TestUnreadableStateMovedAside(t *testing.T) {
	for name, content := range map[string]string{
		"torn":  `{"version": 1, "policies": {"utility-fail`,
		"newer": `{"version": 99, "policies": {}}`,
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			r.ctl.Close()
			if err := os.WriteFile(filepath.Join(r.dir, stateFile), []byte(content), 0o640); err != nil {
				t.Fatal(err)
			}
			r.cfg.Loadshed.Policies[0].Armed = true
			r.start()
			moved, _ := filepath.Glob(filepath.Join(r.dir, stateFile+".unreadable-*"))
			if len(moved) != 1 {
				t.Fatalf("files moved aside: got %v, want one", moved)
			}
			if b, _ := os.ReadFile(moved[0]); string(b) != content {
				t.Errorf("moved file: got %q, want the original content", b)
			}
			recs, err := ReadAudit(filepath.Join(r.dir, "audit.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			found, inhibited := false, false
			for _, rec := range recs {
				found = found || rec.Event == EventStateUnreadable && strings.Contains(rec.Reason, filepath.Base(moved[0]))
				inhibited = inhibited || rec.Event == EventInhibited && rec.Operator == "facgw" && strings.Contains(rec.Reason, moved[0])
			}
			if !found {
				t.Errorf("audit: got %+v, want a state-unreadable record naming %s", recs, moved[0])
			}
			if !inhibited {
				t.Errorf("audit: got %+v, want an inhibited record by facgw naming %s", recs, moved[0])
			}
			r.start() // persisted: still inhibited after another restart
			st := r.ctl.Status()
			if len(st.Policies) == 0 || st.Policies[0].Inhibit == nil || st.Policies[0].Inhibit.By != "facgw" ||
				!strings.Contains(st.Policies[0].Inhibit.Reason, "state file unreadable at start (moved to "+moved[0]+")") {
				t.Fatalf("status after the reset: got %+v, want the policy inhibited by facgw naming %s", st.Policies, moved[0])
			}
			r.advance(10*time.Second, true, 8, point.Good)
			if got := len(r.bank.Writes()) + len(r.pdu.Writes()); got != 0 {
				t.Errorf("writes with the trigger holding: got %d, want 0 (inhibited)", got)
			}
		})
	}
}

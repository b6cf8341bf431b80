package mqtt

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func openSeq(t *testing.T, dir string) *Sequencer {
	t.Helper()
	s, err := OpenSequencer(dir, testLogger(t.Output()))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// crash stops s the way a SIGKILL would: the writer goroutine ends, no
// clean mark is written.
func (s *Sequencer) crash() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
}

func TestSequencerCleanRestartContinues(t *testing.T) {
	dir := t.TempDir()
	s := openSeq(t, dir)
	if s.Unclean() {
		t.Error("fresh directory reported as unclean")
	}
	for want := uint64(1); want <= 3; want++ {
		if is := s.Issue("ups-a"); is.Seq != want || is.Restart {
			t.Errorf("got %+v, want seq %d without restart", is, want)
		}
	}
	if got := s.Next("crac-1"); got != 1 {
		t.Errorf("crac-1: got %d, want 1 (seqs are per device)", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openSeq(t, dir)
	defer s.Close()
	if s.Unclean() {
		t.Error("clean close reported as unclean")
	}
	if is := s.Issue("ups-a"); is.Seq != 4 || is.Restart {
		t.Errorf("after clean restart: got %+v, want seq 4 without restart", is)
	}
	if is := s.Issue("crac-1"); is.Seq != 2 || is.Restart {
		t.Errorf("after clean restart: got %+v, want seq 2 without restart", is)
	}
}

func TestSequencerUncleanRestartJumpsAndAnnounces(t *testing.T) {
	dir := t.TempDir()
	s := openSeq(t, dir)
	var last uint64
	for range 25_000 { // crosses two reservation blocks
		last = s.Next("bms-rack1")
	}
	s.Next("ups-a")
	s.crash()

	s = openSeq(t, dir)
	defer s.Close()
	if !s.Unclean() {
		t.Error("crash not recognised as unclean")
	}
	is := s.Issue("bms-rack1")
	if is.Seq <= last || !is.Restart || is.PrevSeq > last {
		t.Errorf("first seq after crash: got %+v, want seq > %d, restart, prev_seq <= %d", is, last, last)
	}
	if next := s.Issue("bms-rack1"); next.Seq != is.Seq+1 || next.Restart {
		t.Errorf("second seq after crash: got %+v, want %d without restart", next, is.Seq+1)
	}
	if u := s.Issue("ups-a"); u.Seq <= 1 || !u.Restart {
		t.Errorf("ups-a after crash: got %+v, want seq > 1 with restart", u)
	}
	if n := s.Issue("never-seen"); n.Seq != 1 || n.Restart {
		t.Errorf("new device after crash: got %+v, want seq 1 without restart (it never had a seq)", n)
	}
}

func TestSequencerCorruptStateIsUnclean(t *testing.T) {
	dir := t.TempDir()
	s := openSeq(t, dir)
	for range 10 {
		s.Next("ups-a")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A torn write of seq.json (power loss before the rename reached the
	// disk) must not be trusted as clean.
	if err := os.WriteFile(filepath.Join(dir, seqFile), []byte(`{"clean":tr`), 0o644); err != nil {
		t.Fatal(err)
	}
	s = openSeq(t, dir)
	defer s.Close()
	if is := s.Issue("ups-a"); is.Seq <= 10 || !is.Restart {
		t.Errorf("got %+v, want seq > 10 with restart", is)
	}
}

func TestSequencerConcurrent(t *testing.T) {
	s := openSeq(t, t.TempDir())
	defer s.Close()
	devices := []string{"a", "b", "c"}
	const workers, per = 8, 2000
	var mu sync.Mutex
	got := map[string][]uint64{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var mine []uint64
			dev := devices[w%len(devices)]
			for range per {
				mine = append(mine, s.Next(dev))
			}
			mu.Lock()
			got[dev] = append(got[dev], mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	for dev, seqs := range got {
		seen := make([]bool, len(seqs)+1)
		for _, q := range seqs {
			if q == 0 || q > uint64(len(seqs)) || seen[q] {
				t.Fatalf("device %s: seq %d repeated or outside 1..%d", dev, q, len(seqs))
			}
			seen[q] = true
		}
	}
}

// TestSequencerSIGKILL kills a process that is issuing seqs and checks that
// the next process never repeats one it printed, and announces the jump.
func TestSequencerSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSequencerHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "FACGW_SEQ_HELPER_DIR="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		var last, first uint64
		lines := 0
		scan := func(limit int) {
			for (limit == 0 || lines < limit) && sc.Scan() {
				q, err := strconv.ParseUint(strings.TrimSpace(sc.Text()), 10, 64)
				if err != nil {
					continue // test framework output
				}
				if lines == 0 {
					first = q
				}
				last = max(last, q)
				lines++
			}
		}
		scan(5000)
		if lines == 0 {
			t.Fatalf("round %d: helper printed no seqs", round)
		}
		// Let the child's writer record a counter past what we read, so
		// the restart can announce it.
		var flushed uint64
		waitFor(t, "the child to write its counters", func() bool {
			var st seqState
			if readJSON(filepath.Join(dir, seqFile), &st) == nil {
				flushed = st.Counters["dev"]
			}
			return flushed >= first+1000
		})
		cmd.Process.Kill() // SIGKILL, our own child
		scan(0)            // what it printed before it died
		cmd.Wait()

		s := openSeq(t, dir)
		is := s.Issue("dev")
		s.crash()
		t.Logf("round %d: child printed %d..%d, its file said %d; next process starts at %d, prev_seq %d", round, first, last, flushed, is.Seq, is.PrevSeq)
		if is.Seq <= last {
			t.Fatalf("round %d: seq %d issued again after SIGKILL (child printed up to %d)", round, is.Seq, last)
		}
		if !is.Restart || is.PrevSeq < flushed || is.PrevSeq >= is.Seq {
			t.Errorf("round %d: got %+v, want restart with %d <= prev_seq < seq", round, is, flushed)
		}
	}
}

// TestSequencerHelperProcess is the child of TestSequencerSIGKILL: it
// issues and prints seqs until killed.
func TestSequencerHelperProcess(t *testing.T) {
	dir := os.Getenv("FACGW_SEQ_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process for TestSequencerSIGKILL")
	}
	s, err := OpenSequencer(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		fmt.Fprintln(w, s.Next("dev"))
		if i%64 == 0 {
			w.Flush()
		}
	}
}

// TestSequencerUnreadableStateIsKeptAndNumbersStayUnique: state files a
// newer facgw wrote (a downgrade) or that are garbage are moved aside, not
// deleted, and every device, known or not, continues above anything they
// can have issued, with a restart mark.
func TestSequencerUnreadableStateIsKeptAndNumbersStayUnique(t *testing.T) {
	tests := []struct {
		name          string
		state, reserv string
	}{
		{"newer version of both", `{"version":2,"clean":true,"counters":{"ups-a":50000}}`, `{"version":2,"ceilings":{"ups-a":60000}}`},
		{"garbage in both", `{"clean":tr`, `not json`},
		{"newer seq.json, reservation readable", `{"version":9,"clean":true,"counters":{"ups-a":50000}}`, `{"version":1,"ceilings":{"ups-a":30000}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, seqFile), []byte(tt.state), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, reserveFile), []byte(tt.reserv), 0o644); err != nil {
				t.Fatal(err)
			}
			s := openSeq(t, dir)
			defer s.Close()
			for _, dev := range []string{"ups-a", "never-seen-before"} {
				// 50000 is the highest seq any of these files can have
				// issued for ups-a; the other device's are unknown.
				if is := s.Issue(dev); is.Seq <= 50000 || !is.Restart {
					t.Errorf("%s: got %+v, want a seq above anything issued before, with restart", dev, is)
				}
			}
			aside, _ := filepath.Glob(filepath.Join(dir, "*.unreadable-*"))
			if len(aside) == 0 {
				t.Errorf("got no file moved aside, want the unreadable one kept")
			}
			for _, f := range aside {
				if b, err := os.ReadFile(f); err != nil || (string(b) != tt.state && string(b) != tt.reserv) {
					t.Errorf("%s: got %q, %v; want the original content", f, b, err)
				}
			}
		})
	}
}

// TestSequencerWritesItsVersion: the state files say which format they are.
func TestSequencerWritesItsVersion(t *testing.T) {
	dir := t.TempDir()
	s := openSeq(t, dir)
	s.Next("ups-a")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{seqFile, reserveFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !strings.Contains(string(b), `"version":1`) {
			t.Errorf("%s: got %s, %v; want version 1", f, b, err)
		}
	}
}

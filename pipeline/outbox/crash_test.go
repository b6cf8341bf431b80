package outbox

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// helperEnv names the outbox directory of TestHelperProcess.
const helperEnv = "FACGW_OUTBOX_CRASH_DIR"

// crashMsg is the message the helper appends as seq: the parent can tell
// from the seq alone what the message must hold.
func crashMsg(seq uint64) Message {
	c := Telemetry
	switch {
	case seq%25 == 0:
		c = Control
	case seq%10 == 0:
		c = Alert
	}
	return Message{
		Class:   c,
		Key:     fmt.Sprintf("dev-%d", seq%7),
		Topic:   "facgw/crash/" + c.String(),
		Payload: fmt.Appendf(nil, "seq %d %s", seq, strings.Repeat("p", int(seq%200))),
	}
}

// TestHelperProcess is the child of TestCrashSIGKILL, not a test of its own:
// it appends until it is killed, printing "a <seq>" after each Append
// returned and "k <seq>" after each Ack returned, one write per line.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("the child process of TestCrashSIGKILL")
	}
	o, err := Open(Options{Dir: dir, SegmentBytes: 8 << 10, SyncEvery: DefaultSyncEvery, Logger: discard})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for i := 1; i < 10_000_000; i++ {
		m, err := o.Append(crashMsg(o.Stats().NextSeq))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Printf("a %d\n", m.Seq)
		if i%64 == 0 {
			ms, err := o.Peek(40)
			if err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
			for _, m := range ms {
				if err := o.Ack(m.Seq); err != nil {
					fmt.Println("error", err)
					os.Exit(2)
				}
				fmt.Printf("k %d\n", m.Seq)
			}
		}
		if i%640 == 0 {
			// Persist the head now and then (the background goroutine
			// would within 100ms), so that recovery starts past it.
			if err := o.Sync(); err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
		}
	}
	os.Exit(3) // the parent should have killed it long before
}

// TestCrashSIGKILL kills a process appending to an outbox and checks that
// every message whose Append returned is there, in order, after reopening,
// and that NextSeq is above all of them. Three rounds run on one directory,
// so recovery also starts from a recovered outbox.
func TestCrashSIGKILL(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("needs SIGKILL and a re-executable test binary")
	}
	dir := t.TempDir()
	appended := map[uint64]bool{} // not (yet) acknowledged
	var maxSeq uint64
	for round, killAfter := range []int{1500, 4000, 2500} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), helperEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killed := false
		t.Cleanup(func() { cmd.Process.Kill() })
		r := bufio.NewReader(stdout)
		n := 0
		for {
			line, err := r.ReadString('\n')
			if err == io.EOF {
				break // a last line without its newline was cut by the kill
			}
			if err != nil {
				t.Fatal(err)
			}
			kind, num, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
			seq, perr := strconv.ParseUint(num, 10, 64)
			switch {
			case kind == "a" && perr == nil:
				appended[seq] = true
				maxSeq = max(maxSeq, seq)
				if n++; n == killAfter {
					if err := cmd.Process.Kill(); err != nil {
						t.Fatal(err)
					}
					killed = true
				}
			case kind == "k" && perr == nil:
				delete(appended, seq)
			default:
				t.Fatalf("round %d: helper said %q; stderr:\n%s", round, line, stderr.String())
			}
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("round %d: helper ended before it was killed: %v; stderr:\n%s", round, err, stderr.String())
		}

		o := open(t, Options{Dir: dir, SegmentBytes: 8 << 10, SyncEvery: DefaultSyncEvery})
		got := peekAll(t, o)
		checkIncreasing(t, got)
		checkInvariants(t, o)
		present := map[uint64]bool{}
		for _, m := range got {
			present[m.Seq] = true
			want := crashMsg(m.Seq)
			want.Seq, want.Time = m.Seq, m.Time
			if d := sameMessage(m, want); d != "" {
				t.Fatalf("round %d: seq %d: %s", round, m.Seq, d)
			}
		}
		missing := 0
		for seq := range appended {
			if !present[seq] {
				missing++
				t.Errorf("round %d: seq %d was appended, not acknowledged, and is gone", round, seq)
			}
		}
		if missing > 0 {
			t.FailNow()
		}
		if st := o.Stats(); st.NextSeq <= maxSeq {
			t.Fatalf("round %d: NextSeq %d after the crash, want above %d", round, st.NextSeq, maxSeq)
		}
		t.Logf("round %d: %d appended so far, %d unacknowledged, %d delivered after reopening", round, maxSeq, len(appended), len(got))
		mustClose(t, o)
	}
}

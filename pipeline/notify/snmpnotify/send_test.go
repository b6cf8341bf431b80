package snmpnotify

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/alert"
)

// Unit tests of Send against an in-process fake receiver (SNMPv2c); the
// integration tests use net-snmp's snmptrapd.

const oidAlertID = "1.3.6.1.4.1.32473.1.1.1.0"

// v2cTo returns Options for the fake receiver at addr. The timeout is
// generous so that a loaded machine does not turn an acknowledgement into
// a failure; tests that wait for a timeout shorten it.
func v2cTo(addr string, inform bool) Options {
	return Options{Address: addr, Version: "2c", Community: "public", Inform: inform, Timeout: 5 * time.Second}
}

// ids returns the facgwAlertId of each packet.
func ids(t testing.TB, pkts []*gosnmp.SnmpPacket) []string {
	t.Helper()
	out := make([]string, len(pkts))
	for i, p := range pkts {
		v, ok := varbind(p, oidAlertID)
		if !ok {
			t.Fatalf("packet %d has no facgwAlertId: %+v", i, p.Variables)
		}
		out[i] = string(v.Value.([]byte))
	}
	return out
}

func TestSendDeliversInOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inform bool
		pdu    gosnmp.PDUType
	}{
		{"traps", false, gosnmp.SNMPv2Trap},
		{"informs", true, gosnmp.InformRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, nil)
			s := mustNew(t, v2cTo(f.addr(), tc.inform))
			evs := []alert.Event{testEvent("ev-1", 1), testEvent("ev-2", 2), testEvent("ev-3", 3)}
			evs[1].Kind = alert.KindAcknowledged
			evs[2].Kind, evs[2].State = alert.KindResolved, alert.Resolved
			if retry, err := s.Send(sendCtx(t), evs); err != nil {
				t.Fatalf("Send: retryable %v, %v", retry, err)
			}
			pkts := f.waitPackets(t, 3)
			if got := strings.Join(ids(t, pkts), " "); got != "ev-1 ev-2 ev-3" {
				t.Errorf("got events %s, want ev-1 ev-2 ev-3", got)
			}
			wantTraps := []string{"1.3.6.1.4.1.32473.0.1", "1.3.6.1.4.1.32473.0.3", "1.3.6.1.4.1.32473.0.2"}
			for i, p := range pkts {
				if p.PDUType != tc.pdu || p.Version != gosnmp.Version2c || p.Community != "public" {
					t.Errorf("packet %d: got %v %v community %q, want %v v2c public", i, p.PDUType, p.Version, p.Community, tc.pdu)
				}
				if len(p.Variables) != 17 {
					t.Fatalf("packet %d: got %d varbinds, want 17", i, len(p.Variables))
				}
				up, trap := p.Variables[0], p.Variables[1]
				if up.Name != ".1.3.6.1.2.1.1.3.0" || up.Type != gosnmp.TimeTicks {
					t.Errorf("packet %d: first varbind %s %v, want sysUpTime.0 TimeTicks", i, up.Name, up.Type)
				}
				if trap.Name != ".1.3.6.1.6.3.1.1.4.1.0" || strings.TrimPrefix(trap.Value.(string), ".") != wantTraps[i] {
					t.Errorf("packet %d: second varbind %s = %v, want snmpTrapOID.0 = %s", i, trap.Name, trap.Value, wantTraps[i])
				}
			}
		})
	}
}

func TestSendUnacknowledgedInformIsRetryable(t *testing.T) {
	f := startFake(t, func(int) bool { return false })
	o := v2cTo(f.addr(), true)
	o.Timeout, o.Retries = 200*time.Millisecond, 1
	s := mustNew(t, o)
	retry, err := s.Send(sendCtx(t), []alert.Event{testEvent("ev-1", 1)})
	if err == nil || !retry {
		t.Fatalf("got retryable %v, %v; want a retryable error", retry, err)
	}
	for _, want := range []string{"snmpnotify: v2c inform to " + f.addr(), `event "ev-1" seq 1`, "no acknowledgement after 2 attempt(s) of 200ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if got := ids(t, f.waitPackets(t, 2)); len(got) != 2 {
		t.Errorf("got %d informs, want 2 (the first and one retry)", len(got))
	}
}

func TestSendDoesNotRepeatWhatARetriedBatchDelivered(t *testing.T) {
	var ackAll atomic.Bool
	// Acknowledge the first two informs, then nothing until told.
	f := startFake(t, func(n int) bool { return n < 2 || ackAll.Load() })
	o := v2cTo(f.addr(), true)
	o.Timeout = time.Second // long enough for ev-1 and ev-2 on a loaded machine
	s := mustNew(t, o)
	batch := []alert.Event{testEvent("ev-1", 1), testEvent("ev-2", 2), testEvent("ev-3", 3)}
	retry, err := s.Send(sendCtx(t), batch)
	if err == nil || !retry || !strings.Contains(err.Error(), `"ev-3"`) {
		t.Fatalf("first Send: got retryable %v, %v; want a retryable error naming ev-3", retry, err)
	}
	ackAll.Store(true)
	if retry, err := s.Send(sendCtx(t), batch); err != nil {
		t.Fatalf("retried Send: retryable %v, %v", retry, err)
	}
	if got, want := strings.Join(ids(t, f.waitPackets(t, 4)), " "), "ev-1 ev-2 ev-3 ev-3"; got != want {
		t.Errorf("got informs %s, want %s (ev-1 and ev-2 once)", got, want)
	}
	// Once a batch succeeded, a Send delivers whatever it is given: the
	// Path re-sends on purpose (after a restart, say).
	if _, err := s.Send(sendCtx(t), batch[:1]); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, f.waitPackets(t, 5)); got[4] != "ev-1" {
		t.Errorf("got %s after a successful batch, want ev-1 again", got[4])
	}
}

func TestSendErrorStatusIsRetryable(t *testing.T) {
	f := startFake(t, nil)
	f.mu.Lock()
	f.status = gosnmp.GenErr
	f.mu.Unlock()
	s := mustNew(t, v2cTo(f.addr(), true))
	retry, err := s.Send(sendCtx(t), []alert.Event{testEvent("ev-1", 1)})
	if err == nil || !retry || !strings.Contains(err.Error(), "inform not acknowledged") || !strings.Contains(err.Error(), "GenErr") {
		t.Errorf("got retryable %v, %v; want a retryable error saying the inform was not acknowledged (GenErr)", retry, err)
	}
}

func TestSendRefusesEventsTheMIBCannotSay(t *testing.T) {
	f := startFake(t, nil)
	s := mustNew(t, v2cTo(f.addr(), false))
	bad := testEvent("ev-bad", 2)
	bad.Severity = 0
	retry, err := s.Send(sendCtx(t), []alert.Event{testEvent("ev-1", 1), bad})
	if err == nil || retry || !strings.Contains(err.Error(), `event "ev-bad" seq 2: severity 0`) {
		t.Fatalf("got retryable %v, %v; want a non-retryable error naming ev-bad", retry, err)
	}
	// Nothing of the refused batch went out: the next packet is the next
	// batch's.
	if _, err := s.Send(sendCtx(t), []alert.Event{testEvent("ev-next", 3)}); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, f.waitPackets(t, 1)); got[0] != "ev-next" {
		t.Errorf("got %s first, want ev-next (the refused batch must send nothing)", got[0])
	}
}

func TestSendHonoursCancel(t *testing.T) {
	f := startFake(t, func(int) bool { return false })
	o := v2cTo(f.addr(), true)
	o.Timeout, o.Retries = time.Hour, 3 // only the cancel can end the wait
	s := mustNew(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		retry bool
		err   error
	}
	done := make(chan result, 1)
	go func() {
		retry, err := s.Send(ctx, []alert.Event{testEvent("ev-1", 1)})
		done <- result{retry, err}
	}()
	f.waitPackets(t, 1)
	cancel()
	select {
	case r := <-done:
		if r.err == nil || !r.retry || !errors.Is(r.err, context.Canceled) && !strings.Contains(r.err.Error(), "context canceled") {
			t.Errorf("got retryable %v, %v; want a retryable cancellation", r.retry, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Send did not return after its context was cancelled")
	}
}

func TestSendToClosedPort(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close() // nothing listens there now: the kernel answers port unreachable
	o := v2cTo(addr, true)
	o.Retries = 1
	s := mustNew(t, o)
	retry, err := s.Send(sendCtx(t), []alert.Event{testEvent("ev-1", 1)})
	if err == nil || !retry {
		t.Fatalf("got retryable %v, %v; want a retryable error", retry, err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "nothing listens on the receiver's port") {
		t.Errorf("got %v, want a refused connection said in words", err)
	}
}

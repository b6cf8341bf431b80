package mqtt

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/pipeline/outbox"
)

// sink records what a Fanout enqueues, in order.
type sink struct {
	mu   sync.Mutex
	msgs []outbox.Message
	fail error
}

func (s *sink) Enqueue(m outbox.Message) (outbox.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return m, s.fail
	}
	m.Seq = uint64(len(s.msgs) + 1)
	s.msgs = append(s.msgs, m)
	return m, nil
}

func newFanout(t *testing.T, sinks ...Enqueuer) *Fanout {
	t.Helper()
	f, err := NewFanout(testInfo, openSeq(t, t.TempDir()), sinks...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.seq.Close() })
	return f
}

func TestFanoutEncoding(t *testing.T) {
	s := &sink{}
	f := newFanout(t, s)
	ts := time.Date(2026, 11, 26, 12, 0, 5, 0, time.UTC)
	pts := []point.Point{
		{Device: "ups-a", Name: "battery.charge", Num: 97.5, Unit: point.Percent, Time: ts},
		{Device: "ups-a", Name: "ups.mode", Kind: point.Enum, Num: 2, Str: "online", Time: ts},
		{Device: "ups-a", Name: "battery.temperature", Num: math.NaN(), Unit: point.Celsius, Time: ts, Quality: point.Bad, Reason: "decode: f32 is NaN"},
	}
	if err := f.Publish("ups-a", pts); err != nil {
		t.Fatal(err)
	}
	if len(s.msgs) != 2 {
		t.Fatalf("got %d messages, want telemetry and state", len(s.msgs))
	}
	tel, st := s.msgs[0], s.msgs[1]
	wantTel := `{"gateway":"gw-1","device":"ups-a","seq":1,"time":"2026-11-26T12:00:05Z","points":[` +
		`{"name":"battery.charge","value":97.5,"unit":"%","time":"2026-11-26T12:00:05Z","quality":"good"},` +
		`{"name":"ups.mode","value":"online","code":2,"time":"2026-11-26T12:00:05Z","quality":"good"},` +
		`{"name":"battery.temperature","value":null,"unit":"degC","time":"2026-11-26T12:00:05Z","quality":"bad","reason":"decode: f32 is NaN"}]}`
	if string(tel.Payload) != wantTel {
		t.Errorf("telemetry payload\ngot  %s\nwant %s", tel.Payload, wantTel)
	}
	if tel.Topic != "facgw/pangyo-b3/gw-1/telemetry/ups-a" || tel.Retain || tel.Class != outbox.Telemetry || tel.Key != "ups-a" {
		t.Errorf("telemetry message %q retain %v class %v key %q", tel.Topic, tel.Retain, tel.Class, tel.Key)
	}
	if st.Topic != "facgw/pangyo-b3/gw-1/state/ups-a" || !st.Retain || st.Class != outbox.Telemetry || st.Key != "ups-a" {
		t.Errorf("state message %q retain %v class %v key %q", st.Topic, st.Retain, st.Class, st.Key)
	}
	var dec State
	if err := json.Unmarshal(st.Payload, &dec); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range dec.Points {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); dec.Seq != 1 || got != "battery.charge,battery.temperature,ups.mode" {
		t.Errorf("state seq %d points %s, want seq 1 and the points sorted by name", dec.Seq, got)
	}
	if pts[0].Device != "ups-a" {
		t.Error("Publish modified the caller's points")
	}
}

func TestFanoutStateMergesPollGroups(t *testing.T) {
	s := &sink{}
	f := newFanout(t, s)
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	safety := []point.Point{{Name: "bms.cell_temp_max", Num: 31, Unit: point.Celsius, Time: t0}}
	slow := []point.Point{{Name: "bms.soh", Num: 98, Unit: point.Percent, Time: t0}, {Name: "bms.cycles", Num: 200, Time: t0}}
	later := []point.Point{{Name: "bms.cell_temp_max", Num: 45, Unit: point.Celsius, Time: t0.Add(time.Second)}}
	for _, pts := range [][]point.Point{safety, slow, later} {
		if err := f.Publish("bms-rack1", pts); err != nil {
			t.Fatal(err)
		}
	}
	var st State
	if err := json.Unmarshal(s.msgs[len(s.msgs)-1].Payload, &st); err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, p := range st.Points {
		got[p.Name] = p.Value
	}
	if st.Seq != 3 || len(got) != 3 || got["bms.cell_temp_max"] != 45.0 || got["bms.soh"] != 98.0 || got["bms.cycles"] != 200.0 {
		t.Errorf("state seq %d points %v, want seq 3 with all three points and the newest temperature", st.Seq, got)
	}
}

// TestFanoutConcurrentOrder runs poll loops of several devices and poll
// groups at once: each sink must receive every device's telemetry in seq
// order, each followed by that device's state, and all sinks the same
// seqs.
func TestFanoutConcurrentOrder(t *testing.T) {
	a, b := &sink{}, &sink{}
	f := newFanout(t, a, b)
	var wg sync.WaitGroup
	const per = 300
	for _, dev := range testDevices {
		for range 2 { // two poll groups per device
			wg.Go(func() {
				for i := range per {
					if err := f.Publish(dev, testPoints(dev, i)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for _, s := range []*sink{a, b} {
		lastTel := map[string]uint64{}
		for _, m := range s.msgs {
			kind := "telemetry"
			if m.Retain {
				kind = "state"
			}
			var h struct {
				Device string
				Seq    uint64
			}
			if err := json.Unmarshal(m.Payload, &h); err != nil {
				t.Fatal(err)
			}
			if kind == "telemetry" {
				if h.Seq != lastTel[h.Device]+1 {
					t.Fatalf("%s telemetry seq %d after %d", h.Device, h.Seq, lastTel[h.Device])
				}
				lastTel[h.Device] = h.Seq
			} else if h.Seq != lastTel[h.Device] {
				t.Fatalf("%s state seq %d does not follow its telemetry %d", h.Device, h.Seq, lastTel[h.Device])
			}
		}
		for _, dev := range testDevices {
			if lastTel[dev] != 2*per {
				t.Errorf("%s: last seq %d, want %d", dev, lastTel[dev], 2*per)
			}
		}
	}
}

func TestFanoutRestartAnnounced(t *testing.T) {
	dir := t.TempDir()
	seq := openSeq(t, dir)
	for range 5 {
		seq.Next("ups-a")
	}
	seq.crash()
	seq = openSeq(t, dir)
	defer seq.Close()
	s := &sink{}
	f, err := NewFanout(testInfo, seq, s)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := f.Publish("ups-a", testPoints("ups-a", i)); err != nil {
			t.Fatal(err)
		}
	}
	var first, second Telemetry
	json.Unmarshal(s.msgs[0].Payload, &first)
	json.Unmarshal(s.msgs[2].Payload, &second)
	if !first.Restart || first.PrevSeq == nil || *first.PrevSeq > 5 || first.Seq <= 5 {
		t.Errorf("first message after crash: %s, want restart, prev_seq <= 5, seq > 5", s.msgs[0].Payload)
	}
	if second.Restart || second.PrevSeq != nil || second.Seq != first.Seq+1 {
		t.Errorf("second message after crash: %s, want seq %d and no restart", s.msgs[2].Payload, first.Seq+1)
	}
}

func TestFanoutErrors(t *testing.T) {
	good, bad := &sink{}, &sink{fail: errors.New("disk full")}
	f := newFanout(t, bad, good)
	err := f.Publish("ups-a", testPoints("ups-a", 0))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("got %v, want the failing outbox's error", err)
	}
	if len(good.msgs) != 2 {
		t.Errorf("the healthy outbox got %d messages, want 2: one broker's trouble must not cost the other", len(good.msgs))
	}
	if err := f.Publish("bad/device", testPoints("x", 0)); err == nil {
		t.Error("device id with '/' accepted")
	}
	if err := f.Publish("ups-a", nil); err != nil || len(good.msgs) != 2 {
		t.Errorf("empty batch: %v, %d messages; want nothing published", err, len(good.msgs))
	}
	if st := f.Stats(); st.Published != 1 || st.Failed != 1 {
		t.Errorf("stats %+v, want 1 published, 1 failed", st)
	}
}

func TestTopicsAndValidate(t *testing.T) {
	tp := testInfo.Topics()
	for got, want := range map[string]string{
		tp.Status():            "facgw/pangyo-b3/gw-1/status",
		tp.Telemetry("crac-1"): "facgw/pangyo-b3/gw-1/telemetry/crac-1",
		tp.State("crac-1"):     "facgw/pangyo-b3/gw-1/state/crac-1",
		tp.Alerts():            "facgw/pangyo-b3/gw-1/alerts",
		tp.Loadshed():          "facgw/pangyo-b3/gw-1/loadshed",
		StatusInfo{Prefix: "dc/hall-2", Gateway: "gw-9"}.Topics().Status(): "dc/hall-2/gw-9/status",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	for _, bad := range []StatusInfo{
		{Site: "", Gateway: "gw"},
		{Site: "s", Gateway: "gw/1"},
		{Site: "s", Gateway: "gw+"},
		{Prefix: "a//b", Gateway: "gw"},
		{Prefix: "$SYS", Gateway: "gw"},
		{Prefix: "a/#", Gateway: "gw"},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
	var st Status
	if err := json.Unmarshal(testInfo.statusPayload(StateOffline), &st); err != nil || st.State != "offline" || st.Gateway != "gw-1" || st.Site != "pangyo-b3" || !st.Started.Equal(testInfo.Started) {
		t.Errorf("status payload decodes to %+v, %v", st, err)
	}
}

// TestFanoutStateEvery: with a state period, polls between state messages
// publish telemetry only, except that a poll with a bad point publishes
// the state at once.
func TestFanoutStateEvery(t *testing.T) {
	s := &sink{}
	f := newFanout(t, s)
	f.SetStateEvery(time.Hour)
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	good := []point.Point{{Name: "ups.output.load", Num: 40, Unit: point.Percent, Time: t0}}
	bad := []point.Point{{Name: "ups.output.load", Time: t0, Quality: point.Bad, Reason: "timeout"}}
	for _, pts := range [][]point.Point{good, good, good, bad, good} {
		if err := f.Publish("ups-a", pts); err != nil {
			t.Fatal(err)
		}
	}
	var kinds []string
	for _, m := range s.msgs {
		kind := "telemetry"
		if m.Retain {
			kind = "state"
		}
		kinds = append(kinds, kind)
	}
	want := "telemetry state telemetry telemetry telemetry state telemetry"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

package alertmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/testpeer"
	"github.com/facgw/facgw/pipeline/notify"
)

// gettable is what GET /api/v2/alerts returns per alert (the fields we
// check).
type gettable struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// activeAlerts reads the alerts Alertmanager at base holds, by episode.
func activeAlerts(t *testing.T, base string) map[string]gettable {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatalf("GET alerts: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET alerts: %s", resp.Status)
	}
	var as []gettable
	if err := json.NewDecoder(resp.Body).Decode(&as); err != nil {
		t.Fatalf("GET alerts: decode: %v", err)
	}
	out := map[string]gettable{}
	for _, a := range as {
		out[a.Labels["episode"]] = a
	}
	return out
}

// waitAlerts polls Alertmanager at base until cond holds (20 s at most).
func waitAlerts(t *testing.T, base, what string, cond func(map[string]gettable) bool) map[string]gettable {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		as := activeAlerts(t, base)
		if cond(as) {
			return as
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager %s: timed out waiting for %s; it holds %+v", base, what, as)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// episode returns a firing event of its own episode, fired just now.
func episode(device string, seq uint64) alert.Event {
	now := time.Now().UTC().Truncate(time.Second)
	ev := testEvent()
	ev.Device, ev.Seq = device, seq
	ev.ActiveAt, ev.FiredAt, ev.At = now.Add(-30*time.Second), now, now
	ev.ID = alert.EpisodeID(ev.Rule, device, ev.ActiveAt)
	return ev
}

func startPath(t *testing.T, s *Sender, active func() []alert.Event) *notify.Path {
	t.Helper()
	p, err := notify.NewPath(notify.PathOptions{
		Name: "alertmanager", Kind: "alertmanager", Dir: t.TempDir(), Sender: s,
		Log:         slog.New(slog.NewTextHandler(t.Output(), nil)),
		Active:      active,
		BaseBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		ProbeEvery: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		p.Close()
	})
	return p
}

func TestAlertmanagerIntegrationFiringAndResolved(t *testing.T) {
	base, _ := testpeer.StartAlertmanager(t)
	now := time.Now().UTC().Truncate(time.Second)
	s := newSender(t, Options{URLs: []string{base}, GeneratorURL: "http://gw-1.example/alerts", Now: func() time.Time { return now }})
	ev := episode("ups-1", 1)
	if _, err := s.Send(t.Context(), []alert.Event{ev}); err != nil {
		t.Fatal(err)
	}
	got, ok := activeAlerts(t, base)[ev.ID]
	if !ok {
		t.Fatalf("alert %s not in GET /api/v2/alerts", ev.ID)
	}
	if want := Labels(&ev); !reflect.DeepEqual(got.Labels, want) {
		t.Errorf("labels: got %v, want %v", got.Labels, want)
	}
	if got.Annotations["summary"] != ev.Summary || got.Annotations["values"] != Values(ev.Values) {
		t.Errorf("annotations: got %v, want summary and values", got.Annotations)
	}
	if !got.StartsAt.Equal(ev.FiredAt) || !got.EndsAt.Equal(now.Add(4*DefaultResendEvery)) || got.Status.State != "active" {
		t.Errorf("alert: got startsAt %s endsAt %s state %s, want %s, %s, active", got.StartsAt, got.EndsAt, got.Status.State, ev.FiredAt, now.Add(4*DefaultResendEvery))
	}

	res := ev
	res.Seq, res.Kind, res.State, res.ResolvedAt = 2, alert.KindResolved, alert.Resolved, time.Now().UTC()
	if _, err := s.Send(t.Context(), []alert.Event{res}); err != nil {
		t.Fatal(err)
	}
	waitAlerts(t, base, "the resolved alert to leave the active list", func(as map[string]gettable) bool {
		_, ok := as[ev.ID]
		return !ok
	})
}

// TestAlertmanagerIntegrationOutage stops Alertmanager: events wait in the
// path's outbox and its health says so; started again on the same port,
// Alertmanager gets them all.
func TestAlertmanagerIntegrationOutage(t *testing.T) {
	base, am := testpeer.StartAlertmanager(t)
	s := newSender(t, Options{URLs: []string{base}, Timeout: 2 * time.Second})
	p := startPath(t, s, nil)
	first := episode("ups-1", 1)
	if err := p.Enqueue(first); err != nil {
		t.Fatal(err)
	}
	waitAlerts(t, base, "the first alert", func(as map[string]gettable) bool { _, ok := as[first.ID]; return ok })

	am.Kill()
	var during []alert.Event
	for i := range 3 {
		ev := episode("ups-"+strconv.Itoa(i+2), uint64(i+2))
		during = append(during, ev)
		if err := p.Enqueue(ev); err != nil {
			t.Fatal(err)
		}
	}
	waitHealth(t, p, "the path down with its events queued", func(h notify.Health) bool { return !h.Up && h.Depth == 3 })
	// The first failure may be an EOF on a kept-alive connection rather
	// than a refused connect: check there is one, not its wording.
	if h := p.Health(); h.LastError == "" || h.DownSince.IsZero() || !strings.Contains(h.Detail[base], base) {
		t.Errorf("health while Alertmanager is down: got %+v, want an error, down-since and the url's failure in detail", h)
	}

	am.Restart()
	as := waitAlerts(t, base, "the queued alerts after the restart", func(as map[string]gettable) bool {
		for _, ev := range during {
			if _, ok := as[ev.ID]; !ok {
				return false
			}
		}
		return true
	})
	if got := as[during[2].ID].Labels["device"]; got != "ups-4" {
		t.Errorf("device label: got %q, want ups-4", got)
	}
	waitHealth(t, p, "the path up and empty", func(h notify.Health) bool { return h.Up && h.Depth == 0 })
}

// TestAlertmanagerIntegrationClusterMemberDown posts to a two-member
// cluster with one member killed: the other takes the alert.
func TestAlertmanagerIntegrationClusterMemberDown(t *testing.T) {
	cp1, cp2 := testpeer.FreePort(t), testpeer.FreePort(t)
	base1, am1 := testpeer.StartAlertmanager(t, testpeer.AlertmanagerCluster(cp1))
	base2, _ := testpeer.StartAlertmanager(t, testpeer.AlertmanagerCluster(cp2, fmt.Sprintf("127.0.0.1:%d", cp1)))
	s := newSender(t, Options{URLs: []string{base1, base2}, Timeout: 2 * time.Second})
	p := startPath(t, s, nil)

	am1.Kill()
	ev := episode("ups-1", 1)
	if err := p.Enqueue(ev); err != nil {
		t.Fatal(err)
	}
	waitAlerts(t, base2, "the alert at the surviving member", func(as map[string]gettable) bool { _, ok := as[ev.ID]; return ok })
	waitHealth(t, p, "the path up with the killed member's error in detail", func(h notify.Health) bool {
		return h.Up && h.Depth == 0 && h.Detail[base2] == "ok" && strings.Contains(h.Detail[base1], base1)
	})
}

// TestAlertmanagerIntegrationResendKeepsAlertAlive: with a short re-send
// interval a firing alert's endsAt is near, and only the re-sends keep it
// in Alertmanager past its first endsAt.
func TestAlertmanagerIntegrationResendKeepsAlertAlive(t *testing.T) {
	base, _ := testpeer.StartAlertmanager(t)
	s := newSender(t, Options{URLs: []string{base}, ResendEvery: 500 * time.Millisecond})
	ev := episode("ups-1", 1)
	p := startPath(t, s, func() []alert.Event { return []alert.Event{ev} })
	if err := p.Enqueue(ev); err != nil {
		t.Fatal(err)
	}
	as := waitAlerts(t, base, "the alert", func(as map[string]gettable) bool { _, ok := as[ev.ID]; return ok })
	firstEnd := as[ev.ID].EndsAt
	for time.Now().Before(firstEnd.Add(time.Second)) {
		time.Sleep(100 * time.Millisecond)
	}
	got, ok := activeAlerts(t, base)[ev.ID]
	if !ok {
		t.Fatalf("alert gone after its first endsAt %s: the re-sends did not keep it", firstEnd)
	}
	if !got.EndsAt.After(firstEnd) || got.Status.State != "active" {
		t.Errorf("alert after its first endsAt: got endsAt %s state %s, want later than %s and active", got.EndsAt, got.Status.State, firstEnd)
	}
}

func waitHealth(t *testing.T, p *notify.Path, what string, cond func(notify.Health) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond(p.Health()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; health %+v", what, p.Health())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

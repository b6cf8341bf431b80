package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testSnapshot() Snapshot {
	return Snapshot{
		Destinations: []Destination{
			{Kind: "mqtt", Name: "primary", Connected: true, OutboxDepth: 0, Sent: 120, Acked: 118, Latency: 15 * time.Millisecond},
			{Kind: "mqtt", Name: "backup", Connected: false, OutboxDepth: 42, OutboxBytes: 8192,
				OutboxOldestAge: 90 * time.Second, Dropped: 3, Sent: 7, Acked: 7, Latency: 250 * time.Millisecond},
			{Kind: "influx", Name: "history", Connected: true, OutboxDepth: 2, OutboxBytes: 512,
				OutboxOldestAge: 1500 * time.Millisecond, Sent: 1000, Acked: 998, Latency: 4 * time.Millisecond},
		},
		Schedules: []Schedule{
			{Device: "ups-1", Group: "default", Cycles: 17, Overruns: 0, LastDuration: 120 * time.Millisecond},
			{Device: "bms-rack1", Group: "safety", Cycles: 400, Overruns: 2, LastDuration: 80 * time.Millisecond, BadPoints: 3},
		},
	}
}

// TestCollector checks every facgw_* series and value against the
// exposition text.
func TestCollector(t *testing.T) {
	c := NewCollector(testSnapshot)
	want := `
# HELP facgw_destination_up Whether the delivery path is connected (1) or not (0).
# TYPE facgw_destination_up gauge
facgw_destination_up{kind="influx",name="history"} 1
facgw_destination_up{kind="mqtt",name="backup"} 0
facgw_destination_up{kind="mqtt",name="primary"} 1
# HELP facgw_outbox_depth Messages waiting in the delivery path's outbox.
# TYPE facgw_outbox_depth gauge
facgw_outbox_depth{kind="influx",name="history"} 2
facgw_outbox_depth{kind="mqtt",name="backup"} 42
facgw_outbox_depth{kind="mqtt",name="primary"} 0
# HELP facgw_outbox_bytes Bytes held by the delivery path's outbox.
# TYPE facgw_outbox_bytes gauge
facgw_outbox_bytes{kind="influx",name="history"} 512
facgw_outbox_bytes{kind="mqtt",name="backup"} 8192
facgw_outbox_bytes{kind="mqtt",name="primary"} 0
# HELP facgw_outbox_oldest_age_seconds Age of the oldest message waiting in the outbox, 0 when empty.
# TYPE facgw_outbox_oldest_age_seconds gauge
facgw_outbox_oldest_age_seconds{kind="influx",name="history"} 1.5
facgw_outbox_oldest_age_seconds{kind="mqtt",name="backup"} 90
facgw_outbox_oldest_age_seconds{kind="mqtt",name="primary"} 0
# HELP facgw_outbox_dropped_total Messages the delivery path discarded (outbox over its bound, or refused by the peer).
# TYPE facgw_outbox_dropped_total counter
facgw_outbox_dropped_total{kind="influx",name="history"} 0
facgw_outbox_dropped_total{kind="mqtt",name="backup"} 3
facgw_outbox_dropped_total{kind="mqtt",name="primary"} 0
# HELP facgw_destination_sent_total Messages handed to the peer.
# TYPE facgw_destination_sent_total counter
facgw_destination_sent_total{kind="influx",name="history"} 1000
facgw_destination_sent_total{kind="mqtt",name="backup"} 7
facgw_destination_sent_total{kind="mqtt",name="primary"} 120
# HELP facgw_destination_acked_total Messages the peer confirmed.
# TYPE facgw_destination_acked_total counter
facgw_destination_acked_total{kind="influx",name="history"} 998
facgw_destination_acked_total{kind="mqtt",name="backup"} 7
facgw_destination_acked_total{kind="mqtt",name="primary"} 118
# HELP facgw_publish_latency_seconds Duration of the last delivery to the peer.
# TYPE facgw_publish_latency_seconds gauge
facgw_publish_latency_seconds{kind="influx",name="history"} 0.004
facgw_publish_latency_seconds{kind="mqtt",name="backup"} 0.25
facgw_publish_latency_seconds{kind="mqtt",name="primary"} 0.015
# HELP facgw_poll_cycles_total Polls done by the poll loop.
# TYPE facgw_poll_cycles_total counter
facgw_poll_cycles_total{device="bms-rack1",group="safety"} 400
facgw_poll_cycles_total{device="ups-1",group="default"} 17
# HELP facgw_poll_overruns_total Poll ticks skipped because a poll outlasted its interval.
# TYPE facgw_poll_overruns_total counter
facgw_poll_overruns_total{device="bms-rack1",group="safety"} 2
facgw_poll_overruns_total{device="ups-1",group="default"} 0
# HELP facgw_poll_duration_seconds Duration of the poll loop's last poll.
# TYPE facgw_poll_duration_seconds gauge
facgw_poll_duration_seconds{device="bms-rack1",group="safety"} 0.08
facgw_poll_duration_seconds{device="ups-1",group="default"} 0.12
# HELP facgw_points_bad Points of the last poll that were not good (bad or stale).
# TYPE facgw_points_bad gauge
facgw_points_bad{device="bms-rack1",group="safety"} 3
facgw_points_bad{device="ups-1",group="default"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Errorf("exposition differs:\n%v", err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestHandler scrapes /metrics over HTTP and checks the facgw_* series are
// there with their values, next to the Go and process collectors'.
func TestHandler(t *testing.T) {
	m := New(testSnapshot, nil)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	body := scrape(t, srv.URL)
	for _, want := range []string{
		`facgw_destination_up{kind="mqtt",name="backup"} 0`,
		`facgw_destination_up{kind="influx",name="history"} 1`,
		`facgw_outbox_depth{kind="mqtt",name="backup"} 42`,
		`facgw_outbox_oldest_age_seconds{kind="mqtt",name="backup"} 90`,
		`facgw_outbox_dropped_total{kind="mqtt",name="backup"} 3`,
		`facgw_publish_latency_seconds{kind="influx",name="history"} 0.004`,
		`facgw_poll_cycles_total{device="bms-rack1",group="safety"} 400`,
		`facgw_poll_overruns_total{device="bms-rack1",group="safety"} 2`,
		`facgw_poll_duration_seconds{device="ups-1",group="default"} 0.12`,
		`facgw_points_bad{device="bms-rack1",group="safety"} 3`,
		"go_goroutines ",
		"go_memstats_alloc_bytes ",
		"process_start_time_seconds ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read scrape: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200\n%s", url, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q, want text/plain...", ct)
	}
	return string(b)
}

// TestCollectorLive checks each scrape reads the state afresh: the
// callback's owner changes numbers between scrapes, the metrics follow.
func TestCollectorLive(t *testing.T) {
	var mu sync.Mutex
	cycles := uint64(1)
	m := New(func() Snapshot {
		mu.Lock()
		defer mu.Unlock()
		return Snapshot{Schedules: []Schedule{{Device: "crac-1", Group: "default", Cycles: cycles}}}
	}, nil)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	for _, want := range []uint64{1, 5} {
		mu.Lock()
		cycles = want
		mu.Unlock()
		line := `facgw_poll_cycles_total{device="crac-1",group="default"} ` + strconv.FormatUint(want, 10)
		if body := scrape(t, srv.URL); !strings.Contains(body, line+"\n") {
			t.Errorf("scrape lacks %q", line)
		}
	}
}

// TestCollectorDuplicates checks a snapshot that lists a path or schedule
// twice still scrapes (the registry fails a scrape with duplicate series):
// the first one is exported.
func TestCollectorDuplicates(t *testing.T) {
	c := NewCollector(func() Snapshot {
		return Snapshot{
			Destinations: []Destination{{Kind: "mqtt", Name: "a", OutboxDepth: 1}, {Kind: "mqtt", Name: "a", OutboxDepth: 2}},
			Schedules:    []Schedule{{Device: "d", Group: "g", BadPoints: 4}, {Device: "d", Group: "g", BadPoints: 5}},
		}
	})
	want := `
# HELP facgw_outbox_depth Messages waiting in the delivery path's outbox.
# TYPE facgw_outbox_depth gauge
facgw_outbox_depth{kind="mqtt",name="a"} 1
# HELP facgw_points_bad Points of the last poll that were not good (bad or stale).
# TYPE facgw_points_bad gauge
facgw_points_bad{device="d",group="g"} 4
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), OutboxDepth, PointsBad); err != nil {
		t.Errorf("exposition differs:\n%v", err)
	}
}

// TestCollectorEmpty checks a gateway with nothing configured yet exports
// no facgw_* series and the scrape still works.
func TestCollectorEmpty(t *testing.T) {
	c := NewCollector(func() Snapshot { return Snapshot{} })
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("got %d series, want 0", n)
	}
	m := New(func() Snapshot { return Snapshot{} }, nil)
	if _, err := m.Registry().Gather(); err != nil {
		t.Errorf("gather: %v", err)
	}
}

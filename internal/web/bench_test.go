package web

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/pipeline"
)

// bigSource is a site of n devices with 60 points each, every point with
// history, as the overview benchmark's facility.
func bigSource(n int) *overviewSource {
	src := &overviewSource{fakeSource: fakeSource{state: pipeline.NewState(3)}}
	src.state.SetHistory(600)
	classes := []string{"ups", "pdu", "battery", "cooling", "switch", "fire"}
	now := time.Now()
	for i := range n {
		id := "dev-" + strconv.Itoa(i)
		src.devices = append(src.devices, DeviceInfo{ID: id, Profile: "bench", Class: classes[i%len(classes)], Labels: map[string]string{"room": "hall-" + strconv.Itoa(i%4)}})
		pts := make([]point.Point, 60)
		for j := range pts {
			pts[j] = point.Point{Device: id, Name: "p." + strconv.Itoa(j), Num: float64(j) * 1.5, Unit: point.Celsius, Time: now}
		}
		src.state.Update(pts, time.Second)
	}
	return src
}

// BenchmarkDevicesOverview250 is GET /api/v1/devices on a site of 250
// devices x 60 points: the dashboard's snapshot, fetched on load and after
// every reconnect.
func BenchmarkDevicesOverview250(b *testing.B) {
	h := Handler(bigSource(250), Options{History: 600})
	b.ReportAllocs()
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/devices", nil))
		if rec.Code != 200 {
			b.Fatalf("got %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/response")
}

// BenchmarkStateOverview250 is the older GET /api/v1/state on the same
// site, for comparison.
func BenchmarkStateOverview250(b *testing.B) {
	h := Handler(bigSource(250), Options{History: 600})
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/state", nil))
		if rec.Code != 200 {
			b.Fatalf("got %d", rec.Code)
		}
	}
}

// BenchmarkStreamFanout50 sends one "points" event with 1000 changed
// points (one 250 ms tick of 250 devices x 60 points polled every 4 s) to
// 50 clients connected over HTTP, and waits until every client has read
// it: the cost of one tick of the stream.
func BenchmarkStreamFanout50(b *testing.B) {
	const clients = 50
	src := bigSource(250)
	h := newStreamHub(src, Options{StreamTick: time.Hour, Log: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(http.HandlerFunc(h.serveStream))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got sync.WaitGroup
	seen := make([]chan struct{}, clients)
	for i := range clients {
		seen[i] = make(chan struct{}, 1)
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		go func() {
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 4<<20)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data: ") {
					seen[i] <- struct{}{}
				}
			}
		}()
	}
	for {
		if n, _ := h.stats(); n == clients {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var pts []point.Point
	for _, d := range src.devices[:17] {
		pts = append(pts, src.state.Points(d.ID)...)
	}
	pts = pts[:1000]
	b.ReportAllocs()
	b.ResetTimer()
	var size int
	for b.Loop() {
		msg := sseEvent("points", pointsEvent(src, pts, time.Now()))
		size = len(msg)
		got.Add(clients)
		h.broadcast(msg)
		for i := range clients {
			<-seen[i]
			got.Done()
		}
		got.Wait()
	}
	b.StopTimer()
	if _, dropped := h.stats(); dropped > 0 {
		b.Fatalf("got %d clients dropped, want none", dropped)
	}
	b.ReportMetric(float64(size), "bytes/event")
}

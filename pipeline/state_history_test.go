package pipeline

import (
	"strconv"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
)

// benchBatch is one poll's worth of points of one device: 60 numbers, as
// the whole-process benchmark's synthetic profile has.
func benchBatch(dev string) []point.Point {
	pts := make([]point.Point, 60)
	for i := range pts {
		pts[i] = point.Point{Device: dev, Name: "p." + strconv.Itoa(i), Num: float64(i), Unit: point.Celsius, Time: time.Now()}
	}
	return pts
}

// BenchmarkStateUpdate is the poll path's cost in State: one device's batch
// of 60 points, with 200 devices known (as in the whole-process load).
func BenchmarkStateUpdate(b *testing.B) {
	s := NewState(3)
	batches := make([][]point.Point, 200)
	for i := range batches {
		batches[i] = benchBatch("dev-" + strconv.Itoa(i))
		s.Update(batches[i], time.Second)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		pts := batches[i%len(batches)]
		for j := range pts {
			pts[j].Num++
		}
		s.Update(pts, time.Second)
	}
}

// BenchmarkStateUpdateHistory is BenchmarkStateUpdate with the dashboard's
// default history of 600 samples per point, rings full.
func BenchmarkStateUpdateHistory(b *testing.B) {
	s := NewState(3)
	s.SetHistory(600)
	batches := make([][]point.Point, 200)
	for i := range batches {
		batches[i] = benchBatch("dev-" + strconv.Itoa(i))
		for range 600 {
			s.Update(batches[i], time.Second)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		pts := batches[i%len(batches)]
		for j := range pts {
			pts[j].Num++
		}
		s.Update(pts, time.Second)
	}
}

func TestStateHistory(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	tests := []struct {
		name    string
		size    int
		updates int
		kind    point.Kind
		// want are the values kept, oldest first.
		want []float64
	}{
		{"off by default", 0, 3, point.Number, nil},
		{"fewer than the size", 5, 3, point.Number, []float64{0, 1, 2}},
		{"exactly the size", 3, 3, point.Number, []float64{0, 1, 2}},
		{"wrapped keeps the newest", 4, 11, point.Number, []float64{7, 8, 9, 10}},
		{"wrapped twice", 3, 7, point.Number, []float64{4, 5, 6}},
		{"bools as 0 and 1", 4, 3, point.Bool, []float64{0, 1, 2}},
		{"strings are not recorded", 4, 3, point.String, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState(3)
			if tt.size > 0 {
				s.SetHistory(tt.size)
			}
			for i := range tt.updates {
				s.Update([]point.Point{{Device: "d", Name: "p", Kind: tt.kind, Num: float64(i), Time: at(i)}}, time.Second)
			}
			got, ok := s.History("d", "p")
			if !ok {
				t.Fatal("got unknown point, want known")
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d samples %v, want %d %v", len(got), got, len(tt.want), tt.want)
			}
			first := tt.updates - len(tt.want)
			for i, s := range got {
				if s.Num != tt.want[i] || !s.Time.Equal(at(first+i)) || s.Quality != point.Good {
					t.Errorf("sample %d: got %v at %v (%v), want %v at %v (good)", i, s.Num, s.Time, s.Quality, tt.want[i], at(first+i))
				}
			}
		})
	}
	if _, ok := NewState(3).History("d", "nope"); ok {
		t.Error("unknown point: got known, want unknown")
	}
}

func TestStateHistoryResize(t *testing.T) {
	s := NewState(3)
	s.SetHistory(10)
	for i := range 8 {
		s.Update([]point.Point{{Device: "d", Name: "p", Num: float64(i), Time: time.Unix(int64(i), 0)}}, time.Second)
	}
	s.SetHistory(3)
	got, _ := s.History("d", "p")
	if len(got) != 3 || got[0].Num != 5 || got[2].Num != 7 {
		t.Fatalf("after shrinking to 3: got %v, want 5, 6, 7", got)
	}
	s.Update([]point.Point{{Device: "d", Name: "p", Num: 8, Time: time.Unix(8, 0)}}, time.Second)
	got, _ = s.History("d", "p")
	if len(got) != 3 || got[0].Num != 6 || got[2].Num != 8 {
		t.Errorf("after one more update: got %v, want 6, 7, 8", got)
	}
	s.SetHistory(0)
	if got, _ := s.History("d", "p"); len(got) != 0 {
		t.Errorf("after SetHistory(0): got %d samples, want none", len(got))
	}
}

// TestStateHistoryStale: a point that goes stale gets a stale sample, so a
// chart shows a gap and not a flat line through the silence.
func TestStateHistoryStale(t *testing.T) {
	s := NewState(2)
	s.SetHistory(10)
	s.Update([]point.Point{{Device: "d", Name: "p", Num: 42, Time: time.Now()}}, time.Millisecond)
	s.Sweep(time.Now().Add(time.Second))
	got, _ := s.History("d", "p")
	if len(got) != 2 || got[0].Quality != point.Good || got[1].Quality != point.Stale {
		t.Fatalf("got %v, want a good sample then a stale one", got)
	}
}

func TestStateChanged(t *testing.T) {
	s := NewState(2)
	g0 := s.Gen()
	if pts, g := s.Changed(g0); len(pts) != 0 || g != g0 {
		t.Fatalf("empty state: got %v at gen %d, want nothing at %d", pts, g, g0)
	}
	now := time.Now()
	s.Update([]point.Point{{Device: "b", Name: "x", Num: 1, Time: now}, {Device: "a", Name: "y", Num: 2, Time: now}}, time.Millisecond)
	pts, g1 := s.Changed(g0)
	if names := pointNames(pts); names != "a/y b/x" {
		t.Errorf("after the first update: got %q, want %q", names, "a/y b/x")
	}
	s.Update([]point.Point{{Device: "b", Name: "x", Num: 3, Time: now}}, time.Hour)
	pts, g2 := s.Changed(g1)
	if names := pointNames(pts); names != "b/x" || pts[0].Num != 3 {
		t.Errorf("after updating b/x: got %q %v, want b/x = 3", names, pts)
	}
	if pts, _ := s.Changed(g2); len(pts) != 0 {
		t.Errorf("nothing new: got %q, want nothing", pointNames(pts))
	}
	// a/y polls every millisecond; a second later it is stale, b/x (hourly)
	// is not.
	s.Sweep(now.Add(time.Second))
	pts, _ = s.Changed(g2)
	if names := pointNames(pts); names != "a/y" || pts[0].Quality != point.Stale {
		t.Errorf("after the sweep: got %q %v, want a/y stale", names, pts)
	}
}

func pointNames(pts []point.Point) string {
	var out string
	for i, p := range pts {
		if i > 0 {
			out += " "
		}
		out += p.Device + "/" + p.Name
	}
	return out
}

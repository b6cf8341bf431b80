package mqtt

import (
	"fmt"
	"testing"
	"time"

	"github.com/facgw/facgw/internal/point"
)

// benchPoints is one poll group of a BMS rack: 10 points. Alternating two
// groups makes the state message carry 20.
func benchPoints(group, i int) []point.Point {
	ts := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	pts := make([]point.Point, 10)
	for k := range pts {
		pts[k] = point.Point{Device: "bms-rack1", Name: fmt.Sprintf("bms.group%d.cell%02d_temp", group, k), Num: 25 + float64(k)/10, Unit: point.Celsius, Time: ts}
	}
	return pts
}

func benchFanout(b *testing.B, pubs ...*Publisher) *Fanout {
	b.Helper()
	seq, err := OpenSequencer(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { seq.Close() })
	var sinks []Enqueuer
	for _, p := range pubs {
		sinks = append(sinks, p)
	}
	f, err := NewFanout(testInfo, seq, sinks...)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkFanout is the polling path's cost: encode one telemetry and one
// state message and append both to two outboxes (no broker).
func BenchmarkFanout(b *testing.B) {
	var pubs []*Publisher
	for _, name := range []string{"a", "b"} {
		p := newPublisher(b, brokerConfig(name, "tcp://127.0.0.1:1", b.TempDir()), nil)
		b.Cleanup(func() { p.Close() })
		pubs = append(pubs, p)
	}
	f := benchFanout(b, pubs...)
	batches := [2][]point.Point{benchPoints(0, 0), benchPoints(1, 0)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := f.Publish("bms-rack1", batches[i%2]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "polls/s")
}

// BenchmarkPublishIntegration streams polls through a Fanout to two
// mosquitto brokers at QoS 1 and reports, per broker, the messages
// (telemetry and state) acknowledged per second, end to end.
func BenchmarkPublishIntegration(b *testing.B) {
	var pubs []*Publisher
	for _, name := range []string{"a", "b"} {
		m := startMosquitto(b, "")
		p := newPublisher(b, brokerConfig(name, "tcp://"+m.Addr, b.TempDir()), nil)
		runPublisher(b, p)
		waitFor(b, "connect", func() bool { return p.Stats().Connected })
		pubs = append(pubs, p)
	}
	f := benchFanout(b, pubs...)
	batches := [2][]point.Point{benchPoints(0, 0), benchPoints(1, 0)}
	b.ResetTimer()
	for i := range b.N {
		if err := f.Publish("bms-rack1", batches[i%2]); err != nil {
			b.Fatal(err)
		}
	}
	for _, p := range pubs {
		for p.ob.Stats().Depth > 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "msgs/s/broker")
	st := pubs[0].Stats()
	b.ReportMetric(float64(st.Latency.P50.Microseconds()), "p50-ack-µs")
}

// BenchmarkDrainIntegration fills each of two outboxes with 50000 telemetry
// messages while its publisher is not running (as during a broker outage),
// then measures how fast both drain into their mosquitto brokers at once.
func BenchmarkDrainIntegration(b *testing.B) {
	const n = 50_000
	brokers := []*mosquitto{startMosquitto(b, ""), startMosquitto(b, "")}
	var elapsed time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		var pubs []*Publisher
		for i, m := range brokers {
			p := newPublisher(b, brokerConfig(fmt.Sprint("drain-", i), "tcp://"+m.Addr, b.TempDir()), nil)
			for k := 1; k <= n; k++ {
				if _, err := p.Enqueue(outboxMessage(testDevices[k%3], k)); err != nil {
					b.Fatal(err)
				}
			}
			pubs = append(pubs, p)
		}
		b.StartTimer()
		start := time.Now()
		done := make(chan error, len(pubs))
		for _, p := range pubs {
			go func() { done <- p.Run(b.Context()) }()
		}
		for _, p := range pubs {
			for p.ob.Stats().Depth > 0 {
				time.Sleep(100 * time.Microsecond)
			}
		}
		elapsed += time.Since(start)
		b.StopTimer()
		for _, p := range pubs {
			p.Close()
			<-done
		}
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "msgs/s/broker")
}

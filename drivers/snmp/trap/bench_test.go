package trap

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// BenchmarkDecodeDispatch measures one trap from datagram to handler:
// decode, checks, event, queue and the hand-over to the dispatch goroutine.
func BenchmarkDecodeDispatch(b *testing.B) {
	minutes := gosnmp.SnmpPDU{Name: oidMinutesLeft, Type: gosnmp.Integer, Value: 17}
	for _, bc := range []struct {
		name string
		msg  []byte
	}{
		{"v1", encodeV1(b, "public", "1.3.6.1.2.1.33.2", 6, 1, []gosnmp.SnmpPDU{minutes})},
		{"v2c", encodeV2c(b, "public", gosnmp.SNMPv2Trap, notification(oidOnBattery, minutes))},
		{"v3-authPriv-SHA256-AES256", encodeV3Trap(b, userSHA256, "\x80\x00\x00\x00\x05sender", notification(oidOnBattery, minutes))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			got := make(chan struct{}, 1)
			l, err := New(testConfig(), func(Event) { got <- struct{}{} })
			if err != nil {
				b.Fatal(err)
			}
			queue := make(chan Event, 1)
			l.wg.Add(1)
			go l.dispatch(queue)
			defer func() { close(queue); l.wg.Wait() }()
			from := loopback
			b.ReportAllocs()
			for b.Loop() {
				l.handle(bc.msg, from, time.Now(), queue)
				<-got
			}
			if s := l.Stats(); s.Events != s.Received {
				b.Fatalf("refused traps: %+v", s)
			}
		})
	}
}

// BenchmarkBurst1000 sends bursts of 1000 SNMPv2c traps over loopback as
// fast as one socket can, and reports the median and 99th percentile of
// the time from sending a trap to its event reaching the handler, and how
// many traps the kernel dropped (a full socket buffer). Nothing asserts
// on these figures.
func BenchmarkBurst1000(b *testing.B) {
	const burst = 1000
	var sent [burst]atomic.Int64 // send time of trap i, ns since start
	start := time.Now()
	lat := make(chan time.Duration, burst)
	addr := startListenerFunc(b, testConfig(), func(ev Event) {
		seq := ev.Varbinds[0].Value.Uint
		lat <- time.Since(start) - time.Duration(sent[seq].Load())
	})
	msgs := make([][]byte, burst)
	for i := range msgs {
		msgs[i] = encodeV2c(b, "public", gosnmp.SNMPv2Trap, notification(oidOnBattery,
			gosnmp.SnmpPDU{Name: "1.3.6.1.4.1.99.1.0", Type: gosnmp.Counter32, Value: uint32(i)}))
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var all []time.Duration
	lost := 0
	for b.Loop() {
		for i, m := range msgs {
			sent[i].Store(int64(time.Since(start)))
			if _, err := conn.Write(m); err != nil {
				b.Fatal(err)
			}
		}
		n := 0
	collect:
		for n < burst {
			select {
			case d := <-lat:
				all = append(all, d)
				n++
			case <-time.After(2 * time.Second): // the rest were dropped
				break collect
			}
		}
		lost += burst - n
	}
	if len(all) == 0 {
		b.Fatal("no trap arrived")
	}
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lost)/float64(b.N), "lost/burst")
}

// startListenerFunc starts a listener calling h and returns its address.
func startListenerFunc(b *testing.B, cfg Config, h Handler) string {
	b.Helper()
	l, err := New(cfg, h)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := l.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); l.Close() })
	return l.Addr().String()
}

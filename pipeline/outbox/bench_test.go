package outbox

import (
	"strings"
	"testing"
)

// benchMsg is a typical telemetry message: a device's points as 200 bytes
// of JSON under a per-device topic.
func benchMsg(i int) Message {
	return Message{
		Class:   Telemetry,
		Key:     "bms-rack1",
		Topic:   "facgw/pangyo-b3/gw-1/bms-rack1/points",
		Payload: []byte(strings.Repeat("x", 200)),
	}
}

// BenchmarkAppend measures Append with group commit (SyncEvery 100ms) and
// reports the bytes on disk per message.
func BenchmarkAppend(b *testing.B) {
	o := open(b, Options{Dir: b.TempDir(), MaxBytes: 1 << 40, SyncEvery: DefaultSyncEvery})
	m := benchMsg(0)
	b.SetBytes(int64(len(m.Payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := o.Append(m); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	st := o.Stats()
	b.ReportMetric(float64(st.Bytes)/float64(st.Appended), "disk-B/msg")
}

// BenchmarkDrain measures a sender's loop: Peek 500, Ack each; ns/op is
// per message. The outbox is filled with the timer stopped, up to 200k
// messages at a time (55 MB), so a long run does not fill the disk.
func BenchmarkDrain(b *testing.B) {
	o := open(b, Options{Dir: b.TempDir(), MaxBytes: 1 << 40, SyncEvery: DefaultSyncEvery})
	m := benchMsg(0)
	b.SetBytes(int64(len(m.Payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		ms, err := o.Peek(min(500, b.N-n))
		if err != nil {
			b.Fatal(err)
		}
		if len(ms) == 0 {
			b.StopTimer()
			for range min(200_000, b.N-n) {
				if _, err := o.Append(m); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			continue
		}
		for _, m := range ms {
			if err := o.Ack(m.Seq); err != nil {
				b.Fatal(err)
			}
		}
		n += len(ms)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// BenchmarkAppendWhileDraining runs Append with a sender draining at the
// same time, as in production.
func BenchmarkAppendWhileDraining(b *testing.B) {
	o := open(b, Options{Dir: b.TempDir(), MaxBytes: 1 << 40, SyncEvery: DefaultSyncEvery})
	m := benchMsg(0)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			ms, err := o.Peek(500)
			if err != nil {
				return
			}
			for _, m := range ms {
				o.Ack(m.Seq)
			}
			if len(ms) == 0 {
				select {
				case <-done:
					return
				case <-o.Ready():
				}
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := o.Append(m); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(done)
	<-stopped
}

// BenchmarkAppendOverBound is an outage: the destination is away, the
// outbox is full and every Append drops the oldest telemetry (whole
// segments, deleted in the background), with an alert every 100 messages
// that compaction keeps.
func BenchmarkAppendOverBound(b *testing.B) {
	o := open(b, Options{Dir: b.TempDir(), MaxBytes: 16 << 20, SyncEvery: DefaultSyncEvery})
	m := benchMsg(0)
	for o.Stats().Dropped == 0 {
		if _, err := o.Append(m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Class = Telemetry
		if i%100 == 0 {
			m.Class = Alert
		}
		if _, err := o.Append(m); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	o.Sync()
	st := o.Stats()
	b.ReportMetric(float64(st.Bytes)/(1<<20), "disk-MiB")
}

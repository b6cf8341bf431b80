// Package metrics exposes facgw's self-telemetry to Prometheus: per delivery
// path (each MQTT broker, the history sink) whether it is connected, how
// much waits in its outbox and for how long, what it dropped, sent and had
// acknowledged; per poll schedule its cycles, overruns, last duration and
// bad points; and the Go runtime and process metrics.
//
// The package holds no state of its own and touches no global registry. The
// gateway hands [New] a callback that returns a [Snapshot] of its current
// state; every scrape calls it once and turns it into metrics (the pattern
// of prometheus/snmp_exporter: the numbers are computed at scrape time from
// the owners of the state, never copied into Prometheus objects that could
// drift from them).
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Destination is the delivery state of one path out of the gateway.
type Destination struct {
	// Kind is the type of path ("mqtt", "influx"); Name tells paths of one
	// kind apart (the broker's name, "history").
	Kind, Name string
	// Connected is true while the path can deliver.
	Connected bool
	// OutboxDepth and OutboxBytes are the messages waiting and their size
	// on disk; OutboxOldestAge is how long the oldest one has waited (zero
	// when the outbox is empty).
	OutboxDepth     int
	OutboxBytes     int64
	OutboxOldestAge time.Duration
	// Dropped counts messages the outbox discarded (over its bound or
	// refused by the peer); Sent counts messages handed to the peer and
	// Acked those it confirmed. All three only grow.
	Dropped, Sent, Acked uint64
	// Latency is the duration of the last delivery.
	Latency time.Duration
}

// Schedule is the state of one poll loop (a device and one of its poll
// groups).
type Schedule struct {
	Device, Group string
	// Cycles counts polls done; Overruns counts ticks skipped because a
	// poll outlasted its interval. Both only grow.
	Cycles, Overruns uint64
	// LastDuration is how long the last poll took.
	LastDuration time.Duration
	// BadPoints is how many points of the last poll were not good.
	BadPoints int
}

// Snapshot is the gateway's state at one instant, as the metrics see it.
type Snapshot struct {
	Destinations []Destination
	Schedules    []Schedule
}

// Metric names, for dashboards and tests.
const (
	DestinationUp    = "facgw_destination_up"
	OutboxDepth      = "facgw_outbox_depth"
	OutboxBytes      = "facgw_outbox_bytes"
	OutboxOldestAge  = "facgw_outbox_oldest_age_seconds"
	OutboxDropped    = "facgw_outbox_dropped_total"
	DestinationSent  = "facgw_destination_sent_total"
	DestinationAcked = "facgw_destination_acked_total"
	PublishLatency   = "facgw_publish_latency_seconds"
	PollCycles       = "facgw_poll_cycles_total"
	PollOverruns     = "facgw_poll_overruns_total"
	PollDuration     = "facgw_poll_duration_seconds"
	PointsBad        = "facgw_points_bad"
)

// Collector is a prometheus.Collector that turns the Snapshot returned by
// its callback into facgw_* metrics at each collection. It is safe for
// concurrent use (concurrent scrapes call the callback concurrently).
type Collector struct {
	snapshot func() Snapshot

	up, depth, bytes, age, dropped, sent, acked, latency *prometheus.Desc
	cycles, overruns, duration, bad                      *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector that calls snapshot once per collection.
// snapshot must be safe for concurrent use and fast (it runs inside the
// scrape); it must not return nil slices it later mutates. A destination or
// schedule listed twice (same labels) is exported once, the first time.
func NewCollector(snapshot func() Snapshot) *Collector {
	dst := []string{"kind", "name"}
	sch := []string{"device", "group"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &Collector{
		snapshot: snapshot,
		up:       d(DestinationUp, "Whether the delivery path is connected (1) or not (0).", dst),
		depth:    d(OutboxDepth, "Messages waiting in the delivery path's outbox.", dst),
		bytes:    d(OutboxBytes, "Bytes held by the delivery path's outbox.", dst),
		age:      d(OutboxOldestAge, "Age of the oldest message waiting in the outbox, 0 when empty.", dst),
		dropped:  d(OutboxDropped, "Messages the delivery path discarded (outbox over its bound, or refused by the peer).", dst),
		sent:     d(DestinationSent, "Messages handed to the peer.", dst),
		acked:    d(DestinationAcked, "Messages the peer confirmed.", dst),
		latency:  d(PublishLatency, "Duration of the last delivery to the peer.", dst),
		cycles:   d(PollCycles, "Polls done by the poll loop.", sch),
		overruns: d(PollOverruns, "Poll ticks skipped because a poll outlasted its interval.", sch),
		duration: d(PollDuration, "Duration of the poll loop's last poll.", sch),
		bad:      d(PointsBad, "Points of the last poll that were not good (bad or stale).", sch),
	}
}

// Describe sends the descriptors of every metric the Collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.depth, c.bytes, c.age, c.dropped, c.sent, c.acked, c.latency,
		c.cycles, c.overruns, c.duration, c.bad} {
		ch <- d
	}
}

// Collect calls the snapshot callback and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	seen := make(map[[2]string]bool, max(len(s.Destinations), len(s.Schedules)))
	for _, d := range s.Destinations {
		k := [2]string{d.Kind, d.Name}
		if seen[k] {
			continue // the registry would fail the whole scrape on it
		}
		seen[k] = true
		up := 0.0
		if d.Connected {
			up = 1
		}
		gauge(c.up, up, d.Kind, d.Name)
		gauge(c.depth, float64(d.OutboxDepth), d.Kind, d.Name)
		gauge(c.bytes, float64(d.OutboxBytes), d.Kind, d.Name)
		gauge(c.age, d.OutboxOldestAge.Seconds(), d.Kind, d.Name)
		counter(c.dropped, d.Dropped, d.Kind, d.Name)
		counter(c.sent, d.Sent, d.Kind, d.Name)
		counter(c.acked, d.Acked, d.Kind, d.Name)
		gauge(c.latency, d.Latency.Seconds(), d.Kind, d.Name)
	}
	clear(seen)
	for _, p := range s.Schedules {
		k := [2]string{p.Device, p.Group}
		if seen[k] {
			continue
		}
		seen[k] = true
		counter(c.cycles, p.Cycles, p.Device, p.Group)
		counter(c.overruns, p.Overruns, p.Device, p.Group)
		gauge(c.duration, p.LastDuration.Seconds(), p.Device, p.Group)
		gauge(c.bad, float64(p.BadPoints), p.Device, p.Group)
	}
}

// Metrics is the gateway's metrics registry: the facgw_* Collector plus
// the Go runtime (go_*) and process (process_*) collectors, on a registry
// of its own. Its methods are safe for concurrent use.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
}

// New builds the registry around snapshot (see [NewCollector]). log
// receives errors met while serving a scrape; it may be nil (slog.Default).
func New(snapshot func() Snapshot, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.Default()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(snapshot),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return &Metrics{
		reg: reg,
		// Built once: HandlerOpts.Registry registers the handler's own
		// error counter, which may happen only once per registry.
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorLog:      errorLog{log.With("component", "metrics")},
			ErrorHandling: promhttp.ContinueOnError, // a partial scrape beats none
			Registry:      reg,
		}),
	}
}

// Registry returns the registry, to register more collectors or to gather
// in tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler returns the HTTP handler that serves the metrics in the
// Prometheus text (or negotiated) format, for /metrics.
func (m *Metrics) Handler() http.Handler { return m.handler }

// errorLog adapts slog to promhttp.Logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Error("serve metrics: " + fmt.Sprint(v...)) }

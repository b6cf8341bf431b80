// Package influx is facgw's history sink: it writes points to InfluxDB (or
// anything that takes InfluxDB v2 line-protocol writes, such as
// VictoriaMetrics) without losing any when the database is away.
//
// The path of a poll's points:
//
//	Write ──encode──▶ outbox (on disk) ──Run: batch, POST, ack──▶ database
//
// [Sink.Write] encodes the points as line protocol ([Encoder]) and appends
// them to a [outbox.Outbox] as one message; it never touches the network.
// [Sink.Run] drains the outbox: it joins messages into writes of up to
// BatchSize lines, sends each with the client's blocking write API, and acks
// the messages only once the database has accepted them. Connection errors,
// timeouts, 5xx and 429 answers, and also 401, 403 and 404 (a wrong token or
// bucket is fixed by configuration, not by losing data) are retried with
// exponential backoff until they succeed, so an outage only grows the
// outbox (up to its bound; beyond it the outbox drops the oldest telemetry
// and counts it). A write the database refuses as bad data (400, 413, 422)
// is split in halves until the refused messages are found; each is dropped,
// counted as rejected and its first line logged, so bad data cannot block
// the queue.
//
// Delivery is at least once: a write whose answer was lost (a crash, a
// timeout after the database accepted it) is sent again. InfluxDB
// overwrites the same series and timestamp with the same values;
// VictoriaMetrics keeps the duplicate sample unless deduplication is on.
package influx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/facgw/facgw/internal/backoff"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/pipeline/outbox"
)

// Defaults for the zero values of [Config].
const (
	DefaultBatchSize     = 5000
	DefaultFlushInterval = time.Second
	DefaultTimeout       = 10 * time.Second
	DefaultBackoff       = 500 * time.Millisecond
	DefaultMaxBackoff    = 30 * time.Second
)

// pingEvery is how long an idle sink waits before checking the database is
// still there, so Stats().Connected does not go stale when nothing is
// written.
const pingEvery = 30 * time.Second

// Config configures a [Sink]. Zero durations and sizes take the Default*
// values.
type Config struct {
	// URL is the database's base URL, e.g. http://10.0.0.5:8086; the sink
	// writes to URL/api/v2/write.
	URL string
	// Org and Bucket name where InfluxDB stores the points (VictoriaMetrics
	// ignores them). Token is the API token, sent as "Token <token>".
	Org, Bucket, Token string
	// Site and Gateway tag every line.
	Site, Gateway string
	// BatchSize is the most lines one HTTP write carries. A single
	// outbox message (one poll) is never split, so a write may exceed it
	// when one message alone does.
	BatchSize int
	// FlushInterval is how long a batch smaller than BatchSize may wait
	// for more lines, counted from its oldest message.
	FlushInterval time.Duration
	// Timeout bounds one HTTP write (or ping).
	Timeout time.Duration
	// Backoff is the first pause after a failed write; it doubles, with
	// jitter, up to MaxBackoff, and starts again after a success.
	Backoff, MaxBackoff time.Duration
	// Outbox is where points wait for the database. Its Logger defaults to
	// the sink's. Mind that a zero SyncEvery fsyncs every Write; most
	// gateways want outbox.DefaultSyncEvery.
	Outbox outbox.Options
}

// LogValue keeps the token out of logs.
func (c Config) LogValue() slog.Value {
	tok := ""
	if c.Token != "" {
		tok = "<secret>"
	}
	u := c.URL
	if pu, err := url.Parse(c.URL); err == nil {
		u = pu.Redacted() // a password in the URL's user info
	}
	return slog.GroupValue(
		slog.String("url", u), slog.String("org", c.Org), slog.String("bucket", c.Bucket),
		slog.String("token", tok), slog.String("site", c.Site), slog.String("gateway", c.Gateway),
		slog.Int("batch_size", c.BatchSize), slog.Duration("flush_interval", c.FlushInterval),
		slog.String("outbox", c.Outbox.Dir))
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = c.Backoff
	}
}

func (c *Config) validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return errors.New("influx: url is required")
	case err != nil:
		return fmt.Errorf("influx: url %q: %w", c.URL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("influx: url %q: scheme must be http or https", c.URL)
	case u.Host == "":
		return fmt.Errorf("influx: url %q: no host", c.URL)
	}
	return nil
}

// Stats is a snapshot of a [Sink]'s delivery state.
type Stats struct {
	// Connected is true when the last request (write or ping) got an
	// HTTP answer from the database, whatever its status.
	Connected bool
	// Healthy is true when the last write was accepted (or, before any
	// write, the last ping answered): points are flowing.
	Healthy bool
	// LastError is the last failed write or ping, empty when the last
	// request succeeded; LastErrorTime is when it happened.
	LastError     string
	LastErrorTime time.Time
	// LastWrite is when the database last accepted a write.
	LastWrite time.Time
	// Points and Lines count what the database accepted; Writes counts
	// accepted HTTP writes and Failures failed ones (each retry counts).
	Points, Lines, Writes, Failures uint64
	// Rejected counts outbox messages (polls) dropped because the database
	// refused them as bad data; RejectedPoints the points they held.
	Rejected, RejectedPoints uint64
	// Latency is the duration of the last accepted write; MaxLatency the
	// longest since the sink started.
	Latency, MaxLatency time.Duration
	// Outbox is the outbox's own account (depth, bytes, age, drops).
	Outbox outbox.Stats
}

// Sink writes points to the database through an on-disk outbox.
//
// Write and Stats are safe for concurrent use, also while Run is running.
// Run owns the only goroutine that talks to the database; call it once.
// Close after Run has returned.
type Sink struct {
	log *slog.Logger
	ob  *outbox.Outbox

	// cfg, client, wapi and tr are Run's: only Run reads them, and it
	// takes a Reconfigure's replacement (next) between writes.
	cfg    Config
	client influxdb2.Client
	wapi   api.WriteAPIBlocking
	tr     *http.Transport
	next   atomic.Pointer[target]
	wake   chan struct{} // a replacement is waiting; cap 1

	encMu sync.Mutex // guards enc and buf
	enc   *Encoder
	buf   []byte

	mu          sync.Mutex // guards stats and writeFailed
	stats       Stats
	writeFailed bool // the last write attempt failed
}

// New validates cfg, opens the outbox and prepares the client. It does no
// network I/O: an unreachable database is a runtime condition (see Stats),
// not a startup error. log may be nil (slog.Default).
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if log == nil {
		log = slog.Default()
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	obOpts := cfg.Outbox
	if obOpts.Logger == nil {
		obOpts.Logger = log
	}
	ob, err := outbox.Open(obOpts)
	if err != nil {
		return nil, fmt.Errorf("influx: %w", err)
	}
	t := newTarget(cfg)
	return &Sink{
		cfg:    cfg,
		log:    log.With("component", "influx"),
		ob:     ob,
		client: t.client,
		wapi:   t.wapi,
		tr:     t.tr,
		wake:   make(chan struct{}, 1),
		enc:    NewEncoder(cfg.Site, cfg.Gateway),
	}, nil
}

// target is a database client with the settings it was made for.
type target struct {
	cfg    Config
	client influxdb2.Client
	wapi   api.WriteAPIBlocking
	tr     *http.Transport
}

func newTarget(cfg Config) *target {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	opts := influxdb2.DefaultOptions().
		SetApplicationName("facgw").
		SetPrecision(time.Nanosecond).
		SetHTTPClient(&http.Client{Timeout: cfg.Timeout, Transport: tr})
	client := influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, opts)
	return &target{cfg: cfg, client: client, wapi: client.WriteAPIBlocking(cfg.Org, cfg.Bucket), tr: tr}
}

// CheckConfig checks cfg the way New and Reconfigure do, opening nothing.
func CheckConfig(cfg Config) error {
	cfg.setDefaults()
	return cfg.validate()
}

// Reconfigure replaces the database settings (URL, org, bucket, token,
// batch size, flush interval, timeout, backoff) while the sink runs: the
// write in progress finishes with the old ones, the next (and a retry
// that was waiting) goes with the new ones. The outbox, the site and
// gateway tags stay: what waits in the outbox goes to the database as now
// configured. An invalid cfg changes nothing.
func (s *Sink) Reconfigure(cfg Config) error {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	if old := s.next.Swap(newTarget(cfg)); old != nil {
		old.tr.CloseIdleConnections()
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.log.Info("database settings changed", "config", cfg)
	return nil
}

// takeNext switches to a Reconfigure's settings, if any are waiting; on
// Run's goroutine only. It reports whether it switched.
func (s *Sink) takeNext() bool {
	t := s.next.Swap(nil)
	if t == nil {
		return false
	}
	s.tr.CloseIdleConnections()
	s.client.Close()
	site, gw, ob := s.cfg.Site, s.cfg.Gateway, s.cfg.Outbox
	s.cfg, s.client, s.wapi, s.tr = t.cfg, t.client, t.wapi, t.tr
	s.cfg.Site, s.cfg.Gateway, s.cfg.Outbox = site, gw, ob
	return true
}

// Write encodes one poll's points as line protocol under measurement class
// (the devices' profile class: "ups", "battery", ...) and appends them to
// the outbox as one message. It never waits for the network; it returns an
// error only if the points cannot be encoded (empty class) or the outbox
// refuses them. Points of any device and time may be mixed; they become one
// line per device and poll time. Safe for concurrent use.
func (s *Sink) Write(class string, pts []point.Point) error {
	now := time.Now()
	s.encMu.Lock()
	defer s.encMu.Unlock()
	var err error
	s.buf, err = s.enc.Append(s.buf[:0], class, pts, now)
	if err != nil {
		return fmt.Errorf("influx: write %q: %w", class, err)
	}
	if len(s.buf) == 0 {
		return nil
	}
	key := ""
	if len(pts) > 0 {
		key = pts[0].Device
	}
	// Append does not keep the payload, so buf can be reused.
	m := outbox.Message{Class: outbox.Telemetry, Key: key, Topic: class, Payload: s.buf}
	if _, err := s.ob.Append(m); err != nil {
		return fmt.Errorf("influx: write %q: %w", class, err)
	}
	return nil
}

// Stats returns a snapshot of the delivery state. Safe for concurrent use.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	st := s.stats
	s.mu.Unlock()
	st.Outbox = s.ob.Stats()
	return st
}

// Close closes the outbox and the client's connections. Call it after Run
// has returned; Write fails afterwards.
func (s *Sink) Close() error {
	s.takeNext()
	s.client.Close()
	s.tr.CloseIdleConnections()
	if err := s.ob.Close(); err != nil {
		return fmt.Errorf("influx: %w", err)
	}
	return nil
}

// Run drains the outbox into the database until ctx ends, then returns
// ctx's error. It owns the calling goroutine; run it once per Sink. What is
// not yet written when it returns stays in the outbox for the next start.
func (s *Sink) Run(ctx context.Context) error {
	s.ping(ctx)
	failures := 0
	idle := time.NewTimer(pingEvery)
	defer idle.Stop()
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if s.takeNext() {
			failures = 0
			s.ping(ctx)
		}
		msgs, err := s.ob.Peek(s.cfg.BatchSize)
		if errors.Is(err, outbox.ErrClosed) {
			return fmt.Errorf("influx: run: %w", err)
		}
		if err != nil {
			s.log.Error("read outbox", "err", err)
			s.mu.Lock()
			s.stats.LastError, s.stats.LastErrorTime = "influx: read outbox: "+err.Error(), time.Now()
			s.mu.Unlock()
			failures++
			if !s.sleep(ctx, s.backoff(failures, 0)) {
				return ctx.Err()
			}
			continue
		}
		if len(msgs) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.ob.Ready():
			case <-s.wake:
			case <-idle.C:
				s.ping(ctx)
				idle.Reset(pingEvery)
			}
			continue
		}
		batch, lines := s.take(msgs)
		if len(batch) == len(msgs) && lines < s.cfg.BatchSize {
			// A partial batch waits until its oldest message is
			// FlushInterval old, or the outbox may hold a full one; then
			// look again, for everything that came meanwhile.
			if wait := s.cfg.FlushInterval - time.Since(batch[0].Time); wait > 0 {
				s.waitFlush(ctx, wait)
				continue
			}
		}
		retryAfter, err := s.send(ctx, batch)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			d := s.backoff(failures, retryAfter)
			// One warning per outage, not one per retry.
			level := slog.LevelDebug
			if failures == 1 {
				level = slog.LevelWarn
			}
			s.log.Log(ctx, level, "write failed; retrying", "err", err, "messages", len(batch), "lines", lines,
				"failures", failures, "retry_in", d, "outbox_depth", s.ob.Stats().Depth)
			if !s.sleep(ctx, d) {
				return ctx.Err()
			}
			continue
		}
		if failures > 0 {
			s.log.Info("writing again", "failed_attempts", failures)
		}
		failures = 0
		idle.Reset(pingEvery)
	}
}

// take returns the leading messages of msgs that fit in one write of
// BatchSize lines (at least one) and their line count.
func (s *Sink) take(msgs []outbox.Message) ([]outbox.Message, int) {
	lines := 0
	for i, m := range msgs {
		n := bytes.Count(m.Payload, []byte{'\n'})
		if i > 0 && lines+n > s.cfg.BatchSize {
			return msgs[:i], lines
		}
		lines += n
	}
	return msgs, lines
}

// waitFlush waits up to d, less if ctx ends or the outbox may have grown
// to a full batch.
func (s *Sink) waitFlush(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-s.ob.Ready():
			// Depth counts messages, each at least one line: a cheap
			// lower bound that avoids peeking on every append.
			if s.ob.Stats().Depth >= s.cfg.BatchSize {
				return
			}
		}
	}
}

// send writes batch as one request and acks it on success. A refusal as bad
// data is handled here (the batch is split in halves until the refused
// messages are found, which are dropped), so the error it returns is always
// worth retrying, after at least retryAfter.
func (s *Sink) send(ctx context.Context, batch []outbox.Message) (retryAfter time.Duration, err error) {
	err = s.post(ctx, batch)
	if err == nil {
		s.ack(batch)
		return 0, nil
	}
	if ctx.Err() != nil {
		return 0, err
	}
	var herr *influxhttp.Error
	if !errors.As(err, &herr) || !badData(herr.StatusCode) {
		if herr != nil {
			retryAfter = time.Duration(herr.RetryAfter) * time.Second
		}
		return retryAfter, err
	}
	if len(batch) == 1 {
		s.reject(batch[0], err)
		return 0, nil
	}
	// Find the message(s) at fault rather than lose the others with them.
	// On a retryable error the rest is retried later, in batches again.
	mid := len(batch) / 2
	if retryAfter, err := s.send(ctx, batch[:mid]); err != nil {
		return retryAfter, err
	}
	return s.send(ctx, batch[mid:])
}

// badData reports whether a status says the request itself is wrong, so
// sending it again cannot help. Other 4xx (401, 403, 404: wrong token or
// bucket; 408, 429) are configuration or load problems that can be fixed
// without losing the data, so they are retried.
func badData(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge || status == http.StatusUnprocessableEntity
}

// post sends the messages' lines as one write and accounts for it.
func (s *Sink) post(ctx context.Context, batch []outbox.Message) error {
	var sb strings.Builder
	size := 0
	for _, m := range batch {
		size += len(m.Payload)
	}
	sb.Grow(size)
	for _, m := range batch {
		sb.Write(m.Payload)
	}
	body := strings.TrimSuffix(sb.String(), "\n")

	wctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	err := s.wapi.WriteRecord(wctx, body)
	lat := time.Since(start)
	if err != nil {
		if ctx.Err() == nil {
			var herr *influxhttp.Error
			answered := errors.As(err, &herr) && herr.StatusCode != 0
			s.fail(fmt.Errorf("influx: write %d messages: %w", len(batch), err), answered)
		}
		return err
	}
	lines, fields := countFields(body)
	s.mu.Lock()
	st := &s.stats
	st.Connected, st.Healthy, st.LastError = true, true, ""
	s.writeFailed = false
	st.LastWrite = time.Now()
	st.Points += uint64(fields)
	st.Lines += uint64(lines)
	st.Writes++
	st.Latency = lat
	st.MaxLatency = max(st.MaxLatency, lat)
	s.mu.Unlock()
	return nil
}

// ack acks the written messages. A failed ack leaves them in the outbox, to
// be written again: harmless, the same lines overwrite the same values.
func (s *Sink) ack(batch []outbox.Message) {
	for _, m := range batch {
		if err := s.ob.Ack(m.Seq); err != nil {
			s.log.Error("ack failed; the message will be written again", "seq", m.Seq, "err", err)
			return
		}
	}
}

// reject drops a message the database refused as bad data.
func (s *Sink) reject(m outbox.Message, err error) {
	first, _, _ := bytes.Cut(m.Payload, []byte{'\n'})
	_, fields := countFields(m.Payload)
	s.log.Error("database refused a batch as bad data; dropping it",
		"err", err, "seq", m.Seq, "class", m.Topic, "first_line", string(first))
	s.mu.Lock()
	s.stats.Rejected++
	s.stats.RejectedPoints += uint64(fields)
	s.mu.Unlock()
	s.ack([]outbox.Message{m})
}

// fail records a failed write. answered says the database sent an HTTP
// status (it is reachable, but unhappy).
func (s *Sink) fail(err error, answered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeFailed = true
	s.stats.Connected, s.stats.Healthy = answered, false
	s.stats.LastError, s.stats.LastErrorTime = err.Error(), time.Now()
	s.stats.Failures++
}

// ping checks the database answers, to keep Connected current when idle.
func (s *Sink) ping(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	_, err := s.client.Ping(pctx)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.mu.Lock()
		s.stats.Connected, s.stats.Healthy = false, false
		s.stats.LastError, s.stats.LastErrorTime = "influx: ping: "+err.Error(), time.Now()
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	s.stats.Connected = true
	if !s.writeFailed {
		// Reachable, and no failed write says otherwise.
		s.stats.Healthy, s.stats.LastError = true, ""
	}
	s.mu.Unlock()
}

// backoff returns the pause after the n-th consecutive failure: Backoff
// doubled per failure up to MaxBackoff, with jitter in its upper half so
// gateways that lost the database together do not return together; at
// least floor (a server's Retry-After), capped at MaxBackoff.
func (s *Sink) backoff(n int, floor time.Duration) time.Duration {
	d := backoff.Delay(s.cfg.Backoff, s.cfg.MaxBackoff, n)
	d = d/2 + rand.N(d/2+1)
	return min(max(d, floor), s.cfg.MaxBackoff)
}

// sleep waits d, less if Reconfigure brings new settings to try at once;
// it returns false if ctx ended.
func (s *Sink) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-s.wake:
		return true
	}
}

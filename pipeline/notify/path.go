package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/backoff"
	"github.com/facgw/facgw/pipeline/outbox"
)

// Defaults of PathOptions.
const (
	DefaultBaseBackoff = time.Second
	DefaultMaxBackoff  = time.Minute
	DefaultBatch       = 32
	DefaultSlowRetry   = 5 * time.Minute
	DefaultProbeEvery  = 15 * time.Second
	DefaultSendTimeout = time.Minute
)

// ErrPathClosed is returned by Enqueue and Run after Close.
var ErrPathClosed = errors.New("notify: path closed")

// PathOptions configures a Path.
type PathOptions struct {
	// Name identifies the path (unique among targets); Kind says what it
	// is ("alertmanager", "webhook", "snmp").
	Name, Kind string
	// Dir is the path's own outbox directory; never shared.
	Dir string
	// Sender delivers to the destination; it may also implement Prober,
	// Resender and HealthDetailer.
	Sender Sender
	// Log receives delivery failures and recoveries (default: discard).
	Log *slog.Logger
	// Active returns the active alerts for a Resender (usually
	// Ledger.Active); without it nothing is re-sent.
	Active func() []alert.Event
	// BaseBackoff is the pause after the first failed attempt; it doubles
	// (with jitter) up to MaxBackoff.
	BaseBackoff, MaxBackoff time.Duration
	// Batch is the most events handed to one Send (default DefaultBatch).
	Batch int
	// SlowRetry is the pause after a refusal the Sender calls not
	// retryable (default DefaultSlowRetry): someone must fix the
	// destination or the config, and the alert waits for them.
	SlowRetry time.Duration
	// ProbeEvery is how often an idle path probes a Prober (default
	// DefaultProbeEvery).
	ProbeEvery time.Duration
	// SendTimeout bounds one Send, Resend or Probe, on top of the
	// Sender's own timeouts (default DefaultSendTimeout).
	SendTimeout time.Duration
}

// Path is a Target made of a Sender and its own durable outbox, in its own
// directory, delivered by its own goroutine (Run).
//
// Enqueue appends the event to the outbox (class Alert, never dropped,
// fsynced before Enqueue returns). Run takes up to Batch events from the
// head of the outbox, hands them to the Sender and acknowledges them only
// when the Sender succeeded; on failure it backs off (internal/backoff)
// and tries the same events again, so events are delivered in order, at
// least once. A refusal that is not retryable is logged as an error and
// tried again after SlowRetry: an alert is never dropped.
//
// When the outbox is empty, Run re-sends the active alerts to a Resender
// every ResendEvery and probes a Prober every ProbeEvery. Health.Up is the
// outcome of the last of these attempts.
//
// Enqueue, Health and Close are safe for concurrent use; Run is the path's
// goroutine (the caller starts it), and Close stops it.
type Path struct {
	opts PathOptions
	log  *slog.Logger
	ob   *outbox.Outbox

	closeCtx    context.Context
	closeCancel context.CancelFunc
	closedFlag  atomic.Bool

	runMu   sync.Mutex
	closed  bool
	runDone chan struct{}

	mu        sync.Mutex // guards the health fields below
	up        bool
	lastErr   string
	lastOK    time.Time
	downSince time.Time
	delivered uint64
	failures  uint64
}

var _ Target = (*Path)(nil)

// NewPath checks opts and opens the path's outbox; it does no network I/O.
func NewPath(opts PathOptions) (*Path, error) {
	if opts.Name == "" {
		return nil, errors.New("notify: path: no name")
	}
	if opts.Kind == "" || opts.Dir == "" || opts.Sender == nil {
		return nil, fmt.Errorf("notify: path %q: kind, dir and sender are required", opts.Name)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	setDur(&opts.BaseBackoff, DefaultBaseBackoff)
	setDur(&opts.MaxBackoff, DefaultMaxBackoff)
	opts.MaxBackoff = max(opts.MaxBackoff, opts.BaseBackoff)
	setDur(&opts.SlowRetry, DefaultSlowRetry)
	setDur(&opts.ProbeEvery, DefaultProbeEvery)
	setDur(&opts.SendTimeout, DefaultSendTimeout)
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	p := &Path{opts: opts, log: opts.Log.With("path", opts.Name, "kind", opts.Kind), up: true}
	ob, err := outbox.Open(outbox.Options{
		Dir: opts.Dir,
		// An alert is fsynced before Enqueue returns: the ledger may
		// mark it dispatched right after.
		SyncEvery: 0,
		Logger:    p.log,
	})
	if err != nil {
		return nil, fmt.Errorf("notify: path %q: %w", opts.Name, err)
	}
	p.ob = ob
	p.closeCtx, p.closeCancel = context.WithCancel(context.Background())
	return p, nil
}

func setDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Name returns the path's name.
func (p *Path) Name() string { return p.opts.Name }

// Kind returns the path's kind.
func (p *Path) Kind() string { return p.opts.Kind }

// Enqueue appends ev to the path's outbox, fsynced before it returns. It
// never waits for the destination.
func (p *Path) Enqueue(ev alert.Event) error {
	if p.closedFlag.Load() {
		return ErrPathClosed
	}
	_, err := p.ob.Append(outbox.Message{
		Class:   outbox.Alert,
		Key:     ev.ID,
		Topic:   string(ev.Kind),
		Payload: ev.Marshal(),
	})
	if err != nil {
		// With a full disk the outbox holds the alert in memory and
		// delivers it, but it is not durable: the caller keeps it
		// undispatched and offers it again (a tolerated duplicate).
		return fmt.Errorf("notify: path %q: enqueue event %d (%s %s): %w", p.opts.Name, ev.Seq, ev.Kind, ev.ID, err)
	}
	return nil
}

// Health returns the path's delivery state.
func (p *Path) Health() Health {
	st := p.ob.Stats()
	p.mu.Lock()
	h := Health{
		Name:      p.opts.Name,
		Kind:      p.opts.Kind,
		Up:        p.up,
		Depth:     st.Depth,
		Oldest:    st.Oldest,
		LastError: p.lastErr,
		LastOK:    p.lastOK,
		DownSince: p.downSince,
		Delivered: p.delivered,
		Failures:  p.failures,
	}
	p.mu.Unlock()
	if d, ok := p.opts.Sender.(HealthDetailer); ok {
		h.Detail = d.HealthDetail()
	}
	return h
}

// Run delivers the outbox until ctx ends or Close is called, and returns
// nil then. It runs on the caller's goroutine; it may be called once at a
// time and returns ErrPathClosed after Close.
func (p *Path) Run(ctx context.Context) error {
	p.runMu.Lock()
	if p.closed {
		p.runMu.Unlock()
		return ErrPathClosed
	}
	if p.runDone != nil {
		select {
		case <-p.runDone:
		default:
			p.runMu.Unlock()
			return fmt.Errorf("notify: path %q: Run is already running", p.opts.Name)
		}
	}
	done := make(chan struct{})
	p.runDone = done
	p.runMu.Unlock()
	defer close(done)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(p.closeCtx, cancel)()

	res, _ := p.opts.Sender.(Resender)
	if p.opts.Active == nil {
		res = nil
	}
	prb, _ := p.opts.Sender.(Prober)
	var nextResend, nextProbe time.Time // zero: at the first idle moment
	failures := 0                       // consecutive failed attempts

	for ctx.Err() == nil {
		msgs, err := p.ob.Peek(p.opts.Batch)
		if err != nil {
			// The disk, not the destination.
			p.log.Error("notify: cannot read the path's outbox; retrying", "err", err)
			sleepCtx(ctx, p.opts.MaxBackoff)
			continue
		}
		if len(msgs) > 0 {
			evs := p.decode(msgs)
			if len(evs) == 0 {
				continue
			}
			retryable, err := p.attempt(ctx, func(ctx context.Context) (bool, error) { return p.opts.Sender.Send(ctx, evs) })
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				for _, m := range msgs {
					if err := p.ob.Ack(m.Seq); err != nil {
						p.log.Debug("notify: outbox ack", "seq", m.Seq, "err", err)
					}
				}
				p.mu.Lock()
				p.delivered += uint64(len(evs))
				p.mu.Unlock()
				failures = 0
				continue
			}
			failures++
			wait := backoff.Jittered(p.opts.BaseBackoff, p.opts.MaxBackoff, failures)
			if !retryable {
				wait = max(wait, p.opts.SlowRetry)
				p.log.Error("notify: destination refused alerts and will refuse them again until someone fixes it; they stay queued and are retried slowly",
					"err", err, "events", len(evs), "first_seq", evs[0].Seq, "first_episode", evs[0].ID, "retry_in", wait, "depth", p.ob.Stats().Depth)
			} else {
				p.logFailure(failures, "notify: cannot deliver alerts; they stay queued, retrying with backoff",
					"err", err, "events", len(evs), "retry_in", wait, "depth", p.ob.Stats().Depth)
			}
			sleepCtx(ctx, wait)
			continue
		}

		// Idle: keep the destination's view fresh and our health honest.
		now := time.Now()
		if res != nil && !now.Before(nextResend) {
			active := p.opts.Active()
			var err error
			if len(active) > 0 {
				_, err = p.attempt(ctx, func(ctx context.Context) (bool, error) { return true, res.Resend(ctx, active) })
			}
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				failures++
				nextResend = now.Add(backoff.Jittered(p.opts.BaseBackoff, p.opts.MaxBackoff, failures))
				p.logFailure(failures, "notify: cannot re-send the active alerts; retrying with backoff", "err", err, "active", len(active))
			} else {
				failures = 0
				nextResend = now.Add(res.ResendEvery())
			}
			continue
		}
		if prb != nil && !now.Before(nextProbe) {
			_, err := p.attempt(ctx, func(ctx context.Context) (bool, error) { return true, prb.Probe(ctx) })
			if ctx.Err() != nil {
				return nil
			}
			nextProbe = now.Add(p.opts.ProbeEvery)
			if err != nil {
				failures++
				p.logFailure(failures, "notify: destination does not answer its health probe", "err", err)
			} else {
				failures = 0
			}
			continue
		}
		var (
			timer *time.Timer
			wake  <-chan time.Time
		)
		if next := earliest(res != nil, nextResend, prb != nil, nextProbe); !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			wake = timer.C
		}
		select {
		case <-p.ob.Ready():
		case <-wake:
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
	}
	return nil
}

// earliest returns the earliest of the times that are enabled, or zero.
func earliest(aOn bool, a time.Time, bOn bool, b time.Time) time.Time {
	switch {
	case aOn && bOn:
		if a.Before(b) {
			return a
		}
		return b
	case aOn:
		return a
	case bOn:
		return b
	}
	return time.Time{}
}

// decode turns outbox messages into events. A message that does not decode
// cannot be delivered by any means (the outbox checked its CRC, so it is a
// bug, not damage): it is logged and acknowledged so it does not block the
// path.
func (p *Path) decode(msgs []outbox.Message) []alert.Event {
	evs := make([]alert.Event, 0, len(msgs))
	for _, m := range msgs {
		ev, err := alert.Unmarshal(m.Payload)
		if err != nil {
			p.log.Error("notify: queued alert does not decode; skipping it", "outbox_seq", m.Seq, "err", err)
			_ = p.ob.Ack(m.Seq)
			continue
		}
		evs = append(evs, ev)
	}
	return evs
}

// attempt runs one bounded call to the destination and records its outcome
// for Health.
func (p *Path) attempt(ctx context.Context, call func(context.Context) (bool, error)) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, p.opts.SendTimeout)
	retryable, err := call(cctx)
	cancel()
	if ctx.Err() != nil {
		return retryable, err // shutting down: says nothing about the destination
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failures++
		p.lastErr = err.Error()
		if p.up {
			p.up, p.downSince = false, now
		}
		return retryable, err
	}
	if !p.up {
		p.log.Info("notify: destination reachable again", "down_for", now.Sub(p.downSince).Round(time.Millisecond), "depth", p.ob.Stats().Depth)
	}
	p.up, p.downSince, p.lastOK = true, time.Time{}, now
	return false, nil
}

// logFailure logs at Warn on consecutive failures 1, 2, 4, 8, ... (an
// outage of hours is a few dozen lines) and at Debug in between.
func (p *Path) logFailure(n int, msg string, args ...any) {
	lvl := slog.LevelDebug
	if n&(n-1) == 0 {
		lvl = slog.LevelWarn
	}
	p.log.Log(context.Background(), lvl, msg, append(args, "attempt", n)...)
}

// Close stops Run, waits for it to return and closes the outbox. Events not
// yet delivered stay in the outbox for the next start. Idempotent.
func (p *Path) Close() error {
	p.runMu.Lock()
	if p.closed {
		p.runMu.Unlock()
		return nil
	}
	p.closed = true
	p.closedFlag.Store(true)
	done := p.runDone
	p.runMu.Unlock()
	p.closeCancel()
	if done != nil {
		<-done
	}
	if err := p.ob.Close(); err != nil {
		return fmt.Errorf("notify: path %q: %w", p.opts.Name, err)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

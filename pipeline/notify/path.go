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
	"github.com/facgw/facgw/internal/runloop"
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
	// Resender and HealthDetailer. Path.SetSender replaces it.
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
// SetSender swaps the destination (a reload changed the path's URL,
// credentials or even its kind) and keeps the outbox: what is queued goes
// to the new destination, in order.
//
// Enqueue, Health, SetSender and Close are safe for concurrent use; Run is
// the path's goroutine (the caller starts it), and Close stops it.
type Path struct {
	opts PathOptions
	base *slog.Logger                // with the path's name
	log  atomic.Pointer[slog.Logger] // base with the current kind
	ob   *outbox.Outbox

	loop *runloop.Loop // Run once at a time, Close for good

	// swapped wakes Run after SetSender (buffered, 1).
	swapped chan struct{}

	mu sync.Mutex // guards the sender and health fields below
	// sender and kind are what SetSender swaps; gen counts the swaps, so
	// Run can tell an attempt cut short by one from a failure.
	sender        Sender
	kind          string
	gen           uint64
	cancelAttempt context.CancelFunc // of the call in progress; nil between calls
	up            bool
	lastErr       string
	lastOK        time.Time
	downSince     time.Time
	delivered     uint64
	failures      uint64
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
	p := &Path{opts: opts, base: opts.Log.With("path", opts.Name), swapped: make(chan struct{}, 1),
		sender: opts.Sender, kind: opts.Kind, gen: 1, up: true}
	p.log.Store(p.base.With("kind", opts.Kind))
	ob, err := outbox.Open(outbox.Options{
		Dir: opts.Dir,
		// An alert is fsynced before Enqueue returns: the ledger may
		// mark it dispatched right after.
		SyncEvery: 0,
		Logger:    p.base,
	})
	if err != nil {
		return nil, fmt.Errorf("notify: path %q: %w", opts.Name, err)
	}
	p.ob = ob
	p.loop = runloop.New()
	return p, nil
}

func setDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Name returns the path's name.
func (p *Path) Name() string { return p.opts.Name }

// Kind returns the path's kind (the latest SetSender's).
func (p *Path) Kind() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kind
}

// logger is the path's logger, naming its current kind.
func (p *Path) logger() *slog.Logger { return p.log.Load() }

// errSenderChanged is what attempt returns for a call that SetSender cut
// short or that was not made because the sender had changed: it says
// nothing about either destination.
var errSenderChanged = errors.New("notify: path: sender changed")

// SetSender makes s the path's sender and kind its kind ("" keeps the
// current one), for a path whose destination changed under the same name.
// The outbox stays: the events queued in it, and the batch being sent, go
// to s in order. A call to the previous sender in progress is cancelled
// and the batch is sent again to s at once, without backoff (the previous
// destination may have taken it already: a duplicate, as after a
// timeout). Health starts afresh as up, there being no evidence against s
// yet (LastError and the counters stay), and an idle Run re-sends the
// active alerts to a Resender and probes a Prober at once. The previous
// sender is not called again once SetSender returned, except to finish a
// call that ignores its context. Safe for concurrent use, also with Run.
func (p *Path) SetSender(kind string, s Sender) error {
	if s == nil {
		return fmt.Errorf("notify: path %q: nil sender", p.opts.Name)
	}
	p.mu.Lock()
	p.sender = s
	if kind != "" && kind != p.kind {
		p.kind = kind
		p.log.Store(p.base.With("kind", kind))
	}
	p.gen++
	p.up, p.downSince = true, time.Time{}
	cancel := p.cancelAttempt
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	select {
	case p.swapped <- struct{}{}:
	default:
	}
	return nil
}

// current returns the sender and its generation.
func (p *Path) current() (Sender, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sender, p.gen
}

// Enqueue appends ev to the path's outbox, fsynced before it returns. It
// never waits for the destination.
func (p *Path) Enqueue(ev alert.Event) error {
	if p.loop.Closed() {
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
	s := p.sender
	h := Health{
		Name:      p.opts.Name,
		Kind:      p.kind,
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
	if d, ok := s.(HealthDetailer); ok {
		h.Detail = d.HealthDetail()
	}
	return h
}

// Run delivers the outbox until ctx ends or Close is called, and returns
// nil then. It runs on the caller's goroutine; it may be called once at a
// time and returns ErrPathClosed after Close.
func (p *Path) Run(ctx context.Context) error {
	ctx, end, err := p.loop.Begin(ctx)
	switch {
	case errors.Is(err, runloop.ErrClosed):
		return ErrPathClosed
	case err != nil:
		return fmt.Errorf("notify: path %q: %w", p.opts.Name, err)
	}
	defer end()

	var (
		s                     Sender
		gen                   uint64 // of s; 0 before the first round
		res                   Resender
		prb                   Prober
		nextResend, nextProbe time.Time // zero: at the first idle moment
		failures              int       // consecutive failed attempts
	)

	for ctx.Err() == nil {
		if cs, cg := p.current(); cg != gen {
			// First round, or SetSender: a new destination starts with
			// a clean slate and is re-sent and probed at once.
			s, gen = cs, cg
			res, _ = s.(Resender)
			if p.opts.Active == nil {
				res = nil
			}
			prb, _ = s.(Prober)
			nextResend, nextProbe, failures = time.Time{}, time.Time{}, 0
		}
		msgs, err := p.ob.Peek(p.opts.Batch)
		if err != nil {
			// The disk, not the destination.
			p.logger().Error("notify: cannot read the path's outbox; retrying", "err", err)
			p.sleep(ctx, p.opts.MaxBackoff)
			continue
		}
		if len(msgs) > 0 {
			evs := p.decode(msgs)
			if len(evs) == 0 {
				continue
			}
			retryable, err := p.attempt(ctx, gen, func(ctx context.Context) (bool, error) { return s.Send(ctx, evs) })
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, errSenderChanged) {
				continue
			}
			if err == nil {
				for _, m := range msgs {
					if err := p.ob.Ack(m.Seq); err != nil {
						p.logger().Debug("notify: outbox ack", "seq", m.Seq, "err", err)
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
				p.logger().Error("notify: destination refused alerts and will refuse them again until someone fixes it; they stay queued and are retried slowly",
					"err", err, "events", len(evs), "first_seq", evs[0].Seq, "first_episode", evs[0].ID, "retry_in", wait, "depth", p.ob.Stats().Depth)
			} else {
				p.logFailure(failures, "notify: cannot deliver alerts; they stay queued, retrying with backoff",
					"err", err, "events", len(evs), "retry_in", wait, "depth", p.ob.Stats().Depth)
			}
			p.sleep(ctx, wait)
			continue
		}

		// Idle: keep the destination's view fresh and our health honest.
		now := time.Now()
		if res != nil && !now.Before(nextResend) {
			active := p.opts.Active()
			var err error
			if len(active) > 0 {
				_, err = p.attempt(ctx, gen, func(ctx context.Context) (bool, error) { return true, res.Resend(ctx, active) })
			}
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, errSenderChanged) {
				continue
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
			_, err := p.attempt(ctx, gen, func(ctx context.Context) (bool, error) { return true, prb.Probe(ctx) })
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, errSenderChanged) {
				continue
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
		case <-p.swapped:
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
			p.logger().Error("notify: queued alert does not decode; skipping it", "outbox_seq", m.Seq, "err", err)
			_ = p.ob.Ack(m.Seq)
			continue
		}
		evs = append(evs, ev)
	}
	return evs
}

// attempt runs one bounded call to the destination of sender generation
// gen and records its outcome for Health. When SetSender swapped the
// sender before or during the call, a failure is errSenderChanged and
// nothing is recorded; a success still counts (the previous destination
// has the events).
func (p *Path) attempt(ctx context.Context, gen uint64, call func(context.Context) (bool, error)) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, p.opts.SendTimeout)
	defer cancel()
	p.mu.Lock()
	if p.gen != gen {
		p.mu.Unlock()
		return false, errSenderChanged
	}
	p.cancelAttempt = cancel
	p.mu.Unlock()
	retryable, err := call(cctx)
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cancelAttempt = nil
	if ctx.Err() != nil {
		return retryable, err // shutting down: says nothing about the destination
	}
	if p.gen != gen {
		if err != nil {
			return false, errSenderChanged
		}
		return retryable, nil
	}
	now := time.Now()
	if err != nil {
		p.failures++
		p.lastErr = err.Error()
		if p.up {
			p.up, p.downSince = false, now
		}
		return retryable, err
	}
	if !p.up {
		p.logger().Info("notify: destination reachable again", "down_for", now.Sub(p.downSince).Round(time.Millisecond), "depth", p.ob.Stats().Depth)
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
	p.logger().Log(context.Background(), lvl, msg, append(args, "attempt", n)...)
}

// Close stops Run, waits for it to return and closes the outbox. Events not
// yet delivered stay in the outbox for the next start. Idempotent.
func (p *Path) Close() error {
	if !p.loop.Close() {
		return nil
	}
	if err := p.ob.Close(); err != nil {
		return fmt.Errorf("notify: path %q: %w", p.opts.Name, err)
	}
	return nil
}

// sleep waits for d, the end of ctx or a SetSender (a new destination is
// tried at once, not after the old one's backoff).
func (p *Path) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.swapped:
	case <-ctx.Done():
	}
}

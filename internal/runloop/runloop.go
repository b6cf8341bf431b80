// Package runloop is the life of a component whose Run method is its
// sender goroutine (an MQTT broker's publisher, an alert path): Run may be
// called once at a time, and Close ends it for good, cancelling the run in
// progress and waiting for it to return.
package runloop

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// Errors of Begin.
var (
	ErrClosed  = errors.New("closed")
	ErrRunning = errors.New("Run is already running")
)

// Loop guards the runs of one component. Its methods are safe for
// concurrent use.
type Loop struct {
	closeCtx    context.Context // canceled by Close
	closeCancel context.CancelFunc
	closed      atomic.Bool

	mu   sync.Mutex
	done chan struct{} // closed when the last run ended; nil before the first
}

// New returns an open Loop.
func New() *Loop {
	l := &Loop{}
	l.closeCtx, l.closeCancel = context.WithCancel(context.Background())
	return l
}

// Begin starts a run. The context it returns ends with ctx or with Close;
// end must be called when the run returns (defer it). It fails with
// ErrClosed after Close and with ErrRunning while another run is in
// progress.
func (l *Loop) Begin(ctx context.Context) (runCtx context.Context, end func(), err error) {
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return nil, nil, ErrClosed
	}
	if l.done != nil {
		select {
		case <-l.done:
		default:
			l.mu.Unlock()
			return nil, nil, ErrRunning
		}
	}
	done := make(chan struct{})
	l.done = done
	l.mu.Unlock()
	runCtx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(l.closeCtx, cancel)
	return runCtx, func() {
		stop()
		cancel()
		close(done)
	}, nil
}

// Close refuses later runs, cancels the run in progress and waits for it
// to end. It reports whether this call closed the loop (false: it was
// closed already, and nothing was waited for).
func (l *Loop) Close() bool {
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return false
	}
	l.closed.Store(true)
	done := l.done
	l.mu.Unlock()
	l.closeCancel()
	if done != nil {
		<-done
	}
	return true
}

// Closed reports whether Close was called.
func (l *Loop) Closed() bool { return l.closed.Load() }

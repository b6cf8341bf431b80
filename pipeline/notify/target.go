package notify

import (
	"context"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

// Target is a delivery path as the Dispatcher sees it.
//
// Enqueue hands one event to the path. When it returns nil the event is
// durable (on disk, fsynced, in the path's own outbox): a crash after that
// does not lose it, and the path delivers it on its own goroutine, in
// Enqueue order, retrying until the destination accepts it. When Enqueue
// returns an error the path did not take the event; the Dispatcher keeps it
// undispatched and offers it again later (so a path that took part of it,
// such as one of several brokers, may deliver it twice). Enqueue must not
// wait for the network: one dead destination must not delay the others.
//
// Health reports the path's delivery state; it must be cheap (the
// Dispatcher calls it every second) and must not do I/O.
//
// All methods are safe for concurrent use.
type Target interface {
	// Name identifies the target in logs, health and the degraded alert
	// (as its Group); unique among the Dispatcher's targets.
	Name() string
	// Kind says what the target is: "mqtt", "alertmanager", "snmp",
	// "webhook".
	Kind() string
	Enqueue(ev alert.Event) error
	Health() Health
}

// Health is a target's delivery state, for the dashboard, /readyz, the
// metrics and the degraded-path alert.
type Health struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Up is the outcome of the last attempt to reach the destination
	// (delivery, re-send or probe). A path that has not tried yet is up:
	// it has no evidence of the contrary.
	Up bool `json:"up"`
	// Depth counts events waiting in the path's outbox; Oldest is when the
	// oldest of them was enqueued (zero when none waits).
	Depth  int       `json:"depth"`
	Oldest time.Time `json:"oldest,omitzero"`
	// LastError is the last failure, kept after a later success for
	// diagnosis; LastOK is the last successful attempt; DownSince is when
	// Up last turned false (zero while up).
	LastError string    `json:"last_error,omitempty"`
	LastOK    time.Time `json:"last_ok,omitzero"`
	DownSince time.Time `json:"down_since,omitzero"`
	// Delivered counts events the destination accepted; Failures failed
	// attempts.
	Delivered uint64 `json:"delivered"`
	Failures  uint64 `json:"failures"`
	// Detail holds path-specific state, such as the outcome per
	// Alertmanager URL.
	Detail map[string]string `json:"detail,omitempty"`
}

// Sender delivers events to one destination; a Path owns the retries.
//
// Send delivers evs (in order, at least one) and returns nil only when the
// destination accepted all of them. On failure, retryable says whether the
// same request may succeed later without anyone changing anything (a network
// error, a timeout, HTTP 5xx, 408 or 429); a refusal (other HTTP 4xx) is not
// retryable. The Path retries both, the latter slowly: alerts are never
// dropped. Send must honour ctx (the Path bounds each call with a deadline
// and cancels it on shutdown). A Path calls Send from one goroutine at a
// time.
type Sender interface {
	Send(ctx context.Context, evs []alert.Event) (retryable bool, err error)
}

// Prober is implemented by a Sender that can check, without sending an
// alert, whether its destination is reachable. An idle Path probes every
// PathOptions.ProbeEvery so that its Health does not claim a dead
// destination is up just because nothing had to be sent.
type Prober interface {
	Probe(ctx context.Context) error
}

// Resender is implemented by a Sender whose destination forgets alerts
// unless they are sent again (Alertmanager expires an alert at its endsAt).
// An idle Path calls Resend with the ledger's active alerts (the latest
// event of each firing episode) every ResendEvery, and at once after it
// starts (a gateway that was down longer than the expiry must re-announce
// what is still firing).
type Resender interface {
	ResendEvery() time.Duration
	Resend(ctx context.Context, active []alert.Event) error
}

// HealthDetailer is implemented by a Sender that has per-destination
// detail for Health.Detail (the outcome per URL of an Alertmanager
// cluster).
type HealthDetailer interface {
	HealthDetail() map[string]string
}

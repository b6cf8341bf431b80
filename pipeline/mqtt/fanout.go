package mqtt

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/pipeline/outbox"
)

// Fanout turns each poll's points into MQTT messages and appends them to
// every broker's outbox: one telemetry message, numbered by the Sequencer
// (one seq for all brokers, so consumers of several brokers can
// de-duplicate), then the device's retained state message (all its points,
// merged across poll groups).
//
// Publish is called from the polling path: it does no network I/O and no
// fsync of its own (the outboxes and, once per 10000 seqs per device, the
// Sequencer decide that), and it is safe for concurrent use. Calls for the
// same device are serialised, so a device's messages enter every outbox in
// seq order; calls for different devices run in parallel.
type Fanout struct {
	info    StatusInfo
	gateway []byte // JSON string
	topics  Topics
	seq     *Sequencer

	// sinksMu guards sinks: Publish holds it shared while it appends, so
	// once SetSinks returns no Publish still appends to a sink it
	// dropped.
	sinksMu sync.RWMutex
	sinks   []Enqueuer

	// stateEvery rate-limits the retained state message per device; see
	// SetStateEvery.
	stateEvery atomic.Int64

	mu      sync.Mutex
	devices map[string]*deviceState

	published atomic.Uint64
	failed    atomic.Uint64
}

// deviceState is the merged latest state of one device.
type deviceState struct {
	mu        sync.Mutex
	quoted    []byte // the device id as a JSON string
	telemetry string // topics
	state     string
	points    map[string][]byte // encoded latest point by name
	names     []string          // sorted
	size      int               // bytes of all encoded points
	stateAt   time.Time         // when the retained state was last queued
}

// SetStateEvery limits how often each device's retained state message is
// queued: at most once per d, except that a poll with a point that is not
// good queues it at once (bad news is never held back). The telemetry
// stream is not affected: every poll is still a telemetry message. A late
// consumer then sees the whole facility at most d old and catches up from
// telemetry. Zero (the default) queues the state after every poll. Call
// at any time.
func (f *Fanout) SetStateEvery(d time.Duration) { f.stateEvery.Store(int64(d)) }

// SetSinks replaces the outboxes every Publish appends to (a reload added
// or removed a broker). It waits for the Publish calls in progress; from
// its return on, every Publish appends to exactly the new set. A sink
// added here gets each device's messages from its next poll on (same seq
// numbering as the others); one removed gets nothing more.
func (f *Fanout) SetSinks(sinks ...Enqueuer) {
	f.sinksMu.Lock()
	f.sinks = slices.Clone(sinks)
	f.sinksMu.Unlock()
}

// NewFanout returns a Fanout over the publishers (any Enqueuer; normally
// one *Publisher per broker). seq is shared by all of them.
func NewFanout(info StatusInfo, seq *Sequencer, sinks ...Enqueuer) (*Fanout, error) {
	if err := info.Validate(); err != nil {
		return nil, err
	}
	if seq == nil {
		return nil, errors.New("mqtt: fanout: nil sequencer")
	}
	return &Fanout{
		info:    info,
		gateway: jsonString(info.Gateway),
		topics:  info.Topics(),
		seq:     seq,
		sinks:   slices.Clone(sinks),
		devices: map[string]*deviceState{},
	}, nil
}

func (f *Fanout) device(id string) *deviceState {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.devices[id]
	if d == nil {
		d = &deviceState{quoted: jsonString(id), telemetry: f.topics.Telemetry(id), state: f.topics.State(id), points: map[string][]byte{}}
		f.devices[id] = d
	}
	return d
}

// Publish encodes pts (one poll of one of device's poll groups, or a batch
// of points turned stale) as a telemetry message and appends it, then the
// device's updated state, to every outbox. An error names the outboxes
// that refused the messages (full disk, closed); the others have them.
// An empty pts publishes nothing.
func (f *Fanout) Publish(device string, pts []point.Point) error {
	if len(pts) == 0 {
		return nil
	}
	if err := checkLevel("device", device); err != nil {
		return fmt.Errorf("mqtt: fanout: %w", err)
	}
	d := f.device(device)
	d.mu.Lock()
	defer d.mu.Unlock()

	enc := make([][]byte, len(pts))
	size := 0
	var newest time.Time
	for i, p := range pts {
		b, err := encodePoint(p)
		if err != nil {
			// Not reachable with point.Point's encoder; never publish
			// half a poll.
			f.failed.Add(1)
			return fmt.Errorf("mqtt: fanout: device %q point %q: %w", device, p.Name, err)
		}
		enc[i] = b
		size += len(b) + 1
		if p.Time.After(newest) {
			newest = p.Time
		}
	}
	is := f.seq.Issue(device) // after anything that can fail: no seq is wasted
	for i, p := range pts {
		if old, ok := d.points[p.Name]; ok {
			d.size -= len(old) + 1
		} else {
			d.names = append(d.names, p.Name)
		}
		d.points[p.Name] = enc[i]
		d.size += len(enc[i]) + 1
	}
	if !slices.IsSorted(d.names) {
		slices.Sort(d.names)
	}
	const envelope = 160 // generous for the fixed fields
	tb := appendEnvelope(make([]byte, 0, envelope+len(d.quoted)+size), f.gateway, d.quoted, is.Seq, newest, is.Restart, is.PrevSeq, enc)
	msgs := []outbox.Message{{Class: outbox.Telemetry, Key: device, Topic: d.telemetry, Payload: tb}}
	if f.stateDue(d, pts) {
		all := make([][]byte, len(d.names))
		for i, n := range d.names {
			all[i] = d.points[n]
		}
		sb := appendEnvelope(make([]byte, 0, envelope+len(d.quoted)+d.size), f.gateway, d.quoted, is.Seq, newest, false, 0, all)
		msgs = append(msgs, outbox.Message{Class: outbox.Telemetry, Key: device, Topic: d.state, Payload: sb, Retain: true})
	}
	var errs []error
	f.sinksMu.RLock()
	defer f.sinksMu.RUnlock()
	for _, s := range f.sinks {
		for _, m := range msgs {
			if _, err := s.Enqueue(m); err != nil {
				errs = append(errs, err)
				break // the state without its telemetry would be out of step
			}
		}
	}
	f.published.Add(1)
	if len(errs) > 0 {
		f.failed.Add(1)
		return fmt.Errorf("mqtt: fanout: device %q seq %d: %w", device, is.Seq, errors.Join(errs...))
	}
	return nil
}

// stateDue decides whether this poll also queues the device's retained
// state (see SetStateEvery); d is locked.
func (f *Fanout) stateDue(d *deviceState, pts []point.Point) bool {
	every := time.Duration(f.stateEvery.Load())
	if every <= 0 {
		return true
	}
	now := time.Now()
	for i := range pts {
		if pts[i].Quality != point.Good {
			d.stateAt = now
			return true
		}
	}
	if !d.stateAt.IsZero() && now.Sub(d.stateAt) < every {
		return false
	}
	d.stateAt = now
	return true
}

// FanoutStats counts Publish calls and those that failed for at least one
// outbox.
type FanoutStats struct {
	Published, Failed uint64
}

// Stats returns the counters; safe for concurrent use.
func (f *Fanout) Stats() FanoutStats {
	return FanoutStats{Published: f.published.Load(), Failed: f.failed.Load()}
}

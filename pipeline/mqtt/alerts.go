package mqtt

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/pipeline/outbox"
)

// AlertEvents returns "<prefix>/<gateway>/alerts/events": QoS 1, not
// retained, every alert event in ledger order.
func (t Topics) AlertEvents() string { return t.base + "/alerts/events" }

// AlertActive returns "<prefix>/<gateway>/alerts/active/<episode id>": QoS
// 1, retained while the episode fires (its latest event), cleared (an
// empty retained message) when it resolves, so a consumer that connects
// late sees every firing alert at once.
func (t Topics) AlertActive(id string) string { return t.base + "/alerts/active/" + id }

// AlertPath delivers alert events through every broker (path A): each event
// goes into each broker's outbox as an alert-class message, never dropped,
// and each broker's sender delivers it in order with the telemetry.
type AlertPath struct {
	topics Topics
	mu     sync.RWMutex // guards pubs; Enqueue holds it shared
	pubs   []*Publisher
}

// SetPublishers replaces the brokers the path delivers through (a reload
// added or removed one). It waits for an Enqueue in progress; later
// events go to the new set. A broker new to the path is first given
// snap() (see Announce). A removed broker's outbox keeps what it holds.
// An error names the added brokers that refused the snapshot; the set is
// replaced anyway (the next events try them again).
func (a *AlertPath) SetPublishers(snap func() Snapshot, pubs ...*Publisher) error {
	if len(pubs) == 0 {
		return errors.New("mqtt: alert path: no brokers")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	var sn Snapshot
	read := false
	for _, p := range pubs {
		if !slices.Contains(a.pubs, p) {
			if !read {
				sn, read = snap(), true
			}
			errs = append(errs, announce(a.topics, sn, p))
		}
	}
	a.pubs = slices.Clone(pubs)
	return errors.Join(errs...)
}

// Snapshot is what a broker new to the alert path is told: the latest
// event of each episode firing now (the ledger's Active), and the ids of
// episodes resolved since (from the ledger's recent history), whose
// retained alerts/active message it clears.
type Snapshot struct {
	Active   []alert.Event
	Resolved []string
}

// Announce queues snap() for one broker, in order with the path's other
// events: for a broker that is new (added, or its URL now points at
// another server, or added back with an outbox that still holds events
// from before its removal), so that its retained alerts/active topics show
// exactly what is burning, as on the other brokers: the firing episodes
// retained, the resolved ones cleared (an empty retained message, a no-op
// where there was none). snap is called under the path's lock: an event
// the ledger records after it is enqueued to the broker after these, so a
// firing alert resolving meanwhile is never left retained as firing, and
// one firing meanwhile is never missed.
func (a *AlertPath) Announce(snap func() Snapshot, p *Publisher) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return announce(a.topics, snap(), p)
}

func announce(t Topics, snap Snapshot, p *Publisher) error {
	for _, id := range snap.Resolved {
		if _, err := p.Enqueue(outbox.Message{Class: outbox.Alert, Key: id, Topic: t.AlertActive(id), Retain: true}); err != nil {
			return err
		}
	}
	for _, ev := range snap.Active {
		for _, m := range alertMessages(t, ev) {
			if _, err := p.Enqueue(m); err != nil {
				return err
			}
		}
	}
	return p.Sync()
}

// NewAlertPath returns the MQTT alert path over the publishers.
func NewAlertPath(info StatusInfo, pubs ...*Publisher) (*AlertPath, error) {
	if err := info.Validate(); err != nil {
		return nil, err
	}
	if len(pubs) == 0 {
		return nil, errors.New("mqtt: alert path: no brokers")
	}
	return &AlertPath{topics: info.Topics(), pubs: pubs}, nil
}

// Enqueue appends the event to every broker's outbox and syncs it to disk
// before returning. An error names the brokers that refused it; the
// others have it (the ledger re-dispatches the event, so those may get it
// twice, with the same id and seq).
func (a *AlertPath) Enqueue(ev alert.Event) error {
	msgs := alertMessages(a.topics, ev)
	a.mu.RLock()
	defer a.mu.RUnlock()
	// The brokers' outboxes are synced concurrently: each sync is an
	// fsync, and the alert should not wait for one broker's disk before
	// the next gets it.
	errs := make([]error, len(a.pubs))
	var wg sync.WaitGroup
	for i, p := range a.pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, m := range msgs {
				if _, err := p.Enqueue(m); err != nil {
					errs[i] = err
					return
				}
			}
			errs[i] = p.Sync()
		}()
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, a.pubs[i].Name())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("mqtt: alert %s to broker %s: %w", ev.ID, strings.Join(failed, ", "), errors.Join(errs...))
	}
	return nil
}

// alertMessages are the outbox messages of one event: the stream message,
// then the retained active-alert message (its latest event while firing,
// empty once resolved, which deletes the retained message).
func alertMessages(t Topics, ev alert.Event) []outbox.Message {
	body := ev.Marshal()
	stream := outbox.Message{Class: outbox.Alert, Key: ev.ID, Topic: t.AlertEvents(), Payload: body}
	active := outbox.Message{Class: outbox.Alert, Key: ev.ID, Topic: t.AlertActive(ev.ID), Retain: true}
	if ev.State != alert.Resolved {
		active.Payload = body
	}
	return []outbox.Message{stream, active}
}

// AlertPathHealth is the path's health: up while at least one broker is
// connected.
type AlertPathHealth struct {
	Up        bool
	Depth     int       // most messages waiting in one broker's outbox
	Oldest    time.Time // oldest waiting message of the brokers that are down
	LastError string
	Brokers   map[string]string // broker -> "connected" or its last error
}

// Health returns the path's health; safe for concurrent use.
func (a *AlertPath) Health() AlertPathHealth {
	h := AlertPathHealth{Brokers: map[string]string{}}
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, p := range a.pubs {
		s := p.Stats()
		if s.Outbox.Depth > h.Depth {
			h.Depth = s.Outbox.Depth
		}
		if s.Connected {
			h.Up = true
			h.Brokers[s.Name] = "connected"
			continue
		}
		msg := s.LastError
		if msg == "" {
			msg = "not connected"
		}
		h.Brokers[s.Name] = msg
		h.LastError = s.Name + ": " + msg
		if o := s.Outbox.Oldest; !o.IsZero() && (h.Oldest.IsZero() || o.Before(h.Oldest)) {
			h.Oldest = o
		}
	}
	return h
}

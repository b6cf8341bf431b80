// Package alert defines the alert event that every delivery path carries:
// one transition of one alert episode (firing, resolved, acknowledged,
// silenced), with a stable episode id so a consumer of any path can
// de-duplicate. The rules engine produces events, the ledger persists them
// and each path (MQTT, Alertmanager, SNMP notifications, webhook) encodes
// the same event in its own way. This package has no I/O.
package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Severity orders alerts. Higher is worse.
type Severity uint8

// Severities, from least to most urgent.
const (
	Info Severity = iota + 1
	Warning
	Major
	Critical
)

var severityNames = [...]string{Info: "info", Warning: "warning", Major: "major", Critical: "critical"}

// Severities lists the severity names in order, for error messages.
var Severities = []string{"info", "warning", "major", "critical"}

// String returns "info", "warning", "major" or "critical".
func (s Severity) String() string {
	if s >= Info && int(s) < len(severityNames) {
		return severityNames[s]
	}
	return "severity(" + strconv.Itoa(int(s)) + ")"
}

// ParseSeverity parses a severity name.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if n != "" && n == s {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want one of info, warning, major, critical)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Classes of rules, as the issue tracker and the dashboard group them.
var Classes = []string{"fire", "power", "cooling", "network", "data-quality", "gateway"}

// State is where an episode is in its lifecycle.
type State string

// The states of an episode. Pending is visible in the API but never
// delivered; Firing and Resolved are delivered on every path.
const (
	Pending  State = "pending"
	Firing   State = "firing"
	Resolved State = "resolved"
)

// Kind is what an Event reports.
type Kind string

// Event kinds. Every kind goes out on every path; paths that have nothing
// to say for a kind (Alertmanager for an acknowledgement) re-send the
// alert's current state instead.
const (
	KindFiring       Kind = "firing"
	KindResolved     Kind = "resolved"
	KindAcknowledged Kind = "acknowledged"
	KindSilenced     Kind = "silenced"
	KindUnsilenced   Kind = "unsilenced"
)

// Value is an input of a rule at the time of an event, for people reading
// the alert: the point's value as text, its unit and quality.
type Value struct {
	Value   string `json:"value"`
	Unit    string `json:"unit,omitempty"`
	Quality string `json:"quality"`
	Reason  string `json:"reason,omitempty"`
}

// Ack records an acknowledgement.
type Ack struct {
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
}

// SilenceRef names the silence that covers an alert.
type SilenceRef struct {
	ID     string    `json:"id"`
	By     string    `json:"by"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// Event is one transition of one alert episode, as delivered on every path.
// It is self-contained: a consumer that sees only this event knows what
// fired, where, why, since when and whether anyone has taken it.
type Event struct {
	// ID identifies the episode (rule, instance, start): every event of one
	// episode carries the same ID, on every path, across restarts.
	ID string `json:"id"`
	// Seq is the ledger's sequence number of this event: strictly
	// increasing per gateway, persisted. (ID, Kind, Seq) identifies a
	// delivery; a path may deliver an event more than once, never with
	// another ID.
	Seq  uint64 `json:"seq"`
	Kind Kind   `json:"kind"`
	// State of the episode after this event.
	State    State    `json:"state"`
	Rule     string   `json:"rule"` // "pack/name"
	Class    string   `json:"class"`
	Severity Severity `json:"severity"`
	// Device is set for rules evaluated per device; Group names the
	// instance of a rule evaluated over a group of devices (by label).
	Device  string   `json:"device,omitempty"`
	Group   string   `json:"group,omitempty"`
	Devices []string `json:"devices,omitempty"` // the devices whose points the rule read
	Site    string   `json:"site"`
	Gateway string   `json:"gateway"`
	Summary string   `json:"summary"`
	// Description says what the alert means and what to do, from the
	// rule's description template; empty when the rule has none.
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	// ActiveAt is when the condition first held (the start of pending);
	// FiredAt when the for-duration was met; ResolvedAt when it cleared.
	ActiveAt   time.Time        `json:"active_at"`
	FiredAt    time.Time        `json:"fired_at,omitzero"`
	ResolvedAt time.Time        `json:"resolved_at,omitzero"`
	At         time.Time        `json:"at"` // when this event happened
	Values     map[string]Value `json:"values,omitempty"`
	// SupervisionLost is set when the rule fired (or stayed firing) because
	// its inputs were bad or stale, not because a good reading met the
	// condition: the gateway cannot see, which for a fire rule is itself
	// an alarm.
	SupervisionLost bool        `json:"supervision_lost,omitempty"`
	Ack             *Ack        `json:"ack,omitempty"`
	Silence         *SilenceRef `json:"silence,omitempty"`
}

// EpisodeID returns the stable id of an episode: a short hash of the rule,
// the instance (device or group) and the time the condition first held.
func EpisodeID(rule, instance string, activeAt time.Time) string {
	h := sha256.New()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(instance))
	h.Write([]byte{0})
	h.Write([]byte(activeAt.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(h.Sum(nil)[:10])
}

// Instance returns the device or, for group rules, the group: the second
// part of the episode's identity.
func (e *Event) Instance() string {
	if e.Device != "" {
		return e.Device
	}
	return e.Group
}

// Marshal encodes e as the JSON every path carries.
func (e *Event) Marshal() []byte {
	b, err := json.Marshal(e)
	if err != nil { // only unsupported types fail; Event has none
		panic("alert: marshal event: " + err.Error())
	}
	return b
}

// Unmarshal decodes an event encoded by Marshal.
func Unmarshal(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("alert: decode event: %w", err)
	}
	if e.ID == "" || e.Rule == "" || e.Kind == "" {
		return Event{}, fmt.Errorf("alert: decode event: missing id, rule or kind")
	}
	return e, nil
}

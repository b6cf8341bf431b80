package mqtt

// The wire contract between facgw and MQTT consumers. docs/mqtt.md documents
// exactly this; a change here is a change for every dashboard and historian
// subscribed to facgw, so change both together.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/facgw/facgw/internal/point"
)

// QoS is the MQTT quality of service of everything facgw publishes: at least
// once. Consumers must subscribe with QoS 1 too, or the broker downgrades
// delivery to them to at most once.
const QoS byte = 1

// Gateway states carried by the status message.
const (
	StateOnline  = "online"
	StateOffline = "offline"
)

// StatusInfo names this gateway on the wire and describes it in the retained
// status message.
type StatusInfo struct {
	// Prefix is the first topic levels; empty means "facgw/<Site>".
	Prefix string
	// Site and Gateway are the site and gateway ids of the config.
	Site    string
	Gateway string
	// Version is facgw's version, for the status message.
	Version string
	// Started is when this gateway process started.
	Started time.Time
}

// Validate checks that the prefix and ids make valid topics: no wildcards,
// no empty levels, no leading '$' (reserved for brokers).
func (s StatusInfo) Validate() error {
	var errs []error
	if s.Prefix == "" {
		if err := checkLevel("site", s.Site); err != nil {
			errs = append(errs, err)
		}
	} else {
		for _, l := range strings.Split(s.Prefix, "/") {
			if err := checkLevel("prefix", l); err != nil {
				errs = append(errs, fmt.Errorf("%w (in %q)", err, s.Prefix))
				break
			}
		}
	}
	if err := checkLevel("gateway", s.Gateway); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	return nil
}

// checkLevel reports whether s can be one topic level of a published topic.
func checkLevel(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s: empty topic level", what)
	case strings.ContainsAny(s, "/+#\x00"):
		return fmt.Errorf("%s %q: a topic level may not contain '/', '+', '#' or NUL", what, s)
	case strings.HasPrefix(s, "$"):
		return fmt.Errorf("%s %q: topics starting with '$' are reserved for brokers", what, s)
	}
	return nil
}

// Topics builds the topics of one gateway. The zero value is not usable;
// get one from [StatusInfo.Topics].
type Topics struct {
	base string // "<prefix>/<gateway>"
}

// Topics returns the topics of this gateway. Call Validate first.
func (s StatusInfo) Topics() Topics {
	prefix := s.Prefix
	if prefix == "" {
		prefix = "facgw/" + s.Site
	}
	return Topics{base: prefix + "/" + s.Gateway}
}

// Base returns "<prefix>/<gateway>", the root of everything this gateway
// publishes.
func (t Topics) Base() string { return t.base }

// Status returns "<prefix>/<gateway>/status": retained, QoS 1, also the last
// will.
func (t Topics) Status() string { return t.base + "/status" }

// Telemetry returns "<prefix>/<gateway>/telemetry/<device>": QoS 1, not
// retained, one message per poll.
func (t Topics) Telemetry(device string) string { return t.base + "/telemetry/" + device }

// State returns "<prefix>/<gateway>/state/<device>": QoS 1, retained, the
// device's latest full state.
func (t Topics) State(device string) string { return t.base + "/state/" + device }

// Alerts returns "<prefix>/<gateway>/alerts", the root of the alert topics
// (AlertEvents, AlertActive).
func (t Topics) Alerts() string { return t.base + "/alerts" }

// Loadshed returns "<prefix>/<gateway>/loadshed", reserved for load-shed
// decisions and their audit (a later issue); nothing is published below it
// yet.
func (t Topics) Loadshed() string { return t.base + "/loadshed" }

// Status is the payload of the status topic and of the last will.
type Status struct {
	Gateway string    `json:"gateway"`
	Site    string    `json:"site"`
	State   string    `json:"state"` // StateOnline or StateOffline
	Version string    `json:"version"`
	Started time.Time `json:"started"`
}

// statusPayload encodes the status message for state.
func (s StatusInfo) statusPayload(state string) []byte {
	b, err := json.Marshal(Status{Gateway: s.Gateway, Site: s.Site, State: state, Version: s.Version, Started: s.Started.UTC()})
	if err != nil { // strings and a time: cannot fail
		panic("mqtt: encode status: " + err.Error())
	}
	return b
}

// Telemetry is the payload of a telemetry topic as a consumer decodes it:
// the points of one poll of one of the device's poll groups.
type Telemetry struct {
	Gateway string `json:"gateway"`
	Device  string `json:"device"`
	// Seq is the device's sequence number: +1 per message, the same on
	// every broker, never reused (also across restarts).
	Seq uint64 `json:"seq"`
	// Time is the time of the poll (the newest point time), UTC.
	Time time.Time `json:"time"`
	// Restart is true on the first message of a device after facgw
	// restarted without a clean shutdown; seqs between PrevSeq and Seq
	// were skipped on purpose (see docs/mqtt.md).
	Restart bool `json:"restart,omitempty"`
	// PrevSeq is set with Restart: the last seq of this device that facgw
	// knows it issued before the crash.
	PrevSeq *uint64     `json:"prev_seq,omitempty"`
	Points  []WirePoint `json:"points"`
}

// State is the payload of a device's retained state topic: every point of
// the device, merged across poll groups, each with its own time and quality.
type State struct {
	Gateway string `json:"gateway"`
	Device  string `json:"device"`
	// Seq and Time are those of the telemetry message that last changed
	// this state.
	Seq    uint64      `json:"seq"`
	Time   time.Time   `json:"time"`
	Points []WirePoint `json:"points"`
}

// WirePoint is one point as a consumer decodes it. facgw encodes points
// with point.Point's MarshalJSON, minus the device (it is in the message).
type WirePoint struct {
	Name string `json:"name"`
	// Value is a number, a bool, a string (text, or an enum's name) or
	// null (a value JSON cannot carry, such as NaN).
	Value any `json:"value"`
	// Code is an enum's numeric value.
	Code *float64 `json:"code,omitempty"`
	Unit string   `json:"unit,omitempty"`
	// Time is the time of the poll that produced the value.
	Time time.Time `json:"time"`
	// Quality is "good", "stale" or "bad"; Reason says why if not good.
	Quality string `json:"quality"`
	Reason  string `json:"reason,omitempty"`
}

// The encoding side of Telemetry and State. Points marshal themselves
// (point.Point.MarshalJSON, called once per point and reused for the state
// message); the envelope is appended by hand in the field order above, so
// the polling path pays neither reflection nor the re-validation
// encoding/json applies to every Marshaler's output.

// encodePoint is p's JSON without the device, which is in the envelope.
func encodePoint(p point.Point) ([]byte, error) {
	p.Device = ""
	return p.MarshalJSON()
}

// jsonString returns s as a JSON string literal.
func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always encodes
	return b
}

// appendEnvelope appends {"gateway":..,"device":..,"seq":..,"time":..
// (gateway and device already JSON literals), restart and prev_seq when
// set, then ,"points":[ the points ]}.
func appendEnvelope(dst, gateway, device []byte, seq uint64, t time.Time, restart bool, prev uint64, points [][]byte) []byte {
	dst = append(dst, `{"gateway":`...)
	dst = append(dst, gateway...)
	dst = append(dst, `,"device":`...)
	dst = append(dst, device...)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano) // as time.Time.MarshalJSON
	dst = append(dst, '"')
	if restart {
		dst = append(dst, `,"restart":true,"prev_seq":`...)
		dst = strconv.AppendUint(dst, prev, 10)
	}
	dst = append(dst, `,"points":[`...)
	for i, p := range points {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, p...)
	}
	return append(dst, "]}"...)
}

package ruletest

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/rules"
)

// Replay formats.
const (
	FormatCSV      = "csv"
	FormatMQTTJSON = "mqtt-json"
)

// Replay feeds recorded points through the rules, as the gateway would
// have fed them live, and writes one line per alert event:
//
//	2026-11-26T12:00:16Z firing fire/liion-offgas@bms-1 critical Off-gas 120 ppm on bms-1
//
// Formats:
//
//   - "csv": rows time,device,point,value[,quality[,unit]] with RFC 3339
//     times; an optional header row starts with "time"; lines starting with
//     # are comments. A value of true or false is a bool, a number a number,
//     anything else text. quality is good (default), bad or stale,
//     optionally followed by ": reason". Consecutive rows of one device with
//     one time are one batch (one poll).
//   - "mqtt-json": one telemetry message per line, as docs/mqtt.md
//     describes (the envelope with device and points); each message is one
//     batch. Lines as mosquitto_sub -v prints them ("topic payload") are
//     accepted, and only telemetry topics are used, since a retained state
//     message repeats points already seen.
//
// After each batch the engine is ticked at the batch's time, standing in
// for the gateway's periodic tick, so for-durations complete at the first
// recorded time after they elapse. Points of devices not in devices are
// ignored. The first malformed line stops the replay with an error naming
// it.
func Replay(rs *rules.RuleSet, devices []rules.Device, in io.Reader, format string, out io.Writer) error {
	e, err := rules.NewEngine(rs, devices, rules.Options{})
	if err != nil {
		return err
	}
	feed := func(batch []point.Point) error {
		var t time.Time
		for _, p := range batch {
			if p.Time.After(t) {
				t = p.Time
			}
		}
		evs := e.Feed(batch)
		evs = append(evs, e.Tick(t)...)
		for _, ev := range evs {
			if _, err := io.WriteString(out, TimelineLine(ev)+"\n"); err != nil {
				return fmt.Errorf("replay: %w", err)
			}
		}
		return nil
	}
	switch format {
	case FormatCSV:
		return replayCSV(in, feed)
	case FormatMQTTJSON:
		return replayMQTT(in, feed)
	}
	return fmt.Errorf("replay: unknown format %q (want %s or %s)", format, FormatCSV, FormatMQTTJSON)
}

// TimelineLine is how Replay prints an event: time, kind, rule@instance,
// severity, summary, and "(supervision lost)" when set.
func TimelineLine(ev alert.Event) string {
	s := fmt.Sprintf("%s %s %s %s %s", ev.At.UTC().Format(time.RFC3339Nano), ev.Kind, alertName(ev.Rule, ev.Instance()), ev.Severity, ev.Summary)
	if ev.SupervisionLost {
		s += " (supervision lost)"
	}
	return s
}

func replayCSV(in io.Reader, feed func([]point.Point) error) error {
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	r.Comment = '#'
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	var batch []point.Point
	first := true
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if first && len(rec) > 0 && strings.EqualFold(rec[0], "time") {
			first = false
			continue
		}
		first = false
		p, err := csvPoint(rec)
		if err != nil {
			return fmt.Errorf("replay: line %d: %w", line, err)
		}
		if len(batch) > 0 && (batch[0].Device != p.Device || !batch[0].Time.Equal(p.Time)) {
			if err := feed(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		batch = append(batch, p)
	}
	if len(batch) > 0 {
		return feed(batch)
	}
	return nil
}

func csvPoint(rec []string) (point.Point, error) {
	if len(rec) < 4 || len(rec) > 6 {
		return point.Point{}, fmt.Errorf("want time,device,point,value[,quality[,unit]], got %d fields", len(rec))
	}
	t, err := time.Parse(time.RFC3339Nano, rec[0])
	if err != nil {
		return point.Point{}, fmt.Errorf("time %q is not RFC 3339", rec[0])
	}
	p := point.Point{Time: t.UTC(), Device: rec[1], Name: rec[2]}
	if p.Device == "" || p.Name == "" {
		return point.Point{}, fmt.Errorf("device and point must not be empty")
	}
	switch v := rec[3]; v {
	case "true", "false":
		p.Kind = point.Bool
		if v == "true" {
			p.Num = 1
		}
	default:
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			p.Num = f
		} else {
			p.Kind, p.Str = point.String, v
		}
	}
	if len(rec) > 4 && rec[4] != "" {
		q, reason, _ := strings.Cut(rec[4], ":")
		if err := p.Quality.UnmarshalText([]byte(strings.TrimSpace(q))); err != nil {
			return point.Point{}, fmt.Errorf("quality %q: want good, bad or stale", rec[4])
		}
		p.Reason = strings.TrimSpace(reason)
		if p.Quality != point.Good && p.Reason == "" {
			p.Reason = p.Quality.String() + " (replay)"
		}
	}
	if len(rec) > 5 {
		p.Unit = point.Unit(rec[5])
		if !p.Unit.Known() {
			return point.Point{}, fmt.Errorf("unknown unit %q", rec[5])
		}
	}
	return p, nil
}

// telemetry is the part of a telemetry message (docs/mqtt.md) replay
// needs.
type telemetry struct {
	Device string      `json:"device"`
	Points []wirePoint `json:"points"`
}

type wirePoint struct {
	Name    string          `json:"name"`
	Value   json.RawMessage `json:"value"`
	Code    *float64        `json:"code"`
	Unit    string          `json:"unit"`
	Time    time.Time       `json:"time"`
	Quality string          `json:"quality"`
	Reason  string          `json:"reason"`
}

func replayMQTT(in io.Reader, feed func([]point.Point) error) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	var batch []point.Point
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if b[0] != '{' {
			// mosquitto_sub -v: "topic payload".
			topic, payload, ok := bytes.Cut(b, []byte(" "))
			if !ok || !bytes.Contains(topic, []byte("/telemetry/")) {
				continue
			}
			b = bytes.TrimSpace(payload)
		}
		var m telemetry
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("replay: line %d: %w", line, err)
		}
		if m.Device == "" || m.Points == nil {
			continue // a status message, or not ours
		}
		batch = batch[:0]
		for _, wp := range m.Points {
			p, err := wirePointToPoint(m.Device, &wp)
			if err != nil {
				return fmt.Errorf("replay: line %d: point %q: %w", line, wp.Name, err)
			}
			batch = append(batch, p)
		}
		if len(batch) > 0 {
			if err := feed(batch); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("replay: line %d: %w", line+1, err)
	}
	return nil
}

func wirePointToPoint(device string, wp *wirePoint) (point.Point, error) {
	p := point.Point{Device: device, Name: wp.Name, Unit: point.Unit(wp.Unit), Time: wp.Time.UTC(), Reason: wp.Reason}
	if wp.Name == "" {
		return p, fmt.Errorf("no name")
	}
	if err := p.Quality.UnmarshalText([]byte(wp.Quality)); err != nil {
		return p, fmt.Errorf("quality %q: want good, bad or stale", wp.Quality)
	}
	var v any
	if len(wp.Value) > 0 {
		if err := json.Unmarshal(wp.Value, &v); err != nil {
			return p, err
		}
	}
	switch v := v.(type) {
	case nil: // NaN or an infinity on the wire
		p.Num = math.NaN()
	case bool:
		p.Kind = point.Bool
		if v {
			p.Num = 1
		}
	case float64:
		p.Num = v
		if wp.Code != nil { // an enum without a name for its code
			p.Kind, p.Num = point.Enum, *wp.Code
		}
	case string:
		if wp.Code != nil {
			p.Kind, p.Num, p.Str = point.Enum, *wp.Code, v
		} else {
			p.Kind, p.Str = point.String, v
		}
	default:
		return p, fmt.Errorf("value %s is not a number, bool, string or null", wp.Value)
	}
	return p, nil
}

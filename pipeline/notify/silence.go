package notify

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/facgw/facgw/internal/alert"
)

// Matchers select the alerts a silence covers. Every field that is set
// must match (an empty field matches anything); at least one must be set.
type Matchers struct {
	// Rule is a rule name "pack/name", or "pack/*" for every rule of a
	// pack.
	Rule   string `json:"rule,omitempty"`
	Device string `json:"device,omitempty"`
	Group  string `json:"group,omitempty"`
	Class  string `json:"class,omitempty"`
	// Labels must each be present on the alert with this value.
	Labels map[string]string `json:"labels,omitempty"`
}

// Matches reports whether ev is selected by m (severity and time aside).
func (m *Matchers) Matches(ev *alert.Event) bool {
	if m.Rule != "" {
		if pack, ok := strings.CutSuffix(m.Rule, "/*"); ok {
			if !strings.HasPrefix(ev.Rule, pack+"/") {
				return false
			}
		} else if ev.Rule != m.Rule {
			return false
		}
	}
	if (m.Device != "" && ev.Device != m.Device) || (m.Group != "" && ev.Group != m.Group) || (m.Class != "" && ev.Class != m.Class) {
		return false
	}
	for k, v := range m.Labels {
		if got, ok := ev.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func (m *Matchers) empty() bool {
	return m.Rule == "" && m.Device == "" && m.Group == "" && m.Class == "" && len(m.Labels) == 0
}

// check reports a malformed matcher.
func (m *Matchers) check() error {
	if m.empty() {
		return errors.New("no matchers: a silence must name a rule, device, group, class or label")
	}
	if m.Rule != "" {
		pack, rest, ok := strings.Cut(m.Rule, "/")
		if !ok || pack == "" || rest == "" || strings.Contains(rest, "/") ||
			strings.Contains(pack, "*") || (rest != "*" && strings.Contains(rest, "*")) {
			return fmt.Errorf("rule %q: want \"pack/name\" or \"pack/*\"", m.Rule)
		}
	}
	for k := range m.Labels {
		if k == "" {
			return errors.New("label matcher with an empty name")
		}
	}
	return nil
}

// Silence marks matching alerts as silenced for a while, with a reason
// and the person who set it.
//
// A silence does not stop an alert: a silenced alert is still recorded and
// delivered on every path, carrying a SilenceRef, and consumers route
// silenced events to a quieter channel. A facility gateway must not
// swallow a fire alarm because someone silenced a noisy sensor next to it.
//
// Severity is a ceiling: the silence never covers an alert of a higher
// severity, so a new, worse alert matching the same matchers is not
// hidden.
type Silence struct {
	// ID is assigned by AddSilence when empty.
	ID       string   `json:"id"`
	Matchers Matchers `json:"matchers"`
	// Severity is the highest severity covered; AddSilence defaults it to
	// the highest severity among the active alerts it matches (at least
	// warning).
	Severity alert.Severity `json:"severity"`
	// Until is when the silence ends; at most LedgerOptions.MaxSilence
	// after Created.
	Until time.Time `json:"until"`
	// Reason and By are required: someone must answer for every silence.
	Reason string `json:"reason"`
	By     string `json:"by"`
	// Created is set by AddSilence when zero.
	Created time.Time `json:"created"`
}

// Covers reports whether s covers ev at now: the matchers select it, its
// severity is within the ceiling and the silence has not ended.
func (s *Silence) Covers(ev *alert.Event, now time.Time) bool {
	return ev.Severity <= s.Severity && now.Before(s.Until) && s.Matchers.Matches(ev)
}

func (s *Silence) ref() *alert.SilenceRef {
	return &alert.SilenceRef{ID: s.ID, By: s.By, Until: s.Until, Reason: s.Reason}
}

// coveringLocked returns the oldest silence covering ev at now: the oldest,
// so that adding a silence never changes the stamp of an episode already
// silenced.
func (l *Ledger) coveringLocked(ev *alert.Event, now time.Time) *Silence {
	for i := range l.st.silences {
		if l.st.silences[i].Covers(ev, now) {
			return &l.st.silences[i]
		}
	}
	return nil
}

// Silences returns the silences in force (not yet pruned), oldest first.
func (l *Ledger) Silences() []Silence {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.st.silences)
}

// AddSilence checks and stores s and records a KindSilenced event for each
// active episode it now covers that no other silence covered. It returns
// the stored silence (with its ID, Severity and Created set) and the
// events. Reason and By are required; Until must be after Created (now when
// zero) and at most MaxSilence after it; a given ID must be new.
func (l *Ledger) AddSilence(s Silence) (Silence, []alert.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Silence{}, nil, ErrLedgerClosed
	}
	now := l.opts.Now()
	if s.Created.IsZero() {
		s.Created = now
	}
	s.Created, s.Until = s.Created.UTC(), s.Until.UTC()
	if err := l.checkSilenceLocked(&s); err != nil {
		return Silence{}, nil, fmt.Errorf("notify: silence: %w", err)
	}
	if s.ID == "" {
		s.ID = newSilenceID()
	}
	if s.Severity == 0 {
		s.Severity = alert.Warning
		for _, ev := range l.st.active {
			if s.Matchers.Matches(&ev) && ev.Severity > s.Severity {
				s.Severity = ev.Severity
			}
		}
	}
	saved := l.st.clone()
	l.st.silences = append(l.st.silences, s)
	var out []alert.Event
	for _, cur := range l.activeBySeqLocked() {
		if cur.Silence != nil || !s.Covers(&cur, now) {
			continue
		}
		ev := cur
		ev.Kind, ev.At = alert.KindSilenced, now
		rec, _ := l.applyLocked(ev, now)
		out = append(out, rec)
	}
	if err := l.persistLocked(); err != nil {
		l.st = saved
		return Silence{}, nil, err
	}
	l.log.Info("notify: silence added", "silence", s.ID, "by", s.By, "until", s.Until, "severity", s.Severity,
		"reason", s.Reason, "covers", len(out))
	return s, out, nil
}

func (l *Ledger) checkSilenceLocked(s *Silence) error {
	var problems []string
	if strings.TrimSpace(s.Reason) == "" {
		problems = append(problems, "reason is required")
	}
	if strings.TrimSpace(s.By) == "" {
		problems = append(problems, "by is required (who sets the silence)")
	}
	if err := s.Matchers.check(); err != nil {
		problems = append(problems, err.Error())
	}
	switch {
	case s.Until.IsZero():
		problems = append(problems, "until is required")
	case !s.Until.After(s.Created):
		problems = append(problems, fmt.Sprintf("until %s is not in the future", s.Until.Format(time.RFC3339)))
	case s.Until.Sub(s.Created) > l.opts.MaxSilence:
		problems = append(problems, fmt.Sprintf("until %s is more than the maximum of %s away", s.Until.Format(time.RFC3339), l.opts.MaxSilence))
	}
	if s.Severity != 0 && (s.Severity < alert.Info || s.Severity > alert.Critical) {
		problems = append(problems, fmt.Sprintf("severity %s (want one of %s)", s.Severity, strings.Join(alert.Severities, ", ")))
	}
	if s.ID != "" && slices.ContainsFunc(l.st.silences, func(o Silence) bool { return o.ID == s.ID }) {
		problems = append(problems, fmt.Sprintf("id %q already exists", s.ID))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// RemoveSilence ends silence id on behalf of by, and records for each
// active episode it covered a KindUnsilenced event (or KindSilenced, with
// the new reference, when another silence covers it).
func (l *Ledger) RemoveSilence(id, by string) ([]alert.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrLedgerClosed
	}
	if strings.TrimSpace(by) == "" {
		return nil, fmt.Errorf("notify: remove silence %q: by is required (who removes it)", id)
	}
	i := slices.IndexFunc(l.st.silences, func(s Silence) bool { return s.ID == id })
	if i < 0 {
		return nil, fmt.Errorf("notify: remove silence %q: %w", id, ErrUnknownSilence)
	}
	saved := l.st.clone()
	l.st.silences = slices.Delete(l.st.silences, i, i+1)
	out := l.releaseLocked(map[string]bool{id: true}, l.opts.Now())
	if err := l.persistLocked(); err != nil {
		l.st = saved
		return nil, err
	}
	l.log.Info("notify: silence removed", "silence", id, "by", by, "uncovered", len(out))
	return out, nil
}

// PruneSilences removes the silences that ended by now and records
// KindUnsilenced events for the episodes they covered (KindSilenced when
// another silence still covers one). The Dispatcher calls it every second.
func (l *Ledger) PruneSilences(now time.Time) ([]alert.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrLedgerClosed
	}
	ended := map[string]bool{}
	for _, s := range l.st.silences {
		if !now.Before(s.Until) {
			ended[s.ID] = true
		}
	}
	if len(ended) == 0 {
		return nil, nil
	}
	saved := l.st.clone()
	l.st.silences = slices.DeleteFunc(l.st.silences, func(s Silence) bool { return ended[s.ID] })
	out := l.releaseLocked(ended, now)
	if err := l.persistLocked(); err != nil {
		l.st = saved
		return nil, err
	}
	for id := range ended {
		l.log.Info("notify: silence expired", "silence", id)
	}
	return out, nil
}

// releaseLocked records the events of the active episodes whose silence is
// one of gone (already removed from the state).
func (l *Ledger) releaseLocked(gone map[string]bool, now time.Time) []alert.Event {
	var out []alert.Event
	for _, cur := range l.activeBySeqLocked() {
		if cur.Silence == nil || !gone[cur.Silence.ID] {
			continue
		}
		ev := cur
		ev.At = now
		ev.Kind = alert.KindUnsilenced
		if l.coveringLocked(&ev, now) != nil {
			ev.Kind = alert.KindSilenced
		}
		rec, _ := l.applyLocked(ev, now)
		out = append(out, rec)
	}
	return out
}

// activeBySeqLocked returns the active episodes in the order they were last
// updated, so events derived from them come out in a stable order.
func (l *Ledger) activeBySeqLocked() []alert.Event {
	out := make([]alert.Event, 0, len(l.st.active))
	for _, ev := range l.st.active {
		out = append(out, ev)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// newSilenceID returns a random id: silences are created by people through
// the API, rarely, and must not collide across gateways.
func newSilenceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

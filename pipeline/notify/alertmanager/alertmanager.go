// Package alertmanager delivers facgw alert events to Prometheus
// Alertmanager through its API v2 (POST /api/v2/alerts). It is a
// notify.Sender: a notify.Path owns its outbox, retries and goroutine.
//
// Alertmanager keeps an alert until its endsAt and forgets it then, so a
// firing alert is posted with endsAt four re-send intervals ahead (as
// Prometheus does) and the Path re-sends every active alert each interval:
// if the gateway dies, its alerts expire in Alertmanager instead of firing
// forever. A resolved alert is posted with endsAt = its ResolvedAt.
//
// Several URLs are the members of one Alertmanager cluster: every request
// goes to each of them, and it succeeds when at least one accepted it
// (the members gossip among themselves).
package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/pipeline/notify"
)

// Defaults of Options.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultResendEvery = time.Minute
)

// Options configures a Sender.
type Options struct {
	// URLs are the base URLs of the members of one Alertmanager cluster
	// ("http://am-1:9093", with a path prefix if Alertmanager runs with
	// --web.route-prefix). Credentials go in Username/Password or
	// BearerToken, never in the URL (it is logged).
	URLs []string
	// Timeout bounds one HTTP request (default DefaultTimeout).
	Timeout time.Duration
	// ResendEvery is how often the active alerts are posted again
	// (default DefaultResendEvery); a firing alert's endsAt is 4 x
	// ResendEvery after it was posted.
	ResendEvery time.Duration
	// Username and Password are HTTP basic auth; BearerToken an
	// Authorization bearer token. At most one of the two.
	Username    string
	Password    config.Secret
	BearerToken config.Secret
	// CAFile is a PEM bundle of the CAs trusted for https URLs; empty
	// means the system roots.
	CAFile string
	// GeneratorURL is set as every alert's generatorURL (the gateway's
	// dashboard), so Alertmanager's UI links back to it.
	GeneratorURL string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Sender posts alert events to Alertmanager. It implements notify.Sender,
// notify.Resender, notify.Prober and notify.HealthDetailer; it is safe for
// concurrent use.
type Sender struct {
	opts   Options
	client *http.Client
	bases  []string // URLs without a trailing slash, for requests and messages

	mu     sync.Mutex
	status map[string]string // per base URL: "ok" or the last error
}

var (
	_ notify.Sender         = (*Sender)(nil)
	_ notify.Resender       = (*Sender)(nil)
	_ notify.Prober         = (*Sender)(nil)
	_ notify.HealthDetailer = (*Sender)(nil)
)

// New checks opts and reads the CA file; it does no network I/O.
func New(opts Options) (*Sender, error) {
	if len(opts.URLs) == 0 {
		return nil, errors.New("alertmanager: no url")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.ResendEvery <= 0 {
		opts.ResendEvery = DefaultResendEvery
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Password.IsSet() && opts.Username == "" {
		return nil, errors.New("alertmanager: password without username")
	}
	if opts.Username != "" && opts.BearerToken.IsSet() {
		return nil, errors.New("alertmanager: give basic auth (username, password) or a bearer token, not both")
	}
	s := &Sender{opts: opts, status: map[string]string{}}
	seen := map[string]bool{}
	for i, raw := range opts.URLs {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			return nil, fmt.Errorf("alertmanager: urls[%d]: %w", i, err)
		case u.Scheme != "http" && u.Scheme != "https":
			return nil, fmt.Errorf("alertmanager: urls[%d] %q: scheme must be http or https", i, raw)
		case u.Host == "":
			return nil, fmt.Errorf("alertmanager: urls[%d] %q: no host", i, raw)
		case u.User != nil:
			return nil, fmt.Errorf("alertmanager: urls[%d]: credentials in the url; use username/password or bearer_token", i)
		case u.RawQuery != "" || u.Fragment != "":
			return nil, fmt.Errorf("alertmanager: urls[%d] %q: a base url has no query or fragment", i, raw)
		}
		base := strings.TrimSuffix(u.String(), "/")
		if seen[base] {
			return nil, fmt.Errorf("alertmanager: urls[%d] %q: listed twice", i, raw)
		}
		seen[base] = true
		s.bases = append(s.bases, base)
	}
	client, err := notify.HTTPClient(opts.CAFile, opts.Timeout)
	if err != nil {
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	s.client = client
	return s, nil
}

// ResendEvery implements notify.Resender.
func (s *Sender) ResendEvery() time.Duration { return s.opts.ResendEvery }

// Send posts evs (the latest event per episode) to every URL; see the
// package documentation. It fails when no URL accepted them, retryably
// unless every URL refused them with a 4xx other than 408 and 429.
func (s *Sender) Send(ctx context.Context, evs []alert.Event) (bool, error) {
	return s.post(ctx, Encode(evs, s.opts.Now(), s.opts.ResendEvery, s.opts.GeneratorURL))
}

// Resend implements notify.Resender: it posts the active alerts again, so
// Alertmanager does not let them expire.
func (s *Sender) Resend(ctx context.Context, active []alert.Event) error {
	_, err := s.Send(ctx, active)
	return err
}

// Probe implements notify.Prober: GET /-/healthy on every URL; nil when at
// least one answers 200.
func (s *Sender) Probe(ctx context.Context) error {
	errs := s.each(ctx, func(ctx context.Context, base string) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/-/healthy", nil)
		if err != nil {
			return false, err
		}
		return s.do(req)
	})
	return s.outcome(errs)
}

// HealthDetail implements notify.HealthDetailer: the outcome of the last
// request to each URL.
func (s *Sender) HealthDetail() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.status))
	for k, v := range s.status {
		out[k] = v
	}
	return out
}

func (s *Sender) post(ctx context.Context, alerts []PostableAlert) (bool, error) {
	if len(alerts) == 0 {
		return false, nil
	}
	body, err := json.Marshal(alerts)
	if err != nil {
		return false, fmt.Errorf("alertmanager: encode alerts: %w", err)
	}
	errs := s.each(ctx, func(ctx context.Context, base string) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v2/alerts", bytes.NewReader(body))
		if err != nil {
			return false, err
		}
		req.Header.Set("Content-Type", "application/json")
		return s.do(req)
	})
	if err := s.outcome(errs); err != nil {
		retryable := false
		for _, e := range errs {
			retryable = retryable || e.retryable
		}
		return retryable, err
	}
	return false, nil
}

// urlErr is the outcome of one request to one URL.
type urlErr struct {
	base      string
	err       error
	retryable bool
}

// each runs call against every URL at once and records the outcomes.
func (s *Sender) each(ctx context.Context, call func(ctx context.Context, base string) (bool, error)) []urlErr {
	out := make([]urlErr, len(s.bases))
	var wg sync.WaitGroup
	for i, base := range s.bases {
		wg.Go(func() {
			retryable, err := call(ctx, base)
			out[i] = urlErr{base: base, err: err, retryable: retryable}
		})
	}
	wg.Wait()
	s.mu.Lock()
	for _, e := range out {
		if e.err == nil {
			s.status[e.base] = "ok"
		} else {
			s.status[e.base] = e.err.Error()
		}
	}
	s.mu.Unlock()
	return out
}

// outcome is nil when one URL succeeded, else an error listing each.
func (s *Sender) outcome(errs []urlErr) error {
	var msgs []string
	for _, e := range errs {
		if e.err == nil {
			return nil
		}
		msgs = append(msgs, e.err.Error())
	}
	if len(msgs) == 1 {
		return errors.New(msgs[0])
	}
	return fmt.Errorf("alertmanager: no member accepted: %s", strings.Join(msgs, "; "))
}

// do sends req with credentials and classifies the answer.
func (s *Sender) do(req *http.Request) (retryable bool, err error) {
	switch {
	case s.opts.Username != "":
		req.SetBasicAuth(s.opts.Username, s.opts.Password.Reveal())
	case s.opts.BearerToken.IsSet():
		req.Header.Set("Authorization", "Bearer "+s.opts.BearerToken.Reveal())
	}
	what := req.Method + " " + req.URL.Redacted()
	resp, err := s.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("alertmanager: %s: %w", what, unwrapURLError(err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	err = fmt.Errorf("alertmanager: %s: %s: %s", what, resp.Status, strings.TrimSpace(string(msg)))
	return Retryable(resp.StatusCode), err
}

// Retryable reports whether an HTTP status means "try again later" (408,
// 429, 5xx) rather than "this request is refused" (other 4xx, and 3xx,
// which are not followed).
func Retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// unwrapURLError drops *url.Error's repetition of method and URL, which
// the caller's message already carries.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// PostableAlert is one alert of Alertmanager's API v2 POST /api/v2/alerts.
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Encode turns events into postable alerts: the latest event (highest Seq)
// of each episode, in the order of those events. A firing episode ends
// 4 x resendEvery after now unless re-sent; a resolved one at its
// ResolvedAt. startsAt is FiredAt, as Prometheus does (ActiveAt, when the
// condition first held, is an annotation).
func Encode(evs []alert.Event, now time.Time, resendEvery time.Duration, generatorURL string) []PostableAlert {
	latest := map[string]int{}
	for i := range evs {
		if j, ok := latest[evs[i].ID]; !ok || evs[i].Seq >= evs[j].Seq {
			latest[evs[i].ID] = i
		}
	}
	idx := make([]int, 0, len(latest))
	for _, i := range latest {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]PostableAlert, 0, len(idx))
	for _, i := range idx {
		ev := &evs[i]
		a := PostableAlert{
			Labels:       Labels(ev),
			Annotations:  Annotations(ev),
			StartsAt:     ev.FiredAt,
			GeneratorURL: generatorURL,
		}
		if a.StartsAt.IsZero() {
			a.StartsAt = ev.ActiveAt
		}
		if ev.State == alert.Resolved {
			a.EndsAt = ev.ResolvedAt
			if a.EndsAt.IsZero() {
				a.EndsAt = ev.At
			}
		} else {
			a.EndsAt = now.Add(4 * resendEvery)
		}
		out = append(out, a)
	}
	return out
}

// reserved are the labels facgw sets; a rule label of the same name is
// left out so it cannot change an alert's identity.
var reserved = map[string]bool{
	"alertname": true, "rule": true, "class": true, "severity": true, "device": true,
	"group": true, "site": true, "gateway": true, "episode": true,
}

// Labels returns the Alertmanager labels of ev: its identity, stable for
// the whole episode. alertname is the rule's name without its pack, rule
// the full "pack/name"; device or group names the instance; episode is the
// episode ID. The rule's own labels follow, with names made valid for
// Alertmanager (other characters become "_").
func Labels(ev *alert.Event) map[string]string {
	name := ev.Rule
	if _, after, ok := strings.Cut(ev.Rule, "/"); ok {
		name = after
	}
	l := map[string]string{
		"alertname": name,
		"rule":      ev.Rule,
		"class":     ev.Class,
		"severity":  ev.Severity.String(),
		"site":      ev.Site,
		"gateway":   ev.Gateway,
		"episode":   ev.ID,
	}
	if ev.Device != "" {
		l["device"] = ev.Device
	} else if ev.Group != "" {
		l["group"] = ev.Group
	}
	for k, v := range ev.Labels {
		k = labelName(k)
		if v == "" || reserved[k] {
			continue
		}
		if _, dup := l[k]; !dup {
			l[k] = v
		}
	}
	for k, v := range l {
		if v == "" {
			delete(l, k) // an empty label is no label in Alertmanager
		}
	}
	return l
}

// labelName makes k a valid Alertmanager label name ([a-zA-Z_][a-zA-Z0-9_]*).
func labelName(k string) string {
	b := []byte(k)
	for i, c := range b {
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')) {
			b[i] = '_'
		}
	}
	return string(b)
}

// Annotations returns what people read about ev in Alertmanager: its
// summary, the rule's inputs (values), who acknowledged or silenced it,
// supervision_lost, and the event's kind and seq.
func Annotations(ev *alert.Event) map[string]string {
	a := map[string]string{
		"summary": ev.Summary,
		"event":   string(ev.Kind),
		"seq":     fmt.Sprint(ev.Seq),
	}
	if ev.Description != "" {
		a["description"] = ev.Description
	}
	if !ev.ActiveAt.IsZero() {
		a["active_at"] = ev.ActiveAt.UTC().Format(time.RFC3339)
	}
	if v := Values(ev.Values); v != "" {
		a["values"] = v
	}
	if len(ev.Devices) > 0 {
		a["devices"] = strings.Join(ev.Devices, ", ")
	}
	if ev.SupervisionLost {
		a["supervision_lost"] = "true"
	}
	if ack := ev.Ack; ack != nil {
		a["acknowledged_by"] = ack.By
		a["acknowledged_at"] = ack.At.UTC().Format(time.RFC3339)
		if ack.Comment != "" {
			a["acknowledged_comment"] = ack.Comment
		}
	}
	if s := ev.Silence; s != nil {
		a["silenced_by"] = s.By
		a["silence_id"] = s.ID
		a["silenced_until"] = s.Until.UTC().Format(time.RFC3339)
		a["silence_reason"] = s.Reason
	}
	for k, v := range a {
		if v == "" {
			delete(a, k)
		}
	}
	return a
}

// Values renders a rule's inputs compactly, sorted by name:
// "soc=41 % (good); temp=27.5 °C (bad: timeout)".
func Values(vs map[string]alert.Value) string {
	names := make([]string, 0, len(vs))
	for k := range vs {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		v := vs[k]
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v.Value)
		if v.Unit != "" {
			b.WriteByte(' ')
			b.WriteString(v.Unit)
		}
		if v.Quality != "" {
			b.WriteString(" (")
			b.WriteString(v.Quality)
			if v.Reason != "" {
				b.WriteString(": ")
				b.WriteString(v.Reason)
			}
			b.WriteByte(')')
		}
	}
	return b.String()
}

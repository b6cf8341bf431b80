// Package webhook delivers facgw alert events to an HTTP endpoint as signed
// JSON. It is a notify.Sender: a notify.Path owns its outbox, retries and
// goroutine.
//
// Each request is a POST of
//
//	{"version":1,"events":[<event>, ...]}
//
// (the events as alert.Event encodes them, in Seq order) with the headers
//
//	Content-Type: application/json
//	X-Facgw-Event-Ids: <id>:<seq>,<id>:<seq>,...
//	X-Facgw-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
//
// A receiver verifies the signature with Verify (or its own code: the
// HMAC of the decimal timestamp, a dot and the raw body, compared in
// constant time), rejects a timestamp older than 5 minutes as a replay, and
// answers 2xx once it has stored the events. The same event may arrive more
// than once (after a timeout, a restart of the gateway): (id, kind, seq)
// identifies a delivery, so a receiver de-duplicates on it.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/config"
	"github.com/facgw/facgw/pipeline/notify"
)

// Headers facgw sets on every request.
const (
	HeaderEventIDs  = "X-Facgw-Event-Ids"
	HeaderSignature = "X-Facgw-Signature"
)

// Version is the version of the request body.
const Version = 1

// DefaultTimeout bounds one request unless Options.Timeout says otherwise.
const DefaultTimeout = 10 * time.Second

// DefaultMaxAge is how old a signature a receiver should accept: older
// requests are replays.
const DefaultMaxAge = 5 * time.Minute

// Body is the JSON body of a request.
type Body struct {
	Version int           `json:"version"`
	Events  []alert.Event `json:"events"`
}

// Options configures a Sender.
type Options struct {
	// URL receives the POSTs (http or https); credentials go in Headers or
	// the signature, never in the URL (it is logged).
	URL string
	// Secret signs every request (X-Facgw-Signature). Without it requests
	// are not signed, and a receiver cannot tell them from forgeries.
	Secret config.Secret
	// Timeout bounds one request (default DefaultTimeout).
	Timeout time.Duration
	// Headers are added to every request (an API key of the receiver, for
	// instance); they cannot replace Content-Type or the X-Facgw headers.
	// Their values are not logged.
	Headers map[string]string
	// CAFile is a PEM bundle of the CAs trusted for an https URL; empty
	// means the system roots.
	CAFile string
	// Now is the clock of the signature (default time.Now).
	Now func() time.Time
}

// Sender posts alert events to one webhook URL. It implements
// notify.Sender; it is safe for concurrent use.
type Sender struct {
	opts    Options
	client  *http.Client
	url     string      // as given, for requests
	shown   string      // redacted, for messages
	headers http.Header // Options.Headers, canonical
}

var _ notify.Sender = (*Sender)(nil)

// New checks opts and reads the CA file; it does no network I/O.
func New(opts Options) (*Sender, error) {
	u, err := url.Parse(opts.URL)
	switch {
	case opts.URL == "":
		return nil, errors.New("webhook: no url")
	case err != nil:
		return nil, fmt.Errorf("webhook: url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("webhook: url %q: scheme must be http or https", u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("webhook: url %q: no host", u.Redacted())
	case u.User != nil:
		return nil, errors.New("webhook: credentials in the url; use the secret or headers")
	}
	if opts.Secret.IsSet() && opts.Secret.Reveal() == "" {
		return nil, errors.New("webhook: secret is empty")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sender{opts: opts, url: opts.URL, shown: u.Redacted(), headers: http.Header{}}
	for k, v := range opts.Headers {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		switch {
		case k == "" || strings.ContainsAny(k, " :\r\n"):
			return nil, fmt.Errorf("webhook: headers: %q is not a header name", k)
		case strings.ContainsAny(v, "\r\n"):
			return nil, fmt.Errorf("webhook: headers: %s: value has a line break", ck)
		case ck == "Content-Type" || ck == "Content-Length" || ck == "Host" || strings.HasPrefix(ck, "X-Facgw-"):
			return nil, fmt.Errorf("webhook: headers: %s is set by facgw", ck)
		}
		s.headers.Set(ck, v)
	}
	client, err := notify.HTTPClient(opts.CAFile, opts.Timeout)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	s.client = client
	return s, nil
}

// Send posts evs in one request. 2xx is delivered; 408, 429, 5xx and
// network errors are retryable; any other status (other 4xx, a redirect)
// is a refusal, not retryable.
func (s *Sender) Send(ctx context.Context, evs []alert.Event) (bool, error) {
	if len(evs) == 0 {
		return false, nil
	}
	body, err := json.Marshal(Body{Version: Version, Events: evs})
	if err != nil {
		return false, fmt.Errorf("webhook: encode events: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("webhook: %s: %w", s.shown, err)
	}
	for k, v := range s.headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID + ":" + strconv.FormatUint(ev.Seq, 10)
	}
	req.Header.Set(HeaderEventIDs, strings.Join(ids, ","))
	if s.opts.Secret.IsSet() {
		req.Header.Set(HeaderSignature, Sign([]byte(s.opts.Secret.Reveal()), body, s.opts.Now()))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, unredacted
		}
		return true, fmt.Errorf("webhook: POST %s: %w", s.shown, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	detail := strings.TrimSpace(string(msg))
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
		detail = "redirects to " + loc + " (configure that url instead)"
	}
	return Retryable(resp.StatusCode), fmt.Errorf("webhook: POST %s: %s: %s", s.shown, resp.Status, detail)
}

// Retryable reports whether an HTTP status means "try again later" (408,
// 429, 5xx) rather than a refusal.
func Retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// Sign returns the X-Facgw-Signature value of body at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>".
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks an X-Facgw-Signature header against the raw request body:
// the HMAC must match (compared in constant time) and the timestamp must be
// within maxAge of now, either way (DefaultMaxAge is the recommended
// value): an older request is a replay, a much newer one comes from a
// wrong clock. A header may carry several v1 values (while a secret is
// rotated); one match is enough.
func Verify(secret []byte, header string, body []byte, now time.Time, maxAge time.Duration) error {
	if len(secret) == 0 {
		return errors.New("webhook: verify: empty secret")
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("webhook: verify: malformed signature header %q", header)
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil {
				return fmt.Errorf("webhook: verify: v1 is not hex: %w", err)
			}
			sigs = append(sigs, b)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return fmt.Errorf("webhook: verify: signature header %q lacks t or v1", header)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook: verify: timestamp %q: %w", ts, err)
	}
	age := now.Sub(time.Unix(sec, 0))
	if age > maxAge {
		return fmt.Errorf("webhook: verify: signed %s ago, more than %s: a replay", age.Round(time.Second), maxAge)
	}
	if age < -maxAge {
		return fmt.Errorf("webhook: verify: signed %s in the future: check the clocks", (-age).Round(time.Second))
	}
	want := mac(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return errors.New("webhook: verify: signature does not match (wrong secret or altered body)")
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/mbserver"
	"github.com/facgw/facgw/pipeline/mqtt"
	"github.com/facgw/facgw/pipeline/notify"
	"github.com/facgw/facgw/pipeline/notify/webhook"
)

// The alarm facbench raises and clears with -alerts: bit 0 of a holding
// register of the first device, read by the rule below.
const (
	alarmDevice  = "dev-000"
	alarmPoint   = "p.alarm"
	alarmRule    = "bench/alarm"
	alarmProfile = "bench-alarm"
	benchSite    = "bench"
	benchGateway = "gw-bench"
)

// alarmRulesYAML is the site rule file of an -alerts run: the alarm fires
// on the first poll that reads the bit set and resolves on the first that
// reads it clear, so every toggle is one event.
const alarmRulesYAML = `pack: bench
rules:
  - name: alarm
    class: fire
    severity: critical
    select: {devices: [` + alarmDevice + `]}
    when: '` + alarmPoint + `'
    summary: 'facbench alarm on {{ .Device }}'
`

// alertOptions configure the detection-to-delivery measurement.
type alertOptions struct {
	// every is how often the alarm bit toggles; it must be longer than
	// the poll interval, so that no toggle goes unseen.
	every time.Duration
	// alertmanager is the Alertmanager binary to start, "" for none.
	alertmanager string
	// history is how many events are recorded in the ledger before the
	// gateway starts, so that each new event rewrites a ledger as full
	// as a busy site's (notify.DefaultRecent events of history).
	history int
	// grace is how long to wait after the run for deliveries still on
	// their way.
	grace time.Duration
	// csv, if set, receives one row per event (see writeCSV).
	csv string
}

// Path names, as the results show them.
const (
	pathWebhook      = "webhook"
	pathAlertmanager = "alertmanager"
)

func mqttPathName(i int) string { return fmt.Sprintf("mqtt b%d", i) }

// deliveries records when each event reached each path. Events are keyed
// by their ledger seq; a path that delivers a seq twice counts a duplicate
// (at-least-once delivery allows it) and keeps the first time.
type deliveries struct {
	mu      sync.Mutex
	events  map[uint64]alert.Event // the alarm's events, from the paths carrying whole events
	paths   map[string]*pathLog
	order   []string
	refused map[string]int // requests or messages a path could not take (bad signature, bad JSON)
}

type pathLog struct {
	first map[uint64]time.Time
	dups  int
}

func newDeliveries(paths ...string) *deliveries {
	d := &deliveries{events: map[uint64]alert.Event{}, paths: map[string]*pathLog{}, refused: map[string]int{}}
	for _, p := range paths {
		d.paths[p] = &pathLog{first: map[uint64]time.Time{}}
		d.order = append(d.order, p)
	}
	return d
}

// got records that path received ev at t. Events of other rules (the
// gateway's own delivery-path alerts) are not counted.
func (d *deliveries) got(path string, t time.Time, ev alert.Event) {
	if ev.Rule != alarmRule {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.events[ev.Seq]; !ok {
		d.events[ev.Seq] = ev
	}
	d.stamp(path, t, ev.Seq)
}

// gotSeq records that path confirmed the event seq at t, for paths whose
// messages do not carry the whole event (Alertmanager).
func (d *deliveries) gotSeq(path string, t time.Time, seq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stamp(path, t, seq)
}

func (d *deliveries) stamp(path string, t time.Time, seq uint64) {
	p := d.paths[path]
	if _, dup := p.first[seq]; dup {
		p.dups++
		return
	}
	p.first[seq] = t
}

func (d *deliveries) refuse(path string) {
	d.mu.Lock()
	d.refused[path]++
	d.mu.Unlock()
}

// complete reports whether at least want events were seen since from
// and every path has every one of them.
func (d *deliveries) complete(from time.Time, want int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for seq, ev := range d.events {
		if ev.At.Before(from) {
			continue
		}
		n++
		for _, p := range d.paths {
			if _, ok := p.first[seq]; !ok {
				return false
			}
		}
	}
	return n >= want
}

// pathResult is one path's figures.
type pathResult struct {
	Path string
	// Latency is receive time minus event.At (the start of the poll that
	// saw the transition); Beyond is receive time minus the end of that
	// poll as the device's server saw it.
	Latency, Beyond summary
	Missing, Dups   int
	Refused         int
}

// alertResult is what an -alerts run measured.
type alertResult struct {
	Toggles int
	Events  int
	// Earlier counts events delivered with a time before the run: none
	// are expected (no toggling during the warm-up, and the prefilled
	// history is dispatched already).
	Earlier int
	// Poll is the alarm device's poll, from its start (event.At) to the
	// last reply its server sent, for each event.
	Poll summary
	// GatewayPoll are a few samples of the gateway's own last_duration of
	// the alarm device's poll, taken after the run, for comparison.
	GatewayPoll []time.Duration
	Paths       []pathResult
}

// result computes the figures of the events at or after from. pollEnd
// gives the end of the poll that started at a given time.
func (d *deliveries) result(from time.Time, pollEnd func(start time.Time) (time.Time, bool)) alertResult {
	d.mu.Lock()
	defer d.mu.Unlock()
	var seqs []uint64
	earlier := 0
	for seq, ev := range d.events {
		if ev.At.Before(from) {
			earlier++
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	res := alertResult{Events: len(seqs), Earlier: earlier}
	var polls []time.Duration
	ends := map[uint64]time.Time{}
	for _, seq := range seqs {
		at := d.events[seq].At
		if end, ok := pollEnd(at); ok {
			polls = append(polls, end.Sub(at))
			ends[seq] = end
		}
	}
	res.Poll = summarize(polls)
	for _, name := range d.order {
		p := d.paths[name]
		r := pathResult{Path: name, Dups: p.dups, Refused: d.refused[name]}
		var lat, beyond []time.Duration
		for _, seq := range seqs {
			t, ok := p.first[seq]
			if !ok {
				r.Missing++
				continue
			}
			lat = append(lat, t.Sub(d.events[seq].At))
			if end, ok := ends[seq]; ok {
				beyond = append(beyond, t.Sub(end))
			}
		}
		r.Latency, r.Beyond = summarize(lat), summarize(beyond)
		res.Paths = append(res.Paths, r)
	}
	return res
}

// writeCSV writes one row per event since from: its seq, kind and time
// (event.at), the end of its poll, and each path's receive time, as
// milliseconds after event.at ("" where missing).
func (d *deliveries) writeCSV(w io.Writer, from time.Time, pollEnd func(start time.Time) (time.Time, bool)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var seqs []uint64
	for seq, ev := range d.events {
		if !ev.At.Before(from) {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	cw := csv.NewWriter(w)
	cw.Write(append([]string{"seq", "kind", "at", "poll_end_ms"}, d.order...))
	rel := func(t, at time.Time) string {
		return strconv.FormatFloat(float64(t.Sub(at))/float64(time.Millisecond), 'f', 3, 64)
	}
	for _, seq := range seqs {
		ev := d.events[seq]
		row := []string{strconv.FormatUint(seq, 10), string(ev.Kind), ev.At.UTC().Format(time.RFC3339Nano), ""}
		if end, ok := pollEnd(ev.At); ok {
			row[3] = rel(end, ev.At)
		}
		for _, name := range d.order {
			cell := ""
			if t, ok := d.paths[name].first[seq]; ok {
				cell = rel(t, ev.At)
			}
			row = append(row, cell)
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// print writes the results as the Markdown tables docs/benchmarks.md
// shows.
func (r alertResult) print(w io.Writer, o alertOptions, interval time.Duration) {
	fmt.Fprintf(w, "\nalerts: %s toggled every %s (%d toggles, %d events of %s, %d from before the run); poll interval %s; ledger history %d events before the start\n",
		alarmPoint, o.every, r.Toggles, r.Events, alarmRule, r.Earlier, interval, o.history)
	fmt.Fprintln(w, "\nDetection to delivery: receive time minus event.at (the start of the poll that saw the change), ms")
	fmt.Fprintln(w, "| path | events | median | p90 | p99 | max | missing | duplicates | refused |\n|---|---|---|---|---|---|---|---|---|")
	for _, p := range r.Paths {
		writeRow(w, p.Path, p.Latency, strconv.Itoa(p.Missing), strconv.Itoa(p.Dups), strconv.Itoa(p.Refused))
	}
	fmt.Fprintln(w, "\nThe poll itself (start to the last reply the device's server sent), and each path beyond it, ms")
	fmt.Fprintln(w, "| part | events | median | p90 | p99 | max |\n|---|---|---|---|---|---|")
	writeRow(w, "poll of "+alarmDevice, r.Poll)
	for _, p := range r.Paths {
		writeRow(w, p.Path+" beyond the poll", p.Beyond)
	}
	var gw []string
	for _, d := range r.GatewayPoll {
		gw = append(gw, ms(d))
	}
	fmt.Fprintf(w, "\nThe gateway's own last_duration of the poll of %s after the run (/api/v1/devices), ms: %s\n", alarmDevice, strings.Join(gw, ", "))
}

// replyLog records when the alarm device's server sent each reply, so the
// end of the poll that saw a transition is known on this machine's clock.
type replyLog struct {
	mu    sync.Mutex
	times []time.Time
}

func (r *replyLog) add(t time.Time) {
	r.mu.Lock()
	r.times = append(r.times, t)
	r.mu.Unlock()
}

// pollEnd returns the last reply sent in [start, start+within): the end
// of the poll that started at start. within must be shorter than the
// time between polls (their ticks jitter: the next poll may start a little
// less than an interval later) and longer than a poll.
func (r *replyLog) pollEnd(start time.Time, within time.Duration) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, _ := slices.BinarySearchFunc(r.times, start, func(t, s time.Time) int { return t.Compare(s) })
	var end time.Time
	for ; i < len(r.times) && r.times[i].Before(start.Add(within)); i++ {
		end = r.times[i]
	}
	return end, !end.IsZero()
}

// stampListener wraps the alarm device's listener so that every reply
// written is logged.
type stampListener struct {
	net.Listener
	log *replyLog
}

func (l stampListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return stampConn{Conn: c, log: l.log}, nil
}

type stampConn struct {
	net.Conn
	log *replyLog
}

func (c stampConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.log.add(time.Now())
	return n, err
}

// toggle flips the alarm bit every period until ctx ends and returns how
// often it did.
func toggle(ctx context.Context, mem *mbserver.Memory, addr uint16, every time.Duration) int {
	t := time.NewTicker(every)
	defer t.Stop()
	on, n := false, 0
	for {
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
			on = !on
			v := uint16(0)
			if on {
				v = 1
			}
			if err := mem.SetRegisters(1, mbserver.HoldingRegisters, addr, v); err != nil {
				fmt.Fprintln(os.Stderr, "facbench: toggle the alarm:", err)
				return n
			}
			n++
		}
	}
}

// webhookReceiver is the webhook path's destination: it verifies each
// request's signature, as a real receiver must, and records the events.
type webhookReceiver struct {
	secret []byte
	d      *deliveries
}

func (r *webhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 4<<20))
	now := time.Now() // the whole request is in
	if err == nil {
		err = webhook.Verify(r.secret, req.Header.Get(webhook.HeaderSignature), body, now, webhook.DefaultMaxAge)
	}
	var msg webhook.Body
	if err == nil {
		err = json.Unmarshal(body, &msg)
	}
	if err != nil {
		r.d.refuse(pathWebhook)
		http.Error(w, "facbench: "+err.Error(), http.StatusUnauthorized)
		return
	}
	for _, ev := range msg.Events {
		r.d.got(pathWebhook, now, ev)
	}
	w.WriteHeader(http.StatusNoContent)
}

// amProxy stands between the gateway and Alertmanager and records when
// Alertmanager confirmed (2xx) each posted event: what the gateway's
// Alertmanager path counts as delivered. The gateway does not expose that
// moment itself, and polling Alertmanager's API would add the polling
// period to every figure. The proxy adds one loopback hop.
type amProxy struct {
	target string
	client *http.Client
	d      *deliveries
}

func (p *amProxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 4<<20))
	if err != nil {
		http.Error(w, "facbench: proxy: "+err.Error(), http.StatusBadRequest)
		return
	}
	out, err := http.NewRequestWithContext(req.Context(), req.Method, p.target+req.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "facbench: proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = req.Header.Clone()
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(w, "facbench: proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	rb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	now := time.Now()
	if err != nil {
		http.Error(w, "facbench: proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	if req.Method == http.MethodPost && req.URL.Path == "/api/v2/alerts" && resp.StatusCode/100 == 2 {
		seqs, err := alarmSeqs(body)
		if err != nil {
			p.d.refuse(pathAlertmanager)
		}
		for _, s := range seqs {
			p.d.gotSeq(pathAlertmanager, now, s)
		}
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(rb)
}

// alarmSeqs returns the seqs of the alarm's events in a POST
// /api/v2/alerts body (the gateway puts the seq in the "seq" annotation
// and the rule in the "rule" label).
func alarmSeqs(body []byte) ([]uint64, error) {
	var alerts []struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(body, &alerts); err != nil {
		return nil, fmt.Errorf("facbench: alertmanager body: %w", err)
	}
	var seqs []uint64
	for i, a := range alerts {
		if a.Labels["rule"] != alarmRule {
			continue
		}
		s, err := strconv.ParseUint(a.Annotations["seq"], 10, 64)
		if err != nil {
			return seqs, fmt.Errorf("facbench: alertmanager body: alert %d: seq annotation %q: %w", i, a.Annotations["seq"], err)
		}
		seqs = append(seqs, s)
	}
	return seqs, nil
}

// serve serves h on a free loopback port until the returned stop.
func serve(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// subscribe receives the gateway's alert events from one broker, as a
// consumer of the MQTT path would, and returns once the subscription is
// in place.
func subscribe(path, brokerURL, topic string, d *deliveries) (stop func(), err error) {
	handler := func(_ paho.Client, m paho.Message) {
		now := time.Now()
		ev, err := alert.Unmarshal(m.Payload())
		if err != nil {
			d.refuse(path)
			return
		}
		d.got(path, now, ev)
	}
	subscribed := make(chan error, 1)
	opts := paho.NewClientOptions().AddBroker(brokerURL).SetClientID("facbench-" + strings.ReplaceAll(path, " ", "-")).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectTimeout(10 * time.Second)
	opts.SetOnConnectHandler(func(c paho.Client) {
		tok := c.Subscribe(topic, 1, handler)
		tok.WaitTimeout(10 * time.Second)
		select {
		case subscribed <- tok.Error():
		default:
		}
	})
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("facbench: subscribe to %s: connect: %v", brokerURL, tok.Error())
	}
	select {
	case err := <-subscribed:
		if err != nil {
			c.Disconnect(0)
			return nil, fmt.Errorf("facbench: subscribe to %s: %w", brokerURL, err)
		}
	case <-time.After(15 * time.Second):
		c.Disconnect(0)
		return nil, fmt.Errorf("facbench: subscribe to %s: no SUBACK", brokerURL)
	}
	return func() { c.Disconnect(100) }, nil
}

// startAlertmanager starts a real Alertmanager on a free loopback port,
// with its config and storage under dir, routing every alert to a
// receiver without integrations, and returns once it is ready.
func startAlertmanager(bin, dir string) (url string, stop func(), err error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte("route: {receiver: blackhole}\nreceivers: [{name: blackhole}]\n"), 0o644); err != nil {
		return "", nil, err
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	cmd.SysProcAttr = childAttr()
	logf, err := os.Create(filepath.Join(dir, "alertmanager.log"))
	if err != nil {
		return "", nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", nil, fmt.Errorf("facbench: start alertmanager: %w", err)
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	}
	url = "http://" + addr
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			log, _ := os.ReadFile(filepath.Join(dir, "alertmanager.log"))
			return "", nil, fmt.Errorf("facbench: alertmanager at %s not ready after 30 s: %s", addr, lastLines(string(log), 5))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// prefillLedger records n events of past alarm episodes (fired and
// resolved, every one dispatched) in the ledger the gateway will open, so
// that the run measures a ledger with a full history: each change
// rewrites the whole file, history included.
func prefillLedger(dir string, n int) error {
	if n <= 0 {
		return nil
	}
	l, err := notify.OpenLedger(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("facbench: prefill ledger: %w", err)
	}
	start := time.Now().UTC().Add(-time.Duration(n) * time.Minute)
	evs := make([]alert.Event, 0, n+1)
	for i := 0; len(evs) < n; i++ {
		active := start.Add(time.Duration(i) * time.Minute)
		fire := alert.Event{
			ID: alert.EpisodeID(alarmRule, alarmDevice, active), Kind: alert.KindFiring, State: alert.Firing,
			Rule: alarmRule, Class: "fire", Severity: alert.Critical, Device: alarmDevice, Site: benchSite, Gateway: benchGateway,
			Summary: "facbench alarm on " + alarmDevice, ActiveAt: active, FiredAt: active, At: active,
			Values: map[string]alert.Value{alarmPoint: {Value: "true", Quality: "good"}},
		}
		res := fire
		res.Kind, res.State = alert.KindResolved, alert.Resolved
		res.ResolvedAt = active.Add(30 * time.Second)
		res.At = res.ResolvedAt
		res.Values = map[string]alert.Value{alarmPoint: {Value: "false", Quality: "good"}}
		evs = append(evs, fire, res) // always in pairs: no episode is left firing
	}
	rec, err := l.Record(evs)
	if err != nil {
		l.Close()
		return fmt.Errorf("facbench: prefill ledger: %w", err)
	}
	for _, ev := range rec {
		if err := l.MarkDispatched(ev.Seq); err != nil {
			l.Close()
			return fmt.Errorf("facbench: prefill ledger: %w", err)
		}
	}
	return l.Close()
}

// alertBench is the alerting side of an -alerts run: the receivers of
// every path and what they recorded.
type alertBench struct {
	opts  alertOptions
	d     *deliveries
	stops []func()
	// config is the rules and alerting sections of the gateway's config.
	config string
}

// newAlertBench writes the rule file into dir, starts the webhook
// receiver, Alertmanager behind its proxy (when opts.alertmanager is
// set) and a subscriber on each broker, and returns the config sections
// that point the gateway at them.
func newAlertBench(dir string, opts alertOptions, brokers []string) (_ *alertBench, err error) {
	paths := []string{}
	for i := range brokers {
		paths = append(paths, mqttPathName(i))
	}
	paths = append(paths, pathWebhook)
	if opts.alertmanager != "" {
		paths = append(paths, pathAlertmanager)
	}
	ab := &alertBench{opts: opts, d: newDeliveries(paths...)}
	defer func() {
		if err != nil {
			ab.close()
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "bench-rules.yaml"), []byte(alarmRulesYAML), 0o644); err != nil {
		return nil, err
	}
	secret := make([]byte, 24)
	rand.Read(secret)
	hexSecret := hex.EncodeToString(secret)
	whURL, stop, err := serve(&webhookReceiver{secret: []byte(hexSecret), d: ab.d})
	if err != nil {
		return nil, err
	}
	ab.stops = append(ab.stops, stop)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "rules: {packs: [], files: [bench-rules.yaml]}\nalerting:\n  webhook:\n    - {name: bench-webhook, url: %q, secret: %q}\n", whURL+"/facgw", hexSecret)
	if opts.alertmanager != "" {
		amURL, stop, err := startAlertmanager(opts.alertmanager, filepath.Join(dir, "alertmanager"))
		if err != nil {
			return nil, err
		}
		ab.stops = append(ab.stops, stop)
		proxyURL, stop, err := serve(&amProxy{target: amURL, client: &http.Client{Timeout: 30 * time.Second}, d: ab.d})
		if err != nil {
			return nil, err
		}
		ab.stops = append(ab.stops, stop)
		fmt.Fprintf(&cfg, "  alertmanager:\n    - {name: bench-am, urls: [%q]}\n", proxyURL)
	}
	topic := mqtt.StatusInfo{Site: benchSite, Gateway: benchGateway}.Topics().AlertEvents()
	for i, b := range brokers {
		stop, err := subscribe(mqttPathName(i), b, topic, ab.d)
		if err != nil {
			return nil, err
		}
		ab.stops = append(ab.stops, stop)
	}
	ab.config = cfg.String()
	return ab, nil
}

// wait waits until every path has every event since from, and there are
// at least toggles of them (the last toggle's event may not be detected
// yet), at most opts.grace.
func (ab *alertBench) wait(from time.Time, toggles int) {
	deadline := time.Now().Add(ab.opts.grace)
	for !ab.d.complete(from, toggles) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
}

func (ab *alertBench) close() {
	for i := len(ab.stops) - 1; i >= 0; i-- {
		ab.stops[i]()
	}
	ab.stops = nil
}

// errNoAlertmanager says -alertmanager was asked for but is not installed.
var errNoAlertmanager = errors.New("prometheus-alertmanager is not installed (make deps installs it); measuring without the Alertmanager path")

package mqtt

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/facgw/facgw/internal/backoff"
	"github.com/facgw/facgw/internal/runloop"
	"github.com/facgw/facgw/pipeline/outbox"
)

// Defaults for the zero fields of a BrokerConfig.
const (
	DefaultKeepAlive      = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultBackoff        = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultInFlight       = 256
	// MaxInFlight bounds InFlight well below MQTT's 65535 packet ids.
	MaxInFlight = 16384
)

// closeGrace bounds how long a clean shutdown waits for PUBACKs of messages
// in flight (fewer duplicates after the restart) and for the PUBACK of the
// offline status.
const closeGrace = 2 * time.Second

// ErrClosed is returned by Enqueue and Run after Close.
var ErrClosed = errors.New("mqtt: publisher closed")

// BrokerConfig configures one broker and its outbox.
type BrokerConfig struct {
	// Name identifies the broker in logs and stats; default: URL host.
	Name string
	// URL is "tcp://host:port" or "ssl://host:port" ("mqtt" and "mqtts",
	// "tls" are accepted as synonyms). One broker: several brokers are
	// several Publishers, each getting everything (paho's list of servers
	// would only fail over at connect time, eclipse/paho.mqtt.golang#530).
	URL string
	// ClientID is the MQTT client id; default "facgw-<gateway>". It must
	// be unique per broker: a second client with the same id makes the
	// broker drop the first.
	ClientID string
	// Username and Password, if the broker requires them.
	Username string
	Password string
	// TLS configures an ssl:// connection; nil means the system roots.
	TLS *TLSConfig
	// KeepAlive is the MQTT keep-alive; a connection silent for it plus
	// ConnectTimeout is declared lost.
	KeepAlive time.Duration
	// ConnectTimeout bounds dialing, the TLS and MQTT handshakes, a ping
	// and a blocked write.
	ConnectTimeout time.Duration
	// Backoff is the first pause after a failed connect; it doubles (with
	// jitter) up to MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// InFlight is the window of QoS 1 publishes sent and not yet
	// acknowledged.
	InFlight int
	// Outbox configures this broker's durable outbox; Dir is required and
	// must not be shared with another broker. A zero SyncEvery means
	// outbox.DefaultSyncEvery here (group commit), not an fsync per
	// message: Enqueue is on the polling path.
	Outbox outbox.Options
}

// TLSConfig is the TLS side of an ssl:// broker. The files are read by New.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs trusted for the broker's
	// certificate; empty means the system roots.
	CAFile string
	// CertFile and KeyFile are a client certificate and key for brokers
	// that require one (mutual TLS); both or neither.
	CertFile string
	KeyFile  string
	// ServerName is the name checked against the broker's certificate;
	// default: the URL host.
	ServerName string
}

// Publisher delivers one broker's outbox to that broker: QoS 1, in outbox
// order, a message acknowledged (removed from the outbox) only on that
// broker's PUBACK on the connection it was sent on.
//
// Enqueue, Stats and Close are safe for concurrent use. Run is the
// broker's sender: the caller starts it on a goroutine of its own; it owns
// the connection (and the goroutines of each connection); Close stops it.
type Publisher struct {
	cfg    BrokerConfig // as given to New; the dial settings in it may be replaced: see dial
	status StatusInfo
	topics Topics
	log    *slog.Logger
	ob     *outbox.Outbox
	offln  []byte // offline status payload (last will, clean close)

	// dialConf is what each connection is made with; Reconfigure
	// replaces it, and kick ends the connection (or the wait for one) so
	// the next is made with the new settings.
	dialConf atomic.Pointer[dialConf]
	kickMu   sync.Mutex
	kick     context.CancelFunc // ends the current connection attempt or session; nil outside Run

	loop *runloop.Loop // Run once at a time, Close for good

	epoch           atomic.Uint64 // connection epoch: +1 per connection attempt
	connected       atomic.Bool
	connects        atomic.Uint64
	disconnects     atomic.Uint64
	connectFailures atomic.Uint64
	sent            atomic.Uint64
	acked           atomic.Uint64
	untrusted       atomic.Uint64
	inFlight        atomic.Int64

	mu        sync.Mutex // guards the fields below
	lastErr   string
	lastErrAt time.Time
	upSince   time.Time
	lat       latency
}

// dialConf is the part of a BrokerConfig a running Publisher can change.
type dialConf struct {
	cfg BrokerConfig
	tls *tls.Config // nil for tcp://
	url string      // cfg.URL without credentials, for stats and logs
}

// Enqueuer is what Fanout needs of a publisher.
type Enqueuer interface {
	Enqueue(m outbox.Message) (outbox.Message, error)
}

var _ Enqueuer = (*Publisher)(nil)

// New checks cfg, reads its TLS files and opens its outbox. It does no
// network I/O: an unreachable broker is a runtime condition, reported by
// Stats, never an error here. log may be nil.
func New(cfg BrokerConfig, status StatusInfo, log *slog.Logger) (*Publisher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := status.Validate(); err != nil {
		return nil, err
	}
	dc, err := prepare(&cfg, status)
	if err != nil {
		return nil, err
	}
	if cfg.InFlight == 0 {
		cfg.InFlight = DefaultInFlight
	}
	if cfg.InFlight < 1 || cfg.InFlight > MaxInFlight {
		return nil, fmt.Errorf("mqtt: broker %q: in_flight %d outside 1..%d", cfg.Name, cfg.InFlight, MaxInFlight)
	}
	if cfg.Outbox.Dir == "" {
		return nil, fmt.Errorf("mqtt: broker %q: outbox dir is required", cfg.Name)
	}
	if cfg.Outbox.SyncEvery == 0 {
		// The outbox's zero means an fsync per Append; Enqueue is on the
		// polling path.
		cfg.Outbox.SyncEvery = outbox.DefaultSyncEvery
	}
	p := &Publisher{
		cfg:    cfg,
		status: status,
		topics: status.Topics(),
		log:    log.With("broker", cfg.Name),
		offln:  status.statusPayload(StateOffline),
	}
	p.dialConf.Store(dc)
	if cfg.Outbox.Logger == nil {
		cfg.Outbox.Logger = p.log
	}
	if p.ob, err = outbox.Open(cfg.Outbox); err != nil {
		return nil, fmt.Errorf("mqtt: broker %q: %w", cfg.Name, err)
	}
	p.loop = runloop.New()
	return p, nil
}

// CheckBroker checks cfg's connection settings (URL, TLS files) the way
// New and Reconfigure do, without opening anything: for a reload that
// must refuse a bad configuration before it changes what runs.
func CheckBroker(cfg BrokerConfig, status StatusInfo) error {
	if err := status.Validate(); err != nil {
		return err
	}
	_, err := prepare(&cfg, status)
	return err
}

// prepare checks the connection settings of cfg, fills in their defaults
// and reads the TLS files.
func prepare(cfg *BrokerConfig, status StatusInfo) (*dialConf, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("mqtt: broker %q: url: %w", cfg.Name, err)
	}
	secure := false
	switch u.Scheme {
	case "tcp", "mqtt":
	case "ssl", "tls", "mqtts":
		secure = true
	default:
		return nil, fmt.Errorf("mqtt: broker %q: url %q: scheme must be tcp:// or ssl://", cfg.Name, cfg.URL)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("mqtt: broker %q: url %q: want scheme://host:port", cfg.Name, cfg.URL)
	}
	if cfg.TLS != nil && !secure {
		return nil, fmt.Errorf("mqtt: broker %q: tls settings given for %s:// url %q", cfg.Name, u.Scheme, cfg.URL)
	}
	if cfg.Name == "" {
		cfg.Name = u.Host
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "facgw-" + status.Gateway
	}
	setDefault(&cfg.KeepAlive, DefaultKeepAlive)
	setDefault(&cfg.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&cfg.Backoff, DefaultBackoff)
	setDefault(&cfg.MaxBackoff, DefaultMaxBackoff)
	if cfg.MaxBackoff < cfg.Backoff {
		cfg.MaxBackoff = cfg.Backoff
	}
	dc := &dialConf{url: (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()}
	if secure {
		if dc.tls, err = buildTLS(cfg.TLS, u.Hostname()); err != nil {
			return nil, fmt.Errorf("mqtt: broker %q: %w", cfg.Name, err)
		}
	}
	dc.cfg = *cfg
	return dc, nil
}

// Reconfigure replaces the broker's connection settings (URL, client id,
// credentials, TLS, keepalive, timeouts and backoff) while the publisher
// runs: the current connection ends cleanly (PUBACKs still due are
// awaited briefly, the offline status is published to the broker it was
// connected to) and the next one is made with the new settings at once.
// The outbox is untouched: what it holds goes to the broker as now
// configured, from its head, in order. The name, the outbox and InFlight
// stay as they were; an invalid cfg changes nothing.
func (p *Publisher) Reconfigure(cfg BrokerConfig) error {
	if cfg.Name == "" {
		cfg.Name = p.cfg.Name
	}
	if cfg.Name != p.cfg.Name {
		return fmt.Errorf("mqtt: broker %q: reconfigure: cannot rename to %q", p.cfg.Name, cfg.Name)
	}
	dc, err := prepare(&cfg, p.status)
	if err != nil {
		return err
	}
	dc.cfg.InFlight, dc.cfg.Outbox = p.cfg.InFlight, p.cfg.Outbox
	p.dialConf.Store(dc)
	p.log.Info("mqtt: broker settings changed; reconnecting", "url", dc.url)
	p.kickMu.Lock()
	if p.kick != nil {
		p.kick()
	}
	p.kickMu.Unlock()
	return nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func buildTLS(t *TLSConfig, host string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if t == nil {
		return c, nil
	}
	if t.ServerName != "" {
		c.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %q: no PEM certificate found", t.CAFile)
		}
		c.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("tls: cert_file and key_file go together")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Name returns the broker's name.
func (p *Publisher) Name() string { return p.cfg.Name }

// Enqueue appends m to this broker's outbox and returns it with its outbox
// Seq and Time. It never waits for the network; the sender goroutine picks
// the message up. m.Topic must be set.
func (p *Publisher) Enqueue(m outbox.Message) (outbox.Message, error) {
	if p.loop.Closed() {
		return m, ErrClosed
	}
	if m.Topic == "" {
		return m, fmt.Errorf("mqtt: broker %q: enqueue: empty topic", p.cfg.Name)
	}
	out, err := p.ob.Append(m)
	if err != nil {
		return m, fmt.Errorf("mqtt: broker %q: enqueue: %w", p.cfg.Name, err)
	}
	return out, nil
}

// Run connects to the broker, with backoff, and delivers the outbox until
// ctx ends or Close is called; it returns nil then. It runs on the caller's
// goroutine: that is the broker's sender goroutine. Per connection it adds
// a writer goroutine and paho adds its network goroutines; they end with
// the connection, except that a writer caught in paho's Publish when its
// connection died may outlive Run by up to ConnectTimeout (paho cannot be
// interrupted there; the writer touches nothing else).
//
// On each connection it publishes the retained online status, then the
// outbox from its head, in order, with at most InFlight messages awaiting
// their PUBACK. On any loss of the connection it forgets what was in
// flight and starts over on a new connection with a clean session, from
// the head: messages may be delivered twice, never lost or reordered. On
// the way out it waits briefly for PUBACKs still due, publishes the
// retained offline status and disconnects.
//
// Run may be called once at a time; it returns ErrClosed after Close.
func (p *Publisher) Run(ctx context.Context) error {
	ctx, end, err := p.loop.Begin(ctx)
	switch {
	case errors.Is(err, runloop.ErrClosed):
		return ErrClosed
	case err != nil:
		return fmt.Errorf("mqtt: broker %q: %w", p.cfg.Name, err)
	}
	defer end()

	q := newFlights(p.cfg.InFlight)
	defer p.setKick(nil)
	for attempt := 0; ; {
		if ctx.Err() != nil {
			return nil
		}
		// One attempt (a connection and its session, or the wait after
		// a failure) runs under cctx: Reconfigure cancels it to make the
		// next connection with new settings.
		cctx, kick := context.WithCancel(ctx)
		p.setKick(kick)
		dc := p.dialConf.Load()
		c, err := p.connect(cctx, dc)
		if err != nil {
			kicked := cctx.Err() != nil
			kick()
			if ctx.Err() != nil {
				return nil
			}
			if kicked {
				attempt = 0
				continue
			}
			attempt++
			p.connectFailures.Add(1)
			p.setErr(err, attempt)
			if !p.sleepKickable(ctx, backoff.Jittered(dc.cfg.Backoff, dc.cfg.MaxBackoff, attempt)) {
				return nil
			}
			continue
		}
		attempt = 0
		err = p.session(cctx, c, q)
		kicked := cctx.Err() != nil
		kick()
		if kicked {
			// Run is ending, or the settings changed: end this
			// connection cleanly.
			p.shutdown(c, q)
			p.down(c, nil)
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		p.down(c, err)
		// Do not hammer a broker that accepts and then drops us.
		if !p.sleepKickable(ctx, backoff.Jittered(dc.cfg.Backoff, dc.cfg.MaxBackoff, 1)) {
			return nil
		}
	}
}

func (p *Publisher) setKick(kick context.CancelFunc) {
	p.kickMu.Lock()
	p.kick = kick
	p.kickMu.Unlock()
}

// sleepKickable waits d before the next connection attempt; Reconfigure
// ends the wait early. It returns false if ctx ended.
func (p *Publisher) sleepKickable(ctx context.Context, d time.Duration) bool {
	cctx, kick := context.WithCancel(ctx)
	defer kick()
	p.setKick(kick)
	sleepCtx(cctx, d)
	return ctx.Err() == nil
}

// Close stops Run (cleanly: PUBACKs still due are awaited up to 2 s, the
// offline status is published, the client disconnects) and waits for it to
// return, then closes the outbox. Messages not yet acknowledged stay in the
// outbox for the next start. On a slow broker Close takes at most about
// 5 s (the two waits and the disconnect); a dial or handshake in progress
// is aborted. It is idempotent and safe for concurrent use with everything
// else.
func (p *Publisher) Close() error {
	if !p.loop.Close() {
		return nil
	}
	if err := p.ob.Close(); err != nil {
		return fmt.Errorf("mqtt: broker %q: %w", p.cfg.Name, err)
	}
	return nil
}

// conn is one connection epoch: a paho client used for exactly one network
// connection and then thrown away, so nothing paho keeps (its store, its
// tokens, its reconnect logic) can outlive the connection it belongs to.
type conn struct {
	epoch  uint64
	url    string // the broker, without credentials
	client paho.Client
	lost   chan struct{} // closed when paho reports the connection lost
	once   sync.Once
	mu     sync.Mutex
	why    error
	dialEr error // the dial or TLS error, which paho only wraps
	// flushAcks makes the kernel send a TCP ACK it is delaying (see
	// quickack_linux.go).
	flushAcks func()
}

func (c *conn) lose(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.why = err
		c.mu.Unlock()
		close(c.lost)
	})
}

func (c *conn) lostErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.why == nil {
		return errors.New("connection lost")
	}
	return fmt.Errorf("connection lost: %w", c.why)
}

func (c *conn) isLost() bool {
	select {
	case <-c.lost:
		return true
	default:
		return false
	}
}

// connect opens one connection epoch. Cancelling ctx aborts the dial and
// the handshakes.
func (p *Publisher) connect(ctx context.Context, dc *dialConf) (*conn, error) {
	c := &conn{epoch: p.epoch.Add(1), lost: make(chan struct{}), flushAcks: func() {}, url: dc.url}
	cfg := &dc.cfg
	timeout := cfg.ConnectTimeout
	var stopAbort func() bool
	opts := paho.NewClientOptions().
		AddBroker(cfg.URL).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetProtocolVersion(4). // no silent retry as 3.1 after a refusal
		// Reconnecting is ours, with a clean session and a new client
		// each time: paho's resume reorders (#731) and completes tokens
		// without delivery (#563).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(cfg.KeepAlive).
		SetPingTimeout(timeout).
		SetConnectTimeout(timeout).
		SetWriteTimeout(timeout).
		SetOrderMatters(false).
		// A store that dies with this client: paho's FileStore is not
		// replayed after a restart (#90), and what paho would resend
		// after a reconnect could overtake newer messages (#731). The
		// outbox is what survives.
		SetStore(paho.NewMemoryStore()).
		SetBinaryWill(p.topics.Status(), p.offln, QoS, true).
		SetConnectionLostHandler(func(_ paho.Client, err error) { c.lose(err) }).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			nc, flush, err := p.dial(ctx, dc, u.Host)
			c.mu.Lock()
			if err != nil {
				c.dialEr = err
			} else {
				c.flushAcks = flush
			}
			c.mu.Unlock()
			if err != nil {
				return nil, err
			}
			// Until the MQTT handshake is done, cancelling ctx closes
			// the connection, so Close does not wait for a CONNACK.
			stopAbort = context.AfterFunc(ctx, func() { nc.Close() })
			return nc, nil
		})
	c.client = paho.NewClient(opts)
	tok := c.client.Connect()
	<-tok.Done() // bounded: the dial honours ctx, the handshake has a deadline
	if stopAbort != nil {
		stopAbort()
	}
	if err := tok.Error(); err != nil {
		c.mu.Lock()
		dialErr := c.dialEr
		c.mu.Unlock()
		return nil, connectError(dc.url, cfg.Username, err, dialErr)
	}
	if ctx.Err() != nil {
		c.client.Disconnect(0)
		return nil, ctx.Err()
	}
	p.connects.Add(1)
	p.connected.Store(true)
	p.mu.Lock()
	p.upSince = time.Now()
	p.mu.Unlock()
	p.log.Info("mqtt: connected", "url", dc.url, "epoch", c.epoch, "outbox_depth", p.ob.Stats().Depth)
	return c, nil
}

func (p *Publisher) dial(ctx context.Context, dc *dialConf, host string) (net.Conn, func(), error) {
	d := net.Dialer{Timeout: dc.cfg.ConnectTimeout, KeepAlive: dc.cfg.KeepAlive}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, nil, err
	}
	nc, flush := quickAck(nc)
	if dc.tls != nil {
		tc := tls.Client(nc, dc.tls)
		hctx, cancel := context.WithTimeout(ctx, dc.cfg.ConnectTimeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			nc.Close()
			return nil, nil, err
		}
		nc = tc
	}
	return &bufferedConn{Conn: nc, r: bufio.NewReaderSize(nc, 16<<10)}, flush, nil
}

// bufferedConn buffers reads. paho reads every packet straight from the
// connection in three reads (type byte, length bytes, body), so without a
// buffer each PUBACK costs three system calls; with it, one read takes a
// whole burst of PUBACKs. (Fewer reads also mean fewer chances for the
// kernel to send a TCP ACK, hence quickAck below it.)
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// connectError turns paho's connect error into one that says what to fix.
func connectError(url, user string, err, dialErr error) error {
	if dialErr != nil {
		err = dialErr // paho wraps it as "network Error : ..."
	}
	var (
		unknownCA x509.UnknownAuthorityError
		badHost   x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return fmt.Errorf("connect %s: not authorized: the broker refused user %q (wrong password, or the user may not connect): %w", url, user, err)
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return fmt.Errorf("connect %s: bad user name or password for user %q: %w", url, user, err)
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return fmt.Errorf("connect %s: client id rejected by the broker: %w", url, err)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("connect %s: tls: broker certificate not trusted (signed by an unknown authority; check tls ca_file): %w", url, err)
	case errors.As(err, &badHost):
		return fmt.Errorf("connect %s: tls: broker certificate is not valid for this host (check tls server_name): %w", url, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("connect %s: tls: broker certificate invalid: %w", url, err)
	case errors.As(err, &verify):
		return fmt.Errorf("connect %s: tls: broker certificate rejected: %w", url, err)
	}
	return fmt.Errorf("connect %s: %w", url, err)
}

// flight is one publish on one connection. The session creates it; the
// connection's writer goroutine hands it to paho, sets tok and closes
// ready; the session then waits for tok.
type flight struct {
	seq     uint64 // outbox seq; 0 for the status message
	topic   string
	payload []byte
	retain  bool
	sent    time.Time
	ready   chan struct{} // closed once tok is set
	tok     paho.Token
}

func newFlight(seq uint64, topic string, payload []byte, retain bool) *flight {
	return &flight{seq: seq, topic: topic, payload: payload, retain: retain, ready: make(chan struct{})}
}

// wait returns the channel to wait on for f to complete.
func (f *flight) wait() <-chan struct{} {
	select {
	case <-f.ready:
		return f.tok.Done()
	default:
		return f.ready
	}
}

// done reports whether paho has completed f's token.
func (f *flight) done() bool {
	select {
	case <-f.ready:
	default:
		return false
	}
	select {
	case <-f.tok.Done():
		return true
	default:
		return false
	}
}

// writer hands flights to paho in order, on its own goroutine. paho's
// Publish that races with the death of its connection blocks for the whole
// WriteTimeout (= ConnectTimeout), because nothing reads paho's queue any
// more (seen in about every other broker kill in the tests). Here that
// blocks only this connection's writer, never the session, which notices
// the loss at once and reconnects; the writer ends by itself when Publish
// returns and in ends, touching nothing but its own paho client.
func writer(c *conn, in <-chan *flight) {
	for f := range in {
		f.sent = time.Now()
		f.tok = c.client.Publish(f.topic, QoS, f.retain, f.payload)
		close(f.ready)
	}
}

// flights is the in-flight window, a FIFO ring in send order.
type flights struct {
	buf     []*flight
	head, n int
}

func newFlights(n int) *flights { return &flights{buf: make([]*flight, n)} }

func (q *flights) full() bool     { return q.n == len(q.buf) }
func (q *flights) front() *flight { return q.buf[q.head] }
func (q *flights) push(f *flight) {
	q.buf[(q.head+q.n)%len(q.buf)] = f
	q.n++
}
func (q *flights) pop() {
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
}
func (q *flights) reset() {
	for q.n > 0 {
		q.pop()
	}
	q.head = 0
}

// errUntrusted ends a connection whose token completions can no longer be
// believed.
var errUntrusted = errors.New("publish completed without a trustworthy PUBACK (connection epoch over; paho #563)")

// session runs one connection: online status, then the outbox, until the
// connection is lost (returns why) or ctx ends (returns ctx.Err()). The
// writer goroutine it starts ends after the flights queued to it.
func (p *Publisher) session(ctx context.Context, c *conn, q *flights) error {
	q.reset()
	defer func() { p.inFlight.Store(int64(q.n)) }()
	window := len(q.buf)
	out := make(chan *flight, window+1) // never full: at most window flights + the status
	defer close(out)
	go writer(c, out)

	online := newFlight(0, p.topics.Status(), p.status.statusPayload(StateOnline), true)
	out <- online
	for !online.done() {
		select {
		case <-online.wait():
		case <-c.lost:
			return c.lostErr()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := online.tok.Error(); err != nil {
		return fmt.Errorf("publish online status: %w", err)
	}

	// Fetch in batches once the window has some room, not one message
	// per PUBACK; an idle sender (q.n == 0) sends at once.
	refill := max(1, window/16)
	var lastSent uint64        // this epoch resends everything above the outbox head
	more := true               // the outbox may hold messages not yet sent
	var retry <-chan time.Time // after an outbox read error
	for {
		for q.n > 0 && q.front().done() {
			if err := p.settle(c, q.front()); err != nil {
				return err
			}
			q.pop()
		}
		if room := window - q.n; more && room > 0 && (q.n == 0 || room >= refill) {
			// Everything up to lastSent is in flight (or acknowledged);
			// fetch what follows it.
			msgs, err := p.ob.PeekFrom(lastSent+1, room)
			if err != nil {
				// The disk, not the broker: keep the connection (and
				// what is in flight) and try again after a pause.
				err = fmt.Errorf("outbox: %w", err)
				p.setErr(err, 0)
				p.log.Error("mqtt: cannot read the outbox; retrying", "error", err)
				more, retry = false, time.After(p.cfg.MaxBackoff)
				continue
			}
			more = len(msgs) == room
			pushed := 0
			for _, m := range msgs {
				if m.Seq <= lastSent || q.full() {
					continue
				}
				f := newFlight(m.Seq, m.Topic, m.Payload, m.Retain)
				q.push(f)
				out <- f
				lastSent = m.Seq
				pushed++
			}
			p.sent.Add(uint64(pushed))
			p.inFlight.Store(int64(q.n))
			if pushed == 0 && q.n == 0 {
				// Only messages already sent on this connection whose
				// Ack failed: they go again on the next connection;
				// do not spin on them.
				more = false
			}
			continue
		}
		var headDone, ready <-chan struct{}
		if q.n > 0 {
			headDone = q.front().wait()
			c.flushAcks()
		}
		if !more && retry == nil {
			ready = p.ob.Ready()
		}
		select {
		case <-headDone:
		case <-ready:
			more = true
		case <-retry:
			more, retry = true, nil
		case <-c.lost:
			return c.lostErr()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// settle handles a completed publish: acknowledged in the outbox only if
// the token completed without error, on the current connection epoch,
// while that connection was still up. paho completes tokens when a
// connection is torn down, in some versions without an error (#563); such
// a completion says nothing about delivery.
func (p *Publisher) settle(c *conn, f *flight) error {
	if err := f.tok.Error(); err != nil {
		return fmt.Errorf("publish seq %d: %w", f.seq, err)
	}
	if c.epoch != p.epoch.Load() || c.isLost() || !c.client.IsConnectionOpen() {
		p.untrusted.Add(1)
		return errUntrusted
	}
	if err := p.ob.Ack(f.seq); err != nil {
		// Only after Close; nothing to redo either way.
		p.log.Debug("mqtt: outbox ack", "seq", f.seq, "error", err)
	}
	p.acked.Add(1)
	p.mu.Lock()
	p.lat.observe(time.Since(f.sent))
	p.mu.Unlock()
	return nil
}

// shutdown ends a connection cleanly when Run stops: PUBACKs still due are
// awaited (briefly) and acknowledged, the offline status is published and
// the client disconnects. It takes at most about 2*closeGrace.
func (p *Publisher) shutdown(c *conn, q *flights) {
	grace, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
wait:
	for q.n > 0 {
		if q.front().done() {
			if p.settle(c, q.front()) != nil {
				break
			}
			q.pop()
			continue
		}
		select {
		case <-q.front().wait():
		case <-c.lost:
			break wait
		case <-grace.Done():
			break wait
		}
	}
	q.reset()
	if c.isLost() || !c.client.IsConnectionOpen() {
		return
	}
	offline, cancel2 := context.WithTimeout(context.Background(), closeGrace)
	defer cancel2()
	out := make(chan *flight, 1)
	f := newFlight(0, p.topics.Status(), p.offln, true)
	out <- f
	close(out)
	go writer(c, out)
	for !f.done() {
		select {
		case <-f.wait():
		case <-c.lost:
			return
		case <-offline.Done():
			return
		}
	}
	c.client.Disconnect(250)
}

// down records the end of a connection; err is nil for a clean one.
func (p *Publisher) down(c *conn, err error) {
	p.connected.Store(false)
	p.disconnects.Add(1)
	p.inFlight.Store(0)
	if c.client.IsConnectionOpen() {
		// We gave up on a connection paho still holds (untrusted
		// completion, outbox error): close it so nothing from it
		// arrives later.
		c.client.Disconnect(0)
	}
	if err == nil {
		p.log.Info("mqtt: disconnected", "url", c.url, "epoch", c.epoch)
		return
	}
	p.setErr(err, 0)
	p.log.Warn("mqtt: connection lost; resending from the outbox head on the next connection",
		"url", c.url, "epoch", c.epoch, "error", err, "outbox_depth", p.ob.Stats().Depth)
}

// setErr records err for Stats and logs connect failures: at Warn on
// attempts 1, 2, 4, 8, ... (an outage of hours is a few dozen lines), at
// Debug in between. (The error text alone cannot tell a repeat: it often
// carries the local port.)
func (p *Publisher) setErr(err error, attempt int) {
	p.mu.Lock()
	p.lastErr, p.lastErrAt = err.Error(), time.Now()
	p.mu.Unlock()
	if attempt == 0 {
		return
	}
	lvl := slog.LevelDebug
	if attempt&(attempt-1) == 0 {
		lvl = slog.LevelWarn
	}
	p.log.Log(context.Background(), lvl, "mqtt: cannot connect; messages stay in the outbox, retrying with backoff",
		"url", p.dialConf.Load().url, "attempt", attempt, "error", err)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Stats is a snapshot of a publisher's health.
type Stats struct {
	Name string
	URL  string
	// Connected reports a live connection; UpSince when it came up.
	Connected bool
	UpSince   time.Time
	// LastError is the last connect or connection error, worded to say
	// what to fix ("not authorized", "certificate not trusted"); it stays
	// after a later success, with LastErrorTime, for diagnosis.
	LastError     string
	LastErrorTime time.Time
	// Connects counts connections made, Disconnects connections ended,
	// ConnectFailures failed attempts; Epoch is the current connection
	// epoch.
	Connects, Disconnects, ConnectFailures uint64
	Epoch                                  uint64
	// Sent counts publishes (resends included), Acked PUBACKs believed,
	// Untrusted token completions not believed (#563), InFlight the
	// publishes awaiting their PUBACK.
	Sent, Acked, Untrusted uint64
	InFlight               int
	// Latency is publish-to-PUBACK time.
	Latency LatencyStats
	Outbox  outbox.Stats
}

// Stats returns a snapshot; safe for concurrent use.
func (p *Publisher) Stats() Stats {
	p.mu.Lock()
	s := Stats{
		LastError:     p.lastErr,
		LastErrorTime: p.lastErrAt,
		UpSince:       p.upSince,
		Latency:       p.lat.stats(),
	}
	p.mu.Unlock()
	s.Name, s.URL = p.cfg.Name, p.dialConf.Load().url
	s.Connected = p.connected.Load()
	if !s.Connected {
		s.UpSince = time.Time{}
	}
	s.Connects, s.Disconnects, s.ConnectFailures = p.connects.Load(), p.disconnects.Load(), p.connectFailures.Load()
	s.Epoch = p.epoch.Load()
	s.Sent, s.Acked, s.Untrusted = p.sent.Load(), p.acked.Load(), p.untrusted.Load()
	s.InFlight = int(p.inFlight.Load())
	s.Outbox = p.ob.Stats()
	return s
}

// Sync writes the outbox to disk now (fsync), for messages that must be
// durable before the caller goes on (alerts), rather than at the next
// group commit.
func (p *Publisher) Sync() error {
	if err := p.ob.Sync(); err != nil {
		return fmt.Errorf("mqtt: broker %q: sync: %w", p.cfg.Name, err)
	}
	return nil
}

// Package trap is the gateway's SNMP notification receiver. Power events
// reach facgw fastest as traps (a UPS announces upsTrapOnBattery long
// before the next poll), so the listener turns every accepted SNMPv1,
// SNMPv2c or SNMPv3 trap or inform into an Event for a handler, which
// re-polls the device at once: traps are UDP and get lost, so polling
// stays the truth and a trap is a reason to poll now.
//
// A notification is accepted only from a configured source address (which
// names the device) and with a configured community or SNMPv3 user;
// everything else is counted by reason, logged at a limited rate and
// dropped. Informs are acknowledged with a Response once their event is
// queued. SNMPv3 notifications go through snmpagent's USM: traps are
// authenticated with keys localized to the sender's engine id, informs
// are addressed to this listener's engine, which senders discover first.
package trap

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/snmpagent"
)

// Defaults for zero Config fields.
const (
	DefaultListen     = ":162"
	DefaultQueueSize  = 1024
	DefaultLogEvery   = time.Minute
	DefaultReadBuffer = 1 << 20
)

// User is an SNMPv3 user allowed to send notifications: a name with
// authentication and privacy protocols ("SHA", "SHA-256", "AES",
// "AES-256", ... as net-snmp names them) and passphrases.
type User = snmpagent.User

// Varbind is a notification varbind: an OID (dotted, no leading dot) and
// a typed value.
type Varbind = snmpagent.Varbind

// Config configures a Listener.
type Config struct {
	// Listen is the UDP address to receive on (DefaultListen if empty).
	Listen string
	// Communities are the accepted SNMPv1/v2c communities.
	Communities []string
	// V3Users are the accepted SNMPv3 users.
	V3Users []User
	// EngineID is the listener's SNMPv3 engine id in hex (5 to 32
	// octets), which senders of v3 informs discover. Empty means a random
	// id per Listener.
	EngineID string
	// Sources maps a sender's IP address to the id of the device it is.
	// Notifications from any other address are refused.
	Sources map[string]string
	// Names maps further notification OIDs to names (vendor traps, e.g.
	// APC's on-battery trap 1.3.6.1.4.1.318.0.5), over WellKnownNames.
	Names map[string]string
	// QueueSize bounds the events waiting for the handler
	// (DefaultQueueSize if 0).
	QueueSize int
	// ReadBuffer is the socket receive buffer to ask for, in bytes, so a
	// burst survives while the handler is busy (DefaultReadBuffer if 0;
	// the kernel may grant less).
	ReadBuffer int
	// LogEvery is the least time between two log lines for the same
	// refusal reason (DefaultLogEvery if 0); the lines in between are
	// counted in the next one's "suppressed".
	LogEvery time.Duration
	// Logger receives refusals (warn) and handler panics (error); nil
	// discards them.
	Logger *slog.Logger
}

// V1Header is the header of an SNMPv1 Trap-PDU.
type V1Header struct {
	Enterprise   string
	AgentAddress string
	Generic      int
	Specific     int
}

// Event is an accepted notification.
type Event struct {
	// Time is when the datagram was read.
	Time time.Time
	// Device is the id Config.Sources gives the sender's address.
	Device string
	// Source is the sender's address and port.
	Source netip.AddrPort
	// Version is gosnmp.Version1, Version2c or Version3.
	Version gosnmp.SnmpVersion
	// Inform is true for an InformRequest (which was acknowledged).
	Inform bool
	// User is the SNMPv3 user; empty for v1 and v2c.
	User string
	// TrapOID is snmpTrapOID.0; for SNMPv1 it is derived from the header
	// as RFC 3584 3.1 says (enterprise.0.specific, or snmpTraps.N for the
	// generic traps).
	TrapOID string
	// Name is the notification's name (WellKnownNames, Config.Names), or
	// empty. An SNMPv1 trap is also looked up as enterprise.specific, the
	// OID an SMIv2 notification defined without the .0 arc (as RFC 1628's
	// UPS traps are) has, so a v1 upsTrapOnBattery is named like a v2 one
	// although its TrapOID is 1.3.6.1.2.1.33.2.0.1.
	Name string
	// Uptime is the sender's sysUpTime.0 (v1: the time-stamp) in
	// hundredths of a second.
	Uptime uint32
	// Varbinds are the notification's varbinds, less sysUpTime.0 and
	// snmpTrapOID.0.
	Varbinds []Varbind
	// V1 is the SNMPv1 header; nil for v2c and v3.
	V1 *V1Header
}

// Handler receives events, one at a time and in arrival order, on the
// listener's dispatch goroutine. It should return quickly (start the
// re-poll, do not wait for it): while it runs, events queue up, and when
// the queue is full further notifications are dropped (informs are then
// not acknowledged, so their senders retry).
type Handler func(Event)

// Reason is why a notification was refused.
type Reason uint8

// Refusal reasons.
const (
	ReasonUnknownSource       Reason = iota // sender's address not in Config.Sources
	ReasonBadCommunity                      // v1/v2c community not configured
	ReasonBadVersion                        // not SNMPv1, v2c or v3
	ReasonMalformed                         // undecodable, or a notification without snmpTrapOID.0
	ReasonNotNotification                   // a PDU other than a trap or an inform
	ReasonUnknownUser                       // v3 user not configured
	ReasonUnsupportedSecLevel               // v3 user at another security level than configured
	ReasonWrongDigest                       // v3 authentication failed: wrong auth passphrase or protocol
	ReasonDecryption                        // v3 decryption failed: wrong priv passphrase or protocol
	ReasonNotInTimeWindow                   // v3 inform with stale engine boots/time
	ReasonUnknownEngineID                   // v3 message for another engine, not a trap
	ReasonQueueFull                         // handler too slow; event dropped
	numReasons
)

var reasonNames = [numReasons]string{
	"unknown source", "wrong community", "unsupported version", "malformed",
	"not a notification", "unknown v3 user", "unsupported v3 security level",
	"wrong v3 digest", "v3 decryption error", "v3 not in time window",
	"v3 unknown engine id", "queue full",
}

// String returns the reason in words ("wrong community", ...).
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", r)
}

// Stats counts what the listener received.
type Stats struct {
	Received     uint64 // datagrams read
	Events       uint64 // notifications accepted and queued for the handler
	InformsAcked uint64 // informs acknowledged
	Discoveries  uint64 // SNMPv3 engine discovery requests answered
	// Rejected counts refused notifications by reason (every reason is
	// present, zero or not).
	Rejected map[Reason]uint64
}

// Listener receives notifications. Build it with New (no I/O), run it
// with Start, stop it with Close. Stats and Addr are safe for concurrent
// use.
type Listener struct {
	listen     string
	acc        atomic.Pointer[acceptance] // what is accepted; Update replaces it
	h          Handler
	log        *slog.Logger
	limit      *logLimiter
	queueSize  int
	readBuffer int

	received, events, informs, discoveries atomic.Uint64
	rejected                               [numReasons]atomic.Uint64
	panics                                 atomic.Uint64 // decoder panics recovered (fuzzing checks there are none)

	mu      sync.Mutex
	pc      net.PacketConn
	queue   chan Event
	started bool
	closed  bool
	stop    func() bool
	wg      sync.WaitGroup
}

// acceptance is what a Listener accepts and how it names what it
// accepts: everything of its Config that Update can change.
type acceptance struct {
	communities [][]byte
	sources     map[netip.Addr]string
	names       map[string]string
	usm         *snmpagent.USM
}

// New validates cfg and returns a Listener calling h for every accepted
// notification. All configuration errors are returned together.
func New(cfg Config, h Handler) (*Listener, error) {
	var errs []error
	if h == nil {
		errs = append(errs, errors.New("trap: nil handler"))
	}
	acc := &acceptance{sources: make(map[netip.Addr]string, len(cfg.Sources)), names: WellKnownNames()}
	l := &Listener{
		listen:     cfg.Listen,
		h:          h,
		log:        cfg.Logger,
		queueSize:  cfg.QueueSize,
		readBuffer: cfg.ReadBuffer,
	}
	if l.listen == "" {
		l.listen = DefaultListen
	}
	// Checked without resolving: New does no I/O (a name is resolved by Start).
	if _, port, err := net.SplitHostPort(l.listen); err != nil {
		errs = append(errs, fmt.Errorf("trap: listen %q: %w", l.listen, err))
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		errs = append(errs, fmt.Errorf("trap: listen %q: bad port", l.listen))
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.queueSize == 0 {
		l.queueSize = DefaultQueueSize
	}
	if l.readBuffer == 0 {
		l.readBuffer = DefaultReadBuffer
	}
	if l.queueSize < 0 || l.readBuffer < 0 || cfg.LogEvery < 0 {
		errs = append(errs, errors.New("trap: negative queue size, read buffer or log interval"))
	}
	every := cfg.LogEvery
	if every == 0 {
		every = DefaultLogEvery
	}
	l.limit = &logLimiter{every: every}
	for _, c := range cfg.Communities {
		if c == "" || len(c) > 127 {
			errs = append(errs, fmt.Errorf("trap: community must have 1 to 127 octets, has %d", len(c)))
			continue
		}
		acc.communities = append(acc.communities, []byte(c))
	}
	for ip, dev := range cfg.Sources {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			errs = append(errs, fmt.Errorf("trap: sources: %q is not an IP address", ip))
			continue
		}
		if dev == "" {
			errs = append(errs, fmt.Errorf("trap: sources: %s has no device id", ip))
			continue
		}
		if prev, dup := acc.sources[a.Unmap()]; dup {
			errs = append(errs, fmt.Errorf("trap: sources: %s given twice (%s, %s)", ip, prev, dev))
			continue
		}
		acc.sources[a.Unmap()] = dev
	}
	for o, name := range cfg.Names {
		n, err := snmpagent.NormalizeOID(o)
		if err != nil {
			errs = append(errs, fmt.Errorf("trap: names: %q: %w", o, err))
			continue
		}
		if name == "" {
			errs = append(errs, fmt.Errorf("trap: names: %s has no name", o))
			continue
		}
		acc.names[n] = name
	}
	engine := snmpagent.NewEngineID()
	if cfg.EngineID != "" {
		if id, err := snmpagent.ParseEngineID(cfg.EngineID); err != nil {
			errs = append(errs, fmt.Errorf("trap: %w", err))
		} else {
			engine = id
		}
	}
	usm, err := snmpagent.NewUSM(engine, 1, cfg.V3Users)
	if err != nil {
		errs = append(errs, fmt.Errorf("trap: v3 users: %w", err))
	}
	acc.usm = usm
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	l.acc.Store(acc)
	return l, nil
}

// EngineID returns the listener's SNMPv3 engine id.
func (l *Listener) EngineID() []byte { return l.acc.Load().usm.EngineID() }

// Update replaces what the listener accepts (communities, v3 users,
// sources, names) while it runs, for a configuration reload; the next
// datagram is judged by the new settings. cfg is validated like New's,
// and an invalid one changes nothing. Listen, the queue, the read buffer
// and logging stay as they were (a new address needs a new Listener).
// The listener keeps its engine (id, boots, time) unless cfg names
// another engine id, so v3 senders need not discover it again.
func (l *Listener) Update(cfg Config) error {
	if cfg.EngineID == "" {
		cfg.EngineID = hex.EncodeToString(l.EngineID())
	}
	cfg.Listen, cfg.QueueSize, cfg.ReadBuffer, cfg.LogEvery, cfg.Logger = l.listen, 0, 0, 0, nil
	n, err := New(cfg, l.h)
	if err != nil {
		return err
	}
	acc, old := n.acc.Load(), l.acc.Load().usm
	if bytes.Equal(acc.usm.EngineID(), old.EngineID()) {
		// The same engine goes on: boots and engine time continue, so v3
		// senders that know them are not refused as out of the time
		// window.
		if acc.usm, err = old.WithUsers(cfg.V3Users); err != nil {
			return fmt.Errorf("trap: v3 users: %w", err)
		}
	}
	l.acc.Store(acc)
	return nil
}

// Start binds the UDP address and starts receiving on one goroutine and
// calling the handler on another. It returns the bind error, if any.
// The listener stops when ctx is done or Close is called.
func (l *Listener) Start(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.closed {
		return errors.New("trap: listener already started or closed")
	}
	pc, err := net.ListenPacket("udp", l.listen)
	if err != nil {
		return fmt.Errorf("trap: listen: %w", err)
	}
	if uc, ok := pc.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(l.readBuffer) // best effort: the kernel caps it
	}
	l.pc, l.started = pc, true
	l.queue = make(chan Event, l.queueSize)
	l.wg.Add(2)
	go l.receive(pc, l.queue)
	go l.dispatch(l.queue)
	l.stop = context.AfterFunc(ctx, func() { l.Close() })
	return nil
}

// Addr returns the bound address, or nil before Start.
func (l *Listener) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pc == nil {
		return nil
	}
	return l.pc.LocalAddr()
}

// Close stops receiving, lets the handler finish the events already
// queued and waits for both goroutines. It is idempotent and returns nil.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.wg.Wait()
		return nil
	}
	l.closed = true
	if l.stop != nil {
		l.stop()
	}
	if l.pc != nil {
		l.pc.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

// Stats returns the listener's counters.
func (l *Listener) Stats() Stats {
	s := Stats{
		Received:     l.received.Load(),
		Events:       l.events.Load(),
		InformsAcked: l.informs.Load(),
		Discoveries:  l.discoveries.Load(),
		Rejected:     make(map[Reason]uint64, numReasons),
	}
	for r := range numReasons {
		s.Rejected[r] = l.rejected[r].Load()
	}
	return s
}

func (l *Listener) receive(pc net.PacketConn, queue chan<- Event) {
	defer l.wg.Done()
	defer close(queue) // the dispatcher drains what is left, then exits
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("trap: read", "err", err)
			continue
		}
		now := time.Now()
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		reply := l.handle(buf[:n], ua.AddrPort(), now, queue)
		if reply != nil {
			if _, err := pc.WriteTo(reply, from); err != nil {
				l.log.Warn("trap: write reply", "to", from.String(), "err", err)
			}
		}
	}
}

func (l *Listener) dispatch(queue <-chan Event) {
	defer l.wg.Done()
	for ev := range queue {
		l.call(ev)
	}
}

// call runs the handler, surviving its panics: one bad event must not end
// trap reception.
func (l *Listener) call(ev Event) {
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("trap: handler panicked", "device", ev.Device, "trap", ev.TrapOID, "panic", fmt.Sprint(r))
		}
	}()
	l.h(ev)
}

// validCommunity compares in constant time, so timing does not reveal how
// much of a guessed community was right.
func (l *Listener) validCommunity(c string) bool {
	ok := 0
	for _, want := range l.acc.Load().communities {
		ok |= subtle.ConstantTimeCompare([]byte(c), want)
	}
	return ok == 1
}

// logLimiter lets one log line per reason through per interval.
type logLimiter struct {
	every      time.Duration
	mu         sync.Mutex
	last       [numReasons]time.Time
	suppressed [numReasons]uint64
}

// allow reports whether a line for r may be logged at now, and how many
// were suppressed since the last one.
func (ll *logLimiter) allow(r Reason, now time.Time) (bool, uint64) {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	if !ll.last[r].IsZero() && now.Sub(ll.last[r]) < ll.every {
		ll.suppressed[r]++
		return false, 0
	}
	n := ll.suppressed[r]
	ll.last[r], ll.suppressed[r] = now, 0
	return true, n
}

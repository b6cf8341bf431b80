// Package snmpnotify is the SNMP path of alert delivery: it sends each
// alert event (internal/alert) as an SNMPv2c or SNMPv3 trap or inform
// defined by facgw's own MIB, deploy/mib/FACGW-MIB.txt, to one
// notification receiver (an NMS, or net-snmp's snmptrapd feeding one).
//
// A Sender implements pipeline/notify's Sender contract; the notify.Path
// around it owns the durable outbox and the retries. One Sender serves one
// receiver: several receivers are several Paths, so one that is down
// neither delays nor hides the state of another.
//
// What "delivered" means depends on the receiver's mode. A trap counts as
// delivered once written to the socket: UDP gives no evidence beyond that,
// so traps suit receivers that cannot answer. An inform counts only once
// the receiver's Response arrives; each is sent again up to Options.Retries
// times per Send, and the Path repeats failed batches until every event is
// acknowledged. Informs are the default in facgw's config for that reason.
//
// The notification's OID says what happened (facgwAlertFiring,
// facgwAlertResolved, facgwAlertAcknowledged, facgwAlertSilenced,
// facgwAlertUnsilenced) and every notification carries the same fifteen
// objects in the same order (see the MIB's DESCRIPTION for why); an event
// can be delivered more than once and facgwAlertId, the notification type
// and facgwAlertSeq identify it.
package snmpnotify

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/alert"
)

// Sender delivers alert events as FACGW-MIB notifications to one receiver.
// Build it with New (no I/O). Send opens a socket for each call and closes
// it before returning, so a Sender holds no resources between calls and
// needs no Close. Its methods are safe for concurrent use; Send calls are
// serialized.
type Sender struct {
	p     params
	start time.Time // for sysUpTime.0 and the SNMPv3 engine time of traps
	boots uint32    // SNMPv3 engine boots of traps

	mu sync.Mutex
	// delivered holds the events of a failed Send that did reach the
	// receiver, so that the Path's retry of the batch does not deliver
	// them again. Cleared by every Send that succeeds.
	delivered map[deliveryKey]struct{}
}

// bootsEpoch is the origin of the SNMPv3 engine boots of traps.
var bootsEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// New validates opts and returns a Sender. All problems are returned
// together, each naming the receiver's address and the option; none
// contains a secret.
func New(opts Options) (*Sender, error) {
	p, errs := opts.check()
	if len(errs) > 0 {
		for i, err := range errs {
			errs[i] = fmt.Errorf("snmpnotify: receiver %q: %w", opts.Address, err)
		}
		return nil, errors.Join(errs...)
	}
	now := time.Now()
	return &Sender{
		p:     p,
		start: now,
		boots: engineBoots(now),
		// The receiver keeps the highest (boots, time) it saw from our
		// engine and, RFC 3414 3.2 step 7b, refuses traps that go back in
		// time. A gateway keeps no SNMP state on disk, so boots come from
		// the clock: each start has a higher value than the last (unless
		// the clock went back), and time counts from the start.
		delivered: make(map[deliveryKey]struct{}),
	}, nil
}

// engineBoots returns the SNMPv3 engine boots of a Sender started at now:
// seconds since bootsEpoch, within 1..2147483646 (2147483647 would latch
// the engine, RFC 3414 2.2.2).
func engineBoots(now time.Time) uint32 {
	s := int64(now.Sub(bootsEpoch) / time.Second)
	return uint32(min(max(s, 1), 2147483646))
}

// GoString is String, so that %#v shows no secret either.
func (s *Sender) GoString() string { return s.String() }

// EngineID returns the hex SNMPv3 engine id the Sender's traps come from
// (Options.EngineID, or the one derived from the gateway name), which the
// receiver needs in its user entry (net-snmp: createUser -e ENGINEID); ""
// for SNMPv2c and for informs.
func (s *Sender) EngineID() string { return hex.EncodeToString(s.p.engineID) }

// String describes the Sender for logs and errors, without secrets, e.g.
// "v3 inform to 10.0.0.5:162 as user nms".
func (s *Sender) String() string {
	v, what := "v2c", "trap"
	if s.p.version == gosnmp.Version3 {
		v = "v3"
	}
	if s.p.inform {
		what = "inform"
	}
	out := v + " " + what + " to " + net.JoinHostPort(s.p.host, fmt.Sprint(s.p.port))
	if s.p.version == gosnmp.Version3 {
		out += " as user " + s.p.user
	}
	return out
}

// Send delivers evs in order: each as one trap, written to the socket, or
// one inform, acknowledged by the receiver. It returns nil only once every
// event is delivered. The first failure ends the call; events delivered
// before it are not sent again by the next Send (the Path retries the
// batch).
//
// retryable is false when trying again without a change cannot help: an
// event FACGW-MIB cannot express (unknown kind, severity or state, an id
// that is not printable), or an SNMPv3 receiver refusing the user, the
// authentication passphrase or protocol. A wrong privacy passphrase looks
// like a timeout (net-snmp drops what it cannot decrypt without a report)
// and stays retryable; its error says what to suspect. It is true
// for timeouts, a closed port, name resolution failures and a cancelled
// ctx. Send honours ctx: it returns soon after ctx ends, whatever it was
// waiting for. Without a ctx deadline one inform takes at most about
// 3 x (Retries+1) x Timeout (SNMPv3 engine discovery, the inform, and one
// resend after a time-window report).
func (s *Sender) Send(ctx context.Context, evs []alert.Event) (retryable bool, err error) {
	if len(evs) == 0 {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	notes := make([]notification, 0, len(evs))
	for i := range evs {
		n, err := encode(s.p.base, &evs[i], s.p.site, s.p.gateway)
		if err != nil {
			return false, fmt.Errorf("snmpnotify: %s: %w", s, err)
		}
		notes = append(notes, n)
	}
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("snmpnotify: %s: %w", s, err)
	}
	g, err := s.connect(ctx)
	if err != nil {
		return true, fmt.Errorf("snmpnotify: %s: %w", s, err)
	}
	defer g.Conn.Close()
	// gosnmp looks at ctx only between attempts; closing the socket ends
	// a wait for an acknowledgement at once.
	stop := context.AfterFunc(ctx, func() { _ = g.Conn.Close() })
	defer stop()
	for _, n := range notes {
		if _, done := s.delivered[n.key]; done {
			continue
		}
		if err := s.sendOne(g, n); err != nil {
			retryable, reason := s.classify(ctx, err, discovered(g))
			return retryable, fmt.Errorf("snmpnotify: %s: event %q seq %d: %s: %w", s, n.key.id, n.key.seq, reason, cleanError(err))
		}
		s.delivered[n.key] = struct{}{}
	}
	clear(s.delivered)
	return false, nil
}

// connect builds a fresh gosnmp session for one Send and opens its socket.
// A fresh session per Send also means a fresh SNMPv3 engine discovery for
// informs: a receiver that restarted with another engine id or boots is
// picked up without stale state.
func (s *Sender) connect(ctx context.Context) (*gosnmp.GoSNMP, error) {
	g := &gosnmp.GoSNMP{
		Target:    s.p.host,
		Port:      s.p.port,
		Transport: "udp",
		Version:   s.p.version,
		Community: s.p.secrets.community,
		Timeout:   s.p.timeout,
		Retries:   s.p.retries,
		Context:   ctx,
		MaxOids:   gosnmp.MaxOids,
	}
	if s.p.version == gosnmp.Version3 {
		sp := &gosnmp.UsmSecurityParameters{
			UserName:                 s.p.user,
			AuthenticationProtocol:   s.p.auth,
			AuthenticationPassphrase: s.p.secrets.authPass,
			PrivacyProtocol:          s.p.priv,
			PrivacyPassphrase:        s.p.secrets.privPass,
		}
		if s.p.auth == 0 {
			sp.AuthenticationProtocol = gosnmp.NoAuth
		}
		if s.p.priv == 0 {
			sp.PrivacyProtocol = gosnmp.NoPriv
		}
		if !s.p.inform {
			// The sender of a trap is the authoritative engine (RFC 3412
			// 7.1 (9)): its own id, boots and time, no discovery.
			sp.AuthoritativeEngineID = string(s.p.engineID)
			sp.AuthoritativeEngineBoots = s.boots
			sp.AuthoritativeEngineTime = s.engineTime()
			g.ContextEngineID = string(s.p.engineID)
		}
		g.SecurityModel = gosnmp.UserSecurityModel
		g.MsgFlags = s.p.level
		g.SecurityParameters = sp
	}
	if err := g.Connect(); err != nil {
		return nil, fmt.Errorf("open socket: %w", err)
	}
	return g, nil
}

// sendOne sends one notification on g and, for an inform, checks the
// receiver's Response.
func (s *Sender) sendOne(g *gosnmp.GoSNMP, n notification) error {
	if sp, ok := g.SecurityParameters.(*gosnmp.UsmSecurityParameters); ok && !s.p.inform {
		// The receiver refuses a trap whose engine time lags its notion of
		// ours by more than 150 s (RFC 3414 3.2 step 7b).
		sp.AuthoritativeEngineTime = s.engineTime()
	}
	res, err := g.SendTrap(gosnmp.SnmpTrap{Variables: n.withHeader(s.uptime()), IsInform: s.p.inform})
	if err != nil {
		return err
	}
	if !s.p.inform {
		return nil
	}
	if res == nil || res.PDUType != gosnmp.GetResponse {
		return errNoResponse
	}
	if res.Error != gosnmp.NoError {
		return fmt.Errorf("%w %v", errStatus, res.Error)
	}
	return nil
}

var (
	errNoResponse = errors.New("the receiver answered the inform with something other than a Response")
	errStatus     = errors.New("the receiver answered the inform with error status")
)

// uptime returns sysUpTime.0: hundredths of a second since New, wrapping
// at 2^32 as TimeTicks do.
func (s *Sender) uptime() uint32 {
	return uint32(time.Since(s.start) / (10 * time.Millisecond))
}

// engineTime returns the SNMPv3 engine time of traps: seconds since New.
func (s *Sender) engineTime() uint32 {
	return uint32(min(time.Since(s.start)/time.Second, 2147483647))
}

// discovered reports whether an SNMPv3 inform session has learnt the
// receiver's engine id, i.e. the receiver answered engine discovery.
func discovered(g *gosnmp.GoSNMP) bool {
	sp, ok := g.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	return ok && sp.AuthoritativeEngineID != ""
}

// classify says whether err (from one notification) may go away by
// itself, and what it means in words. discovered is whether the receiver
// answered SNMPv3 engine discovery on this session.
func (s *Sender) classify(ctx context.Context, err error, discovered bool) (retryable bool, reason string) {
	var ne net.Error
	msg := err.Error()
	switch {
	case ctx.Err() != nil:
		return true, "stopped: " + ctx.Err().Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return true, "nothing listens on the receiver's port (ICMP port unreachable)"
	case errors.Is(err, gosnmp.ErrWrongDigest), errors.Is(err, gosnmp.ErrUnknownUsername),
		errors.Is(err, gosnmp.ErrDecryption), errors.Is(err, gosnmp.ErrUnknownSecurityLevel),
		strings.Contains(msg, "not authentic"), strings.Contains(msg, "decrypt"):
		// net-snmp answers a wrong passphrase or an unknown user with a
		// Report that is itself unauthenticated, which gosnmp discards
		// as "not authentic" and then times out on.
		return false, fmt.Sprintf("the receiver refused SNMPv3 user %q: wrong user name, passphrase, "+
			"protocol or security level, or the receiver does not know the user", s.p.user)
	case errors.Is(err, gosnmp.ErrNotInTimeWindow), errors.Is(err, gosnmp.ErrUnknownEngineID):
		return true, "SNMPv3 engine boots/time or id out of step with the receiver"
	case errors.Is(err, gosnmp.ErrMaxRetriesExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout(), strings.Contains(msg, "timeout"):
		reason := fmt.Sprintf("no acknowledgement after %d attempt(s) of %s", s.p.retries+1, s.p.timeout)
		if s.p.inform && s.p.version == gosnmp.Version3 && discovered && s.p.priv != 0 {
			// Still retryable: a lost datagram looks the same.
			reason += ", although the receiver answered SNMPv3 engine discovery: wrong privacy " +
				"passphrase or protocol? (net-snmp drops what it cannot decrypt without a report)"
		}
		return true, reason
	case errors.Is(err, errNoResponse), errors.Is(err, errStatus):
		return true, "inform not acknowledged"
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return true, "cannot resolve the receiver's host name"
	}
	return true, "send failed"
}

// cleanError drops the goroutine dump gosnmp appends to an error it
// recovered from a panic: an error message is one line.
func cleanError(err error) error {
	if msg := err.Error(); strings.HasPrefix(msg, "recover:") {
		if i := strings.Index(msg, " Stack:"); i >= 0 {
			return errors.New(msg[:i])
		}
	}
	return err
}

// Sender implements pipeline/notify's Sender, restated here because this
// package must not depend on the one that wires it.
var _ interface {
	Send(ctx context.Context, evs []alert.Event) (retryable bool, err error)
} = (*Sender)(nil)

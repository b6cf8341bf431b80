package snmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/point"
)

// ReasonSNMP starts the reason of a point the agent answered with an
// error: an exception (noSuchObject, noSuchInstance, endOfMibView), an
// error status (tooBig, noSuchName, genErr, ...) or a refused v3 message.
// It is SNMP's counterpart of point.ReasonException.
const ReasonSNMP = "snmp"

// client is the part of an SNMP session a Device uses: one request at a
// time (the Device serialises them), each bounded by ctx and the session's
// timeout and retries. A reply that carries an error status is returned as
// a packet, not an error; err is for no usable reply at all. gosnmpClient
// implements it on one gosnmp session; tests use a fake agent.
type client interface {
	get(ctx context.Context, oids []string) (*gosnmp.SnmpPacket, error)
	getNext(ctx context.Context, oids []string) (*gosnmp.SnmpPacket, error)
	getBulk(ctx context.Context, oids []string, maxRepetitions uint32) (*gosnmp.SnmpPacket, error)
	close() error
}

// gosnmpClient is a client on one gosnmp session, owned by one Device.
type gosnmpClient struct {
	g *gosnmp.GoSNMP
}

// openGoSNMP builds and opens a session for cfg. For UDP, Connect only
// creates the connected socket: no packet is sent, so an unreachable agent
// shows up as timeouts later. A connected socket also means the kernel
// drops datagrams from any other address, and gosnmp discards replies whose
// request id is not one of the current request's, so a late reply to an
// earlier request is never taken for the answer to this one.
func openGoSNMP(cfg DeviceConfig) (client, error) {
	g, err := newGoSNMP(cfg)
	if err != nil {
		return nil, err
	}
	if err := g.Connect(); err != nil {
		return nil, err
	}
	return &gosnmpClient{g: g}, nil
}

// newGoSNMP builds a fresh session for cfg: never a copy of another
// (gosnmp.Default or a template), whose security parameters it would
// share.
func newGoSNMP(cfg DeviceConfig) (*gosnmp.GoSNMP, error) {
	g := &gosnmp.GoSNMP{
		Target:    cfg.Target,
		Port:      cfg.Port,
		Transport: "udp",
		Community: cfg.Community,
		Timeout:   cfg.Timeout,
		Retries:   cfg.Retries,
		MaxOids:   max(cfg.MaxVarbinds, gosnmp.MaxOids),
		Context:   context.Background(),
	}
	switch cfg.Version {
	case "1":
		g.Version = gosnmp.Version1
	case "2c":
		g.Version = gosnmp.Version2c
	case "3":
		g.Version = gosnmp.Version3
		usm, flags, err := usmParams(cfg.V3)
		if err != nil {
			return nil, err
		}
		g.SecurityModel = gosnmp.UserSecurityModel
		g.MsgFlags = flags
		g.SecurityParameters = usm
		g.ContextName = cfg.V3.ContextName
	default:
		return nil, fmt.Errorf("snmp: version %q (want 1, 2c or 3)", cfg.Version)
	}
	return g, nil
}

// Authentication and privacy protocols by the names configs use.
var (
	authProtos = map[string]gosnmp.SnmpV3AuthProtocol{
		"MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA-224": gosnmp.SHA224, "SHA-256": gosnmp.SHA256,
		"SHA-384": gosnmp.SHA384, "SHA-512": gosnmp.SHA512,
	}
	privProtos = map[string]gosnmp.SnmpV3PrivProtocol{
		"DES": gosnmp.DES, "AES": gosnmp.AES, "AES-128": gosnmp.AES, "AES-192": gosnmp.AES192,
		"AES-256": gosnmp.AES256, "AES-192C": gosnmp.AES192C, "AES-256C": gosnmp.AES256C,
	}
	levels = map[string]gosnmp.SnmpV3MsgFlags{
		"noAuthNoPriv": gosnmp.NoAuthNoPriv, "authNoPriv": gosnmp.AuthNoPriv, "authPriv": gosnmp.AuthPriv,
	}
)

// normProto accepts protocol names with or without the dash and in any
// case: "sha256", "SHA256" and "SHA-256" are one protocol.
func normProto(s string) string {
	u := strings.ToUpper(strings.ReplaceAll(s, "-", ""))
	for _, known := range []string{"SHA224", "SHA256", "SHA384", "SHA512", "AES128", "AES192C", "AES256C", "AES192", "AES256"} {
		if u == known {
			if strings.HasSuffix(u, "C") {
				return u[:3] + "-" + u[3:]
			}
			return u[:len(u)-3] + "-" + u[len(u)-3:]
		}
	}
	return u
}

// usmParams turns a V3Config into gosnmp's security parameters.
func usmParams(v V3Config) (*gosnmp.UsmSecurityParameters, gosnmp.SnmpV3MsgFlags, error) {
	usm := &gosnmp.UsmSecurityParameters{UserName: v.User}
	if v.User == "" {
		return nil, 0, errors.New("snmp: version 3 needs a user")
	}
	level := v.SecurityLevel
	if level == "" {
		switch {
		case v.PrivPass != "":
			level = "authPriv"
		case v.AuthPass != "":
			level = "authNoPriv"
		default:
			level = "noAuthNoPriv"
		}
	}
	flags, ok := levels[level]
	if !ok {
		return nil, 0, fmt.Errorf("snmp: security level %q (want noAuthNoPriv, authNoPriv or authPriv)", v.SecurityLevel)
	}
	if flags&gosnmp.AuthNoPriv != 0 {
		ap := v.AuthProto
		if ap == "" {
			ap = "SHA"
		}
		proto, ok := authProtos[normProto(ap)]
		if !ok {
			return nil, 0, fmt.Errorf("snmp: authentication protocol %q (want MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512)", v.AuthProto)
		}
		if len(v.AuthPass) < 8 {
			return nil, 0, errors.New("snmp: the authentication passphrase needs at least 8 characters")
		}
		usm.AuthenticationProtocol, usm.AuthenticationPassphrase = proto, v.AuthPass
	}
	if flags&gosnmp.AuthPriv == gosnmp.AuthPriv {
		pp := v.PrivProto
		if pp == "" {
			pp = "AES"
		}
		proto, ok := privProtos[normProto(pp)]
		if !ok {
			return nil, 0, fmt.Errorf("snmp: privacy protocol %q (want DES, AES, AES-192, AES-256, AES-192C or AES-256C)", v.PrivProto)
		}
		if len(v.PrivPass) < 8 {
			return nil, 0, errors.New("snmp: the privacy passphrase needs at least 8 characters")
		}
		usm.PrivacyProtocol, usm.PrivacyPassphrase = proto, v.PrivPass
	}
	return usm, flags, nil
}

// deadlinePast is a socket deadline that has passed: setting it ends a
// blocked read at once.
var deadlinePast = time.Unix(1, 0)

// bound runs one request with ctx as gosnmp's context (its deadline
// shortens the request's) and, should ctx end while the request waits for
// a reply, expires the socket's deadline so the wait ends at once rather
// than at the request's own timeout.
func (c *gosnmpClient) bound(ctx context.Context, do func() (*gosnmp.SnmpPacket, error)) (*gosnmp.SnmpPacket, error) {
	c.g.Context = ctx
	conn := c.g.Conn
	stop := context.AfterFunc(ctx, func() {
		if conn != nil {
			_ = conn.SetDeadline(deadlinePast)
		}
	})
	defer stop()
	pkt, err := do()
	if err == nil && pkt == nil {
		err = errors.New("no reply")
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return pkt, err
}

func (c *gosnmpClient) get(ctx context.Context, oids []string) (*gosnmp.SnmpPacket, error) {
	return c.bound(ctx, func() (*gosnmp.SnmpPacket, error) { return c.g.Get(oids) })
}

func (c *gosnmpClient) getNext(ctx context.Context, oids []string) (*gosnmp.SnmpPacket, error) {
	return c.bound(ctx, func() (*gosnmp.SnmpPacket, error) { return c.g.GetNext(oids) })
}

func (c *gosnmpClient) getBulk(ctx context.Context, oids []string, maxRep uint32) (*gosnmp.SnmpPacket, error) {
	return c.bound(ctx, func() (*gosnmp.SnmpPacket, error) { return c.g.GetBulk(oids, 0, maxRep) })
}

func (c *gosnmpClient) close() error {
	return c.g.Close()
}

// Reason turns a request error into the reason of the points the request
// was for. Timeouts start with point.ReasonTimeout, refused or broken
// sockets with point.ReasonConnection, refused v3 messages with ReasonSNMP
// and undecodable replies with point.ReasonProtocol.
func Reason(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, gosnmp.ErrWrongDigest):
		return ReasonSNMP + ": authentication failure (wrong passphrase?)"
	case strings.Contains(err.Error(), "not authentic"):
		// net-snmp answers a wrong authentication passphrase (and an
		// unknown user) with a usmStatsWrongDigests (usmStatsUnknownUserNames)
		// report that is itself unauthenticated, which gosnmp discards as
		// "incoming packet is not authentic".
		return ReasonSNMP + ": authentication failure (wrong user or passphrase?)"
	case errors.Is(err, gosnmp.ErrDecryption):
		return ReasonSNMP + ": decryption error (wrong privacy passphrase?)"
	case errors.Is(err, gosnmp.ErrUnknownUsername):
		return ReasonSNMP + ": unknown user name"
	case errors.Is(err, gosnmp.ErrUnknownSecurityLevel):
		return ReasonSNMP + ": unsupported security level"
	case errors.Is(err, gosnmp.ErrNotInTimeWindow):
		return ReasonSNMP + ": not in time window"
	case errors.Is(err, gosnmp.ErrUnknownEngineID):
		return ReasonSNMP + ": unknown engine id"
	case errors.Is(err, gosnmp.ErrUnknownReportPDU), errors.Is(err, gosnmp.ErrUnknownSecurityModels),
		errors.Is(err, gosnmp.ErrInvalidMsgs), errors.Is(err, gosnmp.ErrUnknownPDUHandlers):
		return ReasonSNMP + ": agent refused the message (" + err.Error() + ")"
	case errors.Is(err, context.Canceled):
		return point.ReasonNotPolled + ": poll cancelled"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout(), errors.Is(err, gosnmp.ErrMaxRetriesExceeded),
		strings.Contains(err.Error(), "timeout"):
		return point.ReasonTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		// ICMP port unreachable on the connected socket.
		return point.ReasonConnection + ": refused (no agent on that port)"
	case strings.HasPrefix(err.Error(), "recover:"):
		return point.ReasonProtocol + ": malformed reply"
	}
	var oe *net.OpError
	var de *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &de) || errors.Is(err, net.ErrClosed) {
		return point.ReasonConnection + ": " + err.Error()
	}
	return point.ReasonProtocol + ": " + err.Error()
}

// transportFailure reports whether reason means the agent cannot be
// reached or will refuse every request alike, so the rest of the poll is
// not tried.
func transportFailure(reason string) bool {
	return strings.HasPrefix(reason, point.ReasonTimeout) || strings.HasPrefix(reason, point.ReasonConnection) ||
		strings.HasPrefix(reason, point.ReasonNotPolled) ||
		(strings.HasPrefix(reason, ReasonSNMP+": ") && !strings.HasPrefix(reason, ReasonSNMP+": error status"))
}

// errorStatusNames are the PDU error-status values (RFC 3416).
var errorStatusNames = map[gosnmp.SNMPError]string{
	gosnmp.TooBig: "tooBig", gosnmp.NoSuchName: "noSuchName", gosnmp.BadValue: "badValue",
	gosnmp.ReadOnly: "readOnly", gosnmp.GenErr: "genErr", gosnmp.NoAccess: "noAccess",
	gosnmp.WrongType: "wrongType", gosnmp.WrongLength: "wrongLength", gosnmp.WrongEncoding: "wrongEncoding",
	gosnmp.WrongValue: "wrongValue", gosnmp.NoCreation: "noCreation", gosnmp.InconsistentValue: "inconsistentValue",
	gosnmp.ResourceUnavailable: "resourceUnavailable", gosnmp.CommitFailed: "commitFailed",
	gosnmp.UndoFailed: "undoFailed", gosnmp.AuthorizationError: "authorizationError",
	gosnmp.NotWritable: "notWritable", gosnmp.InconsistentName: "inconsistentName",
}

// statusReason is the reason for an error status.
func statusReason(s gosnmp.SNMPError) string {
	name, ok := errorStatusNames[s]
	if !ok {
		name = fmt.Sprintf("%d", s)
	}
	return ReasonSNMP + ": error status " + name
}

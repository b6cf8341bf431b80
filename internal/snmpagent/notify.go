package snmpagent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/gosnmp/gosnmp"
)

// Well-known OIDs of notifications (SNMPv2-MIB, RFC 3418).
const (
	OIDSysUpTime          = "1.3.6.1.2.1.1.3.0"
	OIDSnmpTrapOID        = "1.3.6.1.6.3.1.1.4.1.0"
	OIDSnmpTrapEnterprise = "1.3.6.1.6.3.1.1.4.3.0"
	// OIDSnmpTraps is the parent of the generic traps: coldStart .1,
	// warmStart .2, linkDown .3, linkUp .4, authenticationFailure .5,
	// egpNeighborLoss .6.
	OIDSnmpTraps = "1.3.6.1.6.3.1.1.5"
)

// DefaultInformTimeout is how long SendTrap waits for an inform's
// acknowledgement per attempt when Receiver.Timeout is zero.
const DefaultInformTimeout = time.Second

// Receiver is a notification receiver (a trap listener such as
// net-snmp's snmptrapd or facgw's gateway).
type Receiver struct {
	// Addr is the receiver's "host:port".
	Addr string
	// Version is gosnmp.Version1, Version2c or Version3.
	Version gosnmp.SnmpVersion
	// Community is sent by SNMPv1 and SNMPv2c notifications.
	Community string
	// Inform sends an InformRequest (v2c and v3), which the receiver
	// acknowledges; SendTrap waits for the acknowledgement.
	Inform bool
	// V3 is the SNMPv3 user. A v3 trap is sent from this agent's engine
	// (the receiver needs the user with the agent's EngineID, net-snmp:
	// createUser -e); a v3 inform first discovers the receiver's engine.
	V3 User
	// Timeout is the wait for an inform's acknowledgement per attempt
	// (0 means DefaultInformTimeout).
	Timeout time.Duration
	// Retries is how many times an unacknowledged inform is sent again.
	Retries int
	// LocalAddr is the "ip:port" to send from ("" for any), e.g. to send
	// as another device from 127.0.0.2.
	LocalAddr string
}

// SendTrap sends the notification trapOID with vbs to r: an SNMPv1 Trap
// (enterprise, generic and specific trap derived from trapOID as RFC 3584
// 3.2 maps them, Counter64 varbinds dropped), or an SNMPv2 trap or inform
// whose first varbinds are sysUpTime.0 (the agent's Uptime) and
// snmpTrapOID.0. For an inform it returns once the receiver acknowledged
// it, or with an error after the retries or when ctx ends. It is safe for
// concurrent use and independent of Serve: each call uses its own socket.
func (a *Agent) SendTrap(ctx context.Context, r Receiver, trapOID string, vbs []Varbind) error {
	if err := a.sendTrap(ctx, r, trapOID, vbs); err != nil {
		a.c.notifyFailures.Add(1)
		return err
	}
	a.c.traps.Add(1)
	if r.Inform {
		a.c.informsAcked.Add(1)
	}
	return nil
}

func (a *Agent) sendTrap(ctx context.Context, r Receiver, trapOID string, vbs []Varbind) error {
	trap, err := parseOID(trapOID)
	if err != nil {
		return fmt.Errorf("snmpagent: trap oid: %w", err)
	}
	pdus := make([]gosnmp.SnmpPDU, 0, len(vbs)+2)
	var enterprise string
	for _, vb := range vbs {
		o, err := parseOID(vb.OID)
		if err != nil {
			return fmt.Errorf("snmpagent: trap %s varbind: %w", trap, err)
		}
		if err := vb.Value.Validate(); err != nil {
			return fmt.Errorf("snmpagent: trap %s varbind %s: %w", trap, o, err)
		}
		if o.String() == OIDSnmpTrapEnterprise && vb.Value.Type == gosnmp.ObjectIdentifier {
			enterprise = vb.Value.Str
		}
		pdus = append(pdus, vb.Value.pdu(o.String()))
	}
	host, portStr, err := net.SplitHostPort(r.Addr)
	if err != nil {
		return fmt.Errorf("snmpagent: receiver address %q: %w", r.Addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return fmt.Errorf("snmpagent: receiver address %q: bad port", r.Addr)
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultInformTimeout
	}
	g := &gosnmp.GoSNMP{
		Target:    host,
		Port:      uint16(port),
		Transport: "udp",
		Version:   r.Version,
		Community: r.Community,
		Timeout:   timeout,
		Retries:   max(r.Retries, 0),
		Context:   ctx,
		LocalAddr: r.LocalAddr,
		MaxOids:   gosnmp.MaxOids,
	}
	t := gosnmp.SnmpTrap{IsInform: r.Inform}
	uptime := a.Uptime()
	switch r.Version {
	case gosnmp.Version1:
		if r.Inform {
			return errors.New("snmpagent: SNMPv1 has no inform")
		}
		t.Enterprise, t.GenericTrap, t.SpecificTrap = v1TrapHeader(trap, enterprise)
		t.Timestamp = uint(uptime)
		for _, p := range pdus {
			// RFC 3584 3.2 (3): v1 cannot carry Counter64, and the v2
			// notification varbinds are in the v1 header.
			if p.Type == gosnmp.Counter64 || p.Name == OIDSnmpTrapEnterprise {
				continue
			}
			t.Variables = append(t.Variables, p)
		}
	case gosnmp.Version2c, gosnmp.Version3:
		t.Variables = append([]gosnmp.SnmpPDU{
			{Name: OIDSysUpTime, Type: gosnmp.TimeTicks, Value: uptime},
			{Name: OIDSnmpTrapOID, Type: gosnmp.ObjectIdentifier, Value: trap.String()},
		}, pdus...)
	default:
		return fmt.Errorf("snmpagent: unsupported SNMP version %v", r.Version)
	}
	if r.Version == gosnmp.Version3 {
		u, err := r.V3.normalize()
		if err != nil {
			return err
		}
		sp := &gosnmp.UsmSecurityParameters{
			UserName:                 u.Name,
			AuthenticationProtocol:   u.AuthProto.gosnmp(),
			AuthenticationPassphrase: u.AuthPass,
			PrivacyProtocol:          u.PrivProto.gosnmp(),
			PrivacyPassphrase:        u.PrivPass,
		}
		if !r.Inform {
			// The sender of a trap is the authoritative engine: this agent.
			sp.AuthoritativeEngineID = a.usm.engineID
			sp.AuthoritativeEngineBoots = a.usm.boots
			sp.AuthoritativeEngineTime = a.usm.EngineTime()
			g.ContextEngineID = a.usm.engineID
		}
		g.SecurityModel = gosnmp.UserSecurityModel
		g.MsgFlags = u.level()
		g.SecurityParameters = sp
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := g.Connect(); err != nil {
		return fmt.Errorf("snmpagent: trap to %s: %w", r.Addr, err)
	}
	defer g.Conn.Close()
	// gosnmp honours the context only between attempts; closing the
	// socket ends a wait at once.
	stop := context.AfterFunc(ctx, func() { g.Conn.Close() })
	defer stop()
	if r.Version == gosnmp.Version1 {
		t.AgentAddress = "0.0.0.0"
		if la, ok := g.Conn.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
			t.AgentAddress = la.IP.To4().String()
		}
	}
	res, err := g.SendTrap(t)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("snmpagent: trap to %s: %w", r.Addr, ctx.Err())
		}
		return fmt.Errorf("snmpagent: trap to %s: %w", r.Addr, err)
	}
	if r.Inform {
		if res == nil || res.PDUType != gosnmp.GetResponse {
			return fmt.Errorf("snmpagent: inform to %s: no response", r.Addr)
		}
		if res.Error != gosnmp.NoError {
			return fmt.Errorf("snmpagent: inform to %s: receiver answered %s", r.Addr, res.Error)
		}
	}
	return nil
}

// v1TrapHeader maps an SNMPv2 notification OID to the SNMPv1 trap header
// (RFC 3584 3.2): one of the generic traps under snmpTraps becomes generic
// trap N-1 with the enterprise given in snmpTrapEnterprise.0 (or snmpTraps);
// any other becomes enterpriseSpecific(6) with the last arc as specific
// trap and the rest (less a trailing 0 arc) as enterprise, so
// upsTrapOnBattery 1.3.6.1.2.1.33.2.1 is enterprise 1.3.6.1.2.1.33.2,
// specific 1.
func v1TrapHeader(trap oid, enterprise string) (string, int, int) {
	traps, _ := parseOID(OIDSnmpTraps)
	if len(trap) == len(traps)+1 && trap.hasPrefix(traps) && trap[len(traps)] >= 1 && trap[len(traps)] <= 6 {
		if enterprise == "" {
			enterprise = OIDSnmpTraps
		}
		return enterprise, int(trap[len(traps)]) - 1, 0
	}
	n := len(trap)
	ent := trap[:n-1]
	if n > 2 && trap[n-2] == 0 {
		ent = trap[:n-2]
	}
	return ent.String(), 6, int(trap[n-1])
}

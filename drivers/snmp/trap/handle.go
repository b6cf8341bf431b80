package trap

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/snmpagent"
)

// handle processes one datagram from from, read at now: it queues the
// event of an accepted notification and returns the reply to send (an
// inform's Response, or an SNMPv3 report), if any.
func (l *Listener) handle(msg []byte, from netip.AddrPort, now time.Time, queue chan<- Event) []byte {
	l.received.Add(1)
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	dev, ok := l.acc.Load().sources[from.Addr()]
	if !ok {
		l.reject(ReasonUnknownSource, from, "", nil, now)
		return nil
	}
	version, err := peekVersion(msg)
	if err != nil {
		l.reject(ReasonMalformed, from, dev, err, now)
		return nil
	}
	switch version {
	case gosnmp.Version1, gosnmp.Version2c:
		return l.handleCommunity(msg, version, from, dev, now, queue)
	case gosnmp.Version3:
		return l.handleV3(msg, from, dev, now, queue)
	}
	l.reject(ReasonBadVersion, from, dev, fmt.Errorf("version %d", version), now)
	return nil
}

func (l *Listener) handleCommunity(msg []byte, v gosnmp.SnmpVersion, from netip.AddrPort, dev string, now time.Time, queue chan<- Event) []byte {
	pkt, err := l.decodeSafe(func() (*gosnmp.SnmpPacket, error) {
		return (&gosnmp.GoSNMP{Version: v}).SnmpDecodePacket(msg)
	})
	if err != nil {
		l.reject(ReasonMalformed, from, dev, err, now)
		return nil
	}
	if !l.validCommunity(pkt.Community) {
		l.reject(ReasonBadCommunity, from, dev, nil, now) // the community itself is not logged
		return nil
	}
	ev, reason, err := l.event(pkt, from, dev, now)
	if err != nil {
		l.reject(reason, from, dev, err, now)
		return nil
	}
	if !l.enqueue(ev, queue, from, now) {
		return nil
	}
	if !ev.Inform {
		return nil
	}
	ack := &gosnmp.SnmpPacket{
		Version:   pkt.Version,
		Community: pkt.Community,
		PDUType:   gosnmp.GetResponse,
		RequestID: pkt.RequestID,
		Variables: pkt.Variables,
	}
	b, err := ack.MarshalMsg()
	if err != nil {
		// A varbind gosnmp decodes but cannot encode again: the request
		// id is what the sender matches, so acknowledge without them.
		ack.Variables = nil
		if b, err = ack.MarshalMsg(); err != nil {
			return nil
		}
	}
	l.informs.Add(1)
	return b
}

func (l *Listener) handleV3(msg []byte, from netip.AddrPort, dev string, now time.Time, queue chan<- Event) []byte {
	var report []byte
	m, err := l.decodeV3Safe(msg, &report)
	if err != nil {
		if errors.Is(err, snmpagent.ErrUnknownEngineID) && report != nil {
			l.discoveries.Add(1) // engine discovery before an inform: normal
			return report
		}
		l.reject(usmReason(err), from, dev, err, now)
		return report
	}
	ev, reason, err := l.event(m.Packet, from, dev, now)
	if err != nil {
		l.reject(reason, from, dev, err, now)
		return nil
	}
	ev.User = m.User.Name
	if ev.Inform && !m.Authoritative {
		l.reject(ReasonUnknownEngineID, from, dev, errors.New("inform for another engine"), now)
		return nil
	}
	if !l.enqueue(ev, queue, from, now) {
		return nil
	}
	if !ev.Inform {
		return nil
	}
	b, err := l.acc.Load().usm.Reply(m, gosnmp.NoError, 0, m.Packet.Variables)
	if err != nil {
		if b, err = l.acc.Load().usm.Reply(m, gosnmp.NoError, 0, nil); err != nil {
			return nil
		}
	}
	l.informs.Add(1)
	return b
}

// usmReason maps a USM refusal to a Reason.
func usmReason(err error) Reason {
	switch {
	case errors.Is(err, snmpagent.ErrUnknownUserName):
		return ReasonUnknownUser
	case errors.Is(err, snmpagent.ErrUnsupportedSecLevel):
		return ReasonUnsupportedSecLevel
	case errors.Is(err, snmpagent.ErrWrongDigest):
		return ReasonWrongDigest
	case errors.Is(err, snmpagent.ErrDecryption):
		return ReasonDecryption
	case errors.Is(err, snmpagent.ErrNotInTimeWindow):
		return ReasonNotInTimeWindow
	case errors.Is(err, snmpagent.ErrUnknownEngineID):
		return ReasonUnknownEngineID
	}
	return ReasonMalformed
}

// enqueue offers ev to the dispatcher without blocking.
func (l *Listener) enqueue(ev Event, queue chan<- Event, from netip.AddrPort, now time.Time) bool {
	select {
	case queue <- ev:
		l.events.Add(1)
		return true
	default:
		l.reject(ReasonQueueFull, from, ev.Device, fmt.Errorf("%s dropped", ev.TrapOID), now)
		return false
	}
}

// event builds the Event of a decoded notification.
func (l *Listener) event(pkt *gosnmp.SnmpPacket, from netip.AddrPort, dev string, now time.Time) (Event, Reason, error) {
	ev := Event{Time: now, Device: dev, Source: from, Version: pkt.Version}
	switch pkt.PDUType {
	case gosnmp.Trap:
		if pkt.Version != gosnmp.Version1 {
			return ev, ReasonNotNotification, fmt.Errorf("SNMPv1 Trap-PDU in a %s message", pkt.Version)
		}
		ent := trimDot(pkt.Enterprise)
		oid, ok := v1TrapOID(ent, pkt.GenericTrap, pkt.SpecificTrap)
		if !ok {
			return ev, ReasonMalformed, fmt.Errorf("generic trap %d, specific trap %d", pkt.GenericTrap, pkt.SpecificTrap)
		}
		ev.TrapOID = oid
		ev.Uptime = uint32(pkt.Timestamp)
		ev.V1 = &V1Header{Enterprise: ent, AgentAddress: pkt.AgentAddress, Generic: pkt.GenericTrap, Specific: pkt.SpecificTrap}
		ev.Varbinds = make([]Varbind, 0, len(pkt.Variables))
		for _, p := range pkt.Variables {
			ev.Varbinds = append(ev.Varbinds, Varbind{OID: trimDot(p.Name), Value: snmpagent.ValueFromPDU(p)})
		}
		ev.Name = l.acc.Load().names[oid]
		if ev.Name == "" && pkt.GenericTrap == 6 {
			ev.Name = l.acc.Load().names[ent+"."+strconv.Itoa(pkt.SpecificTrap)]
		}
	case gosnmp.SNMPv2Trap, gosnmp.InformRequest:
		if pkt.Version == gosnmp.Version1 {
			return ev, ReasonNotNotification, fmt.Errorf("%s in an SNMPv1 message", pkt.PDUType)
		}
		ev.Inform = pkt.PDUType == gosnmp.InformRequest
		ev.Varbinds = make([]Varbind, 0, len(pkt.Variables))
		// RFC 3416 4.2.6 puts sysUpTime.0 and snmpTrapOID.0 first; some
		// agents do not, so look for them anywhere.
		for _, p := range pkt.Variables {
			name := trimDot(p.Name)
			switch {
			case name == oidSysUpTime && p.Type == gosnmp.TimeTicks && ev.Uptime == 0:
				ev.Uptime = uint32(snmpagent.ValueFromPDU(p).Uint)
			case name == oidSnmpTrapOID && p.Type == gosnmp.ObjectIdentifier && ev.TrapOID == "":
				ev.TrapOID = snmpagent.ValueFromPDU(p).Str
			default:
				ev.Varbinds = append(ev.Varbinds, Varbind{OID: name, Value: snmpagent.ValueFromPDU(p)})
			}
		}
		if ev.TrapOID == "" {
			return ev, ReasonMalformed, errors.New("no snmpTrapOID.0")
		}
		ev.Name = l.acc.Load().names[ev.TrapOID]
	default:
		return ev, ReasonNotNotification, fmt.Errorf("%s PDU", pkt.PDUType)
	}
	return ev, 0, nil
}

// reject counts a refused notification and logs it, at most once per
// LogEvery for each reason.
func (l *Listener) reject(r Reason, from netip.AddrPort, dev string, err error, now time.Time) {
	l.rejected[r].Add(1)
	ok, suppressed := l.limit.allow(r, now)
	if !ok {
		return
	}
	attrs := []any{slog.String("reason", r.String()), slog.String("source", from.String())}
	if dev != "" {
		attrs = append(attrs, slog.String("device", dev))
	}
	if err != nil {
		attrs = append(attrs, slog.String("detail", err.Error()))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", suppressed))
	}
	l.log.Warn("trap: notification refused", attrs...)
}

// peekVersion reads the version of an SNMP message: SEQUENCE { INTEGER
// version, ... }.
func peekVersion(b []byte) (gosnmp.SnmpVersion, error) {
	if len(b) < 2 || b[0] != 0x30 {
		return 0, errors.New("not a BER SEQUENCE")
	}
	i := 2
	if b[1]&0x80 != 0 {
		i += int(b[1] & 0x7f)
	}
	if len(b) < i+3 || b[i] != 0x02 || b[i+1] != 1 {
		return 0, errors.New("no version")
	}
	return gosnmp.SnmpVersion(b[i+2]), nil
}

// decodeSafe runs a gosnmp decoder, turning a panic on hostile input into
// an error: one bad datagram must not end trap reception.
func (l *Listener) decodeSafe(f func() (*gosnmp.SnmpPacket, error)) (pkt *gosnmp.SnmpPacket, err error) {
	defer func() {
		if r := recover(); r != nil {
			l.panics.Add(1)
			pkt, err = nil, fmt.Errorf("decoder panic: %v", r)
		}
	}()
	return f()
}

// decodeV3Safe is decodeSafe for the USM.
func (l *Listener) decodeV3Safe(msg []byte, report *[]byte) (m *snmpagent.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			l.panics.Add(1)
			m, err = nil, fmt.Errorf("%w: decoder panic: %v", snmpagent.ErrParse, r)
		}
	}()
	m, *report, err = l.acc.Load().usm.Decode(msg)
	return m, err
}

func trimDot(s string) string {
	if len(s) > 0 && s[0] == '.' {
		return s[1:]
	}
	return s
}

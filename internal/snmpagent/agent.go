// Package snmpagent is a compact SNMP agent for facgw's facility simulator:
// gosnmp encodes and decodes messages but has no agent, and the simulator
// must serve SNMP devices (a UPS-MIB UPS, a switched PDU, a switch) and send
// their traps.
//
// An Agent answers GET, GETNEXT, GETBULK and SET over a UDP socket for
// SNMPv1, SNMPv2c (communities) and SNMPv3 (USM: MD5, SHA and SHA-2
// authentication, DES and AES privacy, engine discovery and the reports
// net-snmp and gosnmp managers expect), from a Store of typed values in
// OID order. Writable OIDs call back into the simulator. Faults (silence,
// error status, garbage, truncated replies, late replies) can be switched
// at run time. SendTrap sends v1 and v2c traps, v2c informs and v3
// traps and informs.
//
// OIDs are written in dotted form; a leading dot is accepted and never
// produced.
package snmpagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"
)

// Config configures an Agent. The zero value is valid: it answers nothing
// but SNMPv3 engine discovery.
type Config struct {
	// Communities are accepted for reading by SNMPv1 and SNMPv2c requests.
	Communities []string
	// WriteCommunities are accepted for reading and for SET.
	WriteCommunities []string
	// EngineID is the SNMPv3 engine id (5 to 32 octets); nil means a
	// random one (see Agent.EngineID).
	EngineID []byte
	// EngineBoots is snmpEngineBoots; 0 means 1. An agent restarted with
	// the same EngineID should count it up, or managers that remember the
	// engine time will see it jump back (gosnmp and net-snmp resynchronise
	// on the usmStatsNotInTimeWindows report either way).
	EngineBoots uint32
	// Users are the SNMPv3 users.
	Users []User
	// MaxMessageSize bounds replies, in bytes (484 to 65507; 0 means
	// 65507). A GETBULK reply is cut to fit; another reply that does not
	// fit is answered with tooBig.
	MaxMessageSize int
	// Logger receives refused requests at debug level; nil discards them.
	Logger *slog.Logger
}

// FaultKind selects how the agent misbehaves; see Fault.
type FaultKind uint8

// Fault kinds.
const (
	// FaultNone answers normally.
	FaultNone FaultKind = iota
	// FaultSilent reads requests and never answers.
	FaultSilent
	// FaultLate answers every request after Fault.Delay (requests keep
	// being served meanwhile, so replies may overtake each other).
	FaultLate
	// FaultError answers every request with error status Fault.Status
	// (genErr if zero) and error index 1, without executing it.
	FaultError
	// FaultGarbage answers with random bytes that are not an SNMP message.
	FaultGarbage
	// FaultTruncated answers with the first half of the correct reply, so
	// the BER lengths promise more than arrives.
	FaultTruncated
)

var faultNames = [...]string{"none", "silent", "late", "error", "garbage", "truncated"}

// String returns the kind's name ("none", "silent", ...).
func (k FaultKind) String() string {
	if int(k) < len(faultNames) {
		return faultNames[k]
	}
	return fmt.Sprintf("fault(%d)", k)
}

// Fault describes the injected misbehaviour of the agent.
type Fault struct {
	Kind FaultKind
	// Delay is the reply delay of FaultLate.
	Delay time.Duration
	// Status is the error status of FaultError; zero means genErr. SNMPv1
	// managers get it mapped to a v1 status (RFC 3584 4.4).
	Status gosnmp.SNMPError
}

// Stats counts what the agent received and did.
type Stats struct {
	InPackets  uint64 // datagrams received
	OutPackets uint64 // replies sent (responses and reports)

	BadVersions    uint64 // not SNMPv1, v2c or v3
	BadCommunities uint64 // v1/v2c with an unknown community: not answered
	ParseErrors    uint64 // v1/v2c messages that could not be decoded, and recovered panics
	UnexpectedPDUs uint64 // PDUs an agent does not serve (traps, responses, v1 GETBULK)

	Gets, GetNexts, GetBulks, Sets uint64 // requests served
	SetsRejected                   uint64 // SETs answered with an error

	Silenced uint64 // requests dropped by FaultSilent
	Delayed  uint64 // replies delayed by FaultLate
	Mangled  uint64 // replies replaced by FaultGarbage or FaultTruncated

	TrapsSent      uint64 // traps sent (all versions)
	InformsAcked   uint64 // informs the receiver acknowledged
	NotifyFailures uint64 // traps or informs that could not be sent or were not acknowledged

	USM USMStats // SNMPv3 refusals
}

type counters struct {
	in, out, badVersion, badCommunity, parse, unexpected atomic.Uint64
	gets, getNexts, getBulks, sets, setsRejected         atomic.Uint64
	silenced, delayed, mangled                           atomic.Uint64
	traps, informsAcked, notifyFailures                  atomic.Uint64
}

// Agent is an SNMP agent serving a Store. Its methods are safe for
// concurrent use; Serve may run on several sockets at once.
type Agent struct {
	store   *Store
	usm     *USM
	read    map[string]bool
	write   map[string]bool
	maxSize int
	log     *slog.Logger
	start   time.Time

	fmu   sync.RWMutex
	fault Fault

	c counters
}

// New returns an Agent serving store with cfg. It does no I/O.
func New(store *Store, cfg Config) (*Agent, error) {
	if store == nil {
		return nil, errors.New("snmpagent: nil store")
	}
	a := &Agent{
		store:   store,
		read:    make(map[string]bool),
		write:   make(map[string]bool),
		maxSize: cfg.MaxMessageSize,
		log:     cfg.Logger,
		start:   time.Now(),
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.maxSize == 0 {
		a.maxSize = defaultMaxMsgSize
	}
	if a.maxSize < 484 || a.maxSize > defaultMaxMsgSize {
		return nil, fmt.Errorf("snmpagent: max message size %d outside 484..%d", a.maxSize, defaultMaxMsgSize)
	}
	for _, c := range cfg.Communities {
		a.read[c] = true
	}
	for _, c := range cfg.WriteCommunities {
		a.read[c], a.write[c] = true, true
	}
	for c := range a.read {
		// gosnmp writes the community length in one octet.
		if c == "" || len(c) > 127 {
			return nil, fmt.Errorf("snmpagent: community must have 1 to 127 octets, %q has %d", c, len(c))
		}
	}
	id := cfg.EngineID
	if id == nil {
		id = NewEngineID()
	}
	var err error
	if a.usm, err = NewUSM(id, cfg.EngineBoots, cfg.Users); err != nil {
		return nil, err
	}
	return a, nil
}

// Store returns the agent's data.
func (a *Agent) Store() *Store { return a.store }

// EngineID returns the SNMPv3 engine id, which a receiver of v3 traps
// needs (net-snmp: createUser -e 0x<hex>).
func (a *Agent) EngineID() []byte { return a.usm.EngineID() }

// Uptime returns the time since New in hundredths of a second, the
// sysUpTime that traps carry.
func (a *Agent) Uptime() uint32 {
	return uint32(time.Since(a.start) / (10 * time.Millisecond))
}

// SetFault sets the fault, effective from the next request.
func (a *Agent) SetFault(f Fault) {
	a.fmu.Lock()
	defer a.fmu.Unlock()
	a.fault = f
}

// Fault returns the current fault.
func (a *Agent) Fault() Fault {
	a.fmu.RLock()
	defer a.fmu.RUnlock()
	return a.fault
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	return Stats{
		InPackets:      a.c.in.Load(),
		OutPackets:     a.c.out.Load(),
		BadVersions:    a.c.badVersion.Load(),
		BadCommunities: a.c.badCommunity.Load(),
		ParseErrors:    a.c.parse.Load(),
		UnexpectedPDUs: a.c.unexpected.Load(),
		Gets:           a.c.gets.Load(),
		GetNexts:       a.c.getNexts.Load(),
		GetBulks:       a.c.getBulks.Load(),
		Sets:           a.c.sets.Load(),
		SetsRejected:   a.c.setsRejected.Load(),
		Silenced:       a.c.silenced.Load(),
		Delayed:        a.c.delayed.Load(),
		Mangled:        a.c.mangled.Load(),
		TrapsSent:      a.c.traps.Load(),
		InformsAcked:   a.c.informsAcked.Load(),
		NotifyFailures: a.c.notifyFailures.Load(),
		USM:            a.usm.Stats(),
	}
}

// Serve answers requests arriving on pc until ctx is done (it then returns
// nil) or reading fails. It takes ownership of pc and closes it on return.
// Requests are served one at a time on the calling goroutine, SetFuncs
// included; a late reply (FaultLate) waits on its own goroutine, and
// replies still waiting when Serve returns are dropped.
func (a *Agent) Serve(ctx context.Context, pc net.PacketConn) error {
	defer pc.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()

	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("snmpagent: read: %w", err)
		}
		a.c.in.Add(1)
		f := a.Fault()
		if f.Kind == FaultSilent {
			a.c.silenced.Add(1)
			continue
		}
		reply := a.handleSafe(buf[:n], f)
		if reply == nil {
			continue
		}
		switch f.Kind {
		case FaultGarbage:
			reply = garbage()
			a.c.mangled.Add(1)
		case FaultTruncated:
			reply = reply[:len(reply)/2]
			a.c.mangled.Add(1)
		case FaultLate:
			a.c.delayed.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTimer(f.Delay)
				defer t.Stop()
				select {
				case <-t.C:
					if _, err := pc.WriteTo(reply, from); err == nil {
						a.c.out.Add(1)
					}
				case <-ctx.Done():
				}
			}()
			continue
		}
		if _, err := pc.WriteTo(reply, from); err != nil {
			a.log.Debug("snmpagent: write reply", "to", from.String(), "err", err)
			continue
		}
		a.c.out.Add(1)
	}
}

// garbage returns 1 to 48 random bytes that cannot start an SNMP message.
func garbage() []byte {
	b := make([]byte, 1+rand.IntN(48))
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	if b[0] == tagSequence {
		b[0] = 0xff
	}
	return b
}

// handleSafe is handle with a recover: the decoders run on hostile input,
// and a panic in one (or in a SetFunc) must cost one request, not the agent.
func (a *Agent) handleSafe(msg []byte, f Fault) (reply []byte) {
	defer func() {
		if r := recover(); r != nil {
			a.c.parse.Add(1)
			a.log.Warn("snmpagent: recovered panic while handling a request", "panic", fmt.Sprint(r))
			reply = nil
		}
	}()
	return a.handle(msg, f)
}

// handle processes one datagram and returns the reply, or nil.
func (a *Agent) handle(msg []byte, f Fault) []byte {
	m, err := peekMessage(msg)
	if err != nil {
		a.c.parse.Add(1)
		return nil
	}
	switch m.version {
	case int64(gosnmp.Version1), int64(gosnmp.Version2c):
		return a.handleCommunity(msg, m, f)
	case int64(gosnmp.Version3):
		return a.handleV3(msg, f)
	}
	a.c.badVersion.Add(1)
	return nil
}

func (a *Agent) handleCommunity(msg []byte, m message, f Fault) []byte {
	if !a.read[m.community] {
		a.c.badCommunity.Add(1)
		a.log.Debug("snmpagent: unknown community", "version", m.version)
		return nil
	}
	version := gosnmp.SnmpVersion(m.version)
	g := &gosnmp.GoSNMP{Version: version}
	pkt, err := g.SnmpDecodePacket(msg)
	if err != nil {
		a.c.parse.Add(1)
		return nil
	}
	r, ok := a.process(pkt, version, a.write[m.community], a.maxSize, f)
	if !ok {
		return nil
	}
	return a.encodeFit(r, a.maxSize, version, func(status gosnmp.SNMPError, index uint8, vars []gosnmp.SnmpPDU) ([]byte, error) {
		out := &gosnmp.SnmpPacket{
			Version:    version,
			Community:  m.community,
			PDUType:    gosnmp.GetResponse,
			RequestID:  pkt.RequestID,
			Error:      status,
			ErrorIndex: index,
			Variables:  vars,
		}
		return out.MarshalMsg()
	})
}

func (a *Agent) handleV3(msg []byte, f Fault) []byte {
	m, report, err := a.usm.Decode(msg)
	if err != nil {
		a.log.Debug("snmpagent: v3 message refused", "err", err)
		return report
	}
	limit := min(a.maxSize, m.MaxSize)
	r, ok := a.process(m.Packet, gosnmp.Version3, !m.User.ReadOnly, limit, f)
	if !ok {
		return nil
	}
	return a.encodeFit(r, limit, gosnmp.Version3, func(status gosnmp.SNMPError, index uint8, vars []gosnmp.SnmpPDU) ([]byte, error) {
		return a.usm.Reply(m, status, index, vars)
	})
}

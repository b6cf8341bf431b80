package snmpagent

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"
)

// AuthProtocol is an SNMPv3 authentication protocol, named as net-snmp's
// -a option names it. The zero value means no authentication.
type AuthProtocol string

// Authentication protocols.
const (
	AuthNone   AuthProtocol = ""
	AuthMD5    AuthProtocol = "MD5"
	AuthSHA    AuthProtocol = "SHA" // HMAC-SHA-96 (SHA-1)
	AuthSHA224 AuthProtocol = "SHA-224"
	AuthSHA256 AuthProtocol = "SHA-256"
	AuthSHA384 AuthProtocol = "SHA-384"
	AuthSHA512 AuthProtocol = "SHA-512"
)

// PrivProtocol is an SNMPv3 privacy protocol, named as net-snmp's -x
// option names it. The zero value means no privacy. AES-192 and AES-256
// extend short keys as net-snmp does (draft-blumenthal-aes-usm); the "-C"
// variants use the extension Cisco devices use (draft-reeder-snmpv3-usm-3desede).
type PrivProtocol string

// Privacy protocols.
const (
	PrivNone    PrivProtocol = ""
	PrivDES     PrivProtocol = "DES"
	PrivAES     PrivProtocol = "AES" // AES-128 (RFC 3826)
	PrivAES192  PrivProtocol = "AES-192"
	PrivAES256  PrivProtocol = "AES-256"
	PrivAES192C PrivProtocol = "AES-192-C"
	PrivAES256C PrivProtocol = "AES-256-C"
)

var authProtocols = map[string]AuthProtocol{
	"": AuthNone, "none": AuthNone, "noauth": AuthNone,
	"md5": AuthMD5, "sha": AuthSHA, "sha1": AuthSHA, "sha-1": AuthSHA,
	"sha224": AuthSHA224, "sha-224": AuthSHA224, "sha256": AuthSHA256, "sha-256": AuthSHA256,
	"sha384": AuthSHA384, "sha-384": AuthSHA384, "sha512": AuthSHA512, "sha-512": AuthSHA512,
}

var privProtocols = map[string]PrivProtocol{
	"": PrivNone, "none": PrivNone, "nopriv": PrivNone, "des": PrivDES,
	"aes": PrivAES, "aes128": PrivAES, "aes-128": PrivAES,
	"aes192": PrivAES192, "aes-192": PrivAES192, "aes256": PrivAES256, "aes-256": PrivAES256,
	"aes192c": PrivAES192C, "aes-192-c": PrivAES192C, "aes256c": PrivAES256C, "aes-256-c": PrivAES256C,
}

// ParseAuthProtocol parses an authentication protocol name, ignoring case
// and accepting the common spellings (SHA256, SHA-256, sha1, none, ...).
func ParseAuthProtocol(s string) (AuthProtocol, error) {
	if p, ok := authProtocols[strings.ToLower(strings.TrimSpace(s))]; ok {
		return p, nil
	}
	return "", fmt.Errorf("snmpagent: unknown authentication protocol %q (want MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512)", s)
}

// ParsePrivProtocol parses a privacy protocol name, ignoring case and
// accepting the common spellings (AES, AES128, AES-256, none, ...).
func ParsePrivProtocol(s string) (PrivProtocol, error) {
	if p, ok := privProtocols[strings.ToLower(strings.TrimSpace(s))]; ok {
		return p, nil
	}
	return "", fmt.Errorf("snmpagent: unknown privacy protocol %q (want DES, AES, AES-192, AES-256, AES-192-C or AES-256-C)", s)
}

func (p AuthProtocol) gosnmp() gosnmp.SnmpV3AuthProtocol {
	switch p {
	case AuthMD5:
		return gosnmp.MD5
	case AuthSHA:
		return gosnmp.SHA
	case AuthSHA224:
		return gosnmp.SHA224
	case AuthSHA256:
		return gosnmp.SHA256
	case AuthSHA384:
		return gosnmp.SHA384
	case AuthSHA512:
		return gosnmp.SHA512
	}
	return gosnmp.NoAuth
}

func (p PrivProtocol) gosnmp() gosnmp.SnmpV3PrivProtocol {
	switch p {
	case PrivDES:
		return gosnmp.DES
	case PrivAES:
		return gosnmp.AES
	case PrivAES192:
		return gosnmp.AES192
	case PrivAES256:
		return gosnmp.AES256
	case PrivAES192C:
		return gosnmp.AES192C
	case PrivAES256C:
		return gosnmp.AES256C
	}
	return gosnmp.NoPriv
}

// macLen is the length of the truncated HMAC each protocol puts in
// msgAuthenticationParameters (RFC 3414, RFC 7860).
func macLen(p gosnmp.SnmpV3AuthProtocol) int {
	switch p {
	case gosnmp.MD5, gosnmp.SHA:
		return 12
	case gosnmp.SHA224:
		return 16
	case gosnmp.SHA256:
		return 24
	case gosnmp.SHA384:
		return 32
	case gosnmp.SHA512:
		return 48
	}
	return 0
}

// User is an SNMPv3 USM user: the agent's view of a manager, or the trap
// listener's view of a device sending notifications.
type User struct {
	Name      string
	AuthProto AuthProtocol
	AuthPass  string
	PrivProto PrivProtocol
	PrivPass  string
	// ReadOnly refuses SETs (noAccess) from this user; agent only.
	ReadOnly bool
}

// String names the user and its protocols, never its passphrases.
func (u User) String() string {
	a, p := string(u.AuthProto), string(u.PrivProto)
	if a == "" {
		a = "noAuth"
	}
	if p == "" {
		p = "noPriv"
	}
	return u.Name + " (" + a + "/" + p + ")"
}

// normalize validates u and returns it with canonical protocol names.
func (u User) normalize() (User, error) {
	var err error
	if u.Name == "" || len(u.Name) > 32 {
		return u, fmt.Errorf("snmpagent: user %q: name must have 1 to 32 characters", u.Name)
	}
	if u.AuthProto, err = ParseAuthProtocol(string(u.AuthProto)); err != nil {
		return u, fmt.Errorf("snmpagent: user %q: %w", u.Name, err)
	}
	if u.PrivProto, err = ParsePrivProtocol(string(u.PrivProto)); err != nil {
		return u, fmt.Errorf("snmpagent: user %q: %w", u.Name, err)
	}
	// net-snmp refuses passphrases shorter than 8 characters (RFC 3414
	// 11.2 recommends at least 8), and gosnmp would derive an empty key
	// from an empty one.
	if u.AuthProto != AuthNone && len(u.AuthPass) < 8 {
		return u, fmt.Errorf("snmpagent: user %q: authentication passphrase needs at least 8 characters", u.Name)
	}
	if u.PrivProto != PrivNone {
		if u.AuthProto == AuthNone {
			return u, fmt.Errorf("snmpagent: user %q: privacy needs authentication", u.Name)
		}
		if len(u.PrivPass) < 8 {
			return u, fmt.Errorf("snmpagent: user %q: privacy passphrase needs at least 8 characters", u.Name)
		}
	}
	return u, nil
}

// level is the security level the user works at.
func (u User) level() gosnmp.SnmpV3MsgFlags {
	switch {
	case u.PrivProto != PrivNone:
		return gosnmp.AuthPriv
	case u.AuthProto != AuthNone:
		return gosnmp.AuthNoPriv
	}
	return gosnmp.NoAuthNoPriv
}

// params returns gosnmp USM parameters for u with keys localized to
// engineID.
func (u User) params(engineID string) (*gosnmp.UsmSecurityParameters, error) {
	sp := &gosnmp.UsmSecurityParameters{
		AuthoritativeEngineID:    engineID,
		UserName:                 u.Name,
		AuthenticationProtocol:   u.AuthProto.gosnmp(),
		AuthenticationPassphrase: u.AuthPass,
		PrivacyProtocol:          u.PrivProto.gosnmp(),
		PrivacyPassphrase:        u.PrivPass,
	}
	if err := sp.InitSecurityKeys(); err != nil {
		return nil, fmt.Errorf("snmpagent: user %q: localize keys: %w", u.Name, err)
	}
	return sp, nil
}

// NewEngineID returns a random SNMP engine id (RFC 3411 format 5,
// administratively assigned octets, no enterprise number).
func NewEngineID() []byte {
	id := make([]byte, 13)
	copy(id, []byte{0x80, 0, 0, 0, 5})
	_, _ = rand.Read(id[5:])
	return id
}

// ParseEngineID parses an engine id in hex, with or without a 0x prefix,
// as net-snmp's -e option and createUser -e take it.
func ParseEngineID(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	if err != nil {
		return nil, fmt.Errorf("snmpagent: engine id %q: %w", s, err)
	}
	if len(b) < 5 || len(b) > 32 {
		return nil, fmt.Errorf("snmpagent: engine id %q: must have 5 to 32 octets", s)
	}
	return b, nil
}

// USM errors: why Decode refused a message. Each is counted in USMStats.
var (
	ErrParse                = errors.New("snmpagent: usm: malformed message")
	ErrUnknownSecurityModel = errors.New("snmpagent: usm: unknown security model")
	ErrInvalidMsg           = errors.New("snmpagent: usm: invalid message flags")
	ErrUnknownEngineID      = errors.New("snmpagent: usm: unknown engine id")
	ErrUnknownUserName      = errors.New("snmpagent: usm: unknown user name")
	ErrUnsupportedSecLevel  = errors.New("snmpagent: usm: unsupported security level")
	ErrWrongDigest          = errors.New("snmpagent: usm: wrong digest")
	ErrNotInTimeWindow      = errors.New("snmpagent: usm: not in time window")
	ErrDecryption           = errors.New("snmpagent: usm: decryption error")
)

// The counters reported to managers (RFC 3414 5, RFC 3412 5).
const (
	oidUnsupportedSecLevels = "1.3.6.1.6.3.15.1.1.1.0"
	oidNotInTimeWindows     = "1.3.6.1.6.3.15.1.1.2.0"
	oidUnknownUserNames     = "1.3.6.1.6.3.15.1.1.3.0"
	oidUnknownEngineIDs     = "1.3.6.1.6.3.15.1.1.4.0"
	oidWrongDigests         = "1.3.6.1.6.3.15.1.1.5.0"
	oidDecryptionErrors     = "1.3.6.1.6.3.15.1.1.6.0"
	timeWindow              = 150 // seconds, RFC 3414 3.2.7
	maxEngineBoots          = 1<<31 - 1
	maxForeignKeys          = 4096
	defaultMaxMsgSize       = 65507 // the largest UDP payload over IPv4
	minEngineIDLen          = 5
	maxEngineIDLen          = 32
)

// USMStats counts the messages the USM refused, by reason (the usmStats
// and snmp*Msgs counters of RFC 3414 and RFC 3412). UnknownEngineIDs
// includes the engine discovery every v3 manager performs first.
type USMStats struct {
	ParseErrors           uint64
	UnknownSecurityModels uint64
	InvalidMsgs           uint64
	UnknownEngineIDs      uint64
	UnknownUserNames      uint64
	UnsupportedSecLevels  uint64
	WrongDigests          uint64
	NotInTimeWindows      uint64
	DecryptionErrors      uint64
}

type usmCounters struct {
	parse, secModel, invalid, engine, user, level, digest, window, decrypt atomic.Uint64
}

// USM is the receiving side of the SNMPv3 User-based Security Model
// (RFC 3414) on top of gosnmp's message encoding: it authenticates and
// decrypts incoming messages, answers what cannot be processed with the
// report a manager expects (engine discovery, unknown user, wrong digest,
// time window), and encodes authenticated, encrypted replies. A message
// carrying this engine's id is a request or inform to us (we are
// authoritative, and the time window applies); a message carrying another
// engine's id that does not ask for a report is a trap from that
// authoritative engine, authenticated with keys localized to its id.
//
// A user is accepted only at its configured security level (authPriv for
// a user with privacy, and so on), as net-snmp's "rouser NAME priv" does.
//
// USM is safe for concurrent use.
type USM struct {
	engineID string
	boots    uint32
	start    time.Time
	users    map[string]*usmUser
	salt     atomic.Uint64
	c        usmCounters

	mu      sync.Mutex
	foreign map[foreignKey]*gosnmp.UsmSecurityParameters
}

type usmUser struct {
	User
	auth  gosnmp.SnmpV3AuthProtocol
	priv  gosnmp.SnmpV3PrivProtocol
	local *gosnmp.UsmSecurityParameters // keys localized to our engine id
}

type foreignKey struct{ user, engineID string }

// NewUSM returns a USM for the engine engineID (5 to 32 octets) in its
// boots-th boot (at least 1), serving users. Keys are localized here, so
// NewUSM takes a moment per user.
func NewUSM(engineID []byte, boots uint32, users []User) (*USM, error) {
	if len(engineID) < minEngineIDLen || len(engineID) > maxEngineIDLen {
		return nil, fmt.Errorf("snmpagent: engine id must have 5 to 32 octets, has %d", len(engineID))
	}
	if boots == 0 {
		boots = 1
	}
	if boots >= maxEngineBoots {
		return nil, fmt.Errorf("snmpagent: engine boots %d out of range", boots)
	}
	u := &USM{
		engineID: string(engineID),
		boots:    boots,
		start:    time.Now(),
		users:    make(map[string]*usmUser, len(users)),
		foreign:  make(map[foreignKey]*gosnmp.UsmSecurityParameters),
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	u.salt.Store(binary.BigEndian.Uint64(seed[:]))
	var errs []error
	for _, usr := range users {
		n, err := usr.normalize()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := u.users[n.Name]; dup {
			errs = append(errs, fmt.Errorf("snmpagent: user %q defined twice", n.Name))
			continue
		}
		sp, err := n.params(u.engineID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		u.users[n.Name] = &usmUser{User: n, auth: n.AuthProto.gosnmp(), priv: n.PrivProto.gosnmp(), local: sp}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return u, nil
}

// EngineID returns the engine's id.
func (u *USM) EngineID() []byte { return []byte(u.engineID) }

// EngineBoots returns snmpEngineBoots.
func (u *USM) EngineBoots() uint32 { return u.boots }

// WithUsers returns a USM of the same engine as u (id, boots, and an
// engine time that goes on counting from u's start) with users in place of
// u's, for a listener whose users change while it runs: senders that
// already know the engine stay in its time window (RFC 3414 3.2 step 7),
// and time never goes backwards under the same id and boots. The privacy
// salt continues well beyond u's, so the two never produce the same IV.
func (u *USM) WithUsers(users []User) (*USM, error) {
	n, err := NewUSM([]byte(u.engineID), u.boots, users)
	if err != nil {
		return nil, err
	}
	n.start = u.start
	n.salt.Store(u.salt.Load() + 1<<40)
	return n, nil
}

// EngineTime returns snmpEngineTime: seconds since the USM was created.
func (u *USM) EngineTime() uint32 { return uint32(time.Since(u.start) / time.Second) }

// Stats returns the refusal counters.
func (u *USM) Stats() USMStats {
	return USMStats{
		ParseErrors:           u.c.parse.Load(),
		UnknownSecurityModels: u.c.secModel.Load(),
		InvalidMsgs:           u.c.invalid.Load(),
		UnknownEngineIDs:      u.c.engine.Load(),
		UnknownUserNames:      u.c.user.Load(),
		UnsupportedSecLevels:  u.c.level.Load(),
		WrongDigests:          u.c.digest.Load(),
		NotInTimeWindows:      u.c.window.Load(),
		DecryptionErrors:      u.c.decrypt.Load(),
	}
}

// Message is an SNMPv3 message the USM authenticated and decrypted.
type Message struct {
	// Packet is the decoded message; its Variables are gosnmp's (names
	// with a leading dot, byte values aliasing a private copy of the
	// datagram).
	Packet *gosnmp.SnmpPacket
	// User is the user that sent it (passphrases included: do not log it
	// with %#v).
	User User
	// Level is the message's security level: gosnmp.NoAuthNoPriv,
	// AuthNoPriv or AuthPriv.
	Level gosnmp.SnmpV3MsgFlags
	// Authoritative is true when the message was addressed to this engine
	// (a request or an inform), false for a trap from a remote engine.
	Authoritative bool
	// EngineID is msgAuthoritativeEngineID.
	EngineID string
	// MaxSize is the largest reply the sender accepts (msgMaxSize).
	MaxSize int
}

// Decode authenticates, decrypts and decodes the SNMPv3 message msg (which
// it does not modify). When the message cannot be processed, the error
// wraps one of the USM errors, and report, if not nil, is the Report
// message to send back to the sender (engine discovery is answered this
// way: ErrUnknownEngineID with a report).
func (u *USM) Decode(msg []byte) (m *Message, report []byte, err error) {
	h, err := parseV3Header(msg)
	if err != nil {
		u.c.parse.Add(1)
		return nil, nil, fmt.Errorf("%w: %v", ErrParse, err)
	}
	if h.secModel != int64(gosnmp.UserSecurityModel) {
		u.c.secModel.Add(1)
		return nil, nil, fmt.Errorf("%w: %d", ErrUnknownSecurityModel, h.secModel)
	}
	flags := gosnmp.SnmpV3MsgFlags(h.flags)
	level := flags & gosnmp.AuthPriv
	reportable := flags&gosnmp.Reportable != 0
	if level == gosnmp.AuthPriv&^gosnmp.AuthNoPriv { // privacy without authentication
		u.c.invalid.Add(1)
		return nil, nil, fmt.Errorf("%w: 0x%02x", ErrInvalidMsg, h.flags)
	}
	authoritative := h.engineID == u.engineID
	if !authoritative && (reportable || len(h.engineID) < minEngineIDLen || len(h.engineID) > maxEngineIDLen) {
		// A request or inform for another engine, or the discovery probe
		// (empty engine id): tell the sender who we are.
		n := u.c.engine.Add(1)
		if reportable {
			report = u.report(&h, oidUnknownEngineIDs, n, nil, gosnmp.NoAuthNoPriv)
		}
		return nil, report, fmt.Errorf("%w: %x", ErrUnknownEngineID, h.engineID)
	}
	usr := u.users[h.user]
	if usr == nil {
		n := u.c.user.Add(1)
		if reportable {
			report = u.report(&h, oidUnknownUserNames, n, nil, gosnmp.NoAuthNoPriv)
		}
		return nil, report, fmt.Errorf("%w: %q", ErrUnknownUserName, h.user)
	}
	if level != usr.level() {
		n := u.c.level.Add(1)
		if reportable {
			report = u.report(&h, oidUnsupportedSecLevels, n, nil, gosnmp.NoAuthNoPriv)
		}
		return nil, report, fmt.Errorf("%w: user %q at level %d", ErrUnsupportedSecLevel, h.user, level)
	}
	sp := usr.local
	fk := foreignKey{usr.Name, h.engineID}
	if !authoritative && usr.auth != gosnmp.NoAuth {
		if sp, err = u.foreignParams(usr, fk); err != nil {
			return nil, nil, err
		}
	}
	if level&gosnmp.AuthNoPriv != 0 {
		if !verifyMAC(msg, &h, usr.auth, sp.SecretKey) {
			n := u.c.digest.Add(1)
			if reportable {
				report = u.report(&h, oidWrongDigests, n, nil, gosnmp.NoAuthNoPriv)
			}
			return nil, report, fmt.Errorf("%w: user %q", ErrWrongDigest, h.user)
		}
		if authoritative && (h.boots != int64(u.boots) || abs(h.time-int64(u.EngineTime())) > timeWindow) {
			n := u.c.window.Add(1)
			if reportable {
				// Authenticated, so the manager can trust the boots and time
				// it carries and resynchronise (RFC 3414 3.2.7a).
				report = u.report(&h, oidNotInTimeWindows, n, usr, gosnmp.AuthNoPriv)
			}
			return nil, report, fmt.Errorf("%w: boots %d time %d", ErrNotInTimeWindow, h.boots, h.time)
		}
	}
	pkt, err := decodeV3(msg, sp, level)
	if err != nil {
		if level == gosnmp.AuthPriv {
			n := u.c.decrypt.Add(1)
			if reportable {
				report = u.report(&h, oidDecryptionErrors, n, nil, gosnmp.NoAuthNoPriv)
			}
			return nil, report, fmt.Errorf("%w: user %q: %v", ErrDecryption, h.user, err)
		}
		u.c.parse.Add(1)
		return nil, nil, fmt.Errorf("%w: %v", ErrParse, err)
	}
	if !authoritative {
		if pkt.PDUType != gosnmp.SNMPv2Trap {
			// Only an unconfirmed notification comes from the authoritative
			// side; anything else must carry our engine id.
			u.c.engine.Add(1)
			return nil, nil, fmt.Errorf("%w: %s for engine %x", ErrUnknownEngineID, pkt.PDUType, h.engineID)
		}
		if usr.auth != gosnmp.NoAuth {
			u.remember(fk, sp)
		}
	}
	maxSize := int(h.maxSize)
	if maxSize < 484 || maxSize > defaultMaxMsgSize {
		maxSize = defaultMaxMsgSize
	}
	return &Message{
		Packet:        pkt,
		User:          usr.User,
		Level:         level,
		Authoritative: authoritative,
		EngineID:      h.engineID,
		MaxSize:       maxSize,
	}, nil, nil
}

// Reply encodes a reply (a Response to a request or an inform) to m, which
// must be authoritative, at m's security level.
func (u *USM) Reply(m *Message, status gosnmp.SNMPError, index uint8, vars []gosnmp.SnmpPDU) ([]byte, error) {
	if !m.Authoritative {
		return nil, errors.New("snmpagent: usm: cannot reply to a message from another engine")
	}
	usr := u.users[m.User.Name]
	if usr == nil {
		return nil, fmt.Errorf("snmpagent: usm: unknown user %q", m.User.Name)
	}
	ctxEngine := m.Packet.ContextEngineID
	if ctxEngine == "" {
		ctxEngine = u.engineID
	}
	pkt := &gosnmp.SnmpPacket{
		Version:            gosnmp.Version3,
		MsgFlags:           m.Level,
		SecurityModel:      gosnmp.UserSecurityModel,
		SecurityParameters: u.secParams(m.User.Name, usr, m.Level),
		PDUType:            gosnmp.GetResponse,
		MsgID:              m.Packet.MsgID,
		MsgMaxSize:         defaultMaxMsgSize,
		RequestID:          m.Packet.RequestID,
		Error:              status,
		ErrorIndex:         index,
		ContextEngineID:    ctxEngine,
		ContextName:        m.Packet.ContextName,
		Variables:          vars,
	}
	return pkt.MarshalMsg()
}

// secParams returns the USM parameters of an outgoing message from this
// engine at level: current boots and time, the user's keys, a fresh salt.
func (u *USM) secParams(name string, usr *usmUser, level gosnmp.SnmpV3MsgFlags) *gosnmp.UsmSecurityParameters {
	sp := &gosnmp.UsmSecurityParameters{
		AuthoritativeEngineID:    u.engineID,
		AuthoritativeEngineBoots: u.boots,
		AuthoritativeEngineTime:  u.EngineTime(),
		UserName:                 name,
		AuthenticationProtocol:   gosnmp.NoAuth,
		PrivacyProtocol:          gosnmp.NoPriv,
	}
	if usr != nil && level&gosnmp.AuthNoPriv != 0 {
		sp.AuthenticationProtocol = usr.auth
		sp.SecretKey = usr.local.SecretKey
	}
	if usr != nil && level == gosnmp.AuthPriv {
		sp.PrivacyProtocol = usr.priv
		sp.PrivacyKey = usr.local.PrivacyKey
		sp.PrivacyParameters = u.newSalt(usr.priv)
	}
	return sp
}

// newSalt returns msgPrivacyParameters for an outgoing encrypted message:
// a counter never reused with the same key and engine time (RFC 3826
// 3.1.2.1; for DES, boots and a counter, RFC 3414 8.1.1.1).
func (u *USM) newSalt(p gosnmp.SnmpV3PrivProtocol) []byte {
	salt := make([]byte, 8)
	n := u.salt.Add(1)
	if p == gosnmp.DES {
		binary.BigEndian.PutUint32(salt, u.boots)
		binary.BigEndian.PutUint32(salt[4:], uint32(n))
		return salt
	}
	binary.BigEndian.PutUint64(salt, n)
	return salt
}

// report encodes a Report PDU carrying counter oid = n in answer to h.
func (u *USM) report(h *v3Header, oid string, n uint64, usr *usmUser, level gosnmp.SnmpV3MsgFlags) []byte {
	pkt := &gosnmp.SnmpPacket{
		Version:            gosnmp.Version3,
		MsgFlags:           level,
		SecurityModel:      gosnmp.UserSecurityModel,
		SecurityParameters: u.secParams(h.user, usr, level),
		PDUType:            gosnmp.Report,
		MsgID:              uint32(h.msgID),
		MsgMaxSize:         defaultMaxMsgSize,
		RequestID:          uint32(h.requestID()),
		ContextEngineID:    u.engineID,
		ContextName:        h.contextName(),
		Variables:          []gosnmp.SnmpPDU{{Name: oid, Type: gosnmp.Counter32, Value: uint32(n)}},
	}
	b, err := pkt.MarshalMsg()
	if err != nil {
		return nil
	}
	return b
}

// foreignParams returns usr's keys localized to another engine's id (a
// trap sender), from the cache of ids that authenticated before.
func (u *USM) foreignParams(usr *usmUser, k foreignKey) (*gosnmp.UsmSecurityParameters, error) {
	u.mu.Lock()
	sp := u.foreign[k]
	u.mu.Unlock()
	if sp != nil {
		return sp, nil
	}
	return usr.params(k.engineID)
}

// remember caches keys that authenticated a message, so that a sender's
// next traps skip the localization. The cache is bounded: messages that
// fail authentication never enter it, and it is emptied when full.
func (u *USM) remember(k foreignKey, sp *gosnmp.UsmSecurityParameters) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.foreign[k]; ok {
		return
	}
	if len(u.foreign) >= maxForeignKeys {
		clear(u.foreign)
	}
	u.foreign[k] = sp
}

// verifyMAC checks msgAuthenticationParameters: the HMAC of the whole
// message with that field zeroed (RFC 3414 6.3.2, 7.3.2; RFC 7860 4.2.2;
// HMAC-MD5-96 and HMAC-SHA-96 are plain HMAC with a truncated output).
func verifyMAC(msg []byte, h *v3Header, p gosnmp.SnmpV3AuthProtocol, key []byte) bool {
	n := macLen(p)
	if n == 0 || len(h.authParams) != n || h.authOff < 0 || h.authOff+n > len(msg) {
		return false
	}
	buf := bytes.Clone(msg)
	clear(buf[h.authOff : h.authOff+n])
	mac := hmac.New(p.HashType().New, key)
	mac.Write(buf)
	return hmac.Equal(mac.Sum(nil)[:n], h.authParams)
}

// decodeV3 decodes an authenticated message with gosnmp, which verifies
// the MAC again and decrypts. sp is copied; msg is not modified.
func decodeV3(msg []byte, sp *gosnmp.UsmSecurityParameters, level gosnmp.SnmpV3MsgFlags) (*gosnmp.SnmpPacket, error) {
	g := &gosnmp.GoSNMP{
		Version:            gosnmp.Version3,
		SecurityModel:      gosnmp.UserSecurityModel,
		MsgFlags:           level,
		SecurityParameters: sp.Copy(),
	}
	// UnmarshalTrap decodes any PDU type; with true it checks the message
	// against its own flags and the user of sp.
	return g.UnmarshalTrap(bytes.Clone(msg), true)
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

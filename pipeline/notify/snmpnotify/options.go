package snmpnotify

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/snmpagent"
)

// Defaults for zero Options fields.
const (
	// DefaultTimeout is the wait for an inform's acknowledgement (and for
	// each step of SNMPv3 engine discovery) per attempt.
	DefaultTimeout = 2 * time.Second
	// MaxRetries bounds Options.Retries.
	MaxRetries = 10
)

// redacted is what a Secret prints as.
const redacted = "<secret>"

// Secret is a community or a passphrase. It prints as "<secret>" with
// every fmt verb, in JSON and text encodings and in log/slog, so Options
// can be logged or put in an error as they are.
type Secret string

// String returns "<secret>".
func (Secret) String() string { return redacted }

// GoString returns "<secret>", for %#v.
func (Secret) GoString() string { return redacted }

// Format prints "<secret>" for every verb.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalText returns "<secret>".
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue returns "<secret>".
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// reveal returns the value, only where it is sent.
func (s Secret) reveal() string { return string(s) }

// Options configure a Sender: one notification receiver, facgw's identity
// and where the FACGW-MIB sits. Several receivers are several Senders, each
// behind its own notify.Path (own outbox, own health): one receiver that is
// down must not hold back another.
type Options struct {
	// Address is the receiver's "host:port" (receivers listen on 162).
	Address string
	// Version is "2c" or "3". SNMPv1 cannot carry the notifications
	// (facgwAlertSeq is a Counter64).
	Version string
	// Community is sent with SNMPv2c notifications.
	Community Secret
	// Inform sends InformRequests, each repeated until the receiver
	// acknowledges it; otherwise traps, delivered once written to the
	// socket.
	Inform bool

	// User is the SNMPv3 user (1 to 32 characters).
	User string
	// SecurityLevel is noAuthNoPriv, authNoPriv or authPriv; empty means
	// what the passphrases given allow.
	SecurityLevel string
	// AuthProtocol is MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512,
	// required from authNoPriv up (there is no default the receiver could
	// silently disagree with); AuthPassword has at least 8 characters.
	AuthProtocol string
	AuthPassword Secret
	// PrivProtocol is DES, AES (128), AES-192, AES-256 (keys extended as
	// net-snmp's AES-192/AES-256 do, draft-blumenthal-aes-usm) or
	// AES-192C, AES-256C (extended as Cisco devices and net-snmp's
	// AES-192-C/AES-256-C do, draft-reeder), required at authPriv.
	// PrivPassword has at least 8 characters.
	PrivProtocol string
	PrivPassword Secret
	// EngineID is the hex engine id SNMPv3 traps are sent from: for a
	// trap the sender is the authoritative engine, and the receiver must
	// know the user under this id (net-snmp: createUser -e ENGINEID).
	// Empty means one derived from Gateway (DeriveEngineID), stable
	// across restarts. An inform is sent to the receiver's engine, which
	// the Sender discovers, so EngineID is an error with Inform.
	EngineID string

	// Timeout is the wait for an acknowledgement per attempt
	// (DefaultTimeout if 0).
	Timeout time.Duration
	// Retries is how many times an unacknowledged inform (or an SNMPv3
	// discovery) is sent again within one Send, 0 to MaxRetries. The
	// notify.Path retries failed batches anyway.
	Retries int

	// Site and Gateway stand in for an event's own when it has none;
	// Gateway also seeds the default SNMPv3 engine id.
	Site, Gateway string
	// EnterpriseOID is the OID of the FACGW-MIB module, under which every
	// notification and object sits (DefaultEnterpriseOID if empty). A site
	// that moves the MIB under its own enterprise number sets both this and
	// the MIB's facgwMIB line to the same OID.
	EnterpriseOID string
}

// params is Options checked and resolved.
type params struct {
	host     string
	port     uint16
	version  gosnmp.SnmpVersion
	inform   bool
	user     string
	level    gosnmp.SnmpV3MsgFlags
	auth     gosnmp.SnmpV3AuthProtocol
	priv     gosnmp.SnmpV3PrivProtocol
	secrets  *secrets
	engineID []byte // v3 traps only
	timeout  time.Duration
	retries  int
	site     string
	gateway  string
	base     string
}

// secrets sit behind a pointer: fmt prints a nested pointer as an address,
// so even a %#v of a Sender's fields shows no community or passphrase.
type secrets struct {
	community, authPass, privPass string
}

var (
	levels = map[string]gosnmp.SnmpV3MsgFlags{
		"noauthnopriv": gosnmp.NoAuthNoPriv, "authnopriv": gosnmp.AuthNoPriv, "authpriv": gosnmp.AuthPriv,
	}
	// Protocol names as in facgw's config and net-snmp's options, matched
	// in upper case without dashes (see protoKey).
	authProtocols = map[string]gosnmp.SnmpV3AuthProtocol{
		"MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA1": gosnmp.SHA, "SHA224": gosnmp.SHA224,
		"SHA256": gosnmp.SHA256, "SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512,
	}
	privProtocols = map[string]gosnmp.SnmpV3PrivProtocol{
		"DES": gosnmp.DES, "AES": gosnmp.AES, "AES128": gosnmp.AES, "AES192": gosnmp.AES192,
		"AES256": gosnmp.AES256, "AES192C": gosnmp.AES192C, "AES256C": gosnmp.AES256C,
	}
)

// check validates o without any I/O and returns all problems. Messages
// name the option and never contain a secret.
func (o Options) check() (params, []error) {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	p := params{
		inform: o.Inform,
		user:   o.User,
		secrets: &secrets{
			community: o.Community.reveal(),
			authPass:  o.AuthPassword.reveal(),
			privPass:  o.PrivPassword.reveal(),
		},
		timeout: o.Timeout,
		retries: o.Retries,
		site:    o.Site,
		gateway: o.Gateway,
		base:    o.EnterpriseOID,
	}

	// Checked without resolving: New does no I/O; a name is resolved by
	// each Send, so a DNS outage is a retryable delivery failure.
	host, port, err := net.SplitHostPort(o.Address)
	if err != nil || host == "" {
		add("address %q: want host:port", o.Address)
	} else if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		add("address %q: port must be 1..65535", o.Address)
	} else {
		p.host, p.port = host, uint16(n)
	}

	switch o.Version {
	case "2c":
		p.version = gosnmp.Version2c
		if o.Community == "" {
			add("version 2c needs a community")
		}
		if o.User != "" || o.SecurityLevel != "" || o.AuthProtocol != "" || o.AuthPassword != "" ||
			o.PrivProtocol != "" || o.PrivPassword != "" || o.EngineID != "" {
			add("user, security level, protocols, passphrases and engine id apply to version 3 only")
		}
	case "3":
		p.version = gosnmp.Version3
		if o.Community != "" {
			add("community applies to version 2c; version 3 uses a user")
		}
		errs = append(errs, p.checkV3(o)...)
	case "1":
		add("version 1 cannot carry FACGW-MIB notifications (no Counter64): use 2c or 3")
	default:
		add("version %q: want 2c or 3", o.Version)
	}

	if p.timeout == 0 {
		p.timeout = DefaultTimeout
	}
	if p.timeout < 0 {
		add("timeout %s must not be negative", o.Timeout)
	}
	if p.retries < 0 || p.retries > MaxRetries {
		add("retries %d: want 0..%d", o.Retries, MaxRetries)
	}

	if p.base == "" {
		p.base = DefaultEnterpriseOID
	}
	if n, err := snmpagent.NormalizeOID(p.base); err != nil {
		add("enterprise oid %q is not a numeric OID such as %s", o.EnterpriseOID, DefaultEnterpriseOID)
	} else if strings.Count(n, ".")+1+4 > 128 {
		// The deepest OID sent is base.1.1.N.0; an OID has at most 128 arcs.
		add("enterprise oid %q is too long", o.EnterpriseOID)
	} else {
		p.base = n
	}

	if len(errs) > 0 {
		return params{}, errs
	}
	return p, nil
}

// checkV3 resolves the SNMPv3 options into p.
func (p *params) checkV3(o Options) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.User == "" || len(o.User) > 32 {
		add("version 3 needs a user of 1 to 32 characters")
	}
	level := o.SecurityLevel
	if level == "" {
		switch {
		case o.PrivPassword != "":
			level = "authPriv"
		case o.AuthPassword != "":
			level = "authNoPriv"
		default:
			level = "noAuthNoPriv"
		}
	}
	flags, ok := levels[strings.ToLower(level)]
	if !ok {
		add("security level %q: want noAuthNoPriv, authNoPriv or authPriv", o.SecurityLevel)
	}
	p.level = flags
	if flags&gosnmp.AuthNoPriv != 0 {
		p.auth, ok = authProtocols[protoKey(o.AuthProtocol)]
		if o.AuthProtocol == "" {
			add("security level %s needs an authentication protocol (MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512)", level)
		} else if !ok {
			add("authentication protocol %q: want MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512", o.AuthProtocol)
		}
		// net-snmp refuses shorter ones (RFC 3414 11.2 asks for 8).
		if len(o.AuthPassword) < 8 {
			add("security level %s needs an authentication passphrase of at least 8 characters", level)
		}
	} else if o.AuthProtocol != "" || o.AuthPassword != "" {
		add("security level %s takes no authentication protocol or passphrase", level)
	}
	if flags&gosnmp.AuthPriv == gosnmp.AuthPriv {
		p.priv, ok = privProtocols[protoKey(o.PrivProtocol)]
		if o.PrivProtocol == "" {
			add("security level authPriv needs a privacy protocol (DES, AES, AES-192, AES-256, AES-192C or AES-256C)")
		} else if !ok {
			add("privacy protocol %q: want DES, AES, AES-192, AES-256, AES-192C or AES-256C", o.PrivProtocol)
		}
		if len(o.PrivPassword) < 8 {
			add("security level authPriv needs a privacy passphrase of at least 8 characters")
		}
	} else if o.PrivProtocol != "" || o.PrivPassword != "" {
		add("security level %s takes no privacy protocol or passphrase", level)
	}
	switch {
	case o.Inform && o.EngineID != "":
		add("engine id applies to v3 traps only: an inform goes to the receiver's engine, which is discovered")
	case o.Inform:
	case o.EngineID != "":
		id, err := snmpagent.ParseEngineID(o.EngineID)
		if err != nil {
			add("engine id %q: want 5 to 32 octets in hex", o.EngineID)
		}
		p.engineID = id
	case o.Gateway == "":
		add("v3 traps need an engine id, or a gateway name to derive one from")
	default:
		p.engineID = deriveEngineID(o.Gateway)
	}
	return errs
}

// protoKey folds the spellings of a protocol name into one: "SHA-256",
// "sha256" and "Sha-256" are one protocol, and so are facgw's "AES-256C"
// and net-snmp's "AES-256-C".
func protoKey(s string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", ""))
}

// enterpriseNumber is the number in DefaultEnterpriseOID, used in derived
// engine ids (RFC 3411 SnmpEngineID: the first four octets are the
// enterprise number with the top bit set).
const enterpriseNumber = 32473

// deriveEngineID returns an RFC 3411 engine id of format 5 (octets,
// administratively assigned): enterprise 32473 and 8 octets of a hash of
// the gateway name, so the same gateway keeps its engine id across
// restarts and reinstalls (the receiver's createUser -e stays valid) and
// two gateways differ.
func deriveEngineID(gateway string) []byte {
	sum := sha256.Sum256([]byte("facgw snmp engine\x00" + gateway))
	id := binary.BigEndian.AppendUint32(nil, 0x80000000|enterpriseNumber)
	id = append(id, 5)
	return append(id, sum[:8]...)
}

// DeriveEngineID returns the hex SNMPv3 engine id a Sender uses for the
// traps of the gateway named gateway when Options.EngineID is empty: what
// the receiver's createUser -e needs.
func DeriveEngineID(gateway string) string {
	return hex.EncodeToString(deriveEngineID(gateway))
}

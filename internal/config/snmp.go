package config

import (
	"slices"
	"strings"

	"github.com/facgw/facgw/internal/strictyaml"
)

// TransportSNMP polls a device over SNMP (UDP).
const TransportSNMP = "snmp"

// SNMP configures how a device's SNMP agent is reached.
type SNMP struct {
	// Version is "1", "2c" or "3".
	Version string `yaml:"version" check:"required"`
	// Community is for v1 and v2c.
	Community Secret `yaml:"community"`
	// User, SecurityLevel (noAuthNoPriv, authNoPriv, authPriv), the auth
	// protocol (SHA, SHA-224, SHA-256, SHA-384, SHA-512, MD5) and privacy
	// protocol (AES, AES-192, AES-256, DES) with their passphrases are for
	// v3.
	User          string `yaml:"user"`
	SecurityLevel string `yaml:"security_level"`
	AuthProtocol  string `yaml:"auth_protocol"`
	AuthPassword  Secret `yaml:"auth_password"`
	PrivProtocol  string `yaml:"priv_protocol"`
	PrivPassword  Secret `yaml:"priv_password"`
	Context       string `yaml:"context"`
	// MaxVarbinds caps varbinds per GET (default 20); MaxRepetitions is
	// the GETBULK repetition count (default 10).
	MaxVarbinds    int            `yaml:"max_varbinds"`
	MaxRepetitions int            `yaml:"max_repetitions"`
	Pos            strictyaml.Pos `json:"-"`
}

// Protocol returns the profile protocol a transport speaks.
func Protocol(transport string) string {
	if transport == TransportSNMP {
		return "snmp"
	}
	return "modbus"
}

var (
	authProtocols = []string{"MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"}
	privProtocols = []string{"DES", "AES", "AES-192", "AES-256", "AES-192C", "AES-256C"}
	secLevels     = []string{"noAuthNoPriv", "authNoPriv", "authPriv"}
)

// snmp checks an SNMP device's transport fields.
func (c *checker) snmp(d *Device) {
	p := d.Pos
	if !p.Has("address") {
		c.add(p.At("address", "snmp needs address: host:port (the agent, usually port 161)"))
	} else if msg := checkHostPort(d.Address, true); msg != "" {
		c.add(p.At("address", "address %q: %s", d.Address, msg))
	}
	if p.Has("serial") {
		c.add(p.At("serial", "serial applies only to modbus-rtu"))
	}
	if p.Has("unit") {
		c.add(p.At("unit", "unit applies only to Modbus devices"))
	}
	s := d.SNMP
	if s == nil {
		c.add(p.At("snmp", "snmp needs snmp: {version: 2c, community: ...} or a v3 user"))
		return
	}
	c.snmpCredentials(s)
	at := func(field, format string, args ...any) { c.add(s.Pos.At(field, format, args...)) }
	if s.MaxVarbinds < 0 || s.MaxVarbinds > 120 {
		at("max_varbinds", "max_varbinds must be 1..120, got %d", s.MaxVarbinds)
	}
	if s.MaxRepetitions < 0 || s.MaxRepetitions > 200 {
		at("max_repetitions", "max_repetitions must be 1..200, got %d", s.MaxRepetitions)
	}
}

// snmpCredentials checks an SNMP version and its community or v3 user, and
// normalises the protocol names.
func (c *checker) snmpCredentials(s *SNMP) {
	at := func(field, format string, args ...any) { c.add(s.Pos.At(field, format, args...)) }
	switch s.Version {
	case "":
	case "1", "2c":
		if !s.Community.IsSet() {
			at("community", "SNMP v%s needs a community", s.Version)
		}
		for _, f := range []string{"user", "security_level", "auth_protocol", "auth_password", "priv_protocol", "priv_password", "context"} {
			if s.Pos.Has(f) {
				at(f, "%s applies only to SNMP v3", f)
			}
		}
	case "3":
		if s.Community.IsSet() {
			at("community", "SNMP v3 uses a user, not a community")
		}
		if s.User == "" {
			at("user", "SNMP v3 needs a user")
		}
		if s.SecurityLevel == "" {
			s.SecurityLevel = "authPriv"
		}
		if !slices.Contains(secLevels, s.SecurityLevel) {
			at("security_level", "unknown security level %q%s", s.SecurityLevel, strictyaml.DidYouMeanOr(s.SecurityLevel, secLevels))
			break
		}
		auth, priv := s.SecurityLevel != "noAuthNoPriv", s.SecurityLevel == "authPriv"
		c.v3Algo(s, "auth_protocol", "auth_password", &s.AuthProtocol, s.AuthPassword, authProtocols, auth, s.SecurityLevel)
		c.v3Algo(s, "priv_protocol", "priv_password", &s.PrivProtocol, s.PrivPassword, privProtocols, priv, s.SecurityLevel)
	default:
		at("version", "unknown SNMP version %q (1, 2c or 3)", s.Version)
	}
}

// v3Algo checks one of the v3 protocol/passphrase pairs for the level.
func (c *checker) v3Algo(s *SNMP, protoField, passField string, proto *string, pass Secret, known []string, needed bool, level string) {
	if !needed {
		if *proto != "" || pass.IsSet() {
			c.add(s.Pos.At(protoField, "%s and %s do not apply at security level %s", protoField, passField, level))
		}
		return
	}
	if *proto == "" {
		c.add(s.Pos.At(protoField, "security level %s needs %s (%s)", level, protoField, strings.Join(known, ", ")))
	} else if i := slices.IndexFunc(known, func(k string) bool { return strings.EqualFold(k, *proto) }); i < 0 {
		c.add(s.Pos.At(protoField, "unknown protocol %q%s", *proto, strictyaml.DidYouMeanOr(*proto, known)))
	} else {
		*proto = known[i]
	}
	if !pass.IsSet() {
		c.add(s.Pos.At(passField, "security level %s needs %s", level, passField))
	} else if len(pass.Reveal()) < 8 {
		// RFC 3414 section 11.2: shorter passphrases are refused by agents.
		c.add(s.Pos.At(passField, "%s must be at least 8 characters (RFC 3414)", passField))
	}
}

// Traps configures the SNMP trap and inform listener. Notifications are
// accepted only from the addresses of configured SNMP devices (and the
// extra Sources), with a configured community or v3 user; each one
// triggers an immediate poll of the device that sent it.
type Traps struct {
	// Listen is the UDP address, such as 0.0.0.0:162 (port 162 needs
	// CAP_NET_BIND_SERVICE) or 127.0.0.1:10162.
	Listen      string   `yaml:"listen" check:"required"`
	Communities []Secret `yaml:"communities"`
	Users       []V3User `yaml:"users"`
	// Sources maps extra sender addresses to device ids, for agents that
	// send traps from another address than the one polled.
	Sources map[string]string `yaml:"sources"`
	// Names adds notification OIDs to recognise by name (vendor traps,
	// e.g. APC's on-battery 1.3.6.1.4.1.318.0.5).
	Names map[string]string `yaml:"names"`
	Pos   strictyaml.Pos    `json:"-"`
}

// V3User is an SNMPv3 user allowed to send notifications.
type V3User struct {
	Name         string         `yaml:"name" check:"required"`
	AuthProtocol string         `yaml:"auth_protocol"`
	AuthPassword Secret         `yaml:"auth_password"`
	PrivProtocol string         `yaml:"priv_protocol"`
	PrivPassword Secret         `yaml:"priv_password"`
	Pos          strictyaml.Pos `json:"-"`
}

func (c *checker) traps() {
	t := c.cfg.Traps
	if t == nil {
		return
	}
	if t.Listen != "" {
		if msg := checkHostPort(t.Listen, false); msg != "" {
			c.add(t.Pos.At("listen", "listen address %q: %s", t.Listen, msg))
		}
	}
	if len(t.Communities) == 0 && len(t.Users) == 0 {
		c.add(t.Pos.At("", "traps needs communities or users, or it would refuse everything"))
	}
	for i := range t.Users {
		u := &t.Users[i]
		s := &SNMP{Pos: u.Pos}
		level := "authPriv"
		if u.PrivProtocol == "" && !u.PrivPassword.IsSet() {
			level = "authNoPriv"
		}
		c.v3Algo(s, "auth_protocol", "auth_password", &u.AuthProtocol, u.AuthPassword, authProtocols, true, level)
		c.v3Algo(s, "priv_protocol", "priv_password", &u.PrivProtocol, u.PrivPassword, privProtocols, level == "authPriv", level)
	}
	ids := map[string]bool{}
	for _, d := range c.cfg.Devices {
		ids[d.ID] = true
	}
	for _, src := range sortedKeys(t.Sources) {
		if !ids[t.Sources[src]] {
			c.add(t.Pos.AtPath("sources."+src, "unknown device %q", t.Sources[src]))
		}
	}
}

package facsim

import (
	_ "embed"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	snmpdrv "github.com/facgw/facgw/drivers/snmp"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/snmpagent"
	"github.com/facgw/facgw/internal/strictyaml"
)

// Facility describes the simulated devices, as read from a facility file
// such as deploy/facility.yaml:
//
//	devices:
//	  - id: ups-a
//	    profile: apc-smart-ups-modbus
//	    firmware: "UPS 09.8 (ID18)"
//	    listen: 127.0.0.1:15021
//	  - id: bms-rack1
//	    profile: generic-liion-bms
//	    gateway: bms-gw
//	    listen: 127.0.0.1:15023
//	    unit: 1
//	    scenario: normal
//
// Devices share one Modbus TCP listener, as slaves behind a TCP-to-RTU
// gateway do, when they name the same gateway or give the same listen
// address with a fixed port. A device with port 0 and no gateway gets a
// free port of its own.
//
// A device whose profile speaks SNMP has an snmp section instead of
// listen, gateway and unit: its own UDP agent, the credentials it accepts
// and where it sends traps (see SNMPSpec); a PDU names its outlets, a
// switch its ports:
//
//	devices:
//	  - id: pdu-a1
//	    profile: apc-rpdu2-snmp
//	    outlets: [web-01, web-02, db-01, lab-01]
//	    snmp:
//	      listen: 127.0.0.1:16162
//	      community: public
//	      write_community: private
//	      users:
//	        - {name: facgw, auth_protocol: SHA-256, auth_password: facgw-auth-pass,
//	           priv_protocol: AES-256, priv_password: facgw-priv-pass}
//	      traps:
//	        - {addr: 127.0.0.1:10162, version: 2c, community: public}
type Facility struct {
	// Description is free text for people.
	Description string `yaml:"description"`
	// Devices are the simulated devices.
	Devices []DeviceSpec `yaml:"devices" check:"required"`

	// File is where the facility was read from.
	File string `yaml:"-"`
	Pos  strictyaml.Pos
}

// DeviceSpec is one simulated device of a facility.
type DeviceSpec struct {
	// ID names the device in the control API and in the gateway's config.
	ID string `yaml:"id" check:"required"`
	// Profile is the model name of the firmware profile served.
	Profile string `yaml:"profile" check:"required"`
	// Firmware selects the profile variant and is served where the
	// profile's identify section reads the firmware (an identification
	// register or the device identification revision). Empty means the
	// firmware register's sim value, or the base profile.
	Firmware string `yaml:"firmware"`
	// Listen is the loopback host:port of the Modbus TCP listener; port 0
	// picks a free port. Required for Modbus devices; an SNMP device
	// listens on SNMP.Listen instead.
	Listen string `yaml:"listen"`
	// Gateway groups devices on one listener (a TCP-to-RTU gateway) even
	// with port 0; all devices of a gateway give the same listen address.
	Gateway string `yaml:"gateway"`
	// Unit is the Modbus unit id the device answers (1..255, default 1).
	Unit *int `yaml:"unit"`
	// Scenario is the initial scenario (default normal).
	Scenario string `yaml:"scenario"`
	// Fault is the initial fault as kind[:param], such as "late:2s" or
	// "exception:4" (default none).
	Fault string `yaml:"fault"`
	// SNMP makes the device an SNMP agent; its profile must speak SNMP.
	SNMP *SNMPSpec `yaml:"snmp"`
	// Outlets names the outlets of a PDU (class pdu), in outlet order;
	// default DefaultOutlets.
	Outlets []string `yaml:"outlets"`
	// Ports names the interfaces of a switch (class switch), in ifIndex
	// order; default DefaultPorts.
	Ports []string `yaml:"ports"`
	// Uplink is the switch port the link-down scenario takes down; default
	// the first port whose name starts with "Te", else the last port.
	Uplink string `yaml:"uplink"`

	Pos strictyaml.Pos
}

// SNMPSpec is the agent of an SNMP device. The agent answers SNMPv1 and
// v2c requests with Community (read) or WriteCommunity (read and SET), and
// SNMPv3 requests of Users; at least one of them is needed.
type SNMPSpec struct {
	// Listen is the loopback host:port of the agent's UDP socket; port 0
	// picks a free port.
	Listen string `yaml:"listen" check:"required"`
	// Community is the read community of SNMPv1 and v2c.
	Community string `yaml:"community"`
	// WriteCommunity may also SET writable points (PDU outlet commands).
	WriteCommunity string `yaml:"write_community"`
	// Users are the SNMPv3 (USM) users.
	Users []SNMPUser `yaml:"users"`
	// EngineID is the SNMPv3 engine id in hex (5 to 32 octets); default
	// one derived from the device id, so it is the same every run (a v3
	// trap receiver such as snmptrapd needs it: createUser -e).
	EngineID string `yaml:"engine_id"`
	// Traps are the notification receivers; Sim.SetTrapReceivers and
	// POST /api/traps replace them at run time.
	Traps []TrapReceiver `yaml:"traps"`

	Pos strictyaml.Pos
}

// SNMPUser is an SNMPv3 user of a simulated agent. The protocols are named
// as net-snmp names them (SHA, SHA-256, ..., MD5; AES, AES-192, AES-256,
// DES); no auth_protocol means noAuthNoPriv, no priv_protocol authNoPriv.
type SNMPUser struct {
	Name         string `yaml:"name" check:"required" json:"name"`
	AuthProtocol string `yaml:"auth_protocol" json:"auth_protocol,omitempty"`
	AuthPassword string `yaml:"auth_password" json:"-"`
	PrivProtocol string `yaml:"priv_protocol" json:"priv_protocol,omitempty"`
	PrivPassword string `yaml:"priv_password" json:"-"`
	// ReadOnly refuses the user's SETs (noAccess).
	ReadOnly bool `yaml:"read_only" json:"read_only,omitempty"`

	Pos strictyaml.Pos `json:"-"`
}

// TrapReceiver is where an SNMP device sends its notifications (traps,
// or informs, which the receiver acknowledges). The device sends from
// its agent's address, so a gateway can tell devices apart by source.
type TrapReceiver struct {
	// Addr is the receiver's loopback host:port.
	Addr string `yaml:"addr" check:"required" json:"addr"`
	// Version is "1", "2c" (default) or "3".
	Version string `yaml:"version" json:"version,omitempty"`
	// Community is sent by v1 and v2c notifications; default the device's
	// read community.
	Community string `yaml:"community" json:"community,omitempty"`
	// Inform sends InformRequests (v2c, v3), retried until acknowledged.
	Inform bool `yaml:"inform" json:"inform,omitempty"`
	// User names the device's SNMPv3 user that sends v3 notifications.
	User string `yaml:"user" json:"user,omitempty"`

	Pos strictyaml.Pos `json:"-"`
}

// version returns the receiver's version, "2c" when unset.
func (r *TrapReceiver) version() string {
	if r.Version == "" {
		return "2c"
	}
	return r.Version
}

// IsSNMP reports whether the device is an SNMP agent.
func (d *DeviceSpec) IsSNMP() bool { return d.SNMP != nil }

// UnitID returns the unit id, 1 when unset.
func (d *DeviceSpec) UnitID() uint8 {
	if d.Unit == nil {
		return 1
	}
	return uint8(*d.Unit)
}

// listenerKey names the listener a device is served on: devices with the
// same key share one.
func (d *DeviceSpec) listenerKey() string {
	if d.Gateway != "" {
		return "gateway " + d.Gateway
	}
	if _, port, err := net.SplitHostPort(d.Listen); err == nil && port != "0" {
		return "listen " + d.Listen
	}
	return "device " + d.ID
}

//go:embed facility.yaml
var defaultFacility []byte

// DefaultFacility returns the demo facility compiled into the binary, a
// copy of deploy/facility.yaml, for when that file is not at hand.
func DefaultFacility() (*Facility, error) {
	return ParseFacility("facility.yaml (embedded)", defaultFacility)
}

// LoadFacility reads and parses a facility file.
func LoadFacility(file string) (*Facility, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("facsim: %w", err)
	}
	return ParseFacility(file, data)
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseFacility decodes a facility file (named file in messages) and checks
// what it can without the profiles: every problem is returned at once, each
// located by file:line:col and field path. Start checks the rest (profiles
// exist, scenarios fit the device class, identification matches).
func ParseFacility(file string, data []byte) (*Facility, error) {
	f := &Facility{File: file}
	errs := strictyaml.Decode(file, data, f)
	errs = append(errs, f.check(nil)...)
	if err := errs.Err(); err != nil {
		return nil, fmt.Errorf("facsim: facility:\n%w", err)
	}
	return f, nil
}

// Validate checks the facility against a profile registry: every profile
// exists and speaks the device's protocol (Modbus, or SNMP for a device
// with an snmp section), and every initial scenario, fault and
// class-specific field (outlets, ports) fits the device. Problems are located as ParseFacility's are.
func (f *Facility) Validate(reg *profiles.Registry) error {
	if err := f.check(reg).Err(); err != nil {
		return fmt.Errorf("facsim: facility:\n%w", err)
	}
	return nil
}

// check returns every problem of the facility; profile checks need reg.
func (f *Facility) check(reg *profiles.Registry) strictyaml.Errors {
	var errs strictyaml.Errors
	add := func(e *strictyaml.Error) { errs = append(errs, e) }
	if f.Pos.Has("devices") && len(f.Devices) == 0 {
		add(f.Pos.At("devices", "a facility needs at least one device"))
	}
	ids := map[string]bool{}
	type lst struct {
		listen string
		units  map[uint8]string
	}
	listeners := map[string]*lst{}
	fixed := map[string]string{}    // fixed listen address -> listener key
	fixedUDP := map[string]string{} // fixed snmp listen address -> device id
	for i := range f.Devices {
		d := &f.Devices[i]
		if d.ID != "" {
			if !idRE.MatchString(d.ID) {
				add(d.Pos.At("id", "device id %q must be letters, digits, '.', '_' or '-'", d.ID))
			}
			if ids[d.ID] {
				add(d.Pos.At("id", "duplicate device id %q", d.ID))
			}
			ids[d.ID] = true
		}
		if d.Unit != nil && (*d.Unit < 1 || *d.Unit > 255) {
			add(d.Pos.At("unit", "unit id must be 1..255, got %d", *d.Unit))
		}
		if d.Fault != "" {
			kind, param, _ := cutParam(d.Fault)
			if _, err := ParseFault(kind, param); err != nil {
				add(d.Pos.At("fault", "%s", strings.TrimPrefix(err.Error(), "facsim: ")))
			}
		}
		if d.Scenario != "" && scenarioByName(d.Scenario) == nil {
			add(d.Pos.At("scenario", "unknown scenario %q (known: %s)", d.Scenario, scenarioNames("")))
		}
		errs = append(errs, checkNames(d, "outlets", d.Outlets)...)
		errs = append(errs, checkNames(d, "ports", d.Ports)...)
		if d.Uplink != "" {
			ports := d.Ports
			if len(ports) == 0 {
				ports = DefaultPorts
			}
			if !slices.Contains(ports, d.Uplink) {
				add(d.Pos.At("uplink", "uplink %q is not one of the ports (%s)", d.Uplink, strings.Join(ports, ", ")))
			}
		}
		if reg != nil && d.Profile != "" {
			errs = append(errs, d.checkProfile(reg)...)
		}
		if d.IsSNMP() {
			for _, field := range []string{"listen", "gateway", "unit"} {
				if d.Pos.Has(field) {
					add(d.Pos.At(field, "%s applies only to Modbus devices; an SNMP device listens on snmp.listen", field))
				}
			}
			errs = append(errs, d.SNMP.check()...)
			if l := d.SNMP.Listen; l != "" && CheckLoopback(l) == nil {
				if _, port, _ := net.SplitHostPort(l); port != "0" {
					if other, ok := fixedUDP[l]; ok {
						add(d.SNMP.Pos.At("listen", "%s is also the snmp listen address of device %q", l, other))
					}
					fixedUDP[l] = d.ID
				}
			}
			continue
		}
		listenOK := false
		switch {
		case !d.Pos.Has("listen"):
			add(d.Pos.At("listen", "missing required field %q (or snmp: for an SNMP device)", "listen"))
		case d.Listen != "":
			if err := CheckLoopback(d.Listen); err != nil {
				add(d.Pos.At("listen", "%v", err))
			} else {
				listenOK = true
			}
		}
		if !listenOK || d.ID == "" {
			continue
		}
		key := d.listenerKey()
		l := listeners[key]
		if l == nil {
			l = &lst{listen: d.Listen, units: map[uint8]string{}}
			listeners[key] = l
		} else if l.listen != d.Listen {
			add(d.Pos.At("listen", "gateway %q listens on %s (device %q), not %s", d.Gateway, l.listen, l.units[firstUnit(l.units)], d.Listen))
			continue
		}
		if other, dup := l.units[d.UnitID()]; dup {
			add(d.Pos.At("unit", "unit id %d on %s is also used by device %q", d.UnitID(), d.Listen, other))
		} else {
			l.units[d.UnitID()] = d.ID
		}
		if _, port, _ := net.SplitHostPort(d.Listen); port != "0" {
			if k, ok := fixed[d.Listen]; ok && k != key {
				add(d.Pos.At("listen", "%s is also the listen address of %s", d.Listen, k))
			}
			fixed[d.Listen] = key
		}
	}
	return errs
}

// checkProfile checks the device against its profile: the profile exists,
// its protocol is the device's, the scenario and the class-specific fields
// fit its class.
func (d *DeviceSpec) checkProfile(reg *profiles.Registry) strictyaml.Errors {
	var errs strictyaml.Errors
	add := func(e *strictyaml.Error) { errs = append(errs, e) }
	p, ok := reg.Get(d.Profile)
	if !ok {
		add(d.Pos.At("profile", "unknown profile %q%s", d.Profile, strictyaml.DidYouMeanOr(d.Profile, profileNames(reg))))
		return errs
	}
	switch {
	case p.Protocol == profiles.SNMP && !d.IsSNMP():
		add(d.Pos.At("profile", "profile %q speaks snmp: give the device snmp: {listen: 127.0.0.1:16161, community: public} instead of listen", d.Profile))
	case p.Protocol != profiles.SNMP && d.IsSNMP():
		add(d.Pos.At("snmp", "profile %q speaks %s: snmp applies only to SNMP profiles; give listen (and unit)", d.Profile, p.Protocol))
	case p.Protocol != profiles.SNMP && p.Protocol != profiles.Modbus:
		add(d.Pos.At("profile", "profile %q speaks %s; facsim serves modbus and snmp", d.Profile, p.Protocol))
	}
	if sc := scenarioByName(d.Scenario); d.Scenario != "" && sc != nil && !sc.fits(p.Class) {
		add(d.Pos.At("scenario", "scenario %q does not apply to a %s device (known for %s: %s)", d.Scenario, p.Class, p.Class, scenarioNames(p.Class)))
	}
	if d.Fault != "" {
		kind, param, _ := cutParam(d.Fault)
		if f, err := ParseFault(kind, param); err == nil && !f.fits(p.Protocol) {
			add(d.Pos.At("fault", "fault %q does not apply to a %s device (known for %s: %s)", kind, p.Protocol, p.Protocol, faultNames(p.Protocol)))
		}
	}
	if len(d.Outlets) > 0 && p.Class != "pdu" {
		add(d.Pos.At("outlets", "outlets apply only to pdu devices, profile %q is a %s", d.Profile, p.Class))
	}
	for _, field := range []string{"ports", "uplink"} {
		if d.Pos.Has(field) && p.Class != "switch" {
			add(d.Pos.At(field, "%s applies only to switch devices, profile %q is a %s", field, d.Profile, p.Class))
		}
	}
	return errs
}

func profileNames(reg *profiles.Registry) []string {
	var names []string
	for _, p := range reg.List() {
		names = append(names, p.Model)
	}
	return names
}

// checkNames checks the outlet or port names of a device: not empty,
// distinct, and distinct as the point names the gateway makes of them.
func checkNames(d *DeviceSpec, field string, names []string) strictyaml.Errors {
	var errs strictyaml.Errors
	if d.Pos.Has(field) && len(names) == 0 {
		errs = append(errs, d.Pos.At(field, "%s must not be empty; leave it out for the default", field))
	}
	seen := map[string]string{}
	for i, n := range names {
		at := fmt.Sprintf("%s[%d]", field, i)
		label := snmpdrv.SanitizeLabel(n)
		switch {
		case label == "":
			errs = append(errs, d.Pos.AtPath(at, "name %q has no letter or digit", n))
		case seen[label] != "":
			errs = append(errs, d.Pos.AtPath(at, "name %q gives the same point name (%s) as %q", n, label, seen[label]))
		default:
			seen[label] = n
		}
	}
	return errs
}

// check returns the problems of an snmp section.
func (s *SNMPSpec) check() strictyaml.Errors {
	var errs strictyaml.Errors
	add := func(e *strictyaml.Error) { errs = append(errs, e) }
	if s.Listen != "" {
		if err := CheckLoopback(s.Listen); err != nil {
			add(s.Pos.At("listen", "%v", err))
		}
	}
	for _, c := range []struct{ field, v string }{{"community", s.Community}, {"write_community", s.WriteCommunity}} {
		if s.Pos.Has(c.field) && (c.v == "" || len(c.v) > 127) {
			add(s.Pos.At(c.field, "%s must have 1 to 127 characters", c.field))
		}
	}
	if s.Community == "" && s.WriteCommunity == "" && len(s.Users) == 0 {
		add(s.Pos.At("", "snmp needs community, write_community or users, or the agent answers nobody"))
	}
	users := map[string]bool{}
	for i := range s.Users {
		u := &s.Users[i]
		if u.Name != "" {
			if len(u.Name) > 32 {
				add(u.Pos.At("name", "user name must have 1 to 32 characters"))
			}
			if users[u.Name] {
				add(u.Pos.At("name", "duplicate user %q", u.Name))
			}
			users[u.Name] = true
		}
		errs = append(errs, u.check()...)
	}
	if s.EngineID != "" {
		if _, err := snmpagent.ParseEngineID(s.EngineID); err != nil {
			add(s.Pos.At("engine_id", "%s", strings.TrimPrefix(err.Error(), "snmpagent: ")))
		}
	}
	for i := range s.Traps {
		errs = append(errs, s.Traps[i].check(s, users)...)
	}
	return errs
}

// check returns the problems of a v3 user.
func (u *SNMPUser) check() strictyaml.Errors {
	var errs strictyaml.Errors
	add := func(e *strictyaml.Error) { errs = append(errs, e) }
	auth, err := snmpagent.ParseAuthProtocol(u.AuthProtocol)
	if err != nil {
		add(u.Pos.At("auth_protocol", "%s", strings.TrimPrefix(err.Error(), "snmpagent: ")))
	}
	priv, err := snmpagent.ParsePrivProtocol(u.PrivProtocol)
	if err != nil {
		add(u.Pos.At("priv_protocol", "%s", strings.TrimPrefix(err.Error(), "snmpagent: ")))
	}
	// RFC 3414 11.2: agents such as net-snmp refuse shorter passphrases.
	switch {
	case auth != snmpagent.AuthNone && len(u.AuthPassword) < 8:
		add(u.Pos.At("auth_password", "auth_password must have at least 8 characters (RFC 3414)"))
	case u.AuthProtocol == "" && u.AuthPassword != "":
		add(u.Pos.At("auth_password", "auth_password without auth_protocol"))
	}
	switch {
	case priv != snmpagent.PrivNone && u.AuthProtocol == "":
		add(u.Pos.At("priv_protocol", "privacy needs authentication: give auth_protocol and auth_password"))
	case priv != snmpagent.PrivNone && len(u.PrivPassword) < 8:
		add(u.Pos.At("priv_password", "priv_password must have at least 8 characters (RFC 3414)"))
	case u.PrivProtocol == "" && u.PrivPassword != "":
		add(u.Pos.At("priv_password", "priv_password without priv_protocol"))
	}
	return errs
}

// check returns the problems of a trap receiver of agent s (users are
// the names of its v3 users).
func (r *TrapReceiver) check(s *SNMPSpec, users map[string]bool) strictyaml.Errors {
	var errs strictyaml.Errors
	add := func(e *strictyaml.Error) { errs = append(errs, e) }
	if r.Addr != "" {
		if err := CheckLoopback(r.Addr); err != nil {
			add(r.Pos.At("addr", "%s", strings.Replace(err.Error(), "listen address", "address", 1)))
		} else if _, port, _ := net.SplitHostPort(r.Addr); port == "0" {
			add(r.Pos.At("addr", "a trap receiver needs a port, got %q", r.Addr))
		}
	}
	switch r.version() {
	case "1", "2c":
		if r.User != "" {
			add(r.Pos.At("user", "user applies only to version 3; v%s sends a community", r.version()))
		}
		if r.Community == "" && s.Community == "" {
			add(r.Pos.At("community", "a v%s receiver needs a community (the device has no read community to default to)", r.version()))
		}
		if r.Inform && r.version() == "1" {
			add(r.Pos.At("inform", "SNMPv1 has no inform"))
		}
	case "3":
		if r.Community != "" {
			add(r.Pos.At("community", "version 3 sends as a user, not a community"))
		}
		switch {
		case r.User == "":
			add(r.Pos.At("user", "a v3 receiver needs user: one of the device's snmp.users"))
		case !users[r.User]:
			add(r.Pos.At("user", "unknown user %q: name one of the device's snmp.users", r.User))
		}
	default:
		add(r.Pos.At("version", "unknown SNMP version %q (1, 2c or 3)", r.Version))
	}
	return errs
}

func firstUnit(m map[uint8]string) uint8 {
	first := uint8(255)
	for u := range m {
		first = min(first, u)
	}
	return first
}

// CheckLoopback accepts host:port with a loopback host (127.0.0.0/8, ::1
// or localhost): the simulator is a test bed and its Modbus listeners,
// SNMP agents and control API must not be reachable from the network,
// nor its traps leave the host.
func CheckLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port such as 127.0.0.1:15021, got %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("bad port %q in %q", port, addr)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q must be on loopback (127.0.0.1, ::1 or localhost)", addr)
	}
	return nil
}

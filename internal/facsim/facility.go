package facsim

import (
	_ "embed"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"

	profiles "github.com/facgw/facgw/firmware-profiles"
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
	// picks a free port.
	Listen string `yaml:"listen" check:"required"`
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

	Pos strictyaml.Pos
}

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
// exists and speaks Modbus, and every initial scenario fits the device's
// class. Problems are located as ParseFacility's are.
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
	fixed := map[string]string{} // fixed listen address -> listener key
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
		listenOK := false
		if d.Listen != "" {
			if err := CheckLoopback(d.Listen); err != nil {
				add(d.Pos.At("listen", "%v", err))
			} else {
				listenOK = true
			}
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
		if reg != nil && d.Profile != "" {
			p, ok := reg.Get(d.Profile)
			switch {
			case !ok:
				add(d.Pos.At("profile", "unknown profile %q", d.Profile))
			case p.Protocol != "modbus":
				add(d.Pos.At("profile", "profile %q speaks %s; facsim serves modbus only", d.Profile, p.Protocol))
			case d.Scenario != "" && scenarioByName(d.Scenario) != nil && !scenarioByName(d.Scenario).fits(p.Class):
				add(d.Pos.At("scenario", "scenario %q does not apply to a %s device (known for %s: %s)", d.Scenario, p.Class, p.Class, scenarioNames(p.Class)))
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

func firstUnit(m map[uint8]string) uint8 {
	first := uint8(255)
	for u := range m {
		first = min(first, u)
	}
	return first
}

// CheckLoopback accepts host:port with a loopback host (127.0.0.0/8, ::1
// or localhost): the simulator is a test bed and its Modbus listeners and
// control API must not be reachable from the network.
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

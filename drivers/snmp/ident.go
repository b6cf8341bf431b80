package snmp

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"

	"github.com/gosnmp/gosnmp"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

// Identification is what Identify found.
type Identification struct {
	Profile     *profiles.Profile
	Firmware    string
	SysObjectID string
}

// ErrNotIdentified means no profile's identify section matched.
var ErrNotIdentified = errors.New("no snmp profile matches the device")

// Identify chooses the profile (and firmware version) for profile: auto
// among the registry's SNMP profiles with an identify section. It reads
// sysObjectID once; profiles that match on sys_object_id are tried first,
// then those that match on points only, each in model order, so the choice
// is deterministic and a model profile wins over a generic one. A profile
// whose identification points the agent does not have (noSuchObject) does
// not match; an agent that does not answer is an error.
func (d *Device) Identify(ctx context.Context) (*Identification, error) {
	reg := d.cfg.Registry
	if reg == nil {
		return nil, errors.New("snmp: profile auto needs a profile registry")
	}
	var bySysOID, byPoints []*profiles.Profile
	for _, p := range reg.List() {
		if p.Protocol != profiles.SNMP || p.Identify == nil {
			continue
		}
		if p.Identify.SysObjectID != "" {
			bySysOID = append(bySysOID, p)
		} else {
			byPoints = append(byPoints, p)
		}
	}
	f := &fetcher{d: d, ctx: ctx}
	r := f.get([]string{sysObjectIDOID})[sysObjectIDOID]
	sysOID := ""
	switch {
	case r.reason != "" && transportFailure(r.reason):
		return nil, fmt.Errorf("read sysObjectID: %s", r.reason)
	case r.reason == "" && r.pdu.Type == gosnmp.ObjectIdentifier:
		sysOID = oidText(r.pdu)
	}
	for _, p := range append(bySysOID, byPoints...) {
		if p.Identify.SysObjectID != "" && !regexp.MustCompile(p.Identify.SysObjectID).MatchString(sysOID) {
			continue
		}
		ok, err := d.pointsMatch(ctx, p)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		fw, err := d.readFirmware(ctx, p)
		if err != nil {
			return nil, err
		}
		return &Identification{Profile: p, Firmware: fw, SysObjectID: sysOID}, nil
	}
	return nil, fmt.Errorf("%w (sysObjectID %q)", ErrNotIdentified, sysOID)
}

// pointsMatch reads the profile's identification points (base map) and
// checks them against its expressions.
func (d *Device) pointsMatch(ctx context.Context, p *profiles.Profile) (bool, error) {
	if len(p.Identify.Points) == 0 {
		return true, nil
	}
	names := make([]string, 0, len(p.Identify.Points))
	for n := range p.Identify.Points {
		names = append(names, n)
	}
	sort.Strings(names)
	vals, err := d.readText(ctx, p.Resolve(""), names)
	if err != nil {
		return false, err
	}
	for _, n := range names {
		v, ok := vals[n]
		if !ok || !regexp.MustCompile(p.Identify.Points[n]).MatchString(v) {
			return false, nil
		}
	}
	return true, nil
}

// readFirmware reads the firmware version as the profile's identify
// section says, or "" when it names none.
func (d *Device) readFirmware(ctx context.Context, p *profiles.Profile) (string, error) {
	if p.Identify == nil || p.Identify.Firmware == "" {
		return "", nil
	}
	vals, err := d.readText(ctx, p.Resolve(""), []string{p.Identify.Firmware})
	if err != nil {
		return "", err
	}
	return vals[p.Identify.Firmware], nil
}

// readText reads scalar points once and returns the text of those read
// well, as identification matches it: a string as is, anything else as
// point.Format renders it ("normal (3)", "42 %"). A point the agent lacks
// is left out; an agent that does not answer is an error.
func (d *Device) readText(ctx context.Context, r *profiles.Resolved, names []string) (map[string]string, error) {
	var defs []*profiles.PointDef
	var oids []string
	for _, n := range names {
		def, ok := r.Point(n)
		if !ok || def.OID == "" {
			return nil, fmt.Errorf("snmp: profile %s has no scalar point %q", r.Profile.Model, n)
		}
		defs = append(defs, def)
		oids = append(oids, def.OID)
	}
	f := &fetcher{d: d, ctx: ctx}
	res := f.get(oids)
	out := map[string]string{}
	for _, def := range defs {
		vr := res[def.OID]
		if vr.reason != "" {
			if transportFailure(vr.reason) {
				return nil, fmt.Errorf("read %s: %s", def.Name, vr.reason)
			}
			continue
		}
		var p point.Point
		decodeValue(def, vr.pdu, &p)
		if p.Quality != point.Good {
			continue
		}
		if p.Kind == point.String {
			out[def.Name] = p.Str
		} else {
			out[def.Name] = p.Format()
		}
	}
	return out, nil
}

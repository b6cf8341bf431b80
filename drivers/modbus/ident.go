package modbus

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"

	mb "github.com/goburrow/modbus"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

// deviceIDNames maps Read Device Identification object ids to the names
// profiles use.
var deviceIDNames = map[byte]string{0: "vendor", 1: "product_code", 2: "revision", 3: "vendor_url", 4: "product_name", 5: "model_name", 6: "user_application_name"}

// ReadDeviceID reads the basic and regular objects of Read Device
// Identification (function 0x2B, MEI type 0x0E), following "more follows"
// for at most 16 replies.
func ReadDeviceID(ctx context.Context, c *Conn, unit byte) (map[string]string, error) {
	out := map[string]string{}
	next := byte(0)
	for range 16 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		resp, err := c.raw(unit, &mb.ProtocolDataUnit{FunctionCode: 0x2B, Data: []byte{0x0E, 0x02, next}})
		if err != nil {
			return nil, err
		}
		d := resp.Data
		if len(d) < 6 || d[0] != 0x0E {
			return nil, &protocolError{"short device identification reply"}
		}
		more, nextID, n := d[3], d[4], int(d[5])
		pos := 6
		for range n {
			if pos+2 > len(d) || pos+2+int(d[pos+1]) > len(d) {
				return nil, &protocolError{"device identification object runs past the reply"}
			}
			id, l := d[pos], int(d[pos+1])
			name, ok := deviceIDNames[id]
			if !ok {
				name = fmt.Sprintf("object_%#02x", id)
			}
			out[name] = string(d[pos+2 : pos+2+l])
			pos += 2 + l
		}
		if more != 0xFF || nextID == 0 || nextID <= next {
			return out, nil
		}
		next = nextID
	}
	return out, nil
}

// Identification is what Identify found.
type Identification struct {
	Profile  *profiles.Profile
	Firmware string
	DeviceID map[string]string // objects read, when the device answers 0x2B/0x0E
}

// ErrNotIdentified means no profile's identify section matched.
var ErrNotIdentified = errors.New("no profile matches the device")

// Identify chooses the profile (and firmware version) for profile: auto.
// Profiles that match on Read Device Identification are tried first, then
// those that match identification registers; within each, in model order,
// so the choice is deterministic.
func Identify(ctx context.Context, c *Conn, unit byte, reg *profiles.Registry) (*Identification, error) {
	var byDevID, byPoints []*profiles.Profile
	for _, p := range reg.List() {
		if p.Protocol != "modbus" || p.Identify == nil {
			continue
		}
		if len(p.Identify.DeviceID) > 0 {
			byDevID = append(byDevID, p)
		} else {
			byPoints = append(byPoints, p)
		}
	}
	var devID map[string]string
	var devIDErr error
	if len(byDevID) > 0 {
		devID, devIDErr = ReadDeviceID(ctx, c, unit)
		if devIDErr == nil {
			for _, p := range byDevID {
				if matchAll(p.Identify.DeviceID, devID) && matchPoints(ctx, c, unit, p) {
					return finish(ctx, c, unit, p, devID)
				}
			}
		} else if !isExceptionErr(devIDErr) {
			// The device does not answer at all: reading registers will not
			// do better.
			return nil, fmt.Errorf("read device identification: %w", devIDErr)
		}
	}
	var lastErr error
	for _, p := range byPoints {
		ok, err := pointsMatch(ctx, c, unit, p)
		if err != nil {
			lastErr = err
			continue
		}
		if ok {
			return finish(ctx, c, unit, p, devID)
		}
	}
	if lastErr != nil && !isExceptionErr(lastErr) {
		return nil, fmt.Errorf("read identification registers: %w", lastErr)
	}
	return nil, ErrNotIdentified
}

func isExceptionErr(err error) bool {
	var me *mb.ModbusError
	var ie *identError
	if errors.As(err, &ie) {
		return isException(ie.reason)
	}
	return errors.As(err, &me)
}

func matchAll(want map[string]string, got map[string]string) bool {
	for k, re := range want {
		v, ok := got[k]
		if !ok || !regexp.MustCompile(re).MatchString(v) {
			return false
		}
	}
	return true
}

func matchPoints(ctx context.Context, c *Conn, unit byte, p *profiles.Profile) bool {
	ok, err := pointsMatch(ctx, c, unit, p)
	return ok && err == nil
}

// pointsMatch reads the profile's identification points (base map) and
// checks them against its expressions.
func pointsMatch(ctx context.Context, c *Conn, unit byte, p *profiles.Profile) (bool, error) {
	if len(p.Identify.Points) == 0 {
		return true, nil
	}
	names := make([]string, 0, len(p.Identify.Points))
	for n := range p.Identify.Points {
		names = append(names, n)
	}
	sort.Strings(names)
	vals, err := readPoints(ctx, c, unit, p.Resolve(""), names)
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if !regexp.MustCompile(p.Identify.Points[n]).MatchString(vals[n]) {
			return false, nil
		}
	}
	return true, nil
}

func finish(ctx context.Context, c *Conn, unit byte, p *profiles.Profile, devID map[string]string) (*Identification, error) {
	id := &Identification{Profile: p, DeviceID: devID}
	fw, err := firmwareOf(ctx, c, unit, p, devID)
	if err != nil {
		return nil, err
	}
	id.Firmware = fw
	return id, nil
}

// ReadFirmware reads the firmware version of a device whose profile is
// known, from where its identify section says.
func ReadFirmware(ctx context.Context, c *Conn, unit byte, p *profiles.Profile) (string, error) {
	return firmwareOf(ctx, c, unit, p, nil)
}

func firmwareOf(ctx context.Context, c *Conn, unit byte, p *profiles.Profile, devID map[string]string) (string, error) {
	if p.Identify == nil || p.Identify.Firmware == "" {
		return "", nil
	}
	if p.Identify.Firmware == "device_id.revision" {
		if devID == nil {
			var err error
			if devID, err = ReadDeviceID(ctx, c, unit); err != nil {
				return "", err
			}
		}
		return devID["revision"], nil
	}
	vals, err := readPoints(ctx, c, unit, p.Resolve(""), []string{p.Identify.Firmware})
	if err != nil {
		return "", err
	}
	return vals[p.Identify.Firmware], nil
}

// readPoints reads named points once and returns their values as text.
func readPoints(ctx context.Context, c *Conn, unit byte, r *profiles.Resolved, names []string) (map[string]string, error) {
	var defs []profiles.PointDef
	for _, n := range names {
		def, ok := r.Point(n)
		if !ok {
			return nil, fmt.Errorf("profile %s has no point %q", r.Profile.Model, n)
		}
		defs = append(defs, *def)
	}
	d := NewDevice(DeviceConfig{ID: "identify", Unit: unit, Profile: r.Profile, Firmware: "-"}, c)
	d.mu.Lock()
	d.res = r
	d.groups = map[string]*groupPlan{"identify": {points: defs, reads: Plan(defs, r.Unreadable, PlanLimits{MaxGap: r.MaxGap, MaxRegs: r.MaxRegs, MaxBits: r.MaxBits})}}
	d.mu.Unlock()
	out := map[string]string{}
	for _, pt := range d.Poll(ctx, "identify") {
		if pt.Quality != point.Good {
			return nil, &identError{pt.Name, pt.Reason}
		}
		switch pt.Kind {
		case point.String:
			out[pt.Name] = pt.Str
		default:
			out[pt.Name] = pt.Format()
		}
	}
	return out, nil
}

type identError struct{ point, reason string }

func (e *identError) Error() string { return fmt.Sprintf("point %s: %s", e.point, e.reason) }

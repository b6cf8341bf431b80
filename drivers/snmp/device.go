// Package snmp polls devices over SNMP v1, v2c and v3, driven by firmware
// profiles (protocol: snmp). It knows the protocol, not the devices: a
// profile's points are planned once per poll group into batched GETs of
// scalar instances and GETBULK walks of table columns (GETNEXT on v1); each
// poll executes the plan on the device's own session and decodes every
// point. Failures become data: a varbind the agent does not have, an error
// status, a timeout or a failed authentication is a point with bad quality
// and a reason, never an error that stops the poll or the other points.
//
// One Device owns one gosnmp session for its target and never shares it:
// gosnmp keeps request ids, the socket and the v3 engine state in the
// session, and sharing one between devices is how results end up
// attributed to the wrong UPS (gosnmp issues #217 "SNMP cross talk - UDP
// traffic appears to be mixed up between devices" and #417 "multiple device
// concurrent polling fails unless you create your own snmp object"; see
// also DataDog/datadog-agent#8069, where a shallow copy shared the v3
// security parameters). Requests on a session are serialised, replies are
// matched to the request by id and to the varbinds by OID, and every
// request is bounded by the poll's context, so a slow agent delays only its
// own device.
package snmp

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/backoff"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/pipeline"
)

// Defaults for the zero fields of a DeviceConfig.
const (
	DefaultPort           = 161
	DefaultVersion        = "2c"
	DefaultCommunity      = "public"
	DefaultTimeout        = time.Second
	DefaultRetries        = 1 // for ParseURL; DeviceConfig.Retries is used as given
	DefaultBackoff        = 100 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultMaxVarbinds    = 20
	DefaultMaxRepetitions = 10
)

// DeviceConfig is what a Device needs; the config package (or ParseURL for
// `facgw probe`) fills it.
type DeviceConfig struct {
	ID string
	// Target is the agent's host name or address; Port its UDP port
	// (default 161).
	Target string
	Port   uint16
	// Version is "1", "2c" (default) or "3". Counter64 needs 2c or 3.
	Version string
	// Community is the v1/v2c community (default "public").
	Community string
	// V3 holds the user-based security settings of version 3.
	V3 V3Config
	// Timeout bounds one request (default 1s); Retries is how often a
	// request that got no reply is sent again (0: never).
	Timeout time.Duration
	Retries int
	// Backoff and MaxBackoff pace a device that stopped answering: after
	// the second consecutive failed poll it is left alone for Backoff
	// doubled per failure, at most MaxBackoff, and its points are bad
	// without a request.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// MaxVarbinds caps the varbinds of one GET (default 20) and the
	// columns of one GETBULK or GETNEXT.
	MaxVarbinds int
	// MaxRepetitions is the GETBULK max-repetitions (default 10, at most
	// 255): rows per column per request.
	MaxRepetitions int
	// Profile is the device's profile; nil with Auto.
	Profile *profiles.Profile
	// Firmware pins the firmware version that selects a variant; "" reads
	// it as the profile's identify section says.
	Firmware string
	// Auto chooses the profile by identification among Registry's SNMP
	// profiles.
	Auto     bool
	Registry *profiles.Registry
	// Only polls just these points (definition names, as a config's
	// points: list gives them; a counter's <name>.rate selects it too);
	// empty means all.
	Only []string
}

// V3Config is the SNMPv3 user (USM) of a device.
type V3Config struct {
	User string
	// AuthProto is MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512.
	AuthProto string
	AuthPass  string
	// PrivProto is DES, AES (AES-128), AES-192, AES-256, AES-192C or
	// AES-256C (the Cisco/Blumenthal key extension).
	PrivProto string
	PrivPass  string
	// SecurityLevel is noAuthNoPriv, authNoPriv or authPriv; "" derives it
	// from the passphrases given.
	SecurityLevel string
	// ContextName selects the v3 context (snmpsim selects its data file by
	// it); usually empty.
	ContextName string
}

// String describes the device without its community or passphrases, so
// that printing a config (%v, %+v) never shows a secret.
func (c DeviceConfig) String() string {
	s := fmt.Sprintf("snmp v%s %s:%d id %q", c.Version, c.Target, c.Port, c.ID)
	if c.Version == "3" {
		s += " " + c.V3.String()
	}
	return s
}

// GoString is String, for %#v.
func (c DeviceConfig) GoString() string { return c.String() }

// String describes the v3 user without the passphrases.
func (v V3Config) String() string {
	return fmt.Sprintf("user %q auth %s priv %s level %s", v.User, v.AuthProto, v.PrivProto, v.SecurityLevel)
}

// GoString is String, for %#v.
func (v V3Config) GoString() string { return v.String() }

// Validate reports a configuration that cannot work whatever the agent
// does: no target, an unknown version, or SNMPv3 settings gosnmp refuses.
// An unreachable agent is not an error here; it is bad points at run time.
func (c DeviceConfig) Validate() error {
	if c.Target == "" {
		return fmt.Errorf("snmp: device %q has no target", c.ID)
	}
	if c.Profile == nil && !c.Auto {
		return fmt.Errorf("snmp: device %q has no profile", c.ID)
	}
	if c.Profile != nil && c.Profile.Protocol != profiles.SNMP {
		return fmt.Errorf("snmp: device %q: profile %s speaks %s", c.ID, c.Profile.Model, c.Profile.Protocol)
	}
	if c.Auto && c.Registry == nil {
		return fmt.Errorf("snmp: device %q: profile auto needs a profile registry", c.ID)
	}
	_, err := newGoSNMP(c.withDefaults())
	return err
}

// withDefaults fills the zero fields.
func (c DeviceConfig) withDefaults() DeviceConfig {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.Version == "v1" || c.Version == "v2c" || c.Version == "v3" {
		c.Version = c.Version[1:]
	}
	if c.Community == "" && c.Version != "3" {
		c.Community = DefaultCommunity
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxVarbinds <= 0 {
		c.MaxVarbinds = DefaultMaxVarbinds
	}
	if c.MaxRepetitions <= 0 {
		c.MaxRepetitions = DefaultMaxRepetitions
	}
	// gosnmp encodes max-repetitions for GETBULK up to 255.
	c.MaxRepetitions = min(c.MaxRepetitions, 255)
	if c.ID == "" {
		c.ID = c.Target
	}
	return c
}

// Device polls one SNMP agent. Build it with NewDevice (no I/O happens
// until Poll). Poll is safe for concurrent use by several poll-group
// goroutines: requests on the device's session are serialised. Close
// releases the session.
type Device struct {
	cfg DeviceConfig
	// open makes the device's session on first use; tests replace it.
	open func(cfg DeviceConfig) (client, error)
	// now is the clock of rates; tests replace it.
	now func() time.Time

	reqMu sync.Mutex // one request at a time on cl
	cl    client     // guarded by reqMu; nil until the first request

	mu       sync.Mutex
	res      *profiles.Resolved
	groups   map[string]*groupPlan
	identErr error
	rates    map[string]*rateState
	// rows and labels remember the last good expansion of each column,
	// so that a failed walk reports every known row bad under its usual
	// name instead of renaming points.
	rows   map[string][]string
	labels map[string]map[string]string
	// Limits learned from tooBig replies, so later polls do not pay for
	// the same splitting again: varbinds per GET, max-repetitions and
	// columns per GETBULK (0 until the agent has refused something).
	getMax, bulkCols int
	bulkRep          uint32
	// Consecutive failed polls and when to try again.
	dead backoff.Tracker

	requests atomic.Uint64
}

var _ pipeline.Source = (*Device)(nil)

// NewDevice returns a device for cfg. No I/O happens until Poll.
func NewDevice(cfg DeviceConfig) *Device {
	return &Device{
		cfg:    cfg.withDefaults(),
		open:   openGoSNMP,
		now:    time.Now,
		rates:  map[string]*rateState{},
		rows:   map[string][]string{},
		labels: map[string]map[string]string{},
	}
}

// ID returns the device id.
func (d *Device) ID() string { return d.cfg.ID }

// Config returns the device's configuration with defaults filled in.
func (d *Device) Config() DeviceConfig { return d.cfg }

// Requests returns the number of SNMP requests the device has sent (each
// GET, GETNEXT or GETBULK counts once, whatever its retries).
func (d *Device) Requests() uint64 { return d.requests.Load() }

// Resolved returns the profile in use, or nil while it is not yet known
// (profile auto before identification, or variants before the firmware is
// read).
func (d *Device) Resolved() *profiles.Resolved {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.res
}

// IdentifyError returns why the last identification (profile auto, or
// reading the firmware version to choose a variant) failed, or nil.
func (d *Device) IdentifyError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.res != nil {
		return nil
	}
	return d.identErr
}

// Close closes the device's session; a later Poll opens a new one.
func (d *Device) Close() error {
	d.reqMu.Lock()
	defer d.reqMu.Unlock()
	if d.cl == nil {
		return nil
	}
	err := d.cl.close()
	d.cl = nil
	return err
}

// setResolved plans the poll groups of r. Called with d.mu held.
func (d *Device) setResolved(r *profiles.Resolved) {
	d.res = r
	d.groups = planGroups(r.Points, d.cfg.Only)
}

// ensureResolved identifies the device when the profile or its variant is
// not yet known. It returns an error while that fails: polling with the
// wrong OID map would report wrong values as good ones.
func (d *Device) ensureResolved(ctx context.Context) error {
	d.mu.Lock()
	done := d.res != nil
	d.mu.Unlock()
	if done {
		return nil
	}
	var res *profiles.Resolved
	p := d.cfg.Profile
	switch {
	case d.cfg.Auto:
		id, err := d.Identify(ctx)
		if err != nil {
			return err
		}
		res = id.Profile.Resolve(id.Firmware)
	case p == nil:
		return fmt.Errorf("snmp: device %q has no profile", d.cfg.ID)
	case d.cfg.Firmware != "" || len(p.Variants) == 0 || p.Identify == nil || p.Identify.Firmware == "":
		res = p.Resolve(d.cfg.Firmware)
	default:
		fw, err := d.readFirmware(ctx, p)
		if err != nil {
			return fmt.Errorf("reading firmware version to choose the profile variant: %w", err)
		}
		res = p.Resolve(fw)
	}
	d.mu.Lock()
	d.setResolved(res)
	d.mu.Unlock()
	return nil
}

// Poll reads every point of one poll group once and returns them, each
// with its quality. It never returns an error: an unreachable agent yields
// bad points. The points' time is the start of the poll. ctx bounds the
// whole poll; each request is also bounded by the device's timeout and
// retries. Table columns expand to one point per row (<name>.<row label>)
// and counters add <name>.rate.
func (d *Device) Poll(ctx context.Context, group string) []point.Point {
	start := d.now()
	t := start.UTC()
	if err := d.ensureResolved(ctx); err != nil {
		d.mu.Lock()
		d.identErr = err
		d.mu.Unlock()
		return d.allBad(group, t, "not identified: "+err.Error())
	}
	d.mu.Lock()
	g := d.groups[group]
	if g == nil {
		d.mu.Unlock()
		return nil
	}
	if reason, waiting := d.dead.Waiting(start); waiting {
		d.mu.Unlock()
		return d.allBad(group, t, reason)
	}
	d.mu.Unlock()

	f := &fetcher{d: d, ctx: ctx}
	scalars := f.get(g.scalars)
	cols := f.walk(g.columns)
	out := d.build(g, scalars, cols, t, start)

	d.mu.Lock()
	if f.answered || f.dead == "" {
		d.dead.Succeeded()
	} else {
		d.dead.Failed(d.now(), f.dead, d.cfg.Backoff, d.cfg.MaxBackoff)
	}
	d.mu.Unlock()
	return out
}

// allBad returns every point of a group as bad with reason: the column
// points under the names of their last known rows.
func (d *Device) allBad(group string, t time.Time, reason string) []point.Point {
	d.mu.Lock()
	defer d.mu.Unlock()
	var defs []profiles.PointDef
	if g := d.groups[group]; g != nil {
		defs = g.points
	} else if d.res == nil && d.cfg.Profile != nil {
		if g := planGroups(d.cfg.Profile.Points, d.cfg.Only)[group]; g != nil {
			defs = g.points
		}
	}
	var out []point.Point
	for i := range defs {
		def := &defs[i]
		names := []string{def.Name}
		if def.IsColumn() && def.Contains == "" {
			if known := d.rows[def.Name]; len(known) > 0 {
				names = known
			}
		}
		for _, n := range names {
			p := point.Point{Device: d.cfg.ID, Name: n, Kind: def.Kind(), Unit: point.Unit(def.Unit), Time: t, Quality: point.Bad, Reason: reason}
			out = append(out, p)
			if def.IsCounter() {
				r := p
				r.Name, r.Kind, r.Unit = n+profiles.RateSuffix, point.Number, point.None
				out = append(out, r)
			}
		}
	}
	return out
}

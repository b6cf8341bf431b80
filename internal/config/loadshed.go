package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
	"github.com/facgw/facgw/internal/strictyaml"
	"github.com/facgw/facgw/rules"
)

// Defaults of the loadshed section.
const (
	DefaultMaxArm           = 8 * time.Hour
	DefaultMinStageInterval = 10 * time.Second
	DefaultVerifyTimeout    = 5 * time.Second
	DefaultDrainTimeout     = 60 * time.Second
	// RestoreManual, the default restore policy: an operator switches
	// shed loads back on.
	RestoreManual = "manual"
	// RestoreAuto switches shed loads back on, in reverse order, once the
	// policy's restore_when condition (utility power back) has held for
	// its for-duration on good inputs.
	RestoreAuto = "auto"
)

// Loadshed configures automatic load shedding (docs/loadshed.md): load
// tiers, the loads (switchable outlets) in them, and policies that shed
// tiers in stages when their trigger holds. Every policy starts disarmed
// unless its armed is set here.
type Loadshed struct {
	// MaxArm caps how long an arming through the HTTP API lasts.
	// Default DefaultMaxArm.
	MaxArm time.Duration `yaml:"max_arm"`
	// MinStageInterval is the rate limit: at most one stage per interval,
	// whatever the stages' own delays say. Default DefaultMinStageInterval.
	MinStageInterval time.Duration `yaml:"min_stage_interval"`
	// VerifyTimeout is how long a written outlet may take to read back
	// as off before the shed of it counts as failed. Default
	// DefaultVerifyTimeout.
	VerifyTimeout time.Duration `yaml:"verify_timeout"`
	// DrainTimeout is how long a drain stage waits for the orchestrator's
	// acknowledgement before it escalates (switches its loads off and
	// goes on); a stage's drain.timeout overrides it. Default
	// DefaultDrainTimeout.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// Tiers are the load tiers; loads in a critical tier are never shed.
	Tiers []ShedTier `yaml:"tiers" check:"required"`
	// Loads are the switchable loads.
	Loads []ShedLoad `yaml:"loads" check:"required"`
	// WriteCredentials are the SNMP credentials that may SET, per
	// device: a write community (v1/v2c) or a v3 write user. Polling
	// credentials are read-only on a well-run PDU.
	WriteCredentials []WriteCredential `yaml:"write_credentials"`
	// Policies are the automatic load sheds.
	Policies []ShedPolicy   `yaml:"policies" check:"required"`
	Pos      strictyaml.Pos `json:"-"`
}

// ShedTier is a load tier.
type ShedTier struct {
	Name string `yaml:"name" check:"required"`
	// Critical tiers are never shed: a policy naming one, or a load in
	// one, is refused.
	Critical bool           `yaml:"critical"`
	Pos      strictyaml.Pos `json:"-"`
}

// ShedLoad is one switchable load: a writable point of a device (a PDU
// outlet's command, an outlet bank's coil), the value that switches it
// off, and the point that proves it is off.
type ShedLoad struct {
	Name   string `yaml:"name" check:"required"`
	Tier   string `yaml:"tier" check:"required"`
	Device string `yaml:"device" check:"required"`
	// Point is the profile point written; it must be marked writable.
	Point string `yaml:"point" check:"required"`
	// Index is the row of a table column point (the outlet number of an
	// SNMP PDU: "3"); empty for a scalar point.
	Index string `yaml:"index"`
	// Off is the value written: an enum name of the point
	// (immediate_off), a number, or true/false.
	Off string `yaml:"off" check:"required"`
	// On is the value that switches the load back on; required for a
	// load a policy may restore, except a bool point read back on a bool
	// point (a relay), where it is the other state of Off.
	On string `yaml:"on"`
	// Verify is the read-back.
	Verify ShedVerify     `yaml:"verify" check:"required"`
	Pos    strictyaml.Pos `json:"-"`

	// OffValue is Off resolved against the profile.
	OffValue float64 `yaml:"-"`
	// OnValue is On resolved against the profile.
	OnValue float64 `yaml:"-"`
}

// ShedVerify names the point read back after a write (same row as the
// load's) and the value it must show.
type ShedVerify struct {
	Point string `yaml:"point" check:"required"`
	// Value is what the point shows once the load is off.
	Value string `yaml:"value" check:"required"`
	// On is what it shows once the load is on again (restore: auto).
	On  string         `yaml:"on"`
	Pos strictyaml.Pos `json:"-"`

	// Want is Value resolved against the profile.
	Want float64 `yaml:"-"`
	// WantOn is On resolved against the profile.
	WantOn float64 `yaml:"-"`
}

// WriteCredential is what a device's SETs authenticate with, instead of
// its polling credentials: a write community for an SNMP v1/v2c device,
// a v3 write user for a v3 one.
type WriteCredential struct {
	Device    string `yaml:"device" check:"required"`
	Community Secret `yaml:"community"`
	// V3 is the SNMPv3 (USM) user for SETs.
	V3  *WriteUser     `yaml:"v3"`
	Pos strictyaml.Pos `json:"-"`
}

// WriteUser is an SNMPv3 user that may SET. The fields mean what the same
// fields of a device's snmp section mean, and are checked the same way:
// security_level (default authPriv), auth and privacy protocols with
// passphrases of at least 8 characters, and context (default: the
// polling context).
type WriteUser struct {
	User          string         `yaml:"user"`
	SecurityLevel string         `yaml:"security_level"`
	AuthProtocol  string         `yaml:"auth_protocol"`
	AuthPassword  Secret         `yaml:"auth_password"`
	PrivProtocol  string         `yaml:"priv_protocol"`
	PrivPassword  Secret         `yaml:"priv_password"`
	Context       string         `yaml:"context"`
	Pos           strictyaml.Pos `json:"-"`
}

// ShedPolicy is one automatic load shed.
type ShedPolicy struct {
	Name string `yaml:"name" check:"required"`
	// Armed arms the policy at start, recorded as armed by "config".
	Armed bool `yaml:"armed"`
	// Trigger is the condition, in the rule language, that starts the
	// shed once it has held for its for-duration with good inputs.
	Trigger rules.Trigger `yaml:"trigger" check:"required"`
	// Stages are shed in order.
	Stages []ShedStage `yaml:"stages" check:"required"`
	// Restore is RestoreManual (the default) or RestoreAuto.
	Restore string `yaml:"restore"`
	// RestoreWhen is the condition, in the rule language, under which
	// restore: auto switches the shed loads back on: utility power back,
	// held for its for-duration (required, the "stable for" time) on
	// good inputs, with the trigger no longer holding.
	RestoreWhen *rules.Trigger `yaml:"restore_when"`
	Pos         strictyaml.Pos `json:"-"`

	// Rule is the compiled trigger, "loadshed/<name>".
	Rule *rules.Rule `yaml:"-" json:"-"`
	// RestoreRule is the compiled restore_when,
	// "loadshed-restore/<name>"; nil unless restore is auto.
	RestoreRule *rules.Rule `yaml:"-" json:"-"`
}

// ShedDrain is a stage's drain command to the orchestration system,
// published on MQTT before the stage's loads (if any) are switched off.
type ShedDrain struct {
	// Scope tells the orchestrator what to drain (a cluster, a hall, a
	// rack row); free text, default the policy's name.
	Scope string `yaml:"scope"`
	// Timeout is how long to wait for the acknowledgement before
	// escalating; default loadshed.drain_timeout.
	Timeout time.Duration  `yaml:"timeout"`
	Pos     strictyaml.Pos `json:"-"`
}

// ShedStage is one step of a policy: the loads of some tiers, or named
// loads, switched off after a delay.
type ShedStage struct {
	// After is the delay since the previous stage (or the trigger, for
	// the first); MinStageInterval still applies.
	After time.Duration `yaml:"after"`
	Tiers []string      `yaml:"tiers"`
	Loads []string      `yaml:"loads"`
	// Drain, when set, publishes a drain command and waits for its
	// acknowledgement (or its timeout) before the stage's loads go off.
	Drain *ShedDrain     `yaml:"drain"`
	Pos   strictyaml.Pos `json:"-"`

	// Targets are the loads of the stage, in order: the named loads, then
	// the loads of the tiers in file order.
	Targets []string `yaml:"-"`
}

var shedNameRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// Load returns the load with the given name.
func (l *Loadshed) Load(name string) (*ShedLoad, bool) {
	for i := range l.Loads {
		if l.Loads[i].Name == name {
			return &l.Loads[i], true
		}
	}
	return nil, false
}

// Tier returns the tier with the given name.
func (l *Loadshed) Tier(name string) (*ShedTier, bool) {
	for i := range l.Tiers {
		if l.Tiers[i].Name == name {
			return &l.Tiers[i], true
		}
	}
	return nil, false
}

// Credential returns the write community of a device, if configured.
func (l *Loadshed) Credential(device string) (Secret, bool) {
	for _, w := range l.WriteCredentials {
		if w.Device == device && w.Community.IsSet() {
			return w.Community, true
		}
	}
	return Secret{}, false
}

// WriteUser returns the SNMPv3 write user of a device, if configured.
func (l *Loadshed) WriteUser(device string) (*WriteUser, bool) {
	for _, w := range l.WriteCredentials {
		if w.Device == device && w.V3 != nil {
			return w.V3, true
		}
	}
	return nil, false
}

// loadshed checks the loadshed section: tiers, loads against the devices
// and their profiles (writable point, read-back point, values), policies
// (critical tiers never targeted, triggers compiled by the rules package).
func (c *checker) loadshed() {
	ls := c.cfg.Loadshed
	if ls == nil {
		return
	}
	p := ls.Pos
	at := func(field, format string, args ...any) { c.add(p.AtPath(field, format, args...)) }
	if !p.Has("max_arm") {
		ls.MaxArm = DefaultMaxArm
	} else if ls.MaxArm <= 0 {
		at("max_arm", "max_arm must be positive, got %s", ls.MaxArm)
	}
	if !p.Has("min_stage_interval") {
		ls.MinStageInterval = DefaultMinStageInterval
	} else if ls.MinStageInterval < 0 {
		at("min_stage_interval", "min_stage_interval must not be negative, got %s", ls.MinStageInterval)
	}
	if !p.Has("verify_timeout") {
		ls.VerifyTimeout = DefaultVerifyTimeout
	} else if ls.VerifyTimeout <= 0 {
		at("verify_timeout", "verify_timeout must be positive, got %s", ls.VerifyTimeout)
	}
	if !p.Has("drain_timeout") {
		ls.DrainTimeout = DefaultDrainTimeout
	} else if ls.DrainTimeout <= 0 {
		at("drain_timeout", "drain_timeout must be positive, got %s", ls.DrainTimeout)
	}

	// name checks the name of a tier, load or policy at field f and adds
	// it to names: its form, and that it is not taken.
	name := func(kind, f, n string, names *[]string) {
		if n != "" && !shedNameRE.MatchString(n) {
			at(f+".name", "%s name %q must be lower-case letters and digits separated by single dashes", kind, n)
		}
		if slices.Contains(*names, n) {
			at(f+".name", "%s %q is defined twice", kind, n)
		}
		*names = append(*names, n)
	}
	var tierNames []string
	for i, t := range ls.Tiers {
		name("tier", fmt.Sprintf("tiers[%d]", i), t.Name, &tierNames)
	}

	var loadNames []string
	for i := range ls.Loads {
		l := &ls.Loads[i]
		f := fmt.Sprintf("loads[%d]", i)
		name("load", f, l.Name, &loadNames)
		if _, ok := ls.Tier(l.Tier); !ok && l.Tier != "" {
			at(f+".tier", "unknown tier %q%s", l.Tier, strictyaml.DidYouMeanOr(l.Tier, tierNames))
		}
		c.shedTarget(ls, l, f)
	}
	c.writeCredentials(ls)

	var policyNames []string
	for i := range ls.Policies {
		pol := &ls.Policies[i]
		f := fmt.Sprintf("policies[%d]", i)
		name("policy", f, pol.Name, &policyNames)
		switch pol.Restore {
		case "":
			pol.Restore = RestoreManual
		case RestoreManual, RestoreAuto:
		default:
			at(f+".restore", "want manual or auto, got %q", pol.Restore)
		}
		c.shedStages(ls, pol, f, tierNames, loadNames)
		c.shedRestore(ls, pol, f)
		if pol.Trigger.Pos.Line != 0 && pol.Name != "" && shedNameRE.MatchString(pol.Name) {
			r, err := rules.CompileTrigger("loadshed", pol.Name, "power", &pol.Trigger)
			if err != nil {
				c.addAll(err)
				continue
			}
			pol.Rule = r
			c.shedTriggerDevices(&pol.Trigger)
			c.shedTriggerAlerts(r)
		}
	}
}

// shedRestore checks a policy's restore: auto needs restore_when with a
// for-duration (the time utility power must have been stable) and, on
// every load it sheds, the value that switches it on and the read-back
// that proves it.
func (c *checker) shedRestore(ls *Loadshed, pol *ShedPolicy, f string) {
	at := func(field, format string, args ...any) { c.add(ls.Pos.AtPath(f+field, format, args...)) }
	if pol.Restore != RestoreAuto {
		if pol.RestoreWhen != nil {
			at(".restore_when", "restore_when applies only to restore: auto (restore is %s)", pol.Restore)
		}
		return
	}
	if pol.RestoreWhen == nil {
		at(".restore", "restore: auto needs restore_when: the condition (utility power back) and for: how long it must hold")
		return
	}
	if pol.RestoreWhen.For <= 0 {
		at(".restore_when.for", "restore_when needs for: the time utility power must have been stable before loads go back on (such as 10m)")
	}
	for si, st := range pol.Stages {
		for _, n := range st.Targets {
			l, ok := ls.Load(n)
			if ok && (l.On == "" || l.Verify.On == "") {
				at(fmt.Sprintf(".stages[%d]", si), "load %q has no on: and verify.on: values, which restore: auto needs to switch it back on", n)
			}
		}
	}
	if pol.Name != "" && shedNameRE.MatchString(pol.Name) && pol.RestoreWhen.Pos.Line != 0 {
		r, err := rules.CompileTrigger("loadshed-restore", pol.Name, "power", pol.RestoreWhen)
		if err != nil {
			c.addAll(err)
			return
		}
		pol.RestoreRule = r
		c.shedTriggerDevices(pol.RestoreWhen)
		c.shedTriggerAlerts(r)
	}
}

// shedStages checks a policy's stages and resolves their targets. A
// critical tier, or a load in one, is refused: automation never sheds
// critical IT load.
func (c *checker) shedStages(ls *Loadshed, pol *ShedPolicy, f string, tierNames, loadNames []string) {
	seen := map[string]string{}
	for si := range pol.Stages {
		st := &pol.Stages[si]
		sf := fmt.Sprintf("%s.stages[%d]", f, si)
		at := func(field, format string, args ...any) { c.add(ls.Pos.AtPath(sf+field, format, args...)) }
		if len(st.Tiers) == 0 && len(st.Loads) == 0 && st.Drain == nil {
			at("", "a stage needs tiers:, loads: or drain:")
		}
		if d := st.Drain; d != nil {
			if c.cfg.MQTT == nil {
				at(".drain", "a drain stage publishes its command on MQTT: configure the mqtt section")
			}
			if d.Scope == "" {
				d.Scope = pol.Name
			}
			if !d.Pos.Has("timeout") {
				d.Timeout = ls.DrainTimeout
			} else if d.Timeout <= 0 {
				at(".drain.timeout", "timeout must be positive, got %s", d.Timeout)
			}
		}
		if st.After < 0 {
			at(".after", "after must not be negative, got %s", st.After)
		}
		add := func(field, name string) {
			if prev, dup := seen[name]; dup {
				at(field, "load %q is already shed by %s", name, prev)
				return
			}
			seen[name] = sf
			st.Targets = append(st.Targets, name)
		}
		for i, n := range st.Loads {
			lf := fmt.Sprintf(".loads[%d]", i)
			l, ok := ls.Load(n)
			if !ok {
				at(lf, "unknown load %q%s", n, strictyaml.DidYouMeanOr(n, loadNames))
				continue
			}
			if t, ok := ls.Tier(l.Tier); ok && t.Critical {
				at(lf, "load %q is in critical tier %q, which is never shed", n, t.Name)
				continue
			}
			add(lf, n)
		}
		for i, tn := range st.Tiers {
			tf := fmt.Sprintf(".tiers[%d]", i)
			t, ok := ls.Tier(tn)
			if !ok {
				at(tf, "unknown tier %q%s", tn, strictyaml.DidYouMeanOr(tn, tierNames))
				continue
			}
			if t.Critical {
				at(tf, "tier %q is critical and is never shed", tn)
				continue
			}
			n := 0
			for _, l := range ls.Loads {
				if l.Tier == tn {
					add(tf, l.Name)
					n++
				}
			}
			if n == 0 {
				at(tf, "tier %q has no loads", tn)
			}
		}
	}
}

// shedTriggerDevices checks that a trigger's select.devices are configured.
func (c *checker) shedTriggerDevices(t *rules.Trigger) {
	for i, id := range t.Select.Devices {
		if _, ok := c.cfg.Device(id); !ok {
			c.add(t.Pos.AtPath(fmt.Sprintf("select.devices[%d]", i), "unknown device %q%s", id, strictyaml.DidYouMeanOr(id, c.deviceIDs())))
		}
	}
}

// shedTriggerAlerts checks that the rules a trigger reads with firing()
// are enabled rules of the rule set (with did-you-mean). Without a rule
// set (its own errors are reported) there is nothing to check against.
func (c *checker) shedTriggerAlerts(r *rules.Rule) {
	if c.cfg.RuleSet == nil || len(r.Reads()) == 0 {
		return
	}
	if err := rules.CheckReferences(c.cfg.RuleSet, r); err != nil {
		c.addAll(err)
	}
}

// shedTarget checks a load against its device's profile: the point must
// exist and be writable, the index fit the point, the values resolve.
func (c *checker) shedTarget(ls *Loadshed, l *ShedLoad, f string) {
	at := func(field, format string, args ...any) { c.add(ls.Pos.AtPath(f+field, format, args...)) }
	if l.Device == "" {
		return
	}
	d, ok := c.cfg.Device(l.Device)
	if !ok {
		at(".device", "unknown device %q%s", l.Device, strictyaml.DidYouMeanOr(l.Device, c.deviceIDs()))
		return
	}
	if d.Disabled {
		at(".device", "device %q is disabled; a load on it could never be shed", l.Device)
	}
	prof := d.ProfileDef()
	if prof == nil {
		at(".device", "device %q needs a fixed profile (not %q) to be a load-shed target: its writable points must be known before the shed", l.Device, d.Profile)
		return
	}
	res := prof.Resolve(d.Firmware)
	def, ok := res.Point(l.Point)
	if !ok {
		at(".point", "profile %s has no point %q%s", prof.Model, l.Point, strictyaml.DidYouMeanOr(l.Point, writablePoints(res)))
		return
	}
	if !def.Writable {
		at(".point", "point %q of profile %s is not writable%s", l.Point, prof.Model, strictyaml.DidYouMeanOr(l.Point, writablePoints(res)))
		return
	}
	checkIndex := func(field string, def *profiles.PointDef) bool {
		switch {
		case def.IsColumn() && l.Index == "":
			at(field, "point %q is a table column: give the row (index: \"3\" for outlet 3)", def.Name)
			return false
		case !def.IsColumn() && l.Index != "":
			at(".index", "point %q is a scalar and has no rows", def.Name)
			return false
		case l.Index != "" && !indexRE.MatchString(l.Index):
			at(".index", "index %q must be a row index such as \"3\" or \"1.3\"", l.Index)
			return false
		}
		return true
	}
	if !checkIndex(".point", def) {
		return
	}
	v, err := pointValue(def, l.Off)
	if err != nil {
		at(".off", "%v", err)
	}
	l.OffValue = v
	if l.On != "" {
		if v, err := pointValue(def, l.On); err != nil {
			at(".on", "%v", err)
		} else {
			l.OnValue = v
		}
	}
	vdef, ok := res.Point(l.Verify.Point)
	if l.Verify.Point != "" && !ok {
		at(".verify.point", "profile %s has no point %q", prof.Model, l.Verify.Point)
	} else if ok {
		if vdef.IsColumn() != def.IsColumn() {
			at(".verify.point", "point %q must be a %s like %q, to be read at the same row", vdef.Name, map[bool]string{true: "table column", false: "scalar"}[def.IsColumn()], def.Name)
		} else if w, err := pointValue(vdef, l.Verify.Value); err != nil {
			at(".verify.value", "%v", err)
		} else {
			l.Verify.Want = w
		}
		if l.Verify.On != "" {
			if w, err := pointValue(vdef, l.Verify.On); err != nil {
				at(".verify.on", "%v", err)
			} else {
				l.Verify.WantOn = w
			}
		}
	}
	if (l.On == "") != (l.Verify.On == "") {
		at(".on", "give both on: and verify.on: (the value that switches the load on and the read-back that proves it), or neither")
	} else if l.On == "" && ok && def.Kind() == point.Bool && vdef.Kind() == point.Bool {
		// A relay: on is the other state, for the write and the read-back
		// alike, so a restore (manual or automatic) needs no more config.
		l.OnValue, l.Verify.WantOn = 1-l.OffValue, 1-l.Verify.Want
		l.On, l.Verify.On = strconv.FormatBool(l.OnValue == 1), strconv.FormatBool(l.Verify.WantOn == 1)
	}
	if d.Transport == TransportSNMP && d.SNMP != nil && d.SNMP.Version != "3" {
		if _, ok := ls.Credential(d.ID); !ok {
			at(".device", "SNMP device %q needs a write community in loadshed.write_credentials (polling credentials should not be able to SET)", d.ID)
		}
	}
}

// writeCredentials checks the write credentials: a known SNMP device,
// once; a community for a v1/v2c device, a v3 user (checked like a
// device's polling user) for a v3 one.
func (c *checker) writeCredentials(ls *Loadshed) {
	seen := map[string]bool{}
	for i := range ls.WriteCredentials {
		w := &ls.WriteCredentials[i]
		f := fmt.Sprintf("write_credentials[%d]", i)
		at := func(field, format string, args ...any) { c.add(ls.Pos.AtPath(f+field, format, args...)) }
		if w.V3 != nil {
			c.writeUser(w.V3)
		}
		switch {
		case w.Community.IsSet() && w.V3 != nil:
			at(".v3", "give community: (SNMP v1/v2c) or v3: (an SNMPv3 user), not both")
		case !w.Community.IsSet() && w.V3 == nil && !w.Pos.Has("community") && !w.Pos.Has("v3"):
			at("", "write credentials need community: (SNMP v1/v2c) or v3: (an SNMPv3 user)")
		}
		if w.Device == "" {
			continue
		}
		if seen[w.Device] {
			at(".device", "device %q has write credentials twice", w.Device)
		}
		seen[w.Device] = true
		d, ok := c.cfg.Device(w.Device)
		switch {
		case !ok:
			at(".device", "unknown device %q%s", w.Device, strictyaml.DidYouMeanOr(w.Device, c.deviceIDs()))
		case d.Transport != TransportSNMP || d.SNMP == nil:
			at(".device", "device %q is not polled over SNMP (transport %s): write credentials are for SNMP SET", w.Device, d.Transport)
		case d.SNMP.Version == "3" && w.Community.IsSet() && w.V3 == nil:
			at(".community", "device %q speaks SNMP v3: give a v3 write user (v3:), not a community", w.Device)
		case d.SNMP.Version != "3" && w.V3 != nil && !w.Community.IsSet():
			at(".v3", "device %q speaks SNMP v%s: give a write community (community:), not a v3 user", w.Device, d.SNMP.Version)
		}
	}
	// A v3 target without a write user still works, with the polling
	// user, which must then be allowed to SET: say so, once per device.
	warned := map[string]bool{}
	for i, l := range ls.Loads {
		d, ok := c.cfg.Device(l.Device)
		if !ok || warned[l.Device] || d.Transport != TransportSNMP || d.SNMP == nil || d.SNMP.Version != "3" {
			continue
		}
		if _, ok := ls.WriteUser(l.Device); !ok {
			warned[l.Device] = true
			c.warn(ls.Pos.AtPath(fmt.Sprintf("loads[%d].device", i), "SNMP v3 device %q has no v3 write user in loadshed.write_credentials: its SETs go out as the polling user %q, which must then be allowed to write (polling credentials should not be able to SET)", l.Device, d.SNMP.User))
		}
	}
}

// writeUser checks a v3 write user as a device's polling user is checked
// (the same code, so the same rules and messages), and takes back the
// normalised protocol names and the default security level.
func (c *checker) writeUser(u *WriteUser) {
	s := &SNMP{Version: "3", User: u.User, SecurityLevel: u.SecurityLevel, AuthProtocol: u.AuthProtocol, AuthPassword: u.AuthPassword,
		PrivProtocol: u.PrivProtocol, PrivPassword: u.PrivPassword, Context: u.Context, Pos: u.Pos}
	c.snmpCredentials(s)
	u.SecurityLevel, u.AuthProtocol, u.PrivProtocol = s.SecurityLevel, s.AuthProtocol, s.PrivProtocol
}

var indexRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)

// pointValue resolves a value written in the config for a point: an enum
// name or code, true/false/on/off for a bool, else a number.
func pointValue(def *profiles.PointDef, s string) (float64, error) {
	s = strings.TrimSpace(s)
	if len(def.Enum) > 0 {
		var names []string
		for code, name := range def.Enum {
			if strings.EqualFold(name, s) {
				return float64(code), nil
			}
			names = append(names, name)
		}
		slices.Sort(names)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			if _, ok := def.Enum[i]; ok {
				return float64(i), nil
			}
		}
		return 0, fmt.Errorf("point %q has no value %q%s", def.Name, s, strictyaml.DidYouMeanOr(s, names))
	}
	if def.Kind() == point.Bool {
		switch strings.ToLower(s) {
		case "true", "on", "1":
			return 1, nil
		case "false", "off", "0":
			return 0, nil
		}
		return 0, fmt.Errorf("point %q is a bool: want true or false, got %q", def.Name, s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("point %q: want a number, got %q", def.Name, s)
	}
	return v, nil
}

// writablePoints lists the writable points of a resolved profile.
func writablePoints(r *profiles.Resolved) []string {
	var out []string
	for _, p := range r.Points {
		if p.Writable {
			out = append(out, p.Name)
		}
	}
	return out
}

// deviceIDs lists the configured device ids.
func (c *checker) deviceIDs() []string {
	out := make([]string, len(c.cfg.Devices))
	for i, d := range c.cfg.Devices {
		out[i] = d.ID
	}
	return out
}

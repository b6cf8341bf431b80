// Package config loads facgw's configuration file: the site and gateway
// names, device defaults, and the devices to poll, each bound to a firmware
// profile.
//
// Loading is strict, in two passes that report together: strictyaml rejects
// unknown keys, wrong types and missing fields, then a semantic pass checks
// what the types cannot say (unknown profiles and points, poll groups,
// address and serial settings, devices sharing a connection). Every problem
// comes back at once as a sorted strictyaml.Errors, each message located as
// file:line:col: path: text, so an engineer fixes a file in one round.
//
// Relative paths in the file (profile_dirs, state_dir, secret files) are
// relative to the directory of the config file, not the working directory,
// so a config behaves the same wherever facgw is started from.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/strictyaml"
	"github.com/facgw/facgw/rules"
)

// Transports a device can use.
const (
	TransportTCP = "modbus-tcp"
	TransportRTU = "modbus-rtu"
)

// AutoProfile as a device's profile asks the driver to identify the model
// and firmware at connect time.
const AutoProfile = "auto"

// Built-in defaults, used when the file does not set a value.
const (
	DefaultStateDir   = "./var"
	DefaultListen     = "127.0.0.1:8080"
	DefaultTimeout    = time.Second
	DefaultRetries    = 2
	DefaultBackoff    = 200 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	DefaultStaleAfter = 3
	DefaultInterval   = 5 * time.Second
	DefaultUnit       = 1
	DefaultBaud       = 9600
	DefaultDataBits   = 8
	DefaultParity     = "E"
	DefaultStopBits   = 1
)

// Bounds of a poll interval: faster than MinInterval would flood an RS-485
// line or a network card's client budget; slower than MaxInterval is no
// longer monitoring.
const (
	MinInterval = 50 * time.Millisecond
	MaxInterval = time.Hour
)

// DefaultGroup is the poll group of profile points that name none; its
// interval is also the fallback for groups a config does not list.
const DefaultGroup = "default"

// Config is one gateway's configuration file. Load fills the fields the
// file leaves out with their defaults and joins relative paths to the
// file's directory, so the values read here are the effective ones. A
// loaded Config is not modified again and is safe for concurrent reads.
type Config struct {
	// Site names the datacenter site, such as "pangyo-b3": lower-case
	// letters, digits and '-'.
	Site string `yaml:"site" check:"required"`
	// Gateway names this gateway within the site, such as "gw-1".
	Gateway string `yaml:"gateway" check:"required"`
	// StateDir holds the gateway's durable state (outboxes, sequence
	// numbers, alert state). Default DefaultStateDir.
	StateDir string `yaml:"state_dir"`
	// ProfileDirs are extra firmware profile directories, loaded on top of
	// the registry given to Load; a model loaded here replaces one of the
	// same name.
	ProfileDirs []string `yaml:"profile_dirs"`
	// HTTP configures the API and dashboard server.
	HTTP HTTP `yaml:"http"`
	// Defaults apply to every device that does not override them.
	Defaults Defaults `yaml:"defaults"`
	// Devices are the devices to poll; there must be at least one.
	Devices []Device `yaml:"devices"`
	// MQTT publishes telemetry to redundant brokers; optional.
	MQTT *MQTT `yaml:"mqtt"`
	// Influx writes history to a time-series database; optional.
	Influx *Influx `yaml:"influx"`
	// Traps receives SNMP traps and informs; optional.
	Traps *Traps `yaml:"traps"`
	// Rules chooses the alert rules; left out, every shipped pack runs.
	Rules *Rules `yaml:"rules"`
	// Alerting configures the alert delivery paths.
	Alerting *Alerting `yaml:"alerting"`
	// Loadshed configures automatic load shedding; optional.
	Loadshed *Loadshed `yaml:"loadshed"`
	// RuleSet is the compiled rule set the rules section names.
	RuleSet *rules.RuleSet `yaml:"-" json:"-"`
	// Pos locates the top-level mapping for error messages.
	Pos strictyaml.Pos `json:"-"`

	// File is the path the configuration was read from.
	File string `yaml:"-" json:"-"`
	// Profiles is the registry devices were checked against, including the
	// profiles of ProfileDirs.
	Profiles *profiles.Registry `yaml:"-" json:"-"`
	// Warnings are problems that do not stop loading, such as a secret
	// written in the file; `facgw check` prints them.
	Warnings strictyaml.Errors `yaml:"-" json:"-"`
}

// Defaults are settings devices inherit unless they override them.
type Defaults struct {
	// Timeout bounds one request to a device. Default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how often a failed request is repeated within one poll.
	// Default DefaultRetries.
	Retries int `yaml:"retries"`
	// Backoff is the wait before reconnecting to a failed device; it
	// doubles on each failure up to MaxBackoff.
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// StaleAfter is how many poll intervals a point may go without a
	// refresh before it is stale; at least 2 so one missed poll is not an
	// alarm. Default DefaultStaleAfter.
	StaleAfter int `yaml:"stale_after"`
	// Poll maps a poll group to its interval, for every device that does
	// not set that group itself.
	Poll map[string]time.Duration `yaml:"poll"`
	Pos  strictyaml.Pos           `json:"-"`
}

// Device is one polled device. Fields left out of the file keep their zero
// value (nil for overrides); use the methods for effective settings.
type Device struct {
	// ID names the device, unique in the file: [a-z0-9][a-z0-9_-]*.
	ID string `yaml:"id" check:"required"`
	// Profile is a profile model name, or AutoProfile.
	Profile string `yaml:"profile" check:"required"`
	// Firmware pins the firmware version, which selects the profile
	// variant. Not allowed with AutoProfile, which identifies it.
	Firmware string `yaml:"firmware"`
	// Labels are attached to every point of the device.
	Labels map[string]string `yaml:"labels"`
	// Transport is TransportTCP or TransportRTU.
	Transport string `yaml:"transport" check:"required"`
	// Address is host:port, for TransportTCP only.
	Address string `yaml:"address"`
	// Serial configures the line, for TransportRTU only.
	Serial *Serial `yaml:"serial"`
	// SNMP configures the agent's version and credentials, for
	// TransportSNMP only.
	SNMP *SNMP `yaml:"snmp"`
	// Unit is the Modbus unit id: 0..255 over TCP, 1..247 on a serial
	// line. Default DefaultUnit.
	Unit int `yaml:"unit"`
	// TimeoutOverride and RetriesOverride replace the defaults for this
	// device when set; see Timeout and Retries.
	TimeoutOverride *time.Duration `yaml:"timeout"`
	RetriesOverride *int           `yaml:"retries"`
	// Poll maps the profile's poll groups to intervals; see Interval.
	Poll map[string]time.Duration `yaml:"poll"`
	// Points, when set, limits polling to these points of the profile.
	Points []string `yaml:"points"`
	// Disabled devices are checked but not polled, and do not take part in
	// the shared-connection checks.
	Disabled bool           `yaml:"disabled"`
	Pos      strictyaml.Pos `json:"-"`

	defaults *Defaults
	profile  *profiles.Profile
}

// Serial configures an RS-485 or RS-232 line. Devices on the same port
// share it and must agree on every setting.
type Serial struct {
	// Port is the device path, such as /dev/ttyUSB0.
	Port string `yaml:"port" check:"required"`
	// Baud is a standard rate from 1200 to 115200. Default DefaultBaud.
	Baud int `yaml:"baud"`
	// DataBits is 7 or 8. Default DefaultDataBits.
	DataBits int `yaml:"data_bits"`
	// Parity is "N", "E" or "O". Default DefaultParity.
	Parity string `yaml:"parity"`
	// StopBits is 1 or 2. Default DefaultStopBits.
	StopBits int            `yaml:"stop_bits"`
	Pos      strictyaml.Pos `json:"-"`
}

// BaudRates are the serial rates a device may use.
var BaudRates = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}

// Timeout returns the effective timeout of one request.
func (d *Device) Timeout() time.Duration {
	switch {
	case d.TimeoutOverride != nil:
		return *d.TimeoutOverride
	case d.defaults != nil:
		return d.defaults.Timeout
	}
	return DefaultTimeout
}

// Retries returns the effective number of retries of a failed request.
func (d *Device) Retries() int {
	switch {
	case d.RetriesOverride != nil:
		return *d.RetriesOverride
	case d.defaults != nil:
		return d.defaults.Retries
	}
	return DefaultRetries
}

// Backoff returns the first reconnect backoff; it doubles up to MaxBackoff.
func (d *Device) Backoff() time.Duration {
	if d.defaults != nil {
		return d.defaults.Backoff
	}
	return DefaultBackoff
}

// MaxBackoff returns the cap of the reconnect backoff.
func (d *Device) MaxBackoff() time.Duration {
	if d.defaults != nil {
		return d.defaults.MaxBackoff
	}
	return DefaultMaxBackoff
}

// StaleAfter returns how many intervals a point may miss before it is stale.
func (d *Device) StaleAfter() int {
	if d.defaults != nil {
		return d.defaults.StaleAfter
	}
	return DefaultStaleAfter
}

// Interval returns the poll interval of a profile poll group. The first
// that is set wins: the device's entry for the group, defaults.poll's entry
// for the group, the device's "default" entry, defaults.poll's "default"
// entry, then DefaultInterval. So a device that sets only "default" slows
// its ordinary points without slowing a safety group the defaults poll
// fast.
func (d *Device) Interval(group string) time.Duration {
	var dp map[string]time.Duration
	if d.defaults != nil {
		dp = d.defaults.Poll
	}
	for _, m := range []struct {
		poll  map[string]time.Duration
		group string
	}{{d.Poll, group}, {dp, group}, {d.Poll, DefaultGroup}, {dp, DefaultGroup}} {
		if iv, ok := m.poll[m.group]; ok {
			return iv
		}
	}
	return DefaultInterval
}

// ConnKey names the connection the device is polled over: devices with the
// same key (units behind one TCP-to-RTU gateway, or on one serial port)
// share a connection and a polling goroutine. It is opaque, and empty for
// an unknown transport.
func (d *Device) ConnKey() string {
	switch d.Transport {
	case TransportTCP:
		host, port, err := net.SplitHostPort(d.Address)
		if err != nil {
			return TransportTCP + " " + d.Address
		}
		return TransportTCP + " " + net.JoinHostPort(strings.ToLower(host), port)
	case TransportRTU:
		if d.Serial != nil {
			return TransportRTU + " " + filepath.Clean(d.Serial.Port)
		}
	}
	return ""
}

// IsAuto reports whether the device's profile is identified at connect time.
func (d *Device) IsAuto() bool { return d.Profile == AutoProfile }

// ProfileDef returns the device's profile, or nil for AutoProfile (or a
// Device that did not come from Load).
func (d *Device) ProfileDef() *profiles.Profile { return d.profile }

// WantsPoint reports whether the device polls the named point: every point
// when Points is empty, else the listed ones.
func (d *Device) WantsPoint(name string) bool {
	return len(d.Points) == 0 || slices.Contains(d.Points, name)
}

// Device returns the device with the given id.
func (c *Config) Device(id string) (*Device, bool) {
	for i := range c.Devices {
		if c.Devices[i].ID == id {
			return &c.Devices[i], true
		}
	}
	return nil, false
}

// Load reads and checks a configuration file. The profile directories it
// names are loaded into reg (which may be nil for none but those), so pass a
// fresh registry on every reload. All problems come back together as a
// sorted strictyaml.Errors, including those in profile files.
func Load(file string, reg *profiles.Registry) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(file, data, reg)
}

// Parse is Load for data already read; file names it in messages and is the
// base of its relative paths.
func Parse(file string, data []byte, reg *profiles.Registry) (*Config, error) {
	if reg == nil {
		reg = profiles.NewRegistry()
	}
	return parse(file, data, reg, reg.AddDir)
}

// parse takes the directory loader as a parameter so the fuzz target can
// parse files naming any directory without walking the file system.
func parse(file string, data []byte, reg *profiles.Registry, addDir func(string) error) (*Config, error) {
	cfg := &Config{
		StateDir: DefaultStateDir,
		HTTP:     HTTP{Listen: DefaultListen},
		Defaults: Defaults{
			Timeout:    DefaultTimeout,
			Retries:    DefaultRetries,
			Backoff:    DefaultBackoff,
			MaxBackoff: DefaultMaxBackoff,
			StaleAfter: DefaultStaleAfter,
			Poll:       map[string]time.Duration{DefaultGroup: DefaultInterval},
		},
		File:     file,
		Profiles: reg,
	}
	decErrs := strictyaml.Decode(file, data, cfg)
	if cfg.Pos.Line == 0 {
		// Not even a mapping (syntax error, empty file): nothing to check.
		return nil, decErrs.Err()
	}
	c := &checker{cfg: cfg, reg: reg, dir: filepath.Dir(file), errs: decErrs}
	for _, e := range decErrs {
		// A duplicate key keeps the first value, which is still checked.
		if !strings.HasPrefix(e.Msg, "duplicate key ") {
			c.decoded = append(c.decoded, e.Path)
		}
	}
	c.loadProfiles(addDir)
	// Secrets first: the semantic checks look at their values (an SNMPv3
	// passphrase's length).
	var walkErrs strictyaml.Errors
	resolveSecrets(reflect.ValueOf(cfg), "", file, c.dir, &walkErrs, &cfg.Warnings)
	for _, e := range walkErrs {
		c.add(e)
	}
	c.check()
	cfg.Warnings.Sort()
	if len(c.errs) > 0 {
		return nil, c.errs.Err()
	}
	return cfg, nil
}

// checker collects semantic errors.
type checker struct {
	cfg  *Config
	reg  *profiles.Registry
	dir  string
	errs strictyaml.Errors
	// decoded are the paths the decoder already complained about: a value
	// that failed to decode is zero, and its semantic errors would only
	// repeat the complaint.
	decoded []string
	// union of every loaded profile's points and groups, for auto devices.
	allPoints, allGroups map[string]bool
	// profileErrs is set when a profile file failed to load, so an unknown
	// profile may be one of those.
	profileErrs bool
	// badConn are devices whose address or serial settings are wrong; the
	// shared-connection checks skip them rather than repeat the complaint.
	badConn map[*Device]bool
}

func (c *checker) add(e *strictyaml.Error) {
	for _, p := range c.decoded {
		if e.Path == p || strings.HasPrefix(e.Path, p+".") || strings.HasPrefix(e.Path, p+"[") {
			return
		}
	}
	c.errs = append(c.errs, e)
}

func (c *checker) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

func (c *checker) loadProfiles(addDir func(string) error) {
	cfg := c.cfg
	for i, d := range cfg.ProfileDirs {
		field := fmt.Sprintf("profile_dirs[%d]", i)
		if d == "" {
			c.add(cfg.Pos.AtPath(field, "profile directory must not be empty"))
			continue
		}
		dir := c.path(d)
		cfg.ProfileDirs[i] = dir
		st, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			c.add(cfg.Pos.AtPath(field, "profile directory %q does not exist", dir))
			continue
		case err != nil:
			c.add(cfg.Pos.AtPath(field, "profile directory: %v", err))
			continue
		case !st.IsDir():
			c.add(cfg.Pos.AtPath(field, "profile directory %q is not a directory", dir))
			continue
		}
		if err := addDir(dir); err != nil {
			var es strictyaml.Errors
			c.profileErrs = true
			if errors.As(err, &es) {
				c.errs = append(c.errs, es...)
			} else {
				c.add(cfg.Pos.AtPath(field, "%v", err))
			}
		}
	}
}

var (
	siteRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	idRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	groupRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$`)
	labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	digitRE = regexp.MustCompile(`\d`)
)

func (c *checker) check() {
	cfg := c.cfg
	p := cfg.Pos
	if cfg.Site != "" && !siteRE.MatchString(cfg.Site) {
		c.add(p.At("site", "site %q must be lower-case letters, digits and '-', starting with a letter or digit", cfg.Site))
	}
	if cfg.Gateway != "" && !idRE.MatchString(cfg.Gateway) {
		c.add(p.At("gateway", "gateway %q must be lower-case letters, digits, '_' and '-', starting with a letter or digit", cfg.Gateway))
	}
	c.notEmpty(p, "site", cfg.Site)
	c.notEmpty(p, "gateway", cfg.Gateway)
	if cfg.StateDir == "" {
		c.add(p.At("state_dir", "state_dir must not be empty"))
	} else {
		cfg.StateDir = c.path(cfg.StateDir)
	}
	c.http()
	c.defaults()
	if len(cfg.Devices) == 0 {
		c.add(p.At("devices", "no devices configured"))
	}
	for i := range cfg.Devices {
		cfg.Devices[i].defaults = &cfg.Defaults
		c.device(&cfg.Devices[i])
	}
	c.uniqueIDs()
	c.sharedConnections()
	c.publishing()
	c.traps()
	c.rules()
	c.alerting()
	c.loadshed()
}

// warn records a problem that does not stop loading.
func (c *checker) warn(e *strictyaml.Error) { c.cfg.Warnings = append(c.cfg.Warnings, e) }

// subAt locates field of a sub-mapping, falling back to the parent's key when
// the sub-mapping was absent from the file (its Pos is then zero).
func subAt(parent, p strictyaml.Pos, key, field, format string, args ...any) *strictyaml.Error {
	if p.Line == 0 {
		return parent.AtPath(key+"."+field, format, args...)
	}
	return p.AtPath(field, format, args...)
}

func (c *checker) notEmpty(p strictyaml.Pos, field, v string) {
	if v == "" && p.Has(field) {
		c.add(p.At(field, "%s must not be empty", field))
	}
}

func (c *checker) defaults() {
	top, d := c.cfg.Pos, &c.cfg.Defaults
	at := func(field, format string, args ...any) *strictyaml.Error {
		return subAt(top, d.Pos, "defaults", field, format, args...)
	}
	if msg := checkTimeout(d.Timeout); msg != "" {
		c.add(at("timeout", "%s", msg))
	}
	if msg := checkRetries(d.Retries); msg != "" {
		c.add(at("retries", "%s", msg))
	}
	backoffOK := true
	for _, b := range []struct {
		field string
		v     time.Duration
	}{{"backoff", d.Backoff}, {"max_backoff", d.MaxBackoff}} {
		if b.v < time.Millisecond || b.v > time.Hour {
			c.add(at(b.field, "%s must be between 1ms and 1h, got %s", b.field, b.v))
			backoffOK = false
		}
	}
	if backoffOK && d.MaxBackoff < d.Backoff {
		c.add(at("max_backoff", "max_backoff %s is below backoff %s", d.MaxBackoff, d.Backoff))
	}
	if d.StaleAfter < 2 {
		c.add(at("stale_after", "stale_after must be at least 2 intervals, got %d", d.StaleAfter))
	}
	for _, g := range sortedKeys(d.Poll) {
		if !groupRE.MatchString(g) {
			c.add(at("poll."+g, "poll group %q must be a lower-case word", g))
		}
		if msg := checkInterval(d.Poll[g]); msg != "" {
			c.add(at("poll."+g, "%s", msg))
		}
	}
}

func checkTimeout(t time.Duration) string {
	if t < time.Millisecond || t > time.Minute {
		return fmt.Sprintf("timeout must be between 1ms and 1m, got %s", t)
	}
	return ""
}

func checkRetries(n int) string {
	if n < 0 || n > 10 {
		return fmt.Sprintf("retries must be 0..10, got %d", n)
	}
	return ""
}

func checkInterval(iv time.Duration) string {
	switch {
	case iv < MinInterval:
		return fmt.Sprintf("interval %s is below the minimum of 50ms", iv)
	case iv > MaxInterval:
		return fmt.Sprintf("interval %s is above the maximum of 1h", iv)
	}
	return ""
}

// checkHostPort returns what is wrong with a host:port, or "". A listen
// address may leave the host out and use port 0; a device address may not.
func checkHostPort(addr string, device bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return ae.Err + ", want host:port"
		}
		return err.Error()
	}
	if device && host == "" {
		return "missing host"
	}
	n, err := strconv.Atoi(port)
	lo := 0
	if device {
		lo = 1
	}
	if err != nil || n < lo || n > 65535 {
		return fmt.Sprintf("port must be a number %d..65535", lo)
	}
	return ""
}

func (c *checker) device(d *Device) {
	p := d.Pos
	c.notEmpty(p, "id", d.ID)
	c.notEmpty(p, "profile", d.Profile)
	c.notEmpty(p, "transport", d.Transport)
	if d.ID != "" && !idRE.MatchString(d.ID) {
		c.add(p.At("id", "device id %q must be lower-case letters, digits, '_' and '-', starting with a letter or digit", d.ID))
	}
	c.profile(d)
	for _, k := range sortedKeys(d.Labels) {
		if !labelRE.MatchString(k) {
			c.add(p.AtPath("labels."+k, "label name %q must be letters, digits and '_', not starting with a digit", k))
		}
	}
	c.transport(d)
	c.unit(d)
	if d.TimeoutOverride != nil {
		if msg := checkTimeout(*d.TimeoutOverride); msg != "" {
			c.add(p.At("timeout", "%s", msg))
		}
	}
	if d.RetriesOverride != nil {
		if msg := checkRetries(*d.RetriesOverride); msg != "" {
			c.add(p.At("retries", "%s", msg))
		}
	}
	c.pollAndPoints(d)
}

func (c *checker) profile(d *Device) {
	p := d.Pos
	switch d.Profile {
	case "":
		return
	case AutoProfile:
		if d.Firmware != "" {
			c.add(p.At("firmware", "firmware cannot be pinned with profile auto, which identifies it"))
		}
		for _, prof := range c.reg.List() {
			if prof.Identify != nil && (d.Transport == "" || prof.Protocol == Protocol(d.Transport)) {
				return
			}
		}
		c.add(p.At("profile", "profile auto needs a %s profile with an identify section, and no loaded profile has one", Protocol(d.Transport)))
		return
	}
	prof, ok := c.reg.Get(d.Profile)
	if !ok {
		var models []string
		for _, prof := range c.reg.List() {
			models = append(models, prof.Model)
		}
		hint := strictyaml.DidYouMean(d.Profile, models)
		if hint == "" && c.profileErrs {
			hint = " (profile files with errors were not loaded)"
		}
		c.add(p.At("profile", "unknown profile %q%s", d.Profile, hint))
	} else {
		d.profile = prof
		if want := Protocol(d.Transport); d.Transport != "" && prof.Protocol != want {
			c.add(p.At("profile", "profile %q speaks %s, but transport %s speaks %s", d.Profile, prof.Protocol, d.Transport, want))
		}
	}
	if d.Firmware != "" && !digitRE.MatchString(d.Firmware) {
		c.add(p.At("firmware", "firmware %q has no version number such as 09.8", d.Firmware))
	}
}

// transport checks the transport's own fields and refuses the other's, and
// fills in serial defaults.
func (c *checker) transport(d *Device) {
	p := d.Pos
	n := len(c.errs)
	defer func() {
		if len(c.errs) > n {
			if c.badConn == nil {
				c.badConn = map[*Device]bool{}
			}
			c.badConn[d] = true
		}
	}()
	switch d.Transport {
	case "":
		return
	case TransportTCP:
		if !p.Has("address") {
			c.add(p.At("address", "modbus-tcp needs address: host:port"))
		} else if msg := checkHostPort(d.Address, true); msg != "" {
			c.add(p.At("address", "address %q: %s", d.Address, msg))
		}
		if p.Has("serial") {
			c.add(p.At("serial", "serial applies only to modbus-rtu, modbus-tcp uses address"))
		}
		if p.Has("snmp") {
			c.add(p.At("snmp", "snmp applies only to transport snmp"))
		}
	case TransportSNMP:
		c.snmp(d)
	case TransportRTU:
		if p.Has("snmp") {
			c.add(p.At("snmp", "snmp applies only to transport snmp"))
		}
		if p.Has("address") {
			c.add(p.At("address", "address applies only to modbus-tcp, modbus-rtu uses serial.port"))
		}
		if d.Serial == nil {
			c.add(p.At("serial", "modbus-rtu needs serial: {port: ...}"))
		} else {
			c.serial(d.Serial)
		}
	default:
		c.add(p.At("transport", "unknown transport %q%s", d.Transport,
			strictyaml.DidYouMeanOr(d.Transport, []string{TransportTCP, TransportRTU, TransportSNMP})))
	}
}

func (c *checker) unit(d *Device) {
	if !d.Pos.Has("unit") {
		d.Unit = DefaultUnit
	}
	switch {
	case d.Transport == TransportTCP && (d.Unit < 0 || d.Unit > 255):
		c.add(d.Pos.At("unit", "unit must be 0..255, got %d", d.Unit))
	case d.Transport == TransportRTU && (d.Unit < 1 || d.Unit > 247):
		c.add(d.Pos.At("unit", "unit must be 1..247 on a serial line, got %d", d.Unit))
	}
}

func (c *checker) serial(s *Serial) {
	p := s.Pos
	c.notEmpty(p, "port", s.Port)
	if !p.Has("baud") {
		s.Baud = DefaultBaud
	} else if !slices.Contains(BaudRates, s.Baud) {
		c.add(p.At("baud", "baud %d is not a standard rate (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)", s.Baud))
	}
	if !p.Has("data_bits") {
		s.DataBits = DefaultDataBits
	} else if s.DataBits != 7 && s.DataBits != 8 {
		c.add(p.At("data_bits", "data_bits must be 7 or 8, got %d", s.DataBits))
	}
	if !p.Has("parity") {
		s.Parity = DefaultParity
	} else if u := strings.ToUpper(s.Parity); u == "N" || u == "E" || u == "O" {
		s.Parity = u
	} else {
		c.add(p.At("parity", "parity must be N, E or O, got %q", s.Parity))
	}
	if !p.Has("stop_bits") {
		s.StopBits = DefaultStopBits
	} else if s.StopBits != 1 && s.StopBits != 2 {
		c.add(p.At("stop_bits", "stop_bits must be 1 or 2, got %d", s.StopBits))
	}
}

func (c *checker) pollAndPoints(d *Device) {
	p := d.Pos
	var groups, points map[string]bool
	noGroup, noPoint := "profile %[1]q has no poll group %[2]q", "profile %[1]q has no point %[2]q"
	switch {
	case d.profile != nil:
		groups, points = d.profile.GroupNames(), d.profile.PointNames()
	case d.IsAuto():
		// The model is known only at connect time; names no loaded profile
		// has are typos all the same.
		c.unions()
		groups, points = c.allGroups, c.allPoints
		noGroup, noPoint = "no loaded profile has a poll group %[2]q", "no loaded profile has a point %[2]q"
	}
	for _, g := range sortedKeys(d.Poll) {
		field := "poll." + g
		if msg := checkInterval(d.Poll[g]); msg != "" {
			c.add(p.AtPath(field, "%s", msg))
		}
		if groups != nil && g != DefaultGroup && !groups[g] {
			c.add(p.AtPath(field, noGroup+" (groups: %[3]s)", d.Profile, g, strings.Join(sortedKeys(groups), ", ")))
		}
	}
	seen := map[string]bool{}
	for i, name := range d.Points {
		field := fmt.Sprintf("points[%d]", i)
		if seen[name] {
			c.add(p.AtPath(field, "point %q is listed twice", name))
			continue
		}
		seen[name] = true
		if points != nil && !points[name] {
			c.add(p.AtPath(field, noPoint+"%[3]s", d.Profile, name, strictyaml.DidYouMean(name, sortedKeys(points))))
		}
	}
}

func (c *checker) unions() {
	if c.allPoints != nil {
		return
	}
	c.allPoints, c.allGroups = map[string]bool{}, map[string]bool{DefaultGroup: true}
	for _, prof := range c.reg.List() {
		for n := range prof.PointNames() {
			c.allPoints[n] = true
		}
		for g := range prof.GroupNames() {
			c.allGroups[g] = true
		}
	}
}

func (c *checker) uniqueIDs() {
	first := map[string]*Device{}
	for i := range c.cfg.Devices {
		d := &c.cfg.Devices[i]
		if d.ID == "" {
			continue
		}
		if f, dup := first[d.ID]; dup {
			c.add(d.Pos.At("id", "duplicate device id %q (first at line %d)", d.ID, f.Pos.At("id", "").Line))
			continue
		}
		first[d.ID] = d
	}
}

// sharedConnections checks the devices that share a connection: behind a
// TCP-to-RTU gateway or on one serial port, each needs its own unit id, and
// a serial port has one set of line settings.
func (c *checker) sharedConnections() {
	type conn struct {
		first *Device
		units map[int]*Device
	}
	conns := map[string]*conn{}
	for i := range c.cfg.Devices {
		d := &c.cfg.Devices[i]
		key := d.ConnKey()
		// SNMP devices each get a session of their own (gosnmp #217/#417):
		// nothing is shared, whatever the address.
		if d.Disabled || key == "" || c.badConn[d] || d.Transport == TransportSNMP {
			continue
		}
		cn, ok := conns[key]
		if !ok {
			conns[key] = &conn{first: d, units: map[int]*Device{d.Unit: d}}
			continue
		}
		where := fmt.Sprintf("the shared connection %s", d.Address)
		if d.Transport == TransportRTU {
			where = fmt.Sprintf("the shared port %s", d.Serial.Port)
		}
		if o, dup := cn.units[d.Unit]; dup {
			c.add(d.Pos.At("unit", "unit %d is also used by device %q (line %d) on %s", d.Unit, o.ID, o.Pos.Line, where))
		} else {
			cn.units[d.Unit] = d
		}
		if d.Transport != TransportRTU {
			continue
		}
		f, s, fs := cn.first, d.Serial, cn.first.Serial
		for _, x := range []struct {
			field     string
			this, was any
		}{
			{"baud", s.Baud, fs.Baud},
			{"data_bits", s.DataBits, fs.DataBits},
			{"parity", s.Parity, fs.Parity},
			{"stop_bits", s.StopBits, fs.StopBits},
		} {
			if x.this != x.was {
				c.add(s.Pos.At(x.field, "%s %v differs from %v of device %q (line %d) on %s", x.field, x.this, x.was, f.ID, f.Pos.Line, where))
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

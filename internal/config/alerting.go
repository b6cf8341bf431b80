package config

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/facgw/facgw/internal/strictyaml"
	"github.com/facgw/facgw/rules"
)

// Rules chooses the alert rules the gateway evaluates.
type Rules struct {
	// Packs are shipped rule packs to load (fire, power, cooling, network,
	// data-quality). Left out: every shipped pack; an empty list: none.
	Packs *[]string `yaml:"packs"`
	// Files are extra rule files (globs allowed), relative to the config
	// file's directory.
	Files []string `yaml:"files"`
	// Disable lists rule ids ("pack/name") not to evaluate.
	Disable []string       `yaml:"disable"`
	Pos     strictyaml.Pos `json:"-"`
}

// Alerting configures how alerts leave the gateway. Every alert event goes
// out on every path, each with its own outbox and sender, so losing one
// path never silences a fire alarm.
type Alerting struct {
	// MQTT delivers alerts through the brokers of the mqtt section (path
	// A): retained per-episode topics and an event stream. Default true
	// when an mqtt section exists.
	MQTT *bool `yaml:"mqtt"`
	// Alertmanager, SNMP and Webhook are the independent paths.
	Alertmanager []Alertmanager `yaml:"alertmanager"`
	SNMP         []SNMPNotify   `yaml:"snmp"`
	Webhook      []Webhook      `yaml:"webhook"`
	// DegradedAfter is how long a path may be down (or hold undelivered
	// alerts) before a "delivery path degraded" alert goes out on the
	// others. Default 60s.
	DegradedAfter time.Duration `yaml:"degraded_after"`
	// MaxSilence bounds a silence's duration. Default 7 days.
	MaxSilence time.Duration  `yaml:"max_silence"`
	Pos        strictyaml.Pos `json:"-"`
}

// Alertmanager is one Prometheus Alertmanager cluster (API v2).
type Alertmanager struct {
	// Name identifies the path in health, metrics and its outbox directory.
	Name string `yaml:"name" check:"required"`
	// URLs are the members of one Alertmanager HA cluster; each alert is
	// posted to every one, and delivered once at least one accepted it.
	URLs        []string      `yaml:"urls" check:"required"`
	Timeout     time.Duration `yaml:"timeout"`
	ResendEvery time.Duration `yaml:"resend_every"`
	BearerToken Secret        `yaml:"bearer_token"`
	Username    string        `yaml:"username"`
	Password    Secret        `yaml:"password"`
	CAFile      string        `yaml:"ca_file"`
	// GeneratorURL is the link Alertmanager shows back to the gateway.
	GeneratorURL string         `yaml:"generator_url"`
	Pos          strictyaml.Pos `json:"-"`
}

// SNMPNotify is one receiver of facgw's SNMP notifications (FACGW-MIB).
type SNMPNotify struct {
	Name string `yaml:"name" check:"required"`
	// Address is the receiver, host:port (usually port 162).
	Address string `yaml:"address" check:"required"`
	// Inform asks for an acknowledgement, retried until it comes; a trap
	// counts as delivered once sent. Default true.
	Inform *bool `yaml:"inform"`
	// Version is "2c" or "3"; the credentials are as for SNMP devices.
	Version       string `yaml:"version" check:"required"`
	Community     Secret `yaml:"community"`
	User          string `yaml:"user"`
	SecurityLevel string `yaml:"security_level"`
	AuthProtocol  string `yaml:"auth_protocol"`
	AuthPassword  Secret `yaml:"auth_password"`
	PrivProtocol  string `yaml:"priv_protocol"`
	PrivPassword  Secret `yaml:"priv_password"`
	// EngineID (hex) is the authoritative engine of v3 traps (default: one
	// derived from the gateway name, stable across restarts); the
	// receiver knows the user under it (net-snmp: createUser -e).
	EngineID string        `yaml:"engine_id"`
	Timeout  time.Duration `yaml:"timeout"`
	Retries  int           `yaml:"retries"`
	// EnterpriseOID moves facgw's notifications under a site's own
	// enterprise number (default: the FACGW-MIB's).
	EnterpriseOID string         `yaml:"enterprise_oid"`
	Pos           strictyaml.Pos `json:"-"`
}

// Webhook posts alert events as signed JSON.
type Webhook struct {
	Name string `yaml:"name" check:"required"`
	URL  string `yaml:"url" check:"required"`
	// Secret keys the HMAC-SHA256 signature of each request.
	Secret  Secret            `yaml:"secret" check:"required"`
	Timeout time.Duration     `yaml:"timeout"`
	Headers map[string]string `yaml:"headers"`
	CAFile  string            `yaml:"ca_file"`
	Pos     strictyaml.Pos    `json:"-"`
}

// Defaults of the alerting section.
const (
	DefaultDegradedAfter = 60 * time.Second
	DefaultMaxSilence    = 7 * 24 * time.Hour
	DefaultPathTimeout   = 10 * time.Second
	DefaultResendEvery   = time.Minute
	DefaultSNMPTimeout   = 3 * time.Second
)

// ShippedPacks are the rule packs shipped in rules/packs.
var ShippedPacks = []string{"fire", "power", "cooling", "network", "data-quality"}

// MQTTAlerts reports whether alerts go out on the MQTT brokers.
func (a *Alerting) MQTTAlerts(cfg *Config) bool {
	if cfg.MQTT == nil {
		return false
	}
	return a == nil || a.MQTT == nil || *a.MQTT
}

// PathCount is the number of configured alert delivery paths.
func (cfg *Config) PathCount() int {
	n := 0
	a := cfg.Alerting
	if a.MQTTAlerts(cfg) {
		n++
	}
	if a != nil {
		n += len(a.Alertmanager) + len(a.SNMP) + len(a.Webhook)
	}
	return n
}

// RulePacks returns the shipped packs to load.
func (r *Rules) RulePacks() []string {
	if r == nil || r.Packs == nil {
		return ShippedPacks
	}
	return *r.Packs
}

// rules checks the rules section, then loads and compiles the rule set it
// names (shipped packs, extra files, disabled rules) and checks its point
// names against the profiles, so facgw check finds a broken rule file.
func (c *checker) rules() {
	r := c.cfg.Rules
	if r == nil {
		r = &Rules{}
	}
	ok := c.rulesSection(r)
	if !ok {
		return
	}
	shipped, err := rules.Shipped()
	if err != nil {
		c.addAll(err)
		return
	}
	var packs []*rules.Pack
	for _, p := range shipped.Packs() {
		if slices.Contains(r.RulePacks(), p.Name) {
			packs = append(packs, p)
		}
	}
	rs, err := rules.NewRuleSet(packs...)
	if err != nil {
		c.addAll(err)
		return
	}
	if len(r.Files) > 0 {
		var files []string
		for _, f := range r.Files {
			m, _ := filepath.Glob(f)
			files = append(files, m...)
		}
		extra, err := rules.LoadFiles(files...)
		if err != nil {
			c.addAll(err)
			return
		}
		// The site's own rules are checked against the profiles here; the
		// shipped packs are checked against the shipped profiles by their
		// own tests (and a test registry need not hold those).
		if err := rules.Check(extra, c.reg); err != nil {
			c.addAll(err)
			return
		}
		if rs, err = rs.Merge(extra); err != nil {
			c.addAll(err)
			return
		}
	}
	if len(r.Disable) > 0 {
		if err := rs.Disable(r.Disable...); err != nil {
			c.add(r.Pos.At("disable", "%s", strings.TrimPrefix(err.Error(), "rules: disable: ")))
			return
		}
	}
	c.cfg.RuleSet = rs
	c.groupLabels(rs)
}

// groupLabels warns about devices a grouped rule selects, and that have a
// point it reads, that lack one of its group_by labels: all such devices form one group with empty values,
// so, for instance, detectors of two unlabelled rooms vote together for a
// confirmed fire. One such device alone is harmless; two or more are
// warned about, each located at its labels. Devices whose profile is not
// known yet (profile: auto) are not judged.
func (c *checker) groupLabels(rs *rules.RuleSet) {
	type miss struct {
		dev   *Device
		rules []string
	}
	byDev := map[string]*miss{}
	var order []string
	for _, r := range rs.Rules() {
		if len(r.GroupBy) == 0 {
			continue
		}
		var lacking []*Device
		for i := range c.cfg.Devices {
			d := &c.cfg.Devices[i]
			p := d.ProfileDef()
			if d.Disabled || p == nil {
				continue
			}
			rd := rules.Device{ID: d.ID, Profile: d.Profile, Class: p.Class, Labels: d.Labels}
			if !r.Select.Matches(&rd) {
				continue
			}
			// A device with none of the rule's points casts no vote.
			names := p.PointNames()
			if !slices.ContainsFunc(r.Points(), func(n string) bool { return names[n] }) {
				continue
			}
			for _, l := range r.GroupBy {
				if _, ok := d.Labels[l]; !ok {
					lacking = append(lacking, d)
					break
				}
			}
		}
		if len(lacking) < 2 {
			continue
		}
		for _, d := range lacking {
			m := byDev[d.ID]
			if m == nil {
				m = &miss{dev: d}
				byDev[d.ID] = m
				order = append(order, d.ID)
			}
			m.rules = append(m.rules, r.ID+" (group_by: ["+strings.Join(r.GroupBy, ", ")+"])")
		}
	}
	for _, id := range order {
		m := byDev[id]
		var others []string
		for _, o := range order {
			if o != id {
				others = append(others, o)
			}
		}
		c.warn(m.dev.Pos.At("labels", "device %s lacks a label that grouped rules group by: %s; it is grouped with every other such device (%s), so they vote together as if in one room: give it its label",
			id, strings.Join(m.rules, ", "), strings.Join(others, ", ")))
	}
}

// addAll adds located errors as they are, anything else as one message.
func (c *checker) addAll(err error) {
	var es strictyaml.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			c.add(e)
		}
		return
	}
	c.add(&strictyaml.Error{File: c.cfg.File, Msg: err.Error()})
}

// rulesSection checks the section's own fields; false when the rule set
// cannot be built from them.
func (c *checker) rulesSection(r *Rules) bool {
	n := len(c.errs)
	if r.Packs != nil {
		for i, p := range *r.Packs {
			if !slices.Contains(ShippedPacks, p) {
				c.add(r.Pos.AtPath("packs["+strconv.Itoa(i)+"]", "unknown rule pack %q%s", p, strictyaml.DidYouMeanOr(p, ShippedPacks)))
			}
		}
	}
	for i, f := range r.Files {
		abs := c.path(f)
		matches, err := filepath.Glob(abs)
		switch {
		case err != nil:
			c.add(r.Pos.AtPath("files["+strconv.Itoa(i)+"]", "bad pattern %q: %v", f, err))
		case len(matches) == 0 && strings.ContainsAny(f, "*?["):
			// A pattern may match nothing yet (an empty rules directory).
			c.warn(r.Pos.AtPath("files["+strconv.Itoa(i)+"]", "no rule file matches %q", abs))
		case len(matches) == 0:
			c.add(r.Pos.AtPath("files["+strconv.Itoa(i)+"]", "rule file %q does not exist", abs))
		}
		r.Files[i] = abs
	}
	return len(c.errs) == n
}

func (c *checker) alerting() {
	cfg := c.cfg
	a := cfg.Alerting
	if a == nil {
		if cfg.PathCount() < 2 {
			c.warn(cfg.Pos.At("alerting", "%s: add an alerting section (alertmanager, snmp or webhook) so alerts have two independent paths", pathsWord(cfg.PathCount())))
		}
		return
	}
	if a.MQTT != nil && *a.MQTT && cfg.MQTT == nil {
		c.add(a.Pos.At("mqtt", "alerts over MQTT need an mqtt section with brokers"))
	}
	if a.DegradedAfter == 0 {
		a.DegradedAfter = DefaultDegradedAfter
	} else if a.DegradedAfter < time.Second || a.DegradedAfter > time.Hour {
		c.add(a.Pos.At("degraded_after", "degraded_after must be 1s..1h, got %s", a.DegradedAfter))
	}
	if a.MaxSilence == 0 {
		a.MaxSilence = DefaultMaxSilence
	} else if a.MaxSilence < time.Minute || a.MaxSilence > 90*24*time.Hour {
		c.add(a.Pos.At("max_silence", "max_silence must be 1m..2160h (90 days), got %s", a.MaxSilence))
	}
	names := map[string]int{}
	name := func(p strictyaml.Pos, n string) {
		if n == "" {
			return
		}
		if !brokerNameRE.MatchString(n) {
			c.add(p.At("name", "path name %q must be lower-case letters, digits, '_' and '-'", n))
		} else if first, dup := names[n]; dup {
			c.add(p.At("name", "duplicate alert path name %q (first at line %d)", n, first))
		} else {
			names[n] = p.Line
		}
	}
	if a.MQTTAlerts(cfg) {
		names["mqtt"] = a.Pos.Line
	}
	timeout := func(p strictyaml.Pos, d *time.Duration) {
		if *d == 0 {
			*d = DefaultPathTimeout
		} else if *d < 100*time.Millisecond || *d > 2*time.Minute {
			c.add(p.At("timeout", "timeout must be 100ms..2m, got %s", *d))
		}
	}
	file := func(p strictyaml.Pos, field string, f *string) {
		if *f == "" {
			return
		}
		*f = c.path(*f)
		if _, err := os.Stat(*f); err != nil {
			c.add(p.At(field, "%s: %v", field, err))
		}
	}
	for i := range a.Alertmanager {
		am := &a.Alertmanager[i]
		name(am.Pos, am.Name)
		for j, u := range am.URLs {
			if msg := checkHTTPURL(u); msg != "" {
				c.add(am.Pos.AtPath("urls["+strconv.Itoa(j)+"]", "alertmanager url %q: %s", u, msg))
			}
		}
		if len(am.URLs) == 0 && am.Pos.Has("urls") {
			c.add(am.Pos.At("urls", "no alertmanager urls"))
		}
		timeout(am.Pos, &am.Timeout)
		if am.ResendEvery == 0 {
			am.ResendEvery = DefaultResendEvery
		} else if am.ResendEvery < time.Second || am.ResendEvery > 30*time.Minute {
			c.add(am.Pos.At("resend_every", "resend_every must be 1s..30m, got %s", am.ResendEvery))
		}
		if am.BearerToken.IsSet() && (am.Username != "" || am.Password.IsSet()) {
			c.add(am.Pos.At("bearer_token", "use either bearer_token or username/password, not both"))
		}
		if am.Password.IsSet() != (am.Username != "") {
			c.add(am.Pos.At("username", "basic auth needs both username and password"))
		}
		file(am.Pos, "ca_file", &am.CAFile)
	}
	for i := range a.SNMP {
		s := &a.SNMP[i]
		p := s.Pos
		name(p, s.Name)
		if msg := checkHostPort(s.Address, true); s.Address != "" && msg != "" {
			c.add(p.At("address", "address %q: %s", s.Address, msg))
		}
		if s.Version == "1" {
			c.add(p.At("version", "SNMP v1 traps cannot carry facgw's notifications: use 2c or 3"))
		} else {
			cred := &SNMP{Version: s.Version, Community: s.Community, User: s.User, SecurityLevel: s.SecurityLevel,
				AuthProtocol: s.AuthProtocol, AuthPassword: s.AuthPassword, PrivProtocol: s.PrivProtocol, PrivPassword: s.PrivPassword, Pos: p}
			c.snmpCredentials(cred)
			s.SecurityLevel, s.AuthProtocol, s.PrivProtocol = cred.SecurityLevel, cred.AuthProtocol, cred.PrivProtocol
		}
		if s.Inform == nil {
			t := true
			s.Inform = &t
		}
		if s.EngineID != "" {
			if s.Version != "3" || *s.Inform {
				c.add(p.At("engine_id", "engine_id applies only to SNMP v3 traps (inform: false): an inform goes to the receiver's engine"))
			} else if !isHex(s.EngineID) || len(s.EngineID) < 10 || len(s.EngineID) > 64 {
				c.add(p.At("engine_id", "engine_id must be 5..32 octets in hex, got %q", s.EngineID))
			}
		}
		if s.Timeout == 0 {
			// Per attempt: an inform is repeated Retries times within one
			// send, and a v3 inform first discovers the engine.
			s.Timeout = DefaultSNMPTimeout
		}
		timeout(p, &s.Timeout)
		if s.Retries < 0 || s.Retries > 10 {
			c.add(p.At("retries", "retries must be 0..10, got %d", s.Retries))
		}
		if s.EnterpriseOID != "" && !oidRE.MatchString(s.EnterpriseOID) {
			c.add(p.At("enterprise_oid", "enterprise_oid %q is not a numeric OID such as 1.3.6.1.4.1.32473", s.EnterpriseOID))
		}
	}
	for i := range a.Webhook {
		w := &a.Webhook[i]
		name(w.Pos, w.Name)
		if msg := checkHTTPURL(w.URL); w.URL != "" && msg != "" {
			c.add(w.Pos.At("url", "webhook url %q: %s", w.URL, msg))
		}
		if w.Secret.IsSet() && len(w.Secret.Reveal()) < 16 {
			c.add(w.Pos.At("secret", "webhook secret must be at least 16 characters"))
		}
		timeout(w.Pos, &w.Timeout)
		file(w.Pos, "ca_file", &w.CAFile)
	}
	if cfg.PathCount() < 2 {
		c.warn(a.Pos.At("", "%s: alerts need two independent paths (mqtt and one of alertmanager, snmp, webhook)", pathsWord(cfg.PathCount())))
	}
}

var oidRE = regexp.MustCompile(`^1(\.(0|[1-9][0-9]*))+$`)

func pathsWord(n int) string {
	if n == 0 {
		return "no alert delivery path configured"
	}
	return "only one alert delivery path configured"
}

func checkHTTPURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return err.Error()
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "want http:// or https://"
	}
	if u.Host == "" {
		return "no host"
	}
	return ""
}

func isHex(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	for _, r := range strings.ToLower(s) {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

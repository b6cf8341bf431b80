package snmp

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/facgw/facgw/internal/strictyaml"
)

// urlParams are the query parameters ParseURL knows.
var urlParams = []string{"version", "community", "auth", "authpass", "priv", "privpass", "level", "context", "timeout", "retries", "max_varbinds", "max_repetitions"}

// secretParams are never repeated in error messages.
var secretParams = []string{"community", "authpass", "privpass"}

// ParseURL parses a device URL, as `facgw probe` takes it, into a
// DeviceConfig (no profile set):
//
//	snmp://host[:port][?version=1|2c&community=NAME]
//	snmp://user@host[:port]?version=3&auth=SHA-256&authpass=P&priv=AES&privpass=Q&level=authPriv
//
// The port defaults to 161, version to 2c (3 when a user is given),
// community to public. Version 3 takes auth (MD5, SHA, SHA-224, SHA-256,
// SHA-384, SHA-512), priv (DES, AES, AES-192, AES-256, AES-192C, AES-256C),
// their passphrases, level (noAuthNoPriv, authNoPriv, authPriv; derived
// from the passphrases when absent) and context. Any version takes timeout
// (default 1s), retries (default 1), max_varbinds and max_repetitions.
// Unknown parameters are errors. Error messages never repeat the community
// or the passphrases.
func ParseURL(raw string) (DeviceConfig, error) {
	var cfg DeviceConfig
	u, err := url.Parse(raw)
	if err != nil {
		return cfg, fmt.Errorf("device url: %w", redactErr(err, raw))
	}
	shown := redact(u)
	fail := func(format string, args ...any) (DeviceConfig, error) {
		return DeviceConfig{}, fmt.Errorf("device url %q: %s", shown, fmt.Sprintf(format, args...))
	}
	if u.Scheme != "snmp" {
		return fail("scheme must be snmp")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" || (u.Path != "" && u.Path != "/") {
		return fail("want snmp://[user@]host[:port][?parameters]")
	}
	cfg.Target, cfg.ID, cfg.Port = host, host, DefaultPort
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return fail("port %q must be 1..65535", port)
		}
		cfg.Port = uint16(n)
	}
	q := u.Query()
	var unknown []string
	for k := range q {
		if !slices.Contains(urlParams, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fail("unknown parameter %q%s", unknown[0], strictyaml.DidYouMeanOr(unknown[0], urlParams))
	}
	user := ""
	if u.User != nil {
		user = u.User.Username()
		if _, hasPass := u.User.Password(); hasPass {
			return fail("give v3 passphrases as authpass= and privpass=, not in the user part")
		}
	}
	cfg.Version = q.Get("version")
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
		if user != "" {
			cfg.Version = "3"
		}
	}
	switch cfg.Version {
	case "1", "2c":
		if user != "" {
			return fail("a user applies to version 3 only")
		}
		for _, k := range []string{"auth", "authpass", "priv", "privpass", "level", "context"} {
			if q.Has(k) {
				return fail("%s applies to version 3 only", k)
			}
		}
		cfg.Community = q.Get("community")
		if cfg.Community == "" {
			cfg.Community = DefaultCommunity
		}
	case "3":
		if q.Has("community") {
			return fail("community applies to versions 1 and 2c; version 3 uses a user")
		}
		cfg.V3 = V3Config{User: user, AuthProto: q.Get("auth"), AuthPass: q.Get("authpass"),
			PrivProto: q.Get("priv"), PrivPass: q.Get("privpass"), SecurityLevel: q.Get("level"), ContextName: q.Get("context")}
		if _, _, err := usmParams(cfg.V3); err != nil {
			return fail("%s", strings.TrimPrefix(err.Error(), "snmp: "))
		}
	default:
		return fail("version %q must be 1, 2c or 3", cfg.Version)
	}
	cfg.Timeout = DefaultTimeout
	if s := q.Get("timeout"); s != "" {
		if cfg.Timeout, err = time.ParseDuration(s); err != nil || cfg.Timeout <= 0 {
			return fail("timeout=%q is not a duration such as 500ms", s)
		}
	}
	num := func(key string, def, lo, hi int) (int, error) {
		s := q.Get(key)
		if s == "" {
			return def, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%s=%q must be an integer %d..%d", key, s, lo, hi)
		}
		return n, nil
	}
	if cfg.Retries, err = num("retries", DefaultRetries, 0, 10); err != nil {
		return fail("%v", err)
	}
	if cfg.MaxVarbinds, err = num("max_varbinds", DefaultMaxVarbinds, 1, 1000); err != nil {
		return fail("%v", err)
	}
	if cfg.MaxRepetitions, err = num("max_repetitions", DefaultMaxRepetitions, 1, 255); err != nil {
		return fail("%v", err)
	}
	return cfg.withDefaults(), nil
}

// redact returns the URL as error messages show it: the values of known,
// non-secret parameters as given, every other value (secrets, and unknown
// parameters, which may be misspelt secrets) as <secret>, a password in the
// user part as xxxxx.
func redact(u *url.URL) string {
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if strings.Contains(u.Path, "=") || u.Opaque != "" {
		c.Path, c.Opaque = "", ""
	}
	if u.User != nil {
		c.User = url.User(u.User.Username())
		if _, ok := u.User.Password(); ok {
			c.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, v := range q[k] {
			if !slices.Contains(urlParams, k) || slices.Contains(secretParams, k) {
				v = "<secret>"
			} else {
				v = url.QueryEscape(v)
			}
			parts = append(parts, url.QueryEscape(k)+"="+v)
		}
	}
	c.RawQuery = strings.Join(parts, "&")
	return c.String()
}

// redactErr drops the URL from a url.Parse error, which may hold secrets.
func redactErr(err error, raw string) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s", ue.Err)
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), raw, "<url>"))
}

// Address returns the agent's host:port.
func (c DeviceConfig) Address() string {
	return net.JoinHostPort(c.Target, strconv.Itoa(int(c.Port)))
}

package config

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/facgw/facgw/internal/strictyaml"
)

// MQTT configures publishing to redundant brokers. Every broker gets every
// message (active-active), through its own connection and its own outbox.
type MQTT struct {
	// Prefix roots every topic; default "facgw/<site>".
	Prefix string `yaml:"prefix"`
	// Brokers are published to at once; at least one.
	Brokers []Broker `yaml:"brokers" check:"required"`
	// KeepAlive is the MQTT keep-alive interval; default 30s.
	KeepAlive time.Duration `yaml:"keepalive"`
	// StateEvery is the least time between two retained state messages
	// of a device (telemetry is sent for every poll regardless; a poll
	// with a point that is not good sends the state at once); default 5s,
	// "0s" sends the state after every poll.
	StateEvery *time.Duration `yaml:"state_every"`
	// Outbox bounds each broker's on-disk outbox.
	Outbox Outbox         `yaml:"outbox"`
	Pos    strictyaml.Pos `json:"-"`
}

// Broker is one MQTT broker.
type Broker struct {
	// Name identifies the broker in metrics, the state endpoint and the
	// outbox directory: [a-z0-9][a-z0-9_-]*.
	Name string `yaml:"name" check:"required"`
	// URL is tcp://host:port or ssl://host:port (mqtt:// and mqtts:// are
	// accepted as synonyms).
	URL string `yaml:"url" check:"required"`
	// ClientID defaults to facgw-<site>-<gateway>: one per gateway, so two
	// gateways never take over each other's session.
	ClientID string         `yaml:"client_id"`
	Username string         `yaml:"username"`
	Password Secret         `yaml:"password"`
	TLS      *TLS           `yaml:"tls"`
	Pos      strictyaml.Pos `json:"-"`
}

// TLS configures a TLS connection to a broker.
type TLS struct {
	CAFile     string         `yaml:"ca_file"`
	CertFile   string         `yaml:"cert_file"`
	KeyFile    string         `yaml:"key_file"`
	ServerName string         `yaml:"server_name"`
	Pos        strictyaml.Pos `json:"-"`
}

// Outbox bounds an on-disk outbox. Over the bounds the oldest telemetry is
// dropped (and counted); alerts and load-shed messages never are.
type Outbox struct {
	// MaxBytes is the size bound, such as 256MiB; default 256MiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// MaxAge drops telemetry older than this; default 0, no age bound.
	MaxAge time.Duration  `yaml:"max_age"`
	Pos    strictyaml.Pos `json:"-"`
}

// Influx configures the time-series history sink (InfluxDB v2 write API,
// or anything that accepts it, such as VictoriaMetrics).
type Influx struct {
	URL    string `yaml:"url" check:"required"`
	Org    string `yaml:"org"`
	Bucket string `yaml:"bucket" check:"required"`
	Token  Secret `yaml:"token"`
	// BatchSize is the most lines per write; default 5000.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is how long a partial batch waits; default 1s.
	FlushInterval time.Duration  `yaml:"flush_interval"`
	Outbox        Outbox         `yaml:"outbox"`
	Pos           strictyaml.Pos `json:"-"`
}

// Defaults of the publishing sections.
const (
	DefaultKeepAlive     = 30 * time.Second
	DefaultStateEvery    = 5 * time.Second
	DefaultOutboxBytes   = 256 << 20
	DefaultBatchSize     = 5000
	DefaultFlushInterval = time.Second
)

// ByteSize is a size in bytes, written as an integer or with a unit: 512KiB,
// 256MiB, 2GiB, or the decimal kB, MB, GB.
type ByteSize int64

var sizeRE = regexp.MustCompile(`^(\d+)\s*(B|kB|KB|KiB|MB|MiB|GB|GiB)?$`)

// UnmarshalYAMLNode implements strictyaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAMLNode(n *yaml.Node) error {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(n.Value))
	if n.Kind != yaml.ScalarNode || m == nil {
		return fmt.Errorf("want a size such as 256MiB, got %q", n.Value)
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return fmt.Errorf("size %q is too large", n.Value)
	}
	mult := map[string]int64{"": 1, "B": 1, "kB": 1000, "KB": 1000, "KiB": 1 << 10, "MB": 1e6, "MiB": 1 << 20, "GB": 1e9, "GiB": 1 << 30}[m[2]]
	if v > math.MaxInt64/mult {
		return fmt.Errorf("size %q is too large", n.Value)
	}
	*b = ByteSize(v * mult)
	return nil
}

var brokerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// publishing checks the mqtt and influx sections and fills their defaults.
func (c *checker) publishing() {
	cfg := c.cfg
	if m := cfg.MQTT; m != nil {
		if m.Prefix == "" {
			m.Prefix = "facgw/" + cfg.Site
		} else if strings.ContainsAny(m.Prefix, "+#") || strings.HasPrefix(m.Prefix, "/") || strings.HasSuffix(m.Prefix, "/") {
			c.add(m.Pos.At("prefix", "topic prefix %q must not contain + or # nor start or end with /", m.Prefix))
		}
		if m.KeepAlive == 0 {
			m.KeepAlive = DefaultKeepAlive
		} else if m.KeepAlive < time.Second || m.KeepAlive > 10*time.Minute {
			c.add(m.Pos.At("keepalive", "keepalive must be 1s..10m, got %s", m.KeepAlive))
		}
		if m.StateEvery == nil {
			d := DefaultStateEvery
			m.StateEvery = &d
		} else if *m.StateEvery > time.Hour {
			c.add(m.Pos.At("state_every", "state_every must be 0s..1h, got %s", *m.StateEvery))
		}
		c.outbox(&m.Outbox, m.Pos)
		seen := map[string]int{}
		for i := range m.Brokers {
			b := &m.Brokers[i]
			if b.Name != "" && !brokerNameRE.MatchString(b.Name) {
				c.add(b.Pos.At("name", "broker name %q must be lower-case letters, digits, '_' and '-'", b.Name))
			}
			if first, dup := seen[b.Name]; dup && b.Name != "" {
				c.add(b.Pos.At("name", "duplicate broker name %q (first at line %d)", b.Name, first))
			} else {
				seen[b.Name] = b.Pos.Line
			}
			if b.ClientID == "" {
				b.ClientID = "facgw-" + cfg.Site + "-" + cfg.Gateway
			}
			if b.URL != "" {
				scheme, msg := checkBrokerURL(b.URL)
				if msg != "" {
					c.add(b.Pos.At("url", "broker url %q: %s", b.URL, msg))
				} else if b.TLS != nil && scheme != "ssl" {
					c.add(b.Pos.At("tls", "tls settings need an ssl:// (or mqtts://) url"))
				}
			}
			if b.Password.IsSet() && b.Username == "" {
				c.add(b.Pos.At("password", "a password needs a username"))
			}
			if t := b.TLS; t != nil {
				for _, f := range []struct {
					field string
					path  *string
				}{{"ca_file", &t.CAFile}, {"cert_file", &t.CertFile}, {"key_file", &t.KeyFile}} {
					if *f.path == "" {
						continue
					}
					*f.path = c.path(*f.path)
					// Read at start by the publisher: a missing file is a
					// config error, found by facgw check, not a failed start.
					if _, err := os.Stat(*f.path); err != nil {
						c.add(t.Pos.At(f.field, "%s: %v", f.field, err))
					}
				}
				if (t.CertFile == "") != (t.KeyFile == "") {
					c.add(t.Pos.At("cert_file", "a client certificate needs both cert_file and key_file"))
				}
			}
		}
		if len(m.Brokers) == 0 && m.Pos.Has("brokers") {
			c.add(m.Pos.At("brokers", "no brokers configured"))
		}
	}
	if in := cfg.Influx; in != nil {
		if in.URL != "" {
			u, err := url.Parse(in.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				c.add(in.Pos.At("url", "influx url %q: want http://host:port or https://host:port", in.URL))
			}
		}
		if in.BatchSize == 0 {
			in.BatchSize = DefaultBatchSize
		} else if in.BatchSize < 1 || in.BatchSize > 100000 {
			c.add(in.Pos.At("batch_size", "batch_size must be 1..100000, got %d", in.BatchSize))
		}
		if in.FlushInterval == 0 {
			in.FlushInterval = DefaultFlushInterval
		} else if in.FlushInterval < 10*time.Millisecond || in.FlushInterval > time.Minute {
			c.add(in.Pos.At("flush_interval", "flush_interval must be 10ms..1m, got %s", in.FlushInterval))
		}
		c.outbox(&in.Outbox, in.Pos)
	}
}

func (c *checker) outbox(o *Outbox, parent strictyaml.Pos) {
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultOutboxBytes
	} else if o.MaxBytes < 1<<20 {
		c.add(subAt(parent, o.Pos, "outbox", "max_bytes", "outbox max_bytes must be at least 1MiB, got %d bytes", o.MaxBytes))
	}
	if o.MaxAge < 0 || (o.MaxAge > 0 && o.MaxAge < time.Minute) {
		c.add(subAt(parent, o.Pos, "outbox", "max_age", "outbox max_age must be 0 (no bound) or at least 1m, got %s", o.MaxAge))
	}
}

// checkBrokerURL returns the normalised scheme ("tcp" or "ssl") or a
// message saying what is wrong.
func checkBrokerURL(raw string) (string, string) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err.Error()
	}
	scheme := map[string]string{"tcp": "tcp", "mqtt": "tcp", "ssl": "ssl", "tls": "ssl", "mqtts": "ssl"}[u.Scheme]
	if scheme == "" {
		return "", "scheme must be tcp://, ssl://, mqtt:// or mqtts://"
	}
	if msg := checkHostPort(u.Host, true); msg != "" {
		return "", msg
	}
	if u.Path != "" && u.Path != "/" {
		return "", "a broker url has no path"
	}
	return scheme, ""
}

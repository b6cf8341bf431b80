package modbus

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"
)

// Target is a device address parsed from a URL such as
// "modbus-tcp://127.0.0.1:502?unit=1" or
// "modbus-rtu:///dev/ttyUSB0?baud=9600&parity=E&unit=3".
type Target struct {
	TCP    *TCPConfig
	Serial *SerialConfig
	Unit   byte
}

// ParseURL parses a device URL. Query parameters: unit (default 1),
// timeout (default 1s); for RTU also baud (9600), parity (E), data_bits
// (8), stop_bits (1).
func ParseURL(raw string) (*Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("device url %q: %w", raw, err)
	}
	q := u.Query()
	num := func(key string, def, lo, hi int) (int, error) {
		s := q.Get(key)
		if s == "" {
			return def, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("device url %q: %s=%q must be an integer %d..%d", raw, key, s, lo, hi)
		}
		return n, nil
	}
	unit, err := num("unit", 1, 0, 255)
	if err != nil {
		return nil, err
	}
	timeout := time.Second
	if s := q.Get("timeout"); s != "" {
		if timeout, err = time.ParseDuration(s); err != nil || timeout <= 0 {
			return nil, fmt.Errorf("device url %q: timeout=%q is not a duration such as 500ms", raw, s)
		}
	}
	t := &Target{Unit: byte(unit)}
	switch u.Scheme {
	case "modbus-tcp":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("device url %q: want modbus-tcp://HOST:PORT", raw)
		}
		t.TCP = &TCPConfig{Address: u.Host, Timeout: timeout}
	case "modbus-rtu":
		if u.Path == "" {
			return nil, fmt.Errorf("device url %q: want modbus-rtu:///dev/ttyX", raw)
		}
		baud, err := num("baud", 9600, 300, 921600)
		if err != nil {
			return nil, err
		}
		db, err := num("data_bits", 8, 7, 8)
		if err != nil {
			return nil, err
		}
		sb, err := num("stop_bits", 1, 1, 2)
		if err != nil {
			return nil, err
		}
		parity := q.Get("parity")
		if parity == "" {
			parity = "E"
		}
		if parity != "N" && parity != "E" && parity != "O" {
			return nil, fmt.Errorf("device url %q: parity=%q must be N, E or O", raw, parity)
		}
		t.Serial = &SerialConfig{Port: u.Path, Baud: baud, DataBits: db, Parity: parity, StopBits: sb, Timeout: timeout}
	default:
		return nil, fmt.Errorf("device url %q: scheme must be modbus-tcp or modbus-rtu", raw)
	}
	return t, nil
}

// Conn opens (lazily) the connection the target names.
func (t *Target) Conn() *Conn {
	if t.TCP != nil {
		return NewTCPConn(*t.TCP)
	}
	return NewRTUConn(*t.Serial)
}

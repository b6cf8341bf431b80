package facsim

import (
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/goburrow/modbus"

	mbdrv "github.com/facgw/facgw/drivers/modbus"
	profiles "github.com/facgw/facgw/firmware-profiles"
	"github.com/facgw/facgw/internal/point"
)

// startTest starts a facility file from testdata on free ports with the
// automatic tick off and a fixed seed; the sim is closed when the test
// ends.
func startTest(t *testing.T, file string, opts Options) *Sim {
	t.Helper()
	f, err := LoadFacility(file)
	if err != nil {
		t.Fatal(err)
	}
	opts.Manual = true
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	s, err := Start(context.Background(), f, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client reads one simulated device over Modbus TCP with goburrow's client
// and decodes points with the device's profile, as the gateway would.
type client struct {
	t   *testing.T
	h   *modbus.TCPClientHandler
	c   modbus.Client
	res *profiles.Resolved
}

// dial connects to device id of s, reading with a timeout of 1s.
func dial(t *testing.T, s *Sim, id string) *client {
	t.Helper()
	return dialTimeout(t, s, id, time.Second)
}

func dialTimeout(t *testing.T, s *Sim, id string, timeout time.Duration) *client {
	t.Helper()
	s.mu.Lock()
	d := s.byID[id]
	s.mu.Unlock()
	if d == nil {
		t.Fatalf("no device %q", id)
	}
	h := modbus.NewTCPClientHandler(s.Addr(id))
	h.SlaveId = d.unit
	h.Timeout = timeout
	t.Cleanup(func() { h.Close() })
	return &client{t: t, h: h, c: modbus.NewClient(h), res: d.res}
}

// read reads one point and returns it decoded; a read error fails the test.
func (c *client) read(name string) point.Point {
	c.t.Helper()
	p, err := c.tryRead(name)
	if err != nil {
		c.t.Fatalf("read %s: %v", name, err)
	}
	return p
}

func (c *client) tryRead(name string) (point.Point, error) {
	c.t.Helper()
	def, ok := c.res.Point(name)
	if !ok {
		c.t.Fatalf("profile %s has no point %q", c.res.Profile.Model, name)
	}
	var p point.Point
	p.Name = name
	w := uint16(def.Width())
	var b []byte
	var err error
	switch def.Table {
	case profiles.Coil:
		b, err = c.c.ReadCoils(def.Address, 1)
	case profiles.Discrete:
		b, err = c.c.ReadDiscreteInputs(def.Address, 1)
	case profiles.Input:
		b, err = c.c.ReadInputRegisters(def.Address, w)
	default:
		b, err = c.c.ReadHoldingRegisters(def.Address, w)
	}
	if err != nil {
		return p, err
	}
	if profiles.IsBitTable(def.Table) {
		mbdrv.DecodeBit(def, len(b) > 0 && b[0]&1 != 0, &p)
		return p, nil
	}
	regs := make([]uint16, len(b)/2)
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	mbdrv.DecodeRegisters(def, regs, &p)
	return p, nil
}

// num reads a good number (or bool as 0/1, or enum code).
func (c *client) num(name string) float64 {
	c.t.Helper()
	p := c.read(name)
	if p.Quality != point.Good {
		c.t.Fatalf("%s: quality %v (%s), want good", name, p.Quality, p.Reason)
	}
	return p.Num
}

func (c *client) bool(name string) bool {
	c.t.Helper()
	return c.num(name) != 0
}

func (c *client) str(name string) string {
	c.t.Helper()
	p := c.read(name)
	if p.Quality != point.Good {
		c.t.Fatalf("%s: quality %v (%s), want good", name, p.Quality, p.Reason)
	}
	return p.Str
}

// inRange fails the test unless lo <= got <= hi.
func inRange(t *testing.T, what string, got, lo, hi float64) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("%s = %g, want %g..%g", what, got, lo, hi)
	}
}

// port returns the port of a host:port address.
func port(t *testing.T, addr string) uint16 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(n)
}

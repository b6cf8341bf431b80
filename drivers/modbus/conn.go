package modbus

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	mb "github.com/goburrow/modbus"
	"github.com/goburrow/serial"

	"github.com/facgw/facgw/internal/point"
)

// handler is what goburrow's TCP and RTU client handlers have in common.
type handler interface {
	mb.Packager
	mb.Transporter
	Close() error
}

// Conn is one Modbus connection: a TCP socket to a device or to a
// TCP-to-RTU gateway, or a serial line. Every device (unit id) behind it
// shares it, and requests are serialised, as such gateways and RS-485 buses
// need. Conn is safe for concurrent use; it owns no goroutine.
//
// goburrow/modbus keeps a connection open after a timeout, so a late reply
// is then read as the answer to the next request and the transaction ids
// never resync (its issue #64). Conn closes the connection after every
// timeout, framing or protocol error, so the next request starts on a fresh
// connection; goburrow also checks the transaction and unit ids of every
// TCP reply, and Conn treats a mismatch as a protocol error.
//
// Closing a serial port does not drop what it has received: a pty (socat,
// ser2net and other virtual serial ports) keeps a late reply for whoever
// opens it next, and RTU has no transaction id to tell it from the answer
// to the next request. So on a serial line the first request, and the
// first after each reset, discards the port's input queue before it is sent.
type Conn struct {
	key string

	mu      sync.Mutex
	h       handler
	client  mb.Client
	setUnit func(byte)
	stats   ConnStats
	drain   func() error // RTU: open the port and empty its input queue
	reset   bool         // the connection was reset since the last drain
}

// ConnStats counts what happened on a connection.
type ConnStats struct {
	Requests   uint64 // requests sent, including retries
	Errors     uint64 // requests that failed for any reason
	Exceptions uint64 // Modbus exception replies
	Resets     uint64 // times the connection was closed to resync
}

// TCPConfig configures a Modbus TCP connection.
type TCPConfig struct {
	Address string        // host:port
	Timeout time.Duration // per request, including connect
}

// SerialConfig configures a Modbus RTU serial line.
type SerialConfig struct {
	Port     string
	Baud     int
	DataBits int
	Parity   string // "N", "E" or "O"
	StopBits int
	Timeout  time.Duration
}

// NewTCPConn returns a connection that dials lazily on first use.
func NewTCPConn(c TCPConfig) *Conn {
	h := mb.NewTCPClientHandler(c.Address)
	h.Timeout = c.Timeout
	return &Conn{key: "tcp://" + c.Address, h: h, client: mb.NewClient(h), setUnit: func(u byte) { h.SlaveId = u }}
}

// NewRTUConn returns a serial connection that opens the port lazily.
func NewRTUConn(c SerialConfig) *Conn {
	h := mb.NewRTUClientHandler(c.Port)
	h.BaudRate, h.DataBits, h.Parity, h.StopBits, h.Timeout = c.Baud, c.DataBits, c.Parity, c.StopBits, c.Timeout
	drain := func() error {
		if err := h.Connect(); err != nil {
			return err
		}
		return drainInput(c.Port)
	}
	// reset: also drain before the first request, in case an earlier user
	// of the port (a gateway killed mid-request) left a reply behind.
	return &Conn{key: "rtu://" + c.Port, h: h, client: mb.NewClient(h), setUnit: func(u byte) { h.SlaveId = u }, drain: drain, reset: true}
}

// Key names the connection ("tcp://host:port" or "rtu:///dev/ttyUSB0").
func (c *Conn) Key() string { return c.key }

// Stats returns a copy of the counters.
func (c *Conn) Stats() ConnStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Close closes the underlying connection; the next request reopens it.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.h.Close()
}

// do runs one request for unit under the connection lock. A panic inside
// goburrow (it indexes reply bytes without checking some lengths) becomes a
// protocol error: a malformed reply must never crash the gateway.
//
// goburrow reports any reply whose function code differs from the
// request's as an exception, taking its first data byte as the code; only
// fc|0x80 is an exception, so other mismatches become protocol errors here.
func (c *Conn) do(unit, fc byte, fn func(mb.Client) error) (err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Requests++
	c.setUnit(unit)
	defer func() {
		if r := recover(); r != nil {
			err = &protocolError{fmt.Sprintf("malformed reply (%v)", r)}
		}
		if err == nil {
			return
		}
		c.stats.Errors++
		var me *mb.ModbusError
		if errors.As(err, &me) {
			switch {
			case me.FunctionCode != fc|0x80:
				err = &protocolError{fmt.Sprintf("reply function %#02x to request %#02x", me.FunctionCode, fc)}
			case ExceptionName(me.ExceptionCode) == "unknown exception":
				err = &protocolError{fmt.Sprintf("exception reply with undefined code %#02x", me.ExceptionCode)}
			default:
				c.stats.Exceptions++
				return
			}
		}
		// Anything but a clean exception may leave a late or partial reply
		// in flight: drop the connection so the next request cannot read it.
		c.stats.Resets++
		c.reset = true
		_ = c.h.Close()
	}()
	if c.reset && c.drain != nil {
		if err := c.drain(); err != nil {
			return err
		}
		c.reset = false
	}
	return fn(c.client)
}

// raw sends a PDU that goburrow's Client has no method for (Read Device
// Identification) through the handler's packager and transporter.
func (c *Conn) raw(unit byte, req *mb.ProtocolDataUnit) (*mb.ProtocolDataUnit, error) {
	var resp *mb.ProtocolDataUnit
	err := c.do(unit, req.FunctionCode, func(mb.Client) error {
		adu, err := c.h.Encode(req)
		if err != nil {
			return err
		}
		out, err := c.h.Send(adu)
		if err != nil {
			return err
		}
		if err := c.h.Verify(adu, out); err != nil {
			return &protocolError{err.Error()}
		}
		resp, err = c.h.Decode(out)
		if err != nil {
			return &protocolError{err.Error()}
		}
		if resp.FunctionCode == req.FunctionCode|0x80 {
			if len(resp.Data) < 1 {
				return &protocolError{"exception reply without a code"}
			}
			return &mb.ModbusError{FunctionCode: resp.FunctionCode, ExceptionCode: resp.Data[0]}
		}
		if resp.FunctionCode != req.FunctionCode {
			return &protocolError{fmt.Sprintf("reply function %#x to request %#x", resp.FunctionCode, req.FunctionCode)}
		}
		return nil
	})
	return resp, err
}

type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

// ExceptionName names a Modbus exception code as the spec does.
func ExceptionName(code byte) string {
	switch code {
	case 1:
		return "illegal function"
	case 2:
		return "illegal data address"
	case 3:
		return "illegal data value"
	case 4:
		return "server device failure"
	case 5:
		return "acknowledge"
	case 6:
		return "server device busy"
	case 8:
		return "memory parity error"
	case 0x0A:
		return "gateway path unavailable"
	case 0x0B:
		return "gateway target device failed to respond"
	}
	return "unknown exception"
}

// Reason classifies a request error into a point quality reason, starting
// with one of the point.Reason* codes.
func Reason(err error) string {
	var me *mb.ModbusError
	var pe *protocolError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &me):
		return fmt.Sprintf("%s: %s (%02X)", point.ReasonException, ExceptionName(me.ExceptionCode), me.ExceptionCode)
	case errors.As(err, &pe):
		return point.ReasonProtocol + ": " + pe.msg
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, serial.ErrTimeout): // an RTU reply that never came
		return point.ReasonTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return point.ReasonConnection + ": " + shortNetErr(err)
	case strings.HasPrefix(err.Error(), "modbus: "):
		// goburrow's own checks of a reply: byte counts, echoed addresses,
		// transaction and unit ids.
		return point.ReasonProtocol + ": " + strings.TrimPrefix(err.Error(), "modbus: ")
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return point.ReasonConnection + ": " + shortNetErr(err)
	}
	return point.ReasonConnection + ": " + err.Error()
}

func shortNetErr(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset by device"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed by device"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	}
	return err.Error()
}

// retryable says whether trying the same request again may help: not after
// an exception, which the device will repeat.
func retryable(err error) bool {
	var me *mb.ModbusError
	return err != nil && !errors.As(err, &me)
}

package mbserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrServerClosed is returned by Serve and ServeRTU after Close.
var ErrServerClosed = errors.New("mbserver: server closed")

var errDropped = errors.New("mbserver: connection dropped by fault injection")

// FaultKind selects how a unit misbehaves; see Fault.
type FaultKind uint8

// Fault kinds.
const (
	// FaultNone serves requests normally.
	FaultNone FaultKind = iota
	// FaultSilent reads requests and never answers; the request is not
	// executed and the connection stays open.
	FaultSilent
	// FaultLate executes the request and answers after Fault.Delay. As a
	// connection serves its requests in order, requests sent meanwhile wait,
	// and a client that timed out meets the stale reply on its next request.
	FaultLate
	// FaultException answers every request with Fault.Exception without
	// executing it.
	FaultException
	// FaultGarbage executes the request and answers with a malformed frame
	// chosen by Fault.Garbage.
	FaultGarbage
	// FaultDrop closes the connection when a request for the unit arrives,
	// without executing it. On RTU, where there is no connection, it acts
	// as FaultSilent.
	FaultDrop
)

// GarbageMode selects the malformed reply of FaultGarbage.
type GarbageMode uint8

// Garbage modes. On RTU, GarbageLength sends a wrong CRC and GarbageTxID a
// wrong slave address instead.
const (
	// GarbageCycle uses the modes below in turn, one per request to the unit.
	GarbageCycle GarbageMode = iota
	// GarbageRandom sends a valid MBAP header followed by 1 to 16 random PDU
	// bytes whose function code differs from the request's.
	GarbageRandom
	// GarbageLength sends the correct reply with an MBAP length one short,
	// so the last byte is left in the stream and desynchronises the next
	// reply.
	GarbageLength
	// GarbageByteCount sends a read reply whose byte count is one too large
	// (other replies lose their last byte), with a consistent MBAP length.
	GarbageByteCount
	// GarbageTxID sends the correct reply with a wrong transaction id.
	GarbageTxID
	// GarbageTruncated announces the full reply but sends only its header
	// and the first half of the PDU.
	GarbageTruncated
	// GarbageFuncOnly sends a PDU made of the function code alone.
	GarbageFuncOnly
	numGarbageModes
)

// Fault describes the injected misbehaviour of a unit id.
type Fault struct {
	Kind FaultKind
	// Delay is the reply delay of FaultLate.
	Delay time.Duration
	// Exception is the code sent by FaultException; zero means
	// ServerDeviceFailure.
	Exception ExceptionCode
	// Garbage selects the malformed reply of FaultGarbage.
	Garbage GarbageMode
}

// Options configures a Server. The zero value is usable.
type Options struct {
	// Logger receives connection-level events at debug level; nil discards
	// them.
	Logger *slog.Logger
}

// Server serves a Handler over Modbus TCP (Serve) and Modbus RTU (ServeRTU)
// and injects per-unit faults. All methods are safe for concurrent use. The
// Server owns one goroutine per accepted TCP connection; Close ends them.
type Server struct {
	h   Handler
	log *slog.Logger

	mu        sync.Mutex
	closed    bool
	done      chan struct{}
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup // connection goroutines

	fmu        sync.RWMutex
	faults     [256]Fault
	garbageSeq [256]atomic.Uint32

	wrote func(unit uint8) // test hook: called after a TCP reply is written
}

// NewServer returns a Server calling h for every request.
func NewServer(h Handler, opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		h:         h,
		log:       log,
		done:      make(chan struct{}),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
	}
}

// SetFault sets the fault of unit, taking effect with the next request that
// arrives for it.
func (s *Server) SetFault(unit uint8, f Fault) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.faults[unit] = f
}

// Fault returns the fault currently set for unit.
func (s *Server) Fault(unit uint8) Fault {
	s.fmu.RLock()
	defer s.fmu.RUnlock()
	return s.faults[unit]
}

// ClearFaults sets FaultNone for every unit.
func (s *Server) ClearFaults() {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.faults = [256]Fault{}
}

// Serve accepts Modbus TCP connections on ln and serves each on its own
// goroutine, requests of one connection in order, until Close is called
// (it then returns ErrServerClosed) or Accept fails. Serve takes ownership
// of ln and closes it on return. It may be called for several listeners.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			return fmt.Errorf("mbserver: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// Close stops the server: it closes all listeners given to Serve and all
// TCP connections, waits for the connection goroutines to exit, and makes
// running ServeRTU calls return. Close is idempotent and always returns nil.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
		for ln := range s.listeners {
			ln.Close()
		}
		for c := range s.conns {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	err := s.serveTCP(c)
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.log.Debug("mbserver: connection closed", "remote", c.RemoteAddr().String(), "reason", err)
}

const mbapLen = 7

// serveTCP serves Modbus TCP frames from rw until a read or write fails, a
// frame cannot be delimited, or a FaultDrop fires.
func (s *Server) serveTCP(rw io.ReadWriter) error {
	r := bufio.NewReader(rw)
	var hdr [mbapLen]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		tid, pid, n, unit := be.Uint16(hdr[0:]), be.Uint16(hdr[2:]), int(be.Uint16(hdr[4:])), hdr[6]
		// The length covers unit id and PDU; without a sane length the
		// stream cannot be resynchronised, so the connection is closed.
		if n < 2 || n > 1+maxPDU {
			return fmt.Errorf("mbserver: invalid MBAP length %d", n)
		}
		req := make([]byte, n-1)
		if _, err := io.ReadFull(r, req); err != nil {
			return err
		}
		if pid != 0 {
			continue // not Modbus: discarded, as the TCP guide prescribes
		}
		resp, f, send := s.handle(unit, req)
		if f.Kind == FaultDrop {
			return errDropped
		}
		if !send {
			continue
		}
		var frame []byte
		if f.Kind == FaultGarbage {
			frame = s.garbageTCP(unit, f, tid, req[0], resp)
		} else {
			frame = appendMBAP(nil, tid, unit, resp)
		}
		if _, err := rw.Write(frame); err != nil {
			return err
		}
		if s.wrote != nil {
			s.wrote(unit)
		}
	}
}

func appendMBAP(dst []byte, tid uint16, unit uint8, pdu []byte) []byte {
	dst = be.AppendUint16(dst, tid)
	dst = be.AppendUint16(dst, 0)
	dst = be.AppendUint16(dst, uint16(1+len(pdu)))
	return append(append(dst, unit), pdu...)
}

// handle applies the unit's fault to one request PDU and returns the reply
// PDU; send is false when nothing is to be sent.
func (s *Server) handle(unit uint8, req []byte) (resp []byte, f Fault, send bool) {
	f = s.Fault(unit)
	switch f.Kind {
	case FaultSilent, FaultDrop:
		return nil, f, false
	case FaultException:
		code := f.Exception
		if code == 0 {
			code = ServerDeviceFailure
		}
		resp, send = exceptionPDU(req[0], code), true
	default:
		resp, send = execute(s.h, unit, req)
	}
	if send && f.Kind == FaultLate && !s.sleep(f.Delay) {
		return nil, f, false
	}
	return resp, f, send
}

// sleep waits for d and reports false if the server was closed meanwhile.
func (s *Server) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

// garbageMode resolves GarbageCycle to the unit's next concrete mode.
func (s *Server) garbageMode(unit uint8, f Fault) GarbageMode {
	if f.Garbage > GarbageCycle && f.Garbage < numGarbageModes {
		return f.Garbage
	}
	n := s.garbageSeq[unit].Add(1) - 1
	return GarbageRandom + GarbageMode(n%uint32(numGarbageModes-GarbageRandom))
}

// garbageTCP returns a malformed TCP frame in place of the reply resp.
func (s *Server) garbageTCP(unit uint8, f Fault, tid uint16, reqFC byte, resp []byte) []byte {
	switch mode := s.garbageMode(unit, f); mode {
	case GarbageTxID:
		return appendMBAP(nil, tid^0x5A5A, unit, resp)
	case GarbageLength:
		frame := appendMBAP(nil, tid, unit, resp)
		be.PutUint16(frame[4:], uint16(len(resp))) // one short: resp has >= 2 bytes
		return frame
	case GarbageTruncated:
		return appendMBAP(nil, tid, unit, resp)[:mbapLen+(len(resp)+1)/2]
	default:
		return appendMBAP(nil, tid, unit, corruptPDU(mode, reqFC, resp))
	}
}

// corruptPDU implements the PDU-level garbage modes (random, byte count,
// function code only); resp has at least 2 bytes.
func corruptPDU(mode GarbageMode, reqFC byte, resp []byte) []byte {
	switch mode {
	case GarbageFuncOnly:
		return []byte{reqFC}
	case GarbageByteCount:
		out := append([]byte(nil), resp...)
		if reqFC >= fcReadCoils && reqFC <= fcReadInput && out[0] == reqFC {
			out[1]++
			return out
		}
		return out[:len(out)-1]
	default:
		out := make([]byte, 1+rand.IntN(16))
		for i := range out {
			out[i] = byte(rand.Uint32())
		}
		if out[0] == reqFC {
			out[0] ^= 0x40
		}
		return out
	}
}

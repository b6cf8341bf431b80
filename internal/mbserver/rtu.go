package mbserver

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// crcTable holds the CRC of each byte value, computed from the polynomial.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
		t[i] = crc
	}
	return t
}()

func crcByte(crc uint16, c byte) uint16 {
	return crc>>8 ^ crcTable[byte(crc)^c]
}

// CRC16 returns the Modbus RTU CRC of b: CRC-16 with the reflected
// polynomial 0xA001 and initial value 0xFFFF. It is sent low byte first.
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc = crcByte(crc, c)
	}
	return crc
}

// EncodeRTU returns the RTU frame for pdu addressed to unit: address, PDU
// and CRC, low byte first.
func EncodeRTU(unit uint8, pdu []byte) []byte {
	frame := append([]byte{unit}, pdu...)
	crc := CRC16(frame)
	return append(frame, byte(crc), byte(crc>>8))
}

const (
	rtuMinFrame = 4   // address, function code, CRC
	rtuMaxFrame = 256 // address, 253-byte PDU, CRC
	// rtuSilence is how long a partial frame may stay without new bytes
	// before it is discarded (only for streams with read deadlines). It is
	// far longer than the 3.5 character times of the specification, which
	// cannot be timed reliably over a pty or pipe.
	rtuSilence = 100 * time.Millisecond
)

// frameStatus classifies the bytes at the start of an RTU receive buffer.
type frameStatus int

const (
	frameNeedMore frameStatus = iota
	frameValid
	frameInvalid
)

// rtuFrameAt delimits the request frame at the start of b by the request
// length its function code implies (including common function codes that
// are answered with IllegalFunction) and checks its CRC. For other function
// codes the first prefix with a valid CRC counts as the frame.
func rtuFrameAt(b []byte) (int, frameStatus) {
	if len(b) < 2 {
		return 0, frameNeedMore
	}
	// withCount returns the length of a frame with a byte count at b[i].
	withCount := func(i, fixed int) int {
		if len(b) <= i {
			return -1
		}
		return fixed + int(b[i])
	}
	n := 0
	switch fc := b[1]; fc {
	case 0x07, 0x0B, 0x0C, 0x11: // serial-line diagnostics without data
		n = 4
	case 0x18: // read FIFO queue
		n = 6
	case fcReadCoils, fcReadDiscrete, fcReadHolding, fcReadInput, fcWriteCoil, fcWriteRegister, 0x08:
		n = 8
	case 0x16: // mask write register
		n = 10
	case fcWriteCoils, fcWriteRegisters:
		n = withCount(6, 9)
	case 0x14, 0x15: // file records
		n = withCount(2, 5)
	case 0x17: // read/write multiple registers
		n = withCount(10, 13)
	case fcEncapsulated:
		if len(b) < 3 {
			return 0, frameNeedMore
		}
		if b[2] == meiDeviceID {
			n = 7
		}
	default:
		if fc == 0 || fc >= 0x80 { // not a request function code
			return 0, frameInvalid
		}
	}
	if n < 0 {
		return 0, frameNeedMore
	}
	if n == 0 { // unknown length: search for a CRC match
		crc := uint16(0xFFFF)
		for i := 0; i+2 < len(b) && i+3 <= rtuMaxFrame; i++ {
			crc = crcByte(crc, b[i])
			if i+3 >= rtuMinFrame && crc == uint16(b[i+1])|uint16(b[i+2])<<8 {
				return i + 3, frameValid
			}
		}
		if len(b) >= rtuMaxFrame {
			return 0, frameInvalid
		}
		return 0, frameNeedMore
	}
	if n > rtuMaxFrame {
		return 0, frameInvalid
	}
	if len(b) < n {
		return 0, frameNeedMore
	}
	if CRC16(b[:n-2]) != uint16(b[n-2])|uint16(b[n-1])<<8 {
		return 0, frameInvalid
	}
	return n, frameValid
}

// ServeRTU serves h over rw with RTU framing and no fault injection; see
// Server.ServeRTU.
func ServeRTU(ctx context.Context, rw io.ReadWriter, h Handler) error {
	return NewServer(h, Options{}).ServeRTU(ctx, rw)
}

// ServeRTU serves Modbus RTU request frames read from rw (a serial port,
// pty or pipe) on the calling goroutine, writing replies to rw, until ctx
// is done (returns ctx.Err()), the server is closed (ErrServerClosed) or a
// read or write fails.
//
// Frames are delimited by the request length implied by the function code;
// on a CRC error one byte is dropped to resynchronise, and a frame that
// cannot be completed is skipped when a valid frame follows it. Requests for
// which the Handler returns ErrNoResponse (Memory's absent units) get no
// reply. A request to unit 0 is a broadcast: writes are executed, nothing is
// answered, and faults do not apply.
//
// If rw has a SetReadDeadline method (net.Conn, *os.File of a pty), ServeRTU
// polls with short deadlines, discards a partial frame after 100ms of
// silence, and clears the deadline on return. Otherwise it closes rw, if it
// is an io.Closer, to stop a pending Read when ctx is done or the server is
// closed.
func (s *Server) ServeRTU(ctx context.Context, rw io.ReadWriter) error {
	dl, _ := rw.(interface{ SetReadDeadline(time.Time) error })
	if dl != nil && dl.SetReadDeadline(time.Time{}) != nil {
		dl = nil
	}
	if dl != nil {
		defer dl.SetReadDeadline(time.Time{})
	} else if c, ok := rw.(io.Closer); ok {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-ctx.Done():
			case <-s.done:
			case <-stop:
				return
			}
			c.Close()
		}()
	}
	stopErr := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.isClosed() {
			return ErrServerClosed
		}
		return nil
	}

	var store [2 * (rtuMaxFrame + 16)]byte
	buf := store[:0]
	for {
		if err := stopErr(); err != nil {
			return err
		}
	frames:
		for len(buf) > 0 {
			n, st := rtuFrameAt(buf)
			switch st {
			case frameValid:
				if err := s.rtuRequest(rw, buf[:n]); err != nil {
					return err
				}
				buf = buf[n:]
			case frameInvalid:
				buf = buf[1:]
			default:
				// Skip an incomplete head if a valid frame follows it.
				for i := 1; i+rtuMinFrame <= len(buf); i++ {
					if _, st := rtuFrameAt(buf[i:]); st == frameValid {
						buf = buf[i:]
						continue frames
					}
				}
				break frames
			}
		}
		buf = store[:copy(store[:], buf)]

		if dl != nil {
			dl.SetReadDeadline(time.Now().Add(rtuSilence))
		}
		n, err := rw.Read(store[len(buf):])
		buf = buf[:len(buf)+n]
		if err != nil {
			if serr := stopErr(); serr != nil {
				return serr
			}
			if dl != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				if n == 0 {
					buf = buf[:0] // silence ends any partial frame
				}
				continue
			}
			return err
		}
	}
}

// rtuRequest serves one delimited RTU frame (CRC already checked).
func (s *Server) rtuRequest(w io.Writer, frame []byte) error {
	unit, req := frame[0], frame[1:len(frame)-2]
	if unit == 0 {
		if isWrite(req[0]) {
			execute(s.h, 0, req)
		}
		return nil
	}
	resp, f, send := s.handle(unit, req)
	if !send {
		return nil
	}
	var out []byte
	if f.Kind == FaultGarbage {
		switch mode := s.garbageMode(unit, f); mode {
		case GarbageLength: // wrong CRC
			out = EncodeRTU(unit, resp)
			out[len(out)-1] ^= 0xFF
		case GarbageTxID: // wrong slave address
			out = EncodeRTU(unit+1, resp)
		case GarbageTruncated:
			out = EncodeRTU(unit, resp)
			out = out[:len(out)/2]
		default:
			out = EncodeRTU(unit, corruptPDU(mode, req[0], resp))
		}
	} else {
		out = EncodeRTU(unit, resp)
	}
	_, err := w.Write(out)
	return err
}

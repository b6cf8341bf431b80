package mbserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"testing"
)

func fuzzMemory() *Memory {
	m := NewMemory()
	m.Map(1, Coils, 0, 100)
	m.Map(1, DiscreteInputs, 0, 100)
	m.Map(1, HoldingRegisters, 0, 130)
	m.Map(1, InputRegisters, 0xFF80, 0x80)
	m.SetRegisters(2, HoldingRegisters, 0, 1, 2, 3)
	m.SetDeviceIdentification(1, map[byte]string{0: "v", 1: "p", 2: "1", 0x80: string(make([]byte, 250))})
	m.SetAbsentResponse(GatewayTargetFailedToRespond)
	return m
}

type readWriter struct {
	io.Reader
	io.Writer
}

// FuzzTCPFrame feeds arbitrary bytes to the Modbus TCP frame handling: it
// must not panic, and without faults every reply must be a well-formed
// MBAP frame.
func FuzzTCPFrame(f *testing.F) {
	read := append([]byte{3}, u16s(0, 2)...)
	f.Add(mbapFrame(1, 0, 1, read))
	f.Add(append(mbapFrame(1, 0, 1, read), mbapFrame(2, 0, 2, read)...))
	f.Add(mbapFrame(1, 0, 1, append(append([]byte{16}, u16s(0, 2)...), 4, 0, 1, 0, 2)))
	f.Add(mbapFrame(1, 0, 1, append(append([]byte{15}, u16s(0, 9)...), 2, 0xFF, 1)))
	f.Add(mbapFrame(1, 0, 1, []byte{0x2B, 0x0E, 3, 0}))
	f.Add(mbapFrame(1, 0, 1, []byte{0x2B, 0x0E, 4, 0x80}))
	f.Add(mbapFrame(1, 0, 9, []byte{5, 0, 1, 0xFF, 0}))
	f.Add(mbapFrame(1, 3, 1, read))
	f.Add([]byte{0, 1, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 1, 0, 0, 0xFF, 0xFF, 1, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewServer(fuzzMemory(), Options{})
		var out bytes.Buffer
		if err := s.serveTCP(readWriter{bytes.NewReader(data), &out}); err == nil {
			t.Fatal("got nil error, want the end of the stream")
		}
		for b := out.Bytes(); len(b) > 0; {
			if len(b) < mbapLen {
				t.Fatalf("got %d trailing bytes, want a whole MBAP header", len(b))
			}
			n := int(binary.BigEndian.Uint16(b[4:]))
			if pid := binary.BigEndian.Uint16(b[2:]); pid != 0 || n < 3 || n > 1+maxPDU || 6+n > len(b) {
				t.Fatalf("got reply header % x with %d bytes left, want protocol 0 and a fitting length", b[:mbapLen], len(b))
			}
			b = b[6+n:]
		}

		// With faults only the absence of panics is checked.
		s.SetFault(1, Fault{Kind: FaultGarbage})
		s.SetFault(2, Fault{Kind: FaultException, Exception: 0x42})
		s.SetFault(3, Fault{Kind: FaultDrop})
		s.SetFault(4, Fault{Kind: FaultSilent})
		s.serveTCP(readWriter{bytes.NewReader(data), io.Discard})
	})
}

// FuzzRTUStream feeds arbitrary bytes to the RTU framing: it must not
// panic, and every reply must carry a valid CRC.
func FuzzRTUStream(f *testing.F) {
	f.Add(EncodeRTU(1, append([]byte{3}, u16s(0, 2)...)))
	f.Add(append([]byte{0xAA, 0x10}, EncodeRTU(1, append(append([]byte{16}, u16s(0, 1)...), 2, 0, 1))...))
	f.Add(EncodeRTU(0, []byte{5, 0, 1, 0xFF, 0}))
	f.Add(EncodeRTU(1, []byte{0x2B, 0x0E, 1, 0}))
	f.Add(EncodeRTU(1, []byte{0x07}))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewServer(fuzzMemory(), Options{})
		var out frameRecorder
		if err := s.ServeRTU(context.Background(), readWriter{bytes.NewReader(data), &out}); err != io.EOF {
			t.Fatalf("got %v, want %v", err, io.EOF)
		}
		for _, b := range out {
			if len(b) < rtuMinFrame || len(b) > rtuMaxFrame || CRC16(b[:len(b)-2]) != uint16(b[len(b)-2])|uint16(b[len(b)-1])<<8 {
				t.Fatalf("got reply % x, want a frame with a valid CRC", b)
			}
		}
		s.SetFault(1, Fault{Kind: FaultGarbage})
		s.SetFault(2, Fault{Kind: FaultDrop})
		s.ServeRTU(context.Background(), readWriter{bytes.NewReader(data), io.Discard})
	})
}

// frameRecorder keeps each Write as one frame.
type frameRecorder [][]byte

func (r *frameRecorder) Write(b []byte) (int, error) {
	*r = append(*r, bytes.Clone(b))
	return len(b), nil
}

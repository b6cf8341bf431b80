// Package mbserver is a Modbus server (slave) library for Modbus TCP and
// Modbus RTU, written from the Modbus Application Protocol Specification
// v1.1b3 and the Modbus Messaging on TCP/IP Implementation Guide v1.0b.
//
// A Handler supplies the data model and is called once per request with the
// unit id; Memory is a ready, concurrency-safe in-memory Handler. A Server
// frames requests (Serve for Modbus TCP, ServeRTU for RTU over a serial-like
// stream), calls the Handler and writes the replies. Faults can be injected
// per unit id at run time (Server.SetFault) to imitate broken field devices:
// silence, late replies, exceptions, malformed frames and dropped
// connections.
//
// Supported function codes: 1, 2, 3, 4, 5, 6, 15, 16 and 43/14 (Read Device
// Identification). Any other function code is answered with exception 01.
package mbserver

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// ExceptionCode is a Modbus exception code as sent in an exception reply.
type ExceptionCode byte

// Exception codes from the Modbus Application Protocol v1.1b3, section 7.
const (
	IllegalFunction              ExceptionCode = 0x01
	IllegalDataAddress           ExceptionCode = 0x02
	IllegalDataValue             ExceptionCode = 0x03
	ServerDeviceFailure          ExceptionCode = 0x04
	ServerDeviceBusy             ExceptionCode = 0x06
	GatewayPathUnavailable       ExceptionCode = 0x0A
	GatewayTargetFailedToRespond ExceptionCode = 0x0B
)

// String returns the specification's name of the code.
func (c ExceptionCode) String() string {
	switch c {
	case IllegalFunction:
		return "illegal function"
	case IllegalDataAddress:
		return "illegal data address"
	case IllegalDataValue:
		return "illegal data value"
	case ServerDeviceFailure:
		return "server device failure"
	case 0x05:
		return "acknowledge"
	case ServerDeviceBusy:
		return "server device busy"
	case 0x08:
		return "memory parity error"
	case GatewayPathUnavailable:
		return "gateway path unavailable"
	case GatewayTargetFailedToRespond:
		return "gateway target device failed to respond"
	}
	return "unknown exception"
}

// Exception is the error a Handler returns to make the server send a Modbus
// exception reply with Code. Any other non-nil error from a Handler is sent
// as ServerDeviceFailure, except ErrNoResponse.
type Exception struct {
	Code ExceptionCode
}

// Error implements error.
func (e *Exception) Error() string {
	return fmt.Sprintf("mbserver: modbus exception 0x%02x (%v)", byte(e.Code), e.Code)
}

// ErrNoResponse, returned (or wrapped) by a Handler, makes the server send no
// reply at all, as an absent device behind a gateway or on a serial bus
// would. The request is consumed and a TCP connection stays open.
var ErrNoResponse = errors.New("mbserver: no response")

// Handler serves the data model of one or more unit ids. The server calls it
// from the goroutine serving the connection or stream, so a Handler used by
// several connections must be safe for concurrent use. Quantities and
// address ranges have been checked against the protocol limits before a call
// (addr+qty never exceeds 65536). Read methods must return exactly qty values.
type Handler interface {
	ReadCoils(unit uint8, addr, qty uint16) ([]bool, error)
	ReadDiscreteInputs(unit uint8, addr, qty uint16) ([]bool, error)
	ReadHoldingRegisters(unit uint8, addr, qty uint16) ([]uint16, error)
	ReadInputRegisters(unit uint8, addr, qty uint16) ([]uint16, error)
	// WriteCoils serves function codes 5 and 15.
	WriteCoils(unit uint8, addr uint16, vals []bool) error
	// WriteRegisters serves function codes 6 and 16.
	WriteRegisters(unit uint8, addr uint16, vals []uint16) error
}

// DeviceIdentifier is optionally implemented by a Handler to serve function
// 43 / MEI 14 (Read Device Identification). DeviceIdentification returns the
// objects of a unit keyed by object id: 0x00 VendorName, 0x01 ProductCode,
// 0x02 MajorMinorRevision (the mandatory basic objects), 0x03 VendorUrl,
// 0x04 ProductName, 0x05 ModelName, 0x06 UserApplicationName, 0x80-0xFF
// extended objects. Errors are handled as for Handler methods. A Handler
// without this interface answers function 43 with IllegalFunction.
type DeviceIdentifier interface {
	DeviceIdentification(unit uint8) (map[byte]string, error)
}

// Object ids of Read Device Identification.
const (
	ObjVendorName          byte = 0x00
	ObjProductCode         byte = 0x01
	ObjMajorMinorRevision  byte = 0x02
	ObjVendorURL           byte = 0x03
	ObjProductName         byte = 0x04
	ObjModelName           byte = 0x05
	ObjUserApplicationName byte = 0x06
)

const (
	fcReadCoils          = 0x01
	fcReadDiscrete       = 0x02
	fcReadHolding        = 0x03
	fcReadInput          = 0x04
	fcWriteCoil          = 0x05
	fcWriteRegister      = 0x06
	fcWriteCoils         = 0x0F
	fcWriteRegisters     = 0x10
	fcEncapsulated       = 0x2B
	meiDeviceID          = 0x0E
	maxPDU               = 253 // bytes, function code included
	maxReadBits          = 2000
	maxReadRegisters     = 125
	maxWriteBits         = 1968
	maxWriteRegisters    = 123
	maxDeviceObjectBytes = maxPDU - 7 - 2
)

var be = binary.BigEndian

// isWrite reports whether fc is a write function (executed on RTU broadcast).
func isWrite(fc byte) bool {
	return fc == fcWriteCoil || fc == fcWriteRegister || fc == fcWriteCoils || fc == fcWriteRegisters
}

// exceptionPDU returns the exception reply for function fc.
func exceptionPDU(fc byte, code ExceptionCode) []byte {
	return []byte{fc | 0x80, byte(code)}
}

// errorReply converts a Handler error into a reply; send is false for
// ErrNoResponse.
func errorReply(fc byte, err error) (resp []byte, send bool) {
	if errors.Is(err, ErrNoResponse) {
		return nil, false
	}
	code := ServerDeviceFailure
	if ex, ok := errors.AsType[*Exception](err); ok && ex.Code != 0 {
		code = ex.Code
	}
	return exceptionPDU(fc, code), true
}

// checkRange validates a 4-byte "address, quantity" request body.
func checkRange(data []byte, maxQty int) (addr, qty uint16, ex ExceptionCode) {
	if len(data) != 4 {
		return 0, 0, IllegalDataValue
	}
	addr, qty = be.Uint16(data), be.Uint16(data[2:])
	if qty < 1 || int(qty) > maxQty {
		return 0, 0, IllegalDataValue
	}
	if int(addr)+int(qty) > 0x10000 {
		return 0, 0, IllegalDataAddress
	}
	return addr, qty, 0
}

// execute runs one request PDU (function code first) against h and returns
// the reply PDU; send is false when no reply must be sent. It never panics
// and never retains req.
func execute(h Handler, unit uint8, req []byte) (resp []byte, send bool) {
	if len(req) == 0 {
		return nil, false
	}
	fc, data := req[0], req[1:]
	switch fc {
	case fcReadCoils, fcReadDiscrete:
		addr, qty, ex := checkRange(data, maxReadBits)
		if ex != 0 {
			return exceptionPDU(fc, ex), true
		}
		read := h.ReadCoils
		if fc == fcReadDiscrete {
			read = h.ReadDiscreteInputs
		}
		bits, err := read(unit, addr, qty)
		if err == nil && len(bits) != int(qty) {
			err = errors.New("mbserver: handler returned wrong number of bits")
		}
		if err != nil {
			return errorReply(fc, err)
		}
		packed := packBits(bits)
		return append([]byte{fc, byte(len(packed))}, packed...), true

	case fcReadHolding, fcReadInput:
		addr, qty, ex := checkRange(data, maxReadRegisters)
		if ex != 0 {
			return exceptionPDU(fc, ex), true
		}
		read := h.ReadHoldingRegisters
		if fc == fcReadInput {
			read = h.ReadInputRegisters
		}
		regs, err := read(unit, addr, qty)
		if err == nil && len(regs) != int(qty) {
			err = errors.New("mbserver: handler returned wrong number of registers")
		}
		if err != nil {
			return errorReply(fc, err)
		}
		resp = make([]byte, 2, 2+2*len(regs))
		resp[0], resp[1] = fc, byte(2*len(regs))
		for _, r := range regs {
			resp = be.AppendUint16(resp, r)
		}
		return resp, true

	case fcWriteCoil, fcWriteRegister:
		if len(data) != 4 {
			return exceptionPDU(fc, IllegalDataValue), true
		}
		addr, val := be.Uint16(data), be.Uint16(data[2:])
		var err error
		if fc == fcWriteCoil {
			if val != 0xFF00 && val != 0x0000 {
				return exceptionPDU(fc, IllegalDataValue), true
			}
			err = h.WriteCoils(unit, addr, []bool{val == 0xFF00})
		} else {
			err = h.WriteRegisters(unit, addr, []uint16{val})
		}
		if err != nil {
			return errorReply(fc, err)
		}
		return slices.Clone(req), true

	case fcWriteCoils, fcWriteRegisters:
		if len(data) < 5 {
			return exceptionPDU(fc, IllegalDataValue), true
		}
		addr, qty, count := be.Uint16(data), int(be.Uint16(data[2:])), int(data[4])
		limit, want := maxWriteBits, (qty+7)/8
		if fc == fcWriteRegisters {
			limit, want = maxWriteRegisters, 2*qty
		}
		if qty < 1 || qty > limit || count != want || len(data) != 5+count {
			return exceptionPDU(fc, IllegalDataValue), true
		}
		if int(addr)+qty > 0x10000 {
			return exceptionPDU(fc, IllegalDataAddress), true
		}
		vals := data[5:]
		var err error
		if fc == fcWriteCoils {
			err = h.WriteCoils(unit, addr, unpackBits(vals, qty))
		} else {
			regs := make([]uint16, qty)
			for i := range regs {
				regs[i] = be.Uint16(vals[2*i:])
			}
			err = h.WriteRegisters(unit, addr, regs)
		}
		if err != nil {
			return errorReply(fc, err)
		}
		return slices.Clone(req[:5]), true

	case fcEncapsulated:
		return deviceIdentification(h, unit, data)
	}
	return exceptionPDU(fc, IllegalFunction), true
}

// deviceIdentification serves function 43 / MEI 14 (spec section 6.21).
// Read codes 01 basic, 02 regular and 03 extended are stream accesses,
// cumulative from the requested object id up to 0x02, 0x7F and 0xFF; an
// unknown starting object restarts at object 0. Read code 04 returns one
// object or IllegalDataAddress. Objects that do not fit into one PDU are
// left for the next transaction with More Follows = 0xFF.
func deviceIdentification(h Handler, unit uint8, data []byte) ([]byte, bool) {
	const fc = fcEncapsulated
	di, ok := h.(DeviceIdentifier)
	if len(data) == 0 || data[0] != meiDeviceID || !ok {
		return exceptionPDU(fc, IllegalFunction), true
	}
	if len(data) != 3 || data[1] < 1 || data[1] > 4 {
		return exceptionPDU(fc, IllegalDataValue), true
	}
	code, obj := data[1], data[2]
	objs, err := di.DeviceIdentification(unit)
	if err != nil {
		return errorReply(fc, err)
	}
	conformity := byte(0x81)
	for id := range objs {
		if id >= 0x80 {
			conformity = 0x83
		} else if id > ObjMajorMinorRevision && conformity < 0x82 {
			conformity = 0x82
		}
	}
	resp := []byte{fc, meiDeviceID, code, conformity, 0x00, 0x00, 0}
	add := func(id byte) bool {
		v := objs[id]
		if len(v) > maxDeviceObjectBytes {
			v = v[:maxDeviceObjectBytes]
		}
		if len(resp)+2+len(v) > maxPDU {
			return false
		}
		resp = append(append(resp, id, byte(len(v))), v...)
		resp[6]++
		return true
	}
	if code == 4 {
		if _, ok := objs[obj]; !ok {
			return exceptionPDU(fc, IllegalDataAddress), true
		}
		add(obj)
		return resp, true
	}
	last := [...]byte{1: 0x02, 2: 0x7F, 3: 0xFF}[code]
	if _, ok := objs[obj]; !ok || obj > last {
		obj = 0
	}
	ids := make([]byte, 0, len(objs))
	for id := range objs {
		if id >= obj && id <= last {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, cmp.Compare)
	for _, id := range ids {
		if !add(id) {
			resp[4], resp[5] = 0xFF, id
			break
		}
	}
	return resp, true
}

// packBits packs bits LSB first, as in read coil replies.
func packBits(bits []bool) []byte {
	out := make([]byte, (len(bits)+7)/8)
	for i, b := range bits {
		if b {
			out[i/8] |= 1 << (i % 8)
		}
	}
	return out
}

// unpackBits returns the first n bits of b, LSB first.
func unpackBits(b []byte, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = b[i/8]&(1<<(i%8)) != 0
	}
	return out
}

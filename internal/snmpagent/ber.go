package snmpagent

import (
	"errors"
	"fmt"
)

// This file reads just enough BER to route a message before gosnmp decodes
// it: the version and community of v1/v2c messages, and the SNMPv3 header
// and USM security parameters, which must be known (engine id, user, where
// the MAC sits) to answer with the right report when a message cannot be
// authenticated or decrypted, something gosnmp's decoder does not expose.

var errBER = errors.New("malformed BER")

const (
	tagInteger  = 0x02
	tagOctets   = 0x04
	tagSequence = 0x30
)

// tlv reads one definite-length TLV from b. It returns the tag, the
// contents, the bytes after the TLV and the length of the tag and length
// octets.
func tlv(b []byte) (tag byte, content, rest []byte, hdr int, err error) {
	if len(b) < 2 {
		return 0, nil, nil, 0, errBER
	}
	tag = b[0]
	if tag&0x1f == 0x1f { // multi-byte tags never occur in SNMP
		return 0, nil, nil, 0, errBER
	}
	n := int(b[1])
	hdr = 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 3 || len(b) < 2+k {
			return 0, nil, nil, 0, errBER
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		hdr += k
	}
	if n > len(b)-hdr {
		return 0, nil, nil, 0, errBER
	}
	return tag, b[hdr : hdr+n], b[hdr+n:], hdr, nil
}

// expect reads a TLV that must have the given tag.
func expect(b []byte, want byte) (content, rest []byte, hdr int, err error) {
	tag, content, rest, hdr, err := tlv(b)
	if err != nil {
		return nil, nil, 0, err
	}
	if tag != want {
		return nil, nil, 0, fmt.Errorf("%w: tag 0x%02x, want 0x%02x", errBER, tag, want)
	}
	return content, rest, hdr, nil
}

// berInt decodes a two's complement INTEGER of at most 8 octets.
func berInt(c []byte) (int64, error) {
	if len(c) == 0 || len(c) > 8 {
		return 0, errBER
	}
	v := int64(int8(c[0]))
	for _, b := range c[1:] {
		v = v<<8 | int64(b)
	}
	return v, nil
}

// readInt reads an INTEGER TLV.
func readInt(b []byte) (int64, []byte, error) {
	c, rest, _, err := expect(b, tagInteger)
	if err != nil {
		return 0, nil, err
	}
	v, err := berInt(c)
	return v, rest, err
}

// message is the outer layer of an SNMP message.
type message struct {
	version   int64
	community string // v1, v2c
	body      []byte // v1/v2c: the PDU; v3: everything after the version
}

// peekMessage reads the message SEQUENCE and its version, and for v1/v2c
// the community. It requires the SEQUENCE to span the whole datagram, as
// gosnmp does.
func peekMessage(b []byte) (message, error) {
	c, rest, _, err := expect(b, tagSequence)
	if err != nil {
		return message{}, err
	}
	if len(rest) != 0 {
		return message{}, fmt.Errorf("%w: %d bytes after the message", errBER, len(rest))
	}
	var m message
	if m.version, c, err = readInt(c); err != nil {
		return message{}, err
	}
	if m.version == 0 || m.version == 1 {
		comm, pdu, _, err := expect(c, tagOctets)
		if err != nil {
			return message{}, err
		}
		m.community = string(comm)
		c = pdu
	}
	m.body = c
	return m, nil
}

// v3Header is the part of an SNMPv3 message before the scoped PDU.
type v3Header struct {
	msgID      int64
	maxSize    int64
	flags      byte
	secModel   int64
	engineID   string
	boots      int64
	time       int64
	user       string
	authParams []byte
	authOff    int // offset of authParams' contents in the message
	privParams []byte
	scoped     []byte // the scoped PDU TLV: a SEQUENCE, or an OCTET STRING if encrypted
}

// parseV3Header parses msg (a whole SNMPv3 message) up to the scoped PDU.
func parseV3Header(msg []byte) (v3Header, error) {
	var h v3Header
	m, err := peekMessage(msg)
	if err != nil {
		return h, err
	}
	if m.version != 3 {
		return h, fmt.Errorf("%w: version %d", errBER, m.version)
	}
	global, rest, _, err := expect(m.body, tagSequence)
	if err != nil {
		return h, err
	}
	if h.msgID, global, err = readInt(global); err != nil {
		return h, err
	}
	if h.maxSize, global, err = readInt(global); err != nil {
		return h, err
	}
	flags, global, _, err := expect(global, tagOctets)
	if err != nil || len(flags) != 1 {
		return h, fmt.Errorf("%w: msgFlags", errBER)
	}
	h.flags = flags[0]
	if h.secModel, _, err = readInt(global); err != nil {
		return h, err
	}
	secOctets, rest, _, err := expect(rest, tagOctets)
	if err != nil {
		return h, err
	}
	h.scoped = rest
	if h.secModel != 3 {
		return h, nil // not USM: the caller reports an unknown security model
	}
	sec, _, _, err := expect(secOctets, tagSequence)
	if err != nil {
		return h, err
	}
	var eid, user []byte
	if eid, sec, _, err = expect(sec, tagOctets); err != nil {
		return h, err
	}
	h.engineID = string(eid)
	if h.boots, sec, err = readInt(sec); err != nil {
		return h, err
	}
	if h.time, sec, err = readInt(sec); err != nil {
		return h, err
	}
	if user, sec, _, err = expect(sec, tagOctets); err != nil {
		return h, err
	}
	h.user = string(user)
	if h.authParams, sec, _, err = expect(sec, tagOctets); err != nil {
		return h, err
	}
	// Every slice here is msg[i:j] for some i, so its capacity tells its
	// offset in msg.
	h.authOff = cap(msg) - cap(h.authParams)
	if h.privParams, _, _, err = expect(sec, tagOctets); err != nil {
		return h, err
	}
	return h, nil
}

// requestID extracts the request-id of a plaintext scoped PDU, or returns
// 0 (what a report carries when the request-id cannot be read).
func (h *v3Header) requestID() int64 {
	sc, _, _, err := expect(h.scoped, tagSequence)
	if err != nil {
		return 0
	}
	if _, sc, _, err = expect(sc, tagOctets); err != nil { // contextEngineID
		return 0
	}
	if _, sc, _, err = expect(sc, tagOctets); err != nil { // contextName
		return 0
	}
	_, pdu, _, _, err := tlv(sc)
	if err != nil {
		return 0
	}
	id, _, err := readInt(pdu)
	if err != nil {
		return 0
	}
	return id
}

// contextName extracts the context name of a plaintext scoped PDU.
func (h *v3Header) contextName() string {
	sc, _, _, err := expect(h.scoped, tagSequence)
	if err != nil {
		return ""
	}
	if _, sc, _, err = expect(sc, tagOctets); err != nil {
		return ""
	}
	name, _, _, err := expect(sc, tagOctets)
	if err != nil {
		return ""
	}
	return string(name)
}

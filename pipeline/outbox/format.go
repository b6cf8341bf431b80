package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"
)

// The on-disk format; see the package documentation.
const (
	segMagic     = "FGOB"
	segVersion   = 1
	segHeaderLen = 24
	segExt       = ".seg"

	recPrefixLen = 8  // body length, CRC-32C of the body
	recFixedLen  = 22 // seq, time, class, flags, key length, topic length

	// maxBody bounds one record, so a corrupt length cannot make Open
	// allocate gigabytes.
	maxBody = 64 << 20

	// maxSeq bounds seqs read from disk, so that a damaged file cannot make
	// NextSeq wrap around; a real outbox does not get near it.
	maxSeq = 1 << 62

	flagRetain = 1 << 0

	stateMagic   = "FGOS"
	stateVersion = 1
	stateLen     = 40
	stateName    = "state"
	lockName     = "LOCK"
	tmpExt       = ".tmp"
)

var (
	le         = binary.LittleEndian
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// segName is the file name of the segment whose first seq is base; the
// fixed width makes lexical order the seq order.
func segName(base uint64) string { return fmt.Sprintf("%020d%s", base, segExt) }

// parseSegName returns the base seq of a segment file name.
func parseSegName(name string) (uint64, bool) {
	if len(name) != 20+len(segExt) || name[20:] != segExt {
		return 0, false
	}
	var base uint64
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if base > (1<<64-1-d)/10 {
			return 0, false
		}
		base = base*10 + d
	}
	return base, base < maxSeq
}

// errBadHeader is a segment header that is damaged or not one at all.
var errBadHeader = errors.New("not an outbox segment header")

// unknownVersionError is a header this facgw cannot read, most likely
// written by a newer one.
type unknownVersionError struct{ version uint16 }

func (e unknownVersionError) Error() string {
	return fmt.Sprintf("unknown segment format version %d (this facgw reads version %d)", e.version, segVersion)
}

func encodeHeader(base uint64) []byte {
	b := make([]byte, segHeaderLen)
	copy(b, segMagic)
	le.PutUint16(b[4:], segVersion)
	le.PutUint16(b[6:], segHeaderLen)
	le.PutUint64(b[8:], base)
	le.PutUint32(b[20:], checksum(b[:20]))
	return b
}

// decodeHeader checks a segment header and returns its base seq. The version
// is checked before the checksum: a newer facgw may lay its header out
// differently.
func decodeHeader(b []byte) (uint64, error) {
	if len(b) < 8 || string(b[:4]) != segMagic {
		return 0, errBadHeader
	}
	if v := le.Uint16(b[4:]); v != segVersion {
		return 0, unknownVersionError{v}
	}
	if len(b) < segHeaderLen || le.Uint16(b[6:]) != segHeaderLen {
		return 0, fmt.Errorf("%w: header length %d", errBadHeader, le.Uint16(b[6:]))
	}
	if le.Uint32(b[20:]) != checksum(b[:20]) {
		return 0, fmt.Errorf("%w: checksum mismatch", errBadHeader)
	}
	if le.Uint32(b[16:]) != 0 {
		return 0, fmt.Errorf("%w: unknown flags %#x", errBadHeader, le.Uint32(b[16:]))
	}
	return le.Uint64(b[8:]), nil
}

// recordLen is the size on disk of m's record.
func recordLen(m *Message) int {
	return recPrefixLen + recFixedLen + len(m.Key) + len(m.Topic) + len(m.Payload)
}

// appendRecord encodes m as a record into dst[:0], reusing its capacity.
func appendRecord(dst []byte, m *Message) []byte {
	total := recordLen(m)
	b := slices.Grow(dst[:0], total)[:total]
	le.PutUint32(b[0:], uint32(total-recPrefixLen))
	le.PutUint64(b[8:], m.Seq)
	le.PutUint64(b[16:], uint64(m.Time.UnixNano()))
	b[24] = byte(m.Class)
	b[25] = 0
	if m.Retain {
		b[25] = flagRetain
	}
	le.PutUint16(b[26:], uint16(len(m.Key)))
	le.PutUint16(b[28:], uint16(len(m.Topic)))
	p := recPrefixLen + recFixedLen
	p += copy(b[p:], m.Key)
	p += copy(b[p:], m.Topic)
	copy(b[p:], m.Payload)
	le.PutUint32(b[4:], checksum(b[recPrefixLen:]))
	return b
}

// recHeader is the fixed part of a record body.
type recHeader struct {
	seq      uint64
	time     int64
	class    Class
	flags    uint8
	keyLen   int
	topicLen int
}

// parseBody checks and decodes the fixed part of a record body whose
// checksum was verified.
func parseBody(body []byte) (recHeader, error) {
	if len(body) < recFixedLen {
		return recHeader{}, errors.New("record body too short")
	}
	h := recHeader{
		seq:      le.Uint64(body[0:]),
		time:     int64(le.Uint64(body[8:])),
		class:    Class(body[16]),
		flags:    body[17],
		keyLen:   int(le.Uint16(body[18:])),
		topicLen: int(le.Uint16(body[20:])),
	}
	switch {
	case h.seq == 0 || h.seq >= maxSeq:
		return h, fmt.Errorf("implausible seq %d", h.seq)
	case h.class > Control:
		return h, fmt.Errorf("unknown class %d", h.class)
	case h.flags&^flagRetain != 0:
		return h, fmt.Errorf("unknown record flags %#x", h.flags)
	case recFixedLen+h.keyLen+h.topicLen > len(body):
		return h, errors.New("key and topic longer than the record")
	}
	return h, nil
}

// interner returns a string equal to b, shared with earlier calls where it
// can: topics and keys repeat, and Peek would otherwise allocate two strings
// per message.
type interner map[string]string

func (in interner) str(b []byte) string {
	if s, ok := in[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in) < 4096 {
		in[s] = s
	}
	return s
}

// decodeMessage decodes a verified record body. The payload aliases body.
func decodeMessage(body []byte, h recHeader, in interner) Message {
	p := recFixedLen
	key := body[p : p+h.keyLen]
	p += h.keyLen
	topic := body[p : p+h.topicLen]
	p += h.topicLen
	return Message{
		Seq:     h.seq,
		Class:   h.class,
		Key:     in.str(key),
		Topic:   in.str(topic),
		Payload: body[p:len(body):len(body)],
		Retain:  h.flags&flagRetain != 0,
		Time:    time.Unix(0, h.time).UTC(),
	}
}

// persisted is the content of the state file.
type persisted struct {
	head, next, dropped uint64
}

func encodeState(s persisted) []byte {
	b := make([]byte, stateLen)
	copy(b, stateMagic)
	le.PutUint16(b[4:], stateVersion)
	le.PutUint16(b[6:], stateLen)
	le.PutUint64(b[8:], s.head)
	le.PutUint64(b[16:], s.next)
	le.PutUint64(b[24:], s.dropped)
	le.PutUint32(b[36:], checksum(b[:36]))
	return b
}

func decodeState(b []byte) (persisted, error) {
	switch {
	case len(b) < 8 || string(b[:4]) != stateMagic:
		return persisted{}, errors.New("not an outbox state file")
	case le.Uint16(b[4:]) != stateVersion:
		return persisted{}, fmt.Errorf("unknown state format version %d", le.Uint16(b[4:]))
	case len(b) != stateLen || le.Uint16(b[6:]) != stateLen:
		return persisted{}, fmt.Errorf("state file of %d bytes, want %d", len(b), stateLen)
	case le.Uint32(b[36:]) != checksum(b[:36]):
		return persisted{}, errors.New("state file checksum mismatch")
	}
	st := persisted{head: le.Uint64(b[8:]), next: le.Uint64(b[16:]), dropped: le.Uint64(b[24:])}
	if st.next >= maxSeq || st.head > st.next {
		return persisted{}, fmt.Errorf("implausible state: head %d, next seq %d", st.head, st.next)
	}
	return st, nil
}

package snmpagent

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxOIDArcs is the most sub-identifiers an OID may have (RFC 2578 3.5).
const maxOIDArcs = 128

var errBadOID = errors.New("invalid object identifier")

// oid is a parsed object identifier. Its arcs are compared numerically, so
// 1.3.6.1.2 sorts before 1.3.6.1.10 (a string comparison would not).
type oid []uint32

// parseOID parses a dotted OID, with or without the leading dot that gosnmp
// and net-snmp print. It accepts exactly what gosnmp can encode: at least two
// arcs, the first 0..2, the second below 40 unless the first is 2, at most
// 128 arcs.
func parseOID(s string) (oid, error) {
	s = strings.TrimPrefix(s, ".")
	if s == "" {
		return nil, fmt.Errorf("%w: empty", errBadOID)
	}
	arcs := make(oid, 0, strings.Count(s, ".")+1)
	for part := range strings.SplitSeq(s, ".") {
		if part == "" || len(part) > 10 || (len(part) > 1 && part[0] == '0') {
			return nil, fmt.Errorf("%w: %q", errBadOID, s)
		}
		n, err := strconv.ParseUint(part, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: %q", errBadOID, s)
		}
		arcs = append(arcs, uint32(n))
	}
	if len(arcs) < 2 || len(arcs) > maxOIDArcs || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40) {
		return nil, fmt.Errorf("%w: %q", errBadOID, s)
	}
	return arcs, nil
}

// String returns the OID in dotted form without a leading dot.
func (o oid) String() string {
	b := make([]byte, 0, len(o)*4)
	for i, a := range o {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendUint(b, uint64(a), 10)
	}
	return string(b)
}

// compare orders OIDs lexicographically by numeric arcs; a prefix sorts
// before every OID that extends it.
func (o oid) compare(p oid) int {
	n := min(len(o), len(p))
	for i := 0; i < n; i++ {
		switch {
		case o[i] < p[i]:
			return -1
		case o[i] > p[i]:
			return 1
		}
	}
	switch {
	case len(o) < len(p):
		return -1
	case len(o) > len(p):
		return 1
	}
	return 0
}

// hasPrefix reports whether p is a prefix of o (or equal to it).
func (o oid) hasPrefix(p oid) bool {
	if len(p) > len(o) {
		return false
	}
	for i := range p {
		if o[i] != p[i] {
			return false
		}
	}
	return true
}

// NormalizeOID returns oid in the canonical form this package uses, dotted
// without a leading dot, or an error if it is not a valid OID.
func NormalizeOID(s string) (string, error) {
	o, err := parseOID(s)
	if err != nil {
		return "", err
	}
	return o.String(), nil
}

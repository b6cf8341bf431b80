package snmpagent

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/gosnmp/gosnmp"
)

// SetFunc is called when a manager SETs a writable OID, with the OID
// (canonical form) and the new value, already checked to have the stored
// type. It runs on the goroutine of the Serve call that received the SET
// (so SetFuncs run one at a time unless the agent serves several sockets)
// with the Store unlocked, so it may read and write other OIDs (a PDU
// outlet control OID switching the outlet state OID, say). Returning nil accepts the value, which is then stored;
// returning an error rejects it: the manager gets the StatusError's status
// if the error is one (errors.As), else wrongValue.
type SetFunc func(oid string, v Value) error

// StatusError is an error a SetFunc returns to choose the SNMP error status
// of its rejection, e.g. StatusError(gosnmp.InconsistentValue). SNMPv1
// managers get it mapped as RFC 3584 section 4.4 says.
type StatusError gosnmp.SNMPError

// Error implements error.
func (e StatusError) Error() string {
	return "snmpagent: set rejected: " + gosnmp.SNMPError(e).String()
}

// Store holds the agent's data: OIDs with typed values, kept in numeric
// OID order for GETNEXT and GETBULK. All methods are safe for concurrent
// use; a simulator updates values while the agent serves them. OIDs are
// accepted with or without a leading dot and reported without one.
type Store struct {
	mu     sync.RWMutex
	sorted []*entry          // by oid
	byName map[string]*entry // canonical OID string
}

type entry struct {
	oid      oid
	name     string
	val      Value
	writable bool
	onSet    SetFunc
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{byName: make(map[string]*entry)}
}

// Set stores v at oid, adding the OID if it is new. A new OID is
// read-only; an existing one keeps its writability and SetFunc.
func (s *Store) Set(name string, v Value) error {
	return s.put(name, v, false, nil)
}

// SetWritable stores v at oid and makes it writable by SNMP SET, calling fn
// (which may be nil) before each accepted SET.
func (s *Store) SetWritable(name string, v Value, fn SetFunc) error {
	return s.put(name, v, true, fn)
}

// MustSet is Set for static tables built by code: it panics on an invalid
// OID or value.
func (s *Store) MustSet(name string, v Value) {
	if err := s.Set(name, v); err != nil {
		panic(err)
	}
}

func (s *Store) put(name string, v Value, writable bool, fn SetFunc) error {
	o, err := parseOID(name)
	if err != nil {
		return fmt.Errorf("snmpagent: store: %w", err)
	}
	if err := v.Validate(); err != nil {
		return fmt.Errorf("snmpagent: store %s: %w", o, err)
	}
	if v.Type == gosnmp.ObjectIdentifier {
		v.Str, _ = NormalizeOID(v.Str)
	}
	key := o.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byName[key]; ok {
		e.val = v
		if writable {
			e.writable, e.onSet = true, fn
		}
		return nil
	}
	e := &entry{oid: o, name: key, val: v, writable: writable, onSet: fn}
	i, _ := s.search(o)
	s.sorted = slices.Insert(s.sorted, i, e)
	s.byName[key] = e
	return nil
}

// search finds o in s.sorted; the caller holds the lock.
func (s *Store) search(o oid) (int, bool) {
	return slices.BinarySearchFunc(s.sorted, o, func(e *entry, t oid) int { return e.oid.compare(t) })
}

// Get returns the value at oid.
func (s *Store) Get(name string) (Value, bool) {
	o, err := parseOID(name)
	if err != nil {
		return Value{}, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.byName[o.String()]
	if !ok {
		return Value{}, false
	}
	return e.val, true
}

// Delete removes oid and reports whether it was present.
func (s *Store) Delete(name string) bool {
	o, err := parseOID(name)
	if err != nil {
		return false
	}
	key := o.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byName[key]; !ok {
		return false
	}
	delete(s.byName, key)
	i, _ := s.search(o)
	s.sorted = slices.Delete(s.sorted, i, i+1)
	return true
}

// Next returns the first OID after oid in numeric order, with its value,
// or ok false at the end: what GETNEXT answers.
func (s *Store) Next(name string) (next string, v Value, ok bool) {
	o, err := parseOID(name)
	if err != nil {
		return "", Value{}, false
	}
	r, ok := s.next(o, false)
	return r.name, r.val, ok
}

// Len returns the number of OIDs stored.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sorted)
}

// Walk calls fn for every OID in numeric order until fn returns false. The
// Store is read-locked meanwhile: fn must not modify it.
func (s *Store) Walk(fn func(name string, v Value) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, e := range s.sorted {
		if !fn(e.name, e.val) {
			return
		}
	}
}

// snapshot is an entry's state read under the lock.
type snapshot struct {
	oid      oid
	name     string
	val      Value
	writable bool
	onSet    SetFunc
}

func (e *entry) snap() snapshot {
	return snapshot{oid: e.oid, name: e.name, val: e.val, writable: e.writable, onSet: e.onSet}
}

// lookup returns the entry at o exactly.
func (s *Store) lookup(o oid) (snapshot, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, found := s.search(o)
	if !found {
		return snapshot{}, false
	}
	return s.sorted[i].snap(), true
}

// next returns the first entry after o; with skip64 it skips Counter64
// values, which an SNMPv1 GETNEXT must step over (RFC 3584 4.2.2.1).
func (s *Store) next(o oid, skip64 bool) (snapshot, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, found := s.search(o)
	if found {
		i++
	}
	for ; i < len(s.sorted); i++ {
		if skip64 && s.sorted[i].val.Type == gosnmp.Counter64 {
			continue
		}
		return s.sorted[i].snap(), true
	}
	return snapshot{}, false
}

// instanceMissing tells noSuchInstance from noSuchObject for an OID that is
// not stored: it is an instance of a known object if some stored OID
// extends it (the manager left out the instance, as in GET sysDescr) or if
// a neighbour in OID order is a sibling instance (same parent, same depth:
// another row of the column, or .0 of a scalar next to it). A heuristic,
// since the Store knows no MIB, but it matches what net-snmp answers for
// the usual mistakes.
func (s *Store) instanceMissing(o oid) bool {
	if len(o) < 2 {
		return false
	}
	parent := o[:len(o)-1]
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, _ := s.search(o)
	if i < len(s.sorted) {
		n := s.sorted[i].oid
		if n.hasPrefix(o) || (len(n) == len(o) && n.hasPrefix(parent)) {
			return true
		}
	}
	if i > 0 {
		p := s.sorted[i-1].oid
		if len(p) == len(o) && p.hasPrefix(parent) {
			return true
		}
	}
	return false
}

// errNotStored is returned by update when the OID was deleted meanwhile.
var errNotStored = errors.New("snmpagent: oid not stored")

// update stores v at an existing OID (a SET that was accepted).
func (s *Store) update(name string, v Value) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byName[name]
	if !ok {
		return errNotStored
	}
	e.val = v
	return nil
}

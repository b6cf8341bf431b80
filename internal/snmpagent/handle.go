package snmpagent

import (
	"errors"

	"github.com/gosnmp/gosnmp"
)

// maxBulkVarbinds caps a GETBULK reply whatever the message size allows,
// so a max-repetitions of 2^31 costs bounded work.
const maxBulkVarbinds = 2048

// response is the outcome of a request, before encoding.
type response struct {
	status  gosnmp.SNMPError
	index   int
	vars    []gosnmp.SnmpPDU
	request []gosnmp.SnmpPDU // the request's varbinds, for a v1 tooBig
	bulk    bool             // a GETBULK reply, which may be cut to fit
}

// encoder marshals a Response PDU with the given error and varbinds.
type encoder func(status gosnmp.SNMPError, index uint8, vars []gosnmp.SnmpPDU) ([]byte, error)

// process executes a decoded request. ok is false when the PDU is not a
// request an agent answers.
func (a *Agent) process(pkt *gosnmp.SnmpPacket, v gosnmp.SnmpVersion, canWrite bool, limit int, f Fault) (r response, ok bool) {
	v1 := v == gosnmp.Version1
	switch pkt.PDUType {
	case gosnmp.GetRequest:
		a.c.gets.Add(1)
	case gosnmp.GetNextRequest:
		a.c.getNexts.Add(1)
	case gosnmp.GetBulkRequest:
		if v1 {
			a.c.unexpected.Add(1)
			return r, false
		}
		a.c.getBulks.Add(1)
	case gosnmp.SetRequest:
		a.c.sets.Add(1)
	default:
		a.c.unexpected.Add(1)
		return r, false
	}
	vars := pkt.Variables
	if f.Kind == FaultError {
		status := f.Status
		if status == gosnmp.NoError {
			status = gosnmp.GenErr
		}
		if v1 {
			status = v1Status(status)
		}
		r = response{status: status, vars: vars, request: vars}
		if len(vars) > 0 {
			r.index = 1
		}
		return r, true
	}
	switch pkt.PDUType {
	case gosnmp.GetRequest:
		r = a.get(vars, v1)
	case gosnmp.GetNextRequest:
		r = a.getNext(vars, v1)
	case gosnmp.GetBulkRequest:
		r = a.getBulk(vars, int(pkt.NonRepeaters), int(pkt.MaxRepetitions), limit)
	case gosnmp.SetRequest:
		r = a.set(vars, v1, canWrite)
		if r.status != gosnmp.NoError {
			a.c.setsRejected.Add(1)
		}
	}
	r.request = vars
	return r, true
}

// fail returns an error response echoing the request's varbinds.
func fail(vars []gosnmp.SnmpPDU, status gosnmp.SNMPError, i int, v1 bool) response {
	if v1 {
		status = v1Status(status)
	}
	return response{status: status, index: i + 1, vars: vars}
}

func (a *Agent) get(vars []gosnmp.SnmpPDU, v1 bool) response {
	out := make([]gosnmp.SnmpPDU, len(vars))
	for i, vb := range vars {
		o, err := parseOID(vb.Name)
		if err == nil {
			if e, ok := a.store.lookup(o); ok && !(v1 && e.val.Type == gosnmp.Counter64) {
				out[i] = e.val.pdu(e.name)
				continue
			}
		}
		if v1 {
			return fail(vars, gosnmp.NoSuchName, i, v1)
		}
		t := gosnmp.NoSuchObject
		if err == nil && a.store.instanceMissing(o) {
			t = gosnmp.NoSuchInstance
		}
		out[i] = gosnmp.SnmpPDU{Name: vb.Name, Type: t}
	}
	return response{vars: out}
}

func (a *Agent) getNext(vars []gosnmp.SnmpPDU, v1 bool) response {
	out := make([]gosnmp.SnmpPDU, len(vars))
	for i, vb := range vars {
		o, err := parseOID(vb.Name)
		if err != nil {
			o = oid{0, 0} // gosnmp's rendering of an empty OID; walk from the start
		}
		if e, ok := a.store.next(o, v1); ok {
			out[i] = e.val.pdu(e.name)
			continue
		}
		if v1 {
			return fail(vars, gosnmp.NoSuchName, i, v1)
		}
		out[i] = gosnmp.SnmpPDU{Name: vb.Name, Type: gosnmp.EndOfMibView}
	}
	return response{vars: out}
}

// getBulk answers GETBULK (RFC 3416 4.2.3): GETNEXT for the first
// nonRep varbinds, then up to maxRep rows for the others, stopping early
// when every column has reached the end of the MIB or the reply would no
// longer fit in limit bytes.
func (a *Agent) getBulk(vars []gosnmp.SnmpPDU, nonRep, maxRep, limit int) response {
	nonRep = min(max(nonRep, 0), len(vars))
	r := a.getNext(vars[:nonRep], false)
	out := r.vars
	size := 0
	for _, p := range out {
		size += pduSize(p)
	}
	rep := vars[nonRep:]
	if len(rep) == 0 || maxRep <= 0 {
		return response{vars: out, bulk: true}
	}
	cur := make([]oid, len(rep))
	names := make([]string, len(rep))
	ended := make([]bool, len(rep))
	for j, vb := range rep {
		o, err := parseOID(vb.Name)
		if err != nil {
			o = oid{0, 0}
		}
		cur[j], names[j] = o, vb.Name
	}
	for n := 0; n < maxRep; n++ {
		more := false
		for j := range rep {
			p := gosnmp.SnmpPDU{Name: names[j], Type: gosnmp.EndOfMibView}
			if !ended[j] {
				if e, ok := a.store.next(cur[j], false); ok {
					p = e.val.pdu(e.name)
					cur[j], names[j] = e.oid, e.name
					more = true
				} else {
					ended[j] = true
				}
			}
			out = append(out, p)
			size += pduSize(p)
		}
		if !more || size > limit || len(out) >= maxBulkVarbinds {
			break
		}
	}
	return response{vars: out, bulk: true}
}

// pduSize estimates the encoded size of a varbind from above.
func pduSize(p gosnmp.SnmpPDU) int {
	n := 12 + len(p.Name) // SEQUENCE, OID and value headers; an OID never encodes longer than its dotted text
	switch v := p.Value.(type) {
	case []byte:
		n += len(v)
	case string:
		n += len(v)
	default:
		n += 9
	}
	return n
}

// set executes a SET as if simultaneously (RFC 3416 4.2.5): every varbind
// is checked before any SetFunc runs; if a SetFunc rejects its value, the
// values stored for the earlier varbinds are put back (their SetFuncs'
// side effects are not undone).
func (a *Agent) set(vars []gosnmp.SnmpPDU, v1, canWrite bool) response {
	if !canWrite {
		if len(vars) == 0 {
			return response{status: v1StatusIf(gosnmp.NoAccess, v1)}
		}
		return fail(vars, gosnmp.NoAccess, 0, v1)
	}
	type change struct {
		e   snapshot
		val Value
	}
	changes := make([]change, len(vars))
	for i, vb := range vars {
		o, err := parseOID(vb.Name)
		if err != nil {
			return fail(vars, gosnmp.NoCreation, i, v1)
		}
		e, ok := a.store.lookup(o)
		switch {
		case !ok:
			return fail(vars, gosnmp.NoCreation, i, v1)
		case !e.writable:
			return fail(vars, gosnmp.NotWritable, i, v1)
		}
		val := ValueFromPDU(vb)
		if val.Type != e.val.Type {
			return fail(vars, gosnmp.WrongType, i, v1)
		}
		if err := val.Validate(); err != nil {
			return fail(vars, gosnmp.WrongValue, i, v1)
		}
		if val.Type == gosnmp.ObjectIdentifier {
			val.Str, _ = NormalizeOID(val.Str)
		}
		changes[i] = change{e, val}
	}
	out := make([]gosnmp.SnmpPDU, len(vars))
	for i, c := range changes {
		err := error(nil)
		if c.e.onSet != nil {
			err = c.e.onSet(c.e.name, c.val)
		}
		if err == nil {
			err = a.store.update(c.e.name, c.val)
		}
		if err != nil {
			for _, done := range changes[:i] {
				_ = a.store.update(done.e.name, done.e.val)
			}
			status := gosnmp.WrongValue
			var se StatusError
			switch {
			case errors.As(err, &se):
				status = gosnmp.SNMPError(se)
			case errors.Is(err, errNotStored):
				status = gosnmp.CommitFailed
			}
			return fail(vars, status, i, v1)
		}
		out[i] = c.val.pdu(c.e.name)
	}
	return response{vars: out}
}

// v1Status maps an SNMPv2 error status to SNMPv1 (RFC 3584 4.4).
func v1Status(s gosnmp.SNMPError) gosnmp.SNMPError {
	switch s {
	case gosnmp.NoError, gosnmp.TooBig, gosnmp.NoSuchName, gosnmp.BadValue, gosnmp.ReadOnly, gosnmp.GenErr:
		return s
	case gosnmp.WrongValue, gosnmp.WrongEncoding, gosnmp.WrongType, gosnmp.WrongLength, gosnmp.InconsistentValue:
		return gosnmp.BadValue
	case gosnmp.NoAccess, gosnmp.NotWritable, gosnmp.NoCreation, gosnmp.InconsistentName, gosnmp.AuthorizationError:
		return gosnmp.NoSuchName
	}
	return gosnmp.GenErr
}

func v1StatusIf(s gosnmp.SNMPError, v1 bool) gosnmp.SNMPError {
	if v1 {
		return v1Status(s)
	}
	return s
}

// encodeFit encodes r within limit bytes: a GETBULK reply loses trailing
// varbinds until it fits; any other reply too large becomes tooBig
// (with the request's varbinds on v1, none on v2c and v3, RFC 3416 4.2.1).
// It returns nil if nothing can be sent.
func (a *Agent) encodeFit(r response, limit int, v gosnmp.SnmpVersion, enc encoder) []byte {
	index := uint8(min(r.index, 255)) // gosnmp's error index is one octet
	b, err := enc(r.status, index, r.vars)
	if err != nil {
		a.log.Debug("snmpagent: encode reply", "err", err)
		return nil
	}
	for r.bulk && len(b) > limit && len(r.vars) > 1 {
		keep := min(len(r.vars)*limit/len(b), len(r.vars)-1)
		r.vars = r.vars[:max(keep, 1)]
		if b, err = enc(r.status, index, r.vars); err != nil {
			return nil
		}
	}
	if len(b) <= limit {
		return b
	}
	var vars []gosnmp.SnmpPDU
	if v == gosnmp.Version1 {
		vars = r.request
	}
	if b, err = enc(gosnmp.TooBig, 0, vars); err != nil || len(b) > limit {
		return nil
	}
	return b
}

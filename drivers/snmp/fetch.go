package snmp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gosnmp/gosnmp"

	"github.com/facgw/facgw/internal/point"
)

// maxRows caps the rows one column walk collects, so that an agent that
// keeps answering (a broken lexicographic order, a huge table) cannot
// exhaust memory.
const maxRows = 10000

// varResult is the outcome for one scalar instance: the varbind, or why
// there is none.
type varResult struct {
	pdu    gosnmp.SnmpPDU
	reason string
}

// row is one row of a walked column: the instance suffix after the column
// OID (the table index, "3" or "1.2") and its varbind.
type row struct {
	index string
	pdu   gosnmp.SnmpPDU
}

// colResult is the outcome of walking one column.
type colResult struct {
	rows   []row
	reason string // the walk failed; rows are incomplete
}

// fetcher runs the requests of one poll of one device.
type fetcher struct {
	d   *Device
	ctx context.Context
	// dead is the reason of a failure that every further request would
	// share (no reply, refused socket, refused credentials): later
	// requests of this poll are not sent, their points get this reason.
	dead string
	// answered says the agent answered at least one request.
	answered bool
}

// do sends one request on the device's session, opening it first if
// needed. Requests are serialised per device.
func (f *fetcher) do(req func(c client) (*gosnmp.SnmpPacket, error)) (*gosnmp.SnmpPacket, string) {
	d := f.d
	switch err := f.ctx.Err(); {
	case errors.Is(err, context.DeadlineExceeded):
		return nil, point.ReasonNotPolled + ": poll deadline reached first"
	case err != nil:
		return nil, point.ReasonNotPolled + ": poll cancelled"
	}
	d.reqMu.Lock()
	defer d.reqMu.Unlock()
	if d.cl == nil {
		c, err := d.open(d.cfg)
		if err != nil {
			return nil, point.ReasonConnection + ": " + err.Error()
		}
		d.cl = c
	}
	d.requests.Add(1)
	pkt, err := req(d.cl)
	if err != nil {
		return nil, f.reasonOf(err)
	}
	f.answered = true
	return pkt, ""
}

// reasonOf is Reason with a hint for SNMPv3 with privacy, where an agent
// that cannot decrypt a request (a wrong privacy passphrase) drops it
// silently.
func (f *fetcher) reasonOf(err error) string {
	r := Reason(err)
	if r == point.ReasonTimeout && f.d.cfg.Version == "3" && f.d.cfg.V3.PrivPass != "" {
		r += " (with SNMPv3 privacy a wrong privacy passphrase looks the same: the agent drops what it cannot decrypt)"
	}
	return r
}

// get reads scalar instances in GETs of at most MaxVarbinds varbinds and
// returns a result for every OID.
func (f *fetcher) get(oids []string) map[string]varResult {
	out := make(map[string]varResult, len(oids))
	n := f.d.cfg.MaxVarbinds
	f.d.mu.Lock()
	if f.d.getMax > 0 {
		n = f.d.getMax
	}
	f.d.mu.Unlock()
	for i := 0; i < len(oids); i += n {
		f.getBatch(oids[i:min(i+n, len(oids))], out)
	}
	return out
}

// getBatch sends one GET. A reply with an error status splits the batch:
// tooBig (or an error without an index) into halves, an error that names
// a varbind into that varbind, which gets the status as its reason, and
// the rest, which is asked again. So one bad OID costs one point.
func (f *fetcher) getBatch(oids []string, out map[string]varResult) {
	if len(oids) == 0 {
		return
	}
	if f.dead != "" {
		for _, o := range oids {
			out[o] = varResult{reason: f.dead}
		}
		return
	}
	pkt, reason := f.do(func(c client) (*gosnmp.SnmpPacket, error) { return c.get(f.ctx, oids) })
	if reason != "" {
		for _, o := range oids {
			out[o] = varResult{reason: reason}
		}
		if transportFailure(reason) {
			f.dead = reason
		}
		return
	}
	if pkt.Error != gosnmp.NoError {
		idx := int(pkt.ErrorIndex)
		switch {
		case len(oids) == 1:
			out[oids[0]] = varResult{reason: statusReason(pkt.Error)}
		case pkt.Error != gosnmp.TooBig && idx >= 1 && idx <= len(oids):
			out[oids[idx-1]] = varResult{reason: statusReason(pkt.Error)}
			rest := append(append([]string(nil), oids[:idx-1]...), oids[idx:]...)
			f.getBatch(rest, out)
		default:
			h := len(oids) / 2
			if pkt.Error == gosnmp.TooBig {
				f.d.mu.Lock()
				if f.d.getMax == 0 || h < f.d.getMax {
					f.d.getMax = h
				}
				f.d.mu.Unlock()
			}
			f.getBatch(oids[:h], out)
			f.getBatch(oids[h:], out)
		}
		return
	}
	// Match varbinds to the request by OID, not by position: an agent
	// that reorders or renames varbinds must not move a value onto
	// another point.
	got := make(map[string]gosnmp.SnmpPDU, len(pkt.Variables))
	for _, v := range pkt.Variables {
		got[strings.TrimPrefix(v.Name, ".")] = v
	}
	for _, o := range oids {
		if v, ok := got[o]; ok {
			out[o] = varResult{pdu: v}
		} else {
			out[o] = varResult{reason: point.ReasonProtocol + ": the reply has no varbind for " + o}
		}
	}
}

// walkState is one column being walked.
type walkState struct {
	col  string
	next string // the last OID returned; the next request continues there
	done bool
	res  *colResult
}

// walk reads every row of the columns. Columns are walked side by side:
// one GETBULK (v2c, v3) or GETNEXT (v1) carries up to MaxVarbinds columns,
// each continuing from its last OID, until every column has left its
// subtree. A reply with tooBig halves max-repetitions, then the columns
// per request; an error status naming a column ends that column with the
// status as its reason (on v1, noSuchName is just the end of the MIB).
func (f *fetcher) walk(cols []string) map[string]*colResult {
	out := make(map[string]*colResult, len(cols))
	states := make([]*walkState, len(cols))
	for i, c := range cols {
		states[i] = &walkState{col: c, next: c, res: &colResult{}}
		out[c] = states[i].res
	}
	v1 := f.d.cfg.Version == "1"
	maxRep := uint32(f.d.cfg.MaxRepetitions)
	perReq := f.d.cfg.MaxVarbinds
	f.d.mu.Lock()
	if f.d.bulkRep > 0 {
		maxRep = f.d.bulkRep
	}
	if f.d.bulkCols > 0 {
		perReq = f.d.bulkCols
	}
	f.d.mu.Unlock()
	learn := func() {
		f.d.mu.Lock()
		if !v1 {
			f.d.bulkRep = maxRep
		}
		f.d.bulkCols = perReq
		f.d.mu.Unlock()
	}
	for {
		var batch []*walkState
		for _, s := range states {
			if !s.done && len(batch) < perReq {
				batch = append(batch, s)
			}
		}
		if len(batch) == 0 {
			return out
		}
		if f.dead != "" {
			for _, s := range states {
				if !s.done {
					s.done, s.res.reason = true, f.dead
				}
			}
			return out
		}
		nexts := make([]string, len(batch))
		for i, s := range batch {
			nexts[i] = s.next
		}
		pkt, reason := f.do(func(c client) (*gosnmp.SnmpPacket, error) {
			if v1 {
				return c.getNext(f.ctx, nexts)
			}
			return c.getBulk(f.ctx, nexts, maxRep)
		})
		if reason != "" {
			for _, s := range batch {
				s.done, s.res.reason = true, reason
			}
			if transportFailure(reason) {
				f.dead = reason
			}
			continue
		}
		if pkt.Error != gosnmp.NoError {
			idx := int(pkt.ErrorIndex)
			switch {
			case pkt.Error == gosnmp.TooBig && !v1 && maxRep > 1:
				maxRep = max(1, maxRep/2)
				learn()
			case pkt.Error == gosnmp.TooBig && len(batch) > 1:
				perReq = max(1, len(batch)/2)
				learn()
			case idx >= 1 && idx <= len(batch):
				s := batch[idx-1]
				s.done = true
				if !(v1 && pkt.Error == gosnmp.NoSuchName) {
					s.res.reason = statusReason(pkt.Error)
				}
			default:
				for _, s := range batch {
					s.done, s.res.reason = true, statusReason(pkt.Error)
				}
			}
			continue
		}
		if !f.collect(batch, pkt.Variables, v1) {
			for _, s := range batch {
				if !s.done {
					s.done, s.res.reason = true, point.ReasonProtocol+": the walk of "+s.col+" made no progress"
				}
			}
		}
	}
}

// collect takes the rows of one GETBULK or GETNEXT reply. The varbinds
// of a GETBULK come repetition by repetition, each with one varbind per
// requested column in request order. It reports whether any column
// advanced or ended.
func (f *fetcher) collect(batch []*walkState, vars []gosnmp.SnmpPDU, v1 bool) bool {
	progress := false
	n := len(batch)
	for j, s := range batch {
		prefix := s.col + "."
		for r := 0; ; r++ {
			k := r*n + j
			if k >= len(vars) || (v1 && r > 0) {
				break
			}
			v := vars[k]
			name := strings.TrimPrefix(v.Name, ".")
			if v.Type == gosnmp.EndOfMibView || v.Type == gosnmp.NoSuchObject || v.Type == gosnmp.NoSuchInstance ||
				!strings.HasPrefix(name, prefix) {
				s.done, progress = true, true
				break
			}
			if compareOID(name, s.next) <= 0 {
				s.done, progress = true, true
				s.res.reason = fmt.Sprintf("%s: the agent returned %s after %s (OIDs not increasing)", point.ReasonProtocol, name, s.next)
				break
			}
			if len(s.res.rows) >= maxRows {
				s.done, progress = true, true
				s.res.reason = fmt.Sprintf("%s: more than %d rows in %s", point.ReasonProtocol, maxRows, s.col)
				break
			}
			s.res.rows = append(s.res.rows, row{index: name[len(prefix):], pdu: v})
			s.next, progress = name, true
		}
	}
	return progress
}

// compareOID compares two numeric dotted OIDs arc by arc, as SNMP orders
// them (1.3.6.1.10 after 1.3.6.1.9).
func compareOID(a, b string) int {
	for a != "" || b != "" {
		if a == "" {
			return -1
		}
		if b == "" {
			return 1
		}
		var x, y string
		x, a, _ = strings.Cut(a, ".")
		y, b, _ = strings.Cut(b, ".")
		if x == y {
			continue
		}
		xi, errx := strconv.ParseUint(x, 10, 32)
		yi, erry := strconv.ParseUint(y, 10, 32)
		if errx != nil || erry != nil {
			return strings.Compare(x, y)
		}
		if xi < yi {
			return -1
		}
		return 1
	}
	return 0
}

package modbus

import (
	"fmt"
	"sort"

	profiles "github.com/facgw/facgw/firmware-profiles"
)

// Read is one request of a plan: Count registers (or bits) of Table from
// Start, covering the points at the given indices of the planned slice.
type Read struct {
	Table  string
	Start  uint16
	Count  uint16
	Points []int
}

// String renders a read as "holding 0+27" for golden files and logs.
func (r Read) String() string { return fmt.Sprintf("%s %d+%d", r.Table, r.Start, r.Count) }

// PlanLimits bound the reads of a plan.
type PlanLimits struct {
	MaxGap  int // largest run of unneeded addresses to read over
	MaxRegs int // registers per read, at most 125
	MaxBits int // bits per read, at most 2000
}

// Plan turns points into the fewest reads that respect the limits: it never
// reads across tables or across an unreadable range, never more than
// MaxRegs/MaxBits at once, and bridges gaps of at most MaxGap addresses.
// Greedy left-to-right packing is optimal for this interval problem. The
// result is ordered by table (coil, discrete, input, holding) and address,
// so the same profile always yields the same plan.
func Plan(points []profiles.PointDef, unreadable []profiles.Range, lim PlanLimits) []Read {
	if lim.MaxRegs <= 0 || lim.MaxRegs > 125 {
		lim.MaxRegs = 125
	}
	if lim.MaxBits <= 0 || lim.MaxBits > 2000 {
		lim.MaxBits = 2000
	}
	idx := make([]int, len(points))
	for i := range idx {
		idx[i] = i
	}
	tableRank := map[string]int{profiles.Coil: 0, profiles.Discrete: 1, profiles.Input: 2, profiles.Holding: 3}
	sort.SliceStable(idx, func(a, b int) bool {
		pa, pb := &points[idx[a]], &points[idx[b]]
		if pa.Table != pb.Table {
			return tableRank[pa.Table] < tableRank[pb.Table]
		}
		return pa.Address < pb.Address
	})
	var reads []Read
	var cur *Read
	curEnd := 0 // last address covered by cur, inclusive
	for _, i := range idx {
		p := &points[i]
		start, end := int(p.Address), int(p.Address)+p.Width()-1
		limit := lim.MaxRegs
		if profiles.IsBitTable(p.Table) {
			limit = lim.MaxBits
		}
		if cur != nil && cur.Table == p.Table {
			newEnd := max(curEnd, end)
			gap := start - curEnd - 1
			if gap <= lim.MaxGap && newEnd-int(cur.Start)+1 <= limit &&
				!crossesUnreadable(unreadable, p.Table, curEnd+1, newEnd) {
				cur.Points = append(cur.Points, i)
				curEnd = newEnd
				cur.Count = uint16(curEnd - int(cur.Start) + 1)
				continue
			}
		}
		reads = append(reads, Read{Table: p.Table, Start: uint16(start), Count: uint16(end - start + 1), Points: []int{i}})
		cur = &reads[len(reads)-1]
		curEnd = end
	}
	return reads
}

func crossesUnreadable(rs []profiles.Range, table string, from, to int) bool {
	for _, r := range rs {
		if r.Table == table && from <= int(r.To) && to >= int(r.From) {
			return true
		}
	}
	return false
}

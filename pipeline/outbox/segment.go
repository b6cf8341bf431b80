package outbox

import "sort"

// Per-record state in segment.meta: the class in the low bits, then whether
// the record is done (acknowledged or dropped).
const (
	classMask   = 0x03
	flagAcked   = 0x04
	flagDropped = 0x08
	flagDone    = flagAcked | flagDropped
)

// segment is the in-memory index of one segment file: per record its offset,
// append time and class/state, 13 bytes. Seqs are implicit (first+i) while
// they are contiguous, which they are in every segment written by Append;
// only a compacted segment, which kept some records of a run, stores them.
type segment struct {
	base uint64 // from the header: no record has a smaller seq
	path string
	gen  uint32 // bumped when compaction replaces the file
	size int64  // bytes of the file that are valid (header and records)

	first uint64   // seq of record 0, when seqs is nil
	seqs  []uint64 // explicit seqs, or nil when contiguous
	offs  []uint32
	times []int64
	meta  []uint8

	live      int   // records not done
	liveTele  int   // telemetry records not done
	dropBytes int64 // bytes of dropped records, gone after compaction

	sealed  bool // no more appends: not the active segment
	broken  bool // a failed write could not be undone: append elsewhere
	removed bool // deleted from the index (the file is being or was deleted)
}

func (s *segment) n() int { return len(s.offs) }

func (s *segment) seqAt(i int) uint64 {
	if s.seqs != nil {
		return s.seqs[i]
	}
	return s.first + uint64(i)
}

// lo is the smallest seq the segment holds or will hold.
func (s *segment) lo() uint64 {
	if s.n() > 0 {
		return s.seqAt(0)
	}
	return s.base
}

// search returns the index of the first record with a seq >= seq.
func (s *segment) search(seq uint64) int {
	if s.seqs != nil {
		return sort.Search(len(s.seqs), func(i int) bool { return s.seqs[i] >= seq })
	}
	if seq <= s.first {
		return 0
	}
	return int(min(seq-s.first, uint64(s.n())))
}

func (s *segment) class(i int) Class { return Class(s.meta[i] & classMask) }

func (s *segment) end(i int) int64 {
	if i+1 < s.n() {
		return int64(s.offs[i+1])
	}
	return s.size
}

func (s *segment) recLen(i int) int64 { return s.end(i) - int64(s.offs[i]) }

// retained is what the segment counts against MaxBytes: nothing once it is
// sealed and done (it is about to be deleted), and not its dropped records
// (they are about to be compacted away).
func (s *segment) retained() int64 {
	if s.sealed && s.live == 0 {
		return 0
	}
	return s.size - s.dropBytes
}

// accepts reports whether seq can be appended keeping the seqs implicit.
func (s *segment) accepts(seq uint64) bool {
	if s.seqs != nil || seq < s.base {
		return false
	}
	return s.n() == 0 || seq == s.first+uint64(s.n())
}

// add indexes a record that is live.
func (s *segment) add(seq uint64, off int64, t int64, c Class) {
	if n := s.n(); n == 0 {
		s.first = seq
	} else if s.seqs == nil && seq != s.first+uint64(n) {
		s.seqs = make([]uint64, n, n+1)
		for j := range s.seqs {
			s.seqs[j] = s.first + uint64(j)
		}
	}
	if s.seqs != nil {
		s.seqs = append(s.seqs, seq)
	}
	s.offs = append(s.offs, uint32(off))
	s.times = append(s.times, t)
	s.meta = append(s.meta, uint8(c))
	s.live++
	if c == Telemetry {
		s.liveTele++
	}
}

// markDone flags record i acked or dropped; it must be live.
func (s *segment) markDone(i int, flag uint8) {
	s.meta[i] |= flag
	s.live--
	if s.class(i) == Telemetry {
		s.liveTele--
	}
	if flag == flagDropped {
		s.dropBytes += s.recLen(i)
	}
}

// seal ends appends to the segment and gives back the slices' spare
// capacity, which is up to half of them after append's doubling.
func (s *segment) seal() {
	s.sealed = true
	s.offs = append([]uint32(nil), s.offs...)
	s.times = append([]int64(nil), s.times...)
	s.meta = append([]uint8(nil), s.meta...)
	if s.seqs != nil {
		s.seqs = append([]uint64(nil), s.seqs...)
	}
}

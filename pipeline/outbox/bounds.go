package outbox

import "time"

// How telemetry is dropped.
//
// Dropping marks records in the in-memory index (Peek skips them at once and
// they no longer count against MaxBytes); the files catch up in the
// background goroutine. A sealed segment left with no live records is
// deleted: that is the fast path, the usual case when the oldest segment
// holds only telemetry. A sealed segment that still holds unacknowledged
// alerts or control messages is compacted: its live records are copied to a
// new file that is renamed over the old one. Compaction was chosen over an
// in-memory skip set plus tombstone records because only compaction gives
// the space back: with alerts scattered through the stream, nearly every
// segment holds one, and a skip set would keep them all on disk and let the
// outbox grow without bound. Alerts are rare, so a compaction copies a few
// records. A crash before the compaction brings the dropped telemetry back
// after Open, where the bounds are applied again.
//
// Drops go oldest first. The oldest segment holding live telemetry loses all
// its telemetry at once when it is sealed (a whole segment, at most a
// quarter of MaxBytes since SegmentBytes is limited to MaxBytes/4); in the
// active segment, records are dropped one by one, as it cannot be compacted
// before it is sealed.

// enforceLocked applies the age and size bounds as of now.
func (o *Outbox) enforceLocked(now time.Time) {
	before := o.dropped
	if o.opts.MaxAge > 0 {
		cutoff := now.Add(-o.opts.MaxAge).UnixNano()
		// Times follow seqs unless the clock was stepped back; then the
		// walk stops early and the rest goes on a later call.
		for {
			s, i, ok := o.oldestTelemetry()
			if !ok || s.times[i] >= cutoff {
				break
			}
			o.doneLocked(s, i, flagDropped)
			o.noteDrop(reasonAge, 1, now)
		}
	}
	for o.retained > o.opts.MaxBytes {
		s, i, ok := o.oldestTelemetry()
		if !ok {
			break
		}
		n := uint64(0)
		for ; i < s.n(); i++ {
			if s.meta[i]&flagDone == 0 && s.class(i) == Telemetry {
				o.doneLocked(s, i, flagDropped)
				n++
				if !s.sealed {
					break
				}
			}
		}
		o.noteDrop(reasonBytes, n, now)
	}
	if o.dropped != before {
		o.advanceHeadLocked()
	}
	if over := o.retained > o.opts.MaxBytes; over != o.overBound {
		o.overBound = over
		if over {
			o.log.Warn("outbox: over its size bound with alerts and control messages alone; keeping them",
				"bytes", o.retained, "max_bytes", o.opts.MaxBytes)
		} else {
			o.log.Info("outbox: back within its size bound", "bytes", o.retained, "max_bytes", o.opts.MaxBytes)
		}
	}
}

// oldestTelemetry returns the oldest live telemetry record, moving
// o.teleFrom up to it: the cursor only moves forward, as a record never
// becomes live again and new telemetry gets higher seqs, so finding it costs
// O(1) amortised.
func (o *Outbox) oldestTelemetry() (*segment, int, bool) {
	o.teleFrom = max(o.teleFrom, o.head)
	k, i := o.seek(o.teleFrom)
	for ; k < len(o.segs); k, i = k+1, 0 {
		s := o.segs[k]
		if s.liveTele == 0 {
			continue
		}
		for ; i < s.n(); i++ {
			if s.meta[i]&flagDone == 0 && s.class(i) == Telemetry {
				o.teleFrom = s.seqAt(i)
				return s, i, true
			}
		}
	}
	o.teleFrom = o.nextSeq
	return nil, 0, false
}

// noteDrop counts n dropped telemetry messages and logs the start of an
// episode; maintenance logs its end.
func (o *Outbox) noteDrop(reason int, n uint64, now time.Time) {
	if n == 0 {
		return
	}
	o.dropped += n
	o.dropTotal += n
	e := &o.episodes[reason]
	if !e.active {
		*e = episode{active: true}
		o.log.Warn("outbox: dropping the oldest telemetry", "reason", reasonNames[reason],
			"bytes", o.retained, "max_bytes", o.opts.MaxBytes, "max_age", o.opts.MaxAge)
	}
	e.count += n
	e.last = now
}

// endEpisodesLocked logs the end of drop episodes that saw no drop for
// episodeQuiet.
func (o *Outbox) endEpisodesLocked(now time.Time) {
	for r := range o.episodes {
		e := &o.episodes[r]
		if e.active && now.Sub(e.last) >= episodeQuiet {
			o.log.Info("outbox: stopped dropping telemetry", "reason", reasonNames[r], "dropped", e.count)
			e.active = false
		}
	}
}

package outbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/facgw/facgw/internal/diskfile"
)

// run is the background goroutine: a maintenance cycle every SyncEvery
// (DefaultSyncEvery when Append fsyncs itself), until Close.
func (o *Outbox) run() {
	defer close(o.done)
	every := o.opts.SyncEvery
	if every <= 0 {
		every = DefaultSyncEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
			o.maintain(false) // logs its own errors
		}
	}
}

// maintain is one maintenance cycle: write messages held in memory, apply
// the age bound, fsync, persist the state, delete done segments, compact
// partly dropped ones. The slow steps run without o.mu, so Append, Peek and
// Ack go on meanwhile.
//
// The state is persisted (with the current next seq) before any file loses
// records, so NextSeq cannot go backwards after a crash even when the
// segments that held the highest seqs are gone; if it cannot be, the newest
// segment is kept as it is.
func (o *Outbox) maintain(force bool) error {
	o.maintMu.Lock()
	defer o.maintMu.Unlock()
	var errs []error

	o.mu.Lock()
	if o.released { // a Sync that raced with Close
		o.mu.Unlock()
		return ErrClosed
	}
	now := o.opts.now()
	if len(o.pending) > 0 {
		if err := o.flushPendingLocked(); err != nil {
			errs = append(errs, fmt.Errorf("outbox: %d messages held in memory: %w", len(o.pending), err))
			if isDiskFull(err) {
				o.makeRoomLocked(now)
			}
		}
	}
	o.enforceLocked(now)
	o.endEpisodesLocked(now)
	var files []*os.File
	if o.dirty && o.wfile != nil {
		files = append(files, o.wfile)
		o.dirty = false
	}
	sealed := o.toSync
	o.toSync = nil
	dirDirty := o.dirDirty
	o.dirDirty = false
	var dead, compact []*segment
	var newest *segment
	if n := len(o.segs); n > 0 {
		newest = o.segs[n-1]
	}
	for _, s := range o.segs {
		switch {
		case !s.sealed:
		case s.live == 0:
			dead = append(dead, s)
		case s.dropBytes > 0 && (s.liveTele == 0 || 2*s.dropBytes >= s.size):
			compact = append(compact, s)
		}
	}
	cur := persisted{head: o.head, next: o.nextSeq, dropped: o.dropTotal}
	o.mu.Unlock()

	var syncErr error
	for _, f := range files {
		syncErr = errors.Join(syncErr, f.Sync())
	}
	for _, f := range sealed {
		syncErr = errors.Join(syncErr, f.Sync(), f.Close())
	}
	if dirDirty {
		syncErr = errors.Join(syncErr, diskfile.SyncDir(o.opts.Dir))
	}
	errs = append(errs, o.report("fsync", syncErr))

	destructive := len(dead)+len(compact) > 0
	w := o.written
	// The head only saves duplicates after a crash (a stale head means
	// redelivery, never loss), so while messages flow it is persisted at
	// most every stateEvery, not every cycle: the atomic replace with two
	// fsyncs was a tenth of the gateway's CPU when publishing. Before files
	// lose records, and on Sync and Close, it is written as before.
	headDue := cur.head != w.head && (force || now.Sub(o.writtenAt) >= stateEvery)
	if headDue || cur.dropped != w.dropped || (destructive && cur != w) {
		err := o.writeState(cur)
		if err == nil {
			o.written, o.writtenAt = cur, now
		}
		if errs = append(errs, o.report("state", err)); err != nil {
			// Without a current state file only the newest segment (its
			// name, its records) vouches for NextSeq after a crash: leave
			// it alone. The others may go, which matters on a full disk,
			// where the state file cannot be written either.
			isNewest := func(s *segment) bool { return s == newest }
			dead = slices.DeleteFunc(dead, isNewest)
			compact = slices.DeleteFunc(compact, isNewest)
		}
	}
	if len(dead) > 0 {
		errs = append(errs, o.report("delete", o.removeSegments(dead)))
	}
	var cerr error
	for _, s := range compact {
		cerr = errors.Join(cerr, o.compact(s))
	}
	errs = append(errs, o.report("compact", cerr))
	return errors.Join(errs...)
}

// makeRoomLocked drops the telemetry of the oldest sealed segment that has
// any, when alerts or control messages wait in memory for a full disk: the
// segment file is then deleted (or compacted) and its room goes to them.
func (o *Outbox) makeRoomLocked(now time.Time) {
	s, i, ok := o.oldestTelemetry()
	if !ok || !s.sealed {
		return
	}
	n := uint64(0)
	for ; i < s.n(); i++ {
		if s.meta[i]&flagDone == 0 && s.class(i) == Telemetry {
			o.doneLocked(s, i, flagDropped)
			n++
		}
	}
	o.noteDrop(reasonDiskFull, n, now)
	o.advanceHeadLocked()
}

// report logs err once per kind until that kind succeeds again (the cycle
// runs every 100ms; a full disk should not log ten errors a second), and
// returns it.
func (o *Outbox) report(kind string, err error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.noteFailureLocked(kind, err)
	} else if o.failing[kind] {
		delete(o.failing, kind)
		o.log.Info("outbox: "+kind+" works again", "kind", kind)
	}
	return err
}

func (o *Outbox) noteFailureLocked(kind string, err error) {
	if !o.failing[kind] {
		o.failing[kind] = true
		o.log.Error("outbox: "+kind+" failed", "kind", kind, "err", err)
	}
}

// stateEvery is how often a moving head is persisted by the background
// cycle.
const stateEvery = time.Second

// writeState replaces the state file atomically.
func (o *Outbox) writeState(st persisted) error {
	tmp := filepath.Join(o.opts.Dir, stateName+tmpExt)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return writeErr(err)
	}
	b := encodeState(st)
	n, err := o.opts.writeAt(f, b, 0)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(o.opts.Dir, stateName))
	}
	if err != nil {
		os.Remove(tmp)
		return writeErr(err)
	}
	return diskfile.SyncDir(o.opts.Dir)
}

// removeSegments takes done segments out of the index and deletes their
// files. A Peek reading one meanwhile still can: it opened the file before.
func (o *Outbox) removeSegments(dead []*segment) error {
	o.mu.Lock()
	for _, s := range dead {
		s.removed = true
		o.diskBytes -= s.size
		o.retained -= s.retained() // 0: sealed and done
	}
	keep := o.segs[:0]
	for _, s := range o.segs {
		if !s.removed {
			keep = append(keep, s)
		}
	}
	clear(o.segs[len(keep):])
	o.segs = keep
	o.mu.Unlock()
	var err error
	for _, s := range dead {
		if e := os.Remove(s.path); e != nil && !errors.Is(e, os.ErrNotExist) {
			err = errors.Join(err, e)
		}
	}
	return err
}

// compact rewrites sealed segment s with only its live records: a new file,
// fsynced, renamed over the old one. Records acknowledged or dropped while
// it copies are simply carried over with their state.
func (o *Outbox) compact(s *segment) error {
	o.mu.Lock()
	if s.removed || s.live == 0 {
		o.mu.Unlock()
		return nil
	}
	gen := s.gen
	var keep []int
	var recs []spanRec
	for i := range s.n() {
		if s.meta[i]&flagDone == 0 {
			keep = append(keep, i)
			recs = append(recs, spanRec{seq: s.seqAt(i), off: int64(s.offs[i]), end: s.end(i)})
		}
	}
	f, err := os.Open(s.path)
	o.mu.Unlock()
	if err != nil {
		return fmt.Errorf("outbox: compact: %w", err)
	}
	defer f.Close()

	start, end := recs[0].off, recs[len(recs)-1].end
	buf := make([]byte, end-start)
	if _, err := f.ReadAt(buf, start); err != nil {
		return fmt.Errorf("outbox: compact %s: %w", s.path, err)
	}
	out := encodeHeader(s.base)
	newOffs := make([]int64, len(recs))
	var bad []int // indexes into recs of records that fail their checksum
	for j, r := range recs {
		rec := buf[r.off-start : r.end-start]
		if _, err := verifyRecord(rec, r.seq, interner{}); err != nil {
			o.log.Error("outbox: record unreadable while compacting; skipping it", "segment", s.path, "seq", r.seq, "err", err)
			bad = append(bad, j)
			continue
		}
		newOffs[j] = int64(len(out))
		out = append(out, rec...)
	}
	tmp := s.path + ".compact" + tmpExt
	if err := o.writeFile(tmp, out); err != nil {
		return fmt.Errorf("outbox: compact %s: %w", s.path, err)
	}

	o.mu.Lock()
	if s.removed || s.gen != gen {
		o.mu.Unlock()
		os.Remove(tmp)
		return nil
	}
	if err := os.Rename(tmp, s.path); err != nil {
		o.mu.Unlock()
		os.Remove(tmp)
		return fmt.Errorf("outbox: compact: %w", err)
	}
	for _, j := range bad {
		if i := keep[j]; s.meta[i]&flagDone == 0 {
			o.doneLocked(s, i, flagDropped)
			o.corrupt++
		}
	}
	ns := &segment{base: s.base, path: s.path, gen: s.gen + 1, size: int64(len(out)), first: s.base}
	isBad := make(map[int]bool, len(bad))
	for _, j := range bad {
		isBad[j] = true
	}
	for j, i := range keep {
		if !isBad[j] {
			ns.add(recs[j].seq, newOffs[j], s.times[i], s.class(i))
		}
	}
	for j, i := range keep {
		if !isBad[j] && s.meta[i]&flagDone != 0 {
			ns.markDone(ns.search(recs[j].seq), s.meta[i]&flagDone)
		}
	}
	ns.seal()
	r0, size0 := s.retained(), s.size
	*s = *ns
	o.retained += s.retained() - r0
	o.diskBytes += s.size - size0
	if len(bad) > 0 {
		o.advanceHeadLocked()
	}
	o.mu.Unlock()
	return diskfile.SyncDir(o.opts.Dir)
}

// writeFile creates path with b, fsynced.
func (o *Outbox) writeFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return writeErr(err)
	}
	n, err := o.opts.writeAt(f, b, 0)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return writeErr(err)
	}
	return nil
}

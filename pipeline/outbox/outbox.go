package outbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/facgw/facgw/internal/diskfile"
)

// Class says what a message is, and so whether it may be dropped.
type Class uint8

// The classes of messages.
const (
	// Telemetry may be dropped, oldest first, when the outbox is over its
	// bounds or the disk is full.
	Telemetry Class = iota
	// Alert is never dropped.
	Alert
	// Control is load-shed commands and acknowledgements; never dropped.
	Control
)

// String returns the class name as used in logs and metrics.
func (c Class) String() string {
	switch c {
	case Telemetry:
		return "telemetry"
	case Alert:
		return "alert"
	case Control:
		return "control"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Message is one queued message. Seq is assigned by Append: strictly
// increasing per outbox, never reused, also across restarts (the next value
// is persisted). Key is an ordering key (a device id); messages are
// delivered in Append order overall, which implies per-key order.
type Message struct {
	Seq     uint64
	Class   Class
	Key     string // at most 65535 bytes
	Topic   string // at most 65535 bytes
	Payload []byte
	Retain  bool
	Time    time.Time // when appended (UTC); drives the age bound
}

// Defaults of Options.
const (
	DefaultMaxBytes     = 256 << 20
	DefaultSegmentBytes = 4 << 20
	// DefaultSyncEvery is the recommended group-commit interval. It is not
	// applied to a zero Options.SyncEvery, which means fsync on every
	// Append: callers set it explicitly.
	DefaultSyncEvery = 100 * time.Millisecond
)

// Limits of Options and messages.
const (
	// MaxSegmentBytes bounds Options.SegmentBytes (offsets are 32-bit).
	MaxSegmentBytes = 1 << 30
	// MaxMessageBytes bounds a message's key, topic and payload together.
	MaxMessageBytes = maxBody - recFixedLen
	// minSegmentBytes keeps tiny bounds from making a file per message.
	minSegmentBytes = 1 << 10
)

// Options configures an outbox.
type Options struct {
	// Dir is the outbox's own directory, created if missing. Two outboxes
	// (or processes) cannot share it: Open locks it.
	Dir string
	// MaxBytes bounds payload and record bytes on disk (default 256 MiB).
	// Over it the oldest telemetry is dropped; alerts and control messages
	// are kept even above it.
	MaxBytes int64
	// MaxAge drops telemetry older than this (default 0: no age bound).
	MaxAge time.Duration
	// SegmentBytes is the size at which a segment file is closed and a new
	// one started (default 4 MiB). It is lowered to MaxBytes/4 (at least 1
	// KiB) so that dropping the oldest segment frees a small part of the
	// bound rather than all of it.
	SegmentBytes int64
	// SyncEvery is the group commit interval: fsync at most this often, so
	// a power loss loses at most this much. 0 fsyncs every Append before it
	// returns (safe but slow); most callers want DefaultSyncEvery (100ms).
	SyncEvery time.Duration
	// Logger receives drop episodes, recovery and I/O errors (default
	// slog.Default()).
	Logger *slog.Logger

	// Test hooks: writeAt replaces every file write, now the clock.
	writeAt func(f *os.File, p []byte, off int64) (int, error)
	now     func() time.Time
}

// Stats is a snapshot of an outbox's account.
type Stats struct {
	Depth    int       // unacknowledged messages, including Pending
	Bytes    int64     // bytes of segment files on disk
	Oldest   time.Time // Time of the oldest unacknowledged message (zero if empty)
	Appended uint64    // messages appended since Open
	Acked    uint64    // messages acknowledged since Open
	// Dropped counts telemetry dropped for bounds, age or a full disk since
	// Open; DroppedTotal since the outbox was created (persisted).
	Dropped      uint64
	DroppedTotal uint64
	// OverBound is set while alerts and control messages alone hold the
	// outbox above MaxBytes.
	OverBound bool
	NextSeq   uint64 // the Seq the next Append assigns
	// Pending counts alerts and control messages held in memory because the
	// disk was full; they are lost if the process ends before it has room.
	Pending int
	// Corrupt counts records that failed their checksum when read back
	// after Open and were skipped (logged with their seq).
	Corrupt  uint64
	Segments int // segment files
}

// Errors of the outbox. They are matched with errors.Is; the returned errors
// may wrap them with detail.
var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("outbox: closed")
	// ErrDiskFull is returned by Append when the disk is full: telemetry
	// was dropped, an alert or control message is held in memory.
	ErrDiskFull = errors.New("outbox: disk full")
)

// Drop reasons, for counting episodes.
const (
	reasonBytes = iota
	reasonAge
	reasonDiskFull
	reasonWriteError
	nReasons
)

var reasonNames = [nReasons]string{"max_bytes", "max_age", "disk_full", "write_error"}

// episodeQuiet is how long without drops ends a drop episode (one warning
// when it starts, one summary when it ends).
const episodeQuiet = 5 * time.Second

type episode struct {
	active bool
	count  uint64
	last   time.Time
}

// Outbox is a durable, ordered, bounded queue in one directory. It is safe
// for concurrent use; the expected pattern is one goroutine appending, one
// sender peeking and acknowledging, and Stats from anywhere. Append never
// waits for the sender or the destination: it writes to the OS page cache,
// and a background goroutine (owned by the Outbox, ended by Close) fsyncs,
// persists the head, deletes acknowledged segments and compacts.
type Outbox struct {
	opts     Options
	log      *slog.Logger
	lockFile *os.File
	ready    chan struct{}
	stop     chan struct{}
	done     chan struct{}

	mu        sync.Mutex // guards everything below, up to maintMu
	closed    bool
	released  bool       // closeFiles ran: no more maintenance
	segs      []*segment // in seq order; the last may be active
	active    *segment   // where Append writes; nil until the first Append
	wfile     *os.File   // active's file, opened for writing
	dirty     bool       // wfile has writes not fsynced
	dirDirty  bool       // segment files were created since the last directory fsync
	toSync    []*os.File // sealed segments' writers, to fsync and close
	nextSeq   uint64
	head      uint64 // every seq below is done
	teleFrom  uint64 // no live telemetry below this seq: where dropping resumes
	live      int    // records on disk not done
	retained  int64  // sum of segment.retained: what counts against MaxBytes
	diskBytes int64
	pending   []Message // alerts and control the full disk refused, in seq order
	wbuf      []byte
	appended  uint64
	acked     uint64
	dropped   uint64
	dropTotal uint64
	corrupt   uint64
	overBound bool
	episodes  [nReasons]episode
	failing   map[string]bool // maintenance errors already logged, by kind

	maintMu   sync.Mutex // serialises maintenance cycles (background, Sync, Close)
	written   persisted  // what the state file holds
	writtenAt time.Time  // when it was written

	readMu sync.Mutex // serialises Peek, which owns rfile and intern
	rfile  readFile
	intern interner
}

// readFile is the file Peek read last, kept open for the next Peek.
type readFile struct {
	seg *segment
	gen uint32
	f   *os.File
}

// Open opens (or creates) the outbox in opts.Dir, recovers what a previous
// process left (see the package documentation) and starts its background
// goroutine. Unreadable files are moved aside and logged, not errors; an
// error means the directory cannot be used at all.
func Open(opts Options) (*Outbox, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	lf, err := diskfile.Lock(filepath.Join(opts.Dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("outbox: %s: %w", opts.Dir, err)
	}
	o := &Outbox{
		opts:     opts,
		log:      opts.Logger.With("outbox", opts.Dir),
		lockFile: lf,
		ready:    make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		failing:  map[string]bool{},
		intern:   interner{},
	}
	if err := o.recover(); err != nil {
		o.closeFiles()
		return nil, err
	}
	if o.live > 0 {
		o.ready <- struct{}{}
	}
	go o.run()
	return o, nil
}

func (opts *Options) setDefaults() error {
	if opts.Dir == "" {
		return errors.New("outbox: no directory")
	}
	if opts.MaxBytes < 0 || opts.MaxAge < 0 || opts.SegmentBytes < 0 || opts.SyncEvery < 0 {
		return errors.New("outbox: negative bound")
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.SegmentBytes > MaxSegmentBytes {
		return fmt.Errorf("outbox: segment size %d above %d", opts.SegmentBytes, MaxSegmentBytes)
	}
	opts.SegmentBytes = max(min(opts.SegmentBytes, opts.MaxBytes/4), minSegmentBytes)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.writeAt == nil {
		opts.writeAt = (*os.File).WriteAt
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	return nil
}

// Append writes m (Seq and Time are set by Append; the stored copy is
// returned) durably enough to survive a process crash at once (the write
// reaches the OS before Append returns) and a power loss within SyncEvery.
// It never blocks on the destination. The outbox does not keep m.Payload:
// the caller may reuse it.
//
// Over the bounds it first drops the oldest telemetry (counted); alerts and
// control are kept even above MaxBytes (then Stats().OverBound is true and a
// warning is logged once per episode; telemetry appended meanwhile is
// dropped at once, being the oldest telemetry there is).
//
// Appending telemetry when the disk is full (ENOSPC) drops the telemetry
// (counted; the error matches ErrDiskFull and the returned Seq is 0).
// Appending an alert or control message when the disk is full returns an
// error matching ErrDiskFull and keeps the message in memory with its Seq,
// so it is delivered by Peek and not lost while the process lives. It is
// written by the next Append, Sync or background cycle that finds room; the
// background goroutine makes room by dropping the oldest telemetry, a
// segment at a time. Telemetry appended while such messages wait is
// dropped, as writing it first would break the order. Other write errors
// are treated alike, with the error returned as is.
func (o *Outbox) Append(m Message) (Message, error) {
	if m.Class > Control {
		return m, fmt.Errorf("outbox: append: unknown class %d", m.Class)
	}
	if len(m.Key) > math.MaxUint16 || len(m.Topic) > math.MaxUint16 || len(m.Key)+len(m.Topic)+len(m.Payload) > MaxMessageBytes {
		return m, fmt.Errorf("outbox: append: message of %d bytes (key %d, topic %d) too large", len(m.Payload), len(m.Key), len(m.Topic))
	}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return m, ErrClosed
	}
	now := o.opts.now()
	m.Time = now.UTC()
	m.Seq = 0
	var err error
	if len(o.pending) > 0 {
		err = o.flushPendingLocked()
	}
	if err == nil {
		m.Seq = o.nextSeq
		if err = o.writeLocked(&m); err == nil {
			o.nextSeq++
			o.appended++
		}
	}
	stored := err == nil
	if err != nil {
		if m.Class == Telemetry {
			m.Seq = 0
			reason := reasonDiskFull
			if !errors.Is(err, ErrDiskFull) {
				reason = reasonWriteError
			}
			o.noteDrop(reason, 1, now)
		} else {
			m.Seq = o.nextSeq
			o.nextSeq++
			m.Payload = bytes.Clone(m.Payload)
			if len(o.pending) == 0 {
				o.log.Error("outbox: cannot write; holding alerts and control messages in memory", "err", err)
			}
			o.pending = append(o.pending, m)
			o.appended++
			stored = true
		}
	}
	o.enforceLocked(now)
	o.mu.Unlock()
	if stored {
		select {
		case o.ready <- struct{}{}:
		default:
		}
	}
	return m, err
}

// isDiskFull reports whether err means the file system has no room.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// writeErr wraps a write error, marking a full disk as ErrDiskFull.
func writeErr(err error) error {
	if isDiskFull(err) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return fmt.Errorf("outbox: write: %w", err)
}

// writeLocked writes m (with its Seq set) at the end of the active segment,
// starting a new segment when needed, and indexes it. On error nothing of m
// is indexed and the file is truncated back where possible.
func (o *Outbox) writeLocked(m *Message) error {
	o.wbuf = appendRecord(o.wbuf, m)
	rec := o.wbuf
	s := o.active
	if s == nil || s.broken || !s.accepts(m.Seq) || (s.n() > 0 && s.size+int64(len(rec)) > o.opts.SegmentBytes) {
		if err := o.rollLocked(m.Seq); err != nil {
			return err
		}
		s = o.active
	}
	off := s.size
	n, err := o.opts.writeAt(o.wfile, rec, off)
	if err == nil && n != len(rec) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if n > 0 {
			// The next record overwrites it, but if none comes before the
			// segment is sealed, Open would find it after the last record
			// of an old segment and take it for damage.
			if terr := o.wfile.Truncate(off); terr != nil {
				s.broken = true
				o.log.Error("outbox: cannot truncate a partial write; starting a new segment", "segment", s.path, "err", terr)
			}
		}
		return writeErr(err)
	}
	r0 := s.retained()
	s.add(m.Seq, off, m.Time.UnixNano(), m.Class)
	s.size += int64(len(rec))
	o.retained += s.retained() - r0
	o.diskBytes += int64(len(rec))
	o.live++
	if o.opts.SyncEvery == 0 {
		if err := o.wfile.Sync(); err != nil {
			// The record is written and indexed: it will be delivered. It is
			// just not known to be on stable storage; the next Sync reports it.
			o.dirty = true
			o.noteFailureLocked("fsync", err)
		}
	} else {
		o.dirty = true
	}
	return nil
}

// rollLocked seals the active segment (if any) and starts a new one whose
// first record will be seq. On error the old segment stays active.
func (o *Outbox) rollLocked(seq uint64) error {
	path := filepath.Join(o.opts.Dir, segName(seq))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return writeErr(err)
	}
	hdr := encodeHeader(seq)
	n, err := o.opts.writeAt(f, hdr, 0)
	if err == nil && n != len(hdr) {
		err = io.ErrShortWrite
	}
	if err == nil && o.opts.SyncEvery == 0 {
		if err = f.Sync(); err == nil {
			err = diskfile.SyncDir(o.opts.Dir)
		}
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return writeErr(err)
	}
	if old := o.active; old != nil {
		r0 := old.retained()
		old.seal()
		o.retained += old.retained() - r0
		// Closed by maintenance, after its fsync: one may be running on it.
		o.toSync = append(o.toSync, o.wfile)
	}
	o.dirty = false
	o.dirDirty = o.dirDirty || o.opts.SyncEvery > 0
	s := &segment{base: seq, path: path, size: segHeaderLen, first: seq}
	o.segs = append(o.segs, s)
	o.active, o.wfile = s, f
	o.retained += segHeaderLen
	o.diskBytes += segHeaderLen
	return nil
}

// flushPendingLocked writes the messages held in memory, in order, and
// returns the first error (the rest stay held).
func (o *Outbox) flushPendingLocked() error {
	for len(o.pending) > 0 {
		m := &o.pending[0]
		if err := o.writeLocked(m); err != nil {
			return err
		}
		o.pending[0] = Message{}
		o.pending = o.pending[1:]
		if len(o.pending) == 0 {
			o.pending = nil
			o.log.Info("outbox: disk has room again; messages held in memory are written")
		}
	}
	return nil
}

// Peek returns up to n oldest unacknowledged messages in order, without
// removing them. Calling Peek again before Ack returns the same messages (a
// sender re-sends after a reconnect). The messages are the caller's: their
// payloads are not shared with the outbox.
func (o *Outbox) Peek(n int) ([]Message, error) { return o.PeekFrom(0, n) }

// PeekFrom is Peek starting at seq: it returns up to n unacknowledged
// messages with a Seq of at least seq, in order. A sender that keeps
// several messages in flight uses it to fetch the ones after those it has
// sent but not yet seen acknowledged.
func (o *Outbox) PeekFrom(seq uint64, n int) ([]Message, error) {
	o.readMu.Lock()
	defer o.readMu.Unlock()
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil, ErrClosed
	}
	if n <= 0 || o.live+len(o.pending) == 0 {
		o.mu.Unlock()
		return nil, nil
	}
	if o.rfile.f != nil && (o.rfile.seg.removed || o.rfile.gen != o.rfile.seg.gen) {
		o.rfile.f.Close()
		o.rfile = readFile{}
	}
	plan, err := o.planLocked(max(seq, o.head), n)
	if err != nil {
		o.mu.Unlock()
		o.releaseFiles(plan, false)
		return nil, err
	}
	count := 0
	for _, sp := range plan {
		count += len(sp.recs)
	}
	var pend []Message
	for i := 0; i < len(o.pending) && count < n; i++ {
		if p := o.pending[i]; p.Seq >= seq {
			p.Payload = bytes.Clone(p.Payload)
			pend = append(pend, p)
			count++
		}
	}
	o.mu.Unlock()
	out := make([]Message, 0, count)

	// The reads happen without the lock: Append and Ack go on meanwhile.
	// Sealed files never change, the active one only grows past what the
	// plan reads, and a file deleted or replaced meanwhile stays readable
	// through the descriptor opened under the lock.
	var bad []uint64
	var readErr error
	for _, sp := range plan {
		if readErr == nil {
			var b []uint64
			out, b, readErr = o.readSpan(out, sp)
			bad = append(bad, b...)
		}
	}
	o.releaseFiles(plan, readErr == nil)
	if len(bad) > 0 {
		o.markCorrupt(bad)
	}
	if readErr != nil {
		return nil, readErr
	}
	return append(out, pend...), nil
}

// span is a run of records of one segment that Peek reads with one pread.
type span struct {
	seg        *segment
	gen        uint32
	f          *os.File
	start, end int64
	recs       []spanRec
}

type spanRec struct {
	seq      uint64
	off, end int64
}

// planLocked lists the first n live records from seq on, grouped into
// spans, and opens their files or takes o.rfile. On error the spans returned
// are those whose file is open.
func (o *Outbox) planLocked(seq uint64, n int) ([]span, error) {
	var plan []span
	count := 0
	k, i := o.seek(seq)
	for ; k < len(o.segs) && count < n; k, i = k+1, 0 {
		s := o.segs[k]
		if s.live == 0 {
			continue
		}
		var sp *span
		for ; i < s.n() && count < n; i++ {
			if s.meta[i]&flagDone != 0 {
				continue
			}
			if sp == nil {
				plan = append(plan, span{seg: s, gen: s.gen, start: int64(s.offs[i])})
				sp = &plan[len(plan)-1]
			}
			sp.recs = append(sp.recs, spanRec{seq: s.seqAt(i), off: int64(s.offs[i]), end: s.end(i)})
			sp.end = s.end(i)
			count++
		}
	}
	for j := range plan {
		sp := &plan[j]
		if o.rfile.f != nil && o.rfile.seg == sp.seg && o.rfile.gen == sp.seg.gen {
			sp.f = o.rfile.f
			continue
		}
		f, err := os.Open(sp.seg.path)
		if err != nil {
			return plan[:j], fmt.Errorf("outbox: peek: %w", err)
		}
		sp.f = f
	}
	return plan, nil
}

// releaseFiles closes the files of plan and the one kept from the previous
// Peek, except the last span's if keep: the next Peek most likely reads
// that segment again.
func (o *Outbox) releaseFiles(plan []span, keep bool) {
	old := o.rfile.f
	o.rfile = readFile{}
	if keep && len(plan) > 0 {
		last := plan[len(plan)-1]
		o.rfile = readFile{seg: last.seg, gen: last.gen, f: last.f}
	}
	for _, sp := range plan {
		if sp.f == old {
			old = nil // closed here unless kept
		}
		if sp.f != o.rfile.f {
			sp.f.Close()
		}
	}
	if old != nil && old != o.rfile.f {
		old.Close()
	}
}

// readSpan reads one span and appends its messages to out; records that fail
// their checksum are returned in bad.
func (o *Outbox) readSpan(out []Message, sp span) ([]Message, []uint64, error) {
	buf := make([]byte, sp.end-sp.start)
	if _, err := sp.f.ReadAt(buf, sp.start); err != nil {
		return out, nil, fmt.Errorf("outbox: peek %s: %w", filepath.Base(sp.seg.path), err)
	}
	var bad []uint64
	for _, r := range sp.recs {
		rec := buf[r.off-sp.start : r.end-sp.start]
		m, err := verifyRecord(rec, r.seq, o.intern)
		if err != nil {
			o.log.Error("outbox: record unreadable; skipping it", "segment", sp.seg.path, "seq", r.seq, "offset", r.off, "err", err)
			bad = append(bad, r.seq)
			continue
		}
		out = append(out, m)
	}
	return out, bad, nil
}

// verifyRecord decodes rec, a whole record that should hold seq.
func verifyRecord(rec []byte, seq uint64, in interner) (Message, error) {
	if len(rec) < recPrefixLen+recFixedLen || int(le.Uint32(rec)) != len(rec)-recPrefixLen {
		return Message{}, errors.New("record length mismatch")
	}
	body := rec[recPrefixLen:]
	if checksum(body) != le.Uint32(rec[4:]) {
		return Message{}, errors.New("checksum mismatch")
	}
	h, err := parseBody(body)
	if err != nil {
		return Message{}, err
	}
	if h.seq != seq {
		return Message{}, fmt.Errorf("record holds seq %d", h.seq)
	}
	return decodeMessage(body, h, in), nil
}

// markCorrupt drops records that could not be read back, so the sender is
// not stuck on them.
func (o *Outbox) markCorrupt(seqs []uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, seq := range seqs {
		if s, i, ok := o.find(seq); ok && s.meta[i]&flagDone == 0 {
			o.doneLocked(s, i, flagDropped)
			o.corrupt++
		}
	}
	o.advanceHeadLocked()
}

// Ack marks a message confirmed. Acks may arrive out of order; the head
// advances over the contiguous acknowledged prefix, and fully acknowledged
// segments are deleted (by the background goroutine, within SyncEvery).
// Acking an unknown or already acknowledged seq is a no-op.
func (o *Outbox) Ack(seq uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	if seq < o.head || seq >= o.nextSeq {
		return nil
	}
	if len(o.pending) > 0 && seq >= o.pending[0].Seq {
		j := sort.Search(len(o.pending), func(j int) bool { return o.pending[j].Seq >= seq })
		if j < len(o.pending) && o.pending[j].Seq == seq {
			o.pending = append(o.pending[:j], o.pending[j+1:]...)
			o.acked++
			o.advanceHeadLocked()
		}
		return nil
	}
	s, i, ok := o.find(seq)
	if !ok || s.meta[i]&flagDone != 0 {
		return nil
	}
	o.doneLocked(s, i, flagAcked)
	o.acked++
	if seq == o.head {
		o.advanceHeadLocked()
	}
	return nil
}

// doneLocked marks live record i of s acked or dropped and keeps the
// account.
func (o *Outbox) doneLocked(s *segment, i int, flag uint8) {
	r0 := s.retained()
	s.markDone(i, flag)
	o.retained += s.retained() - r0
	o.live--
}

// seek returns the position of the first record with a seq >= seq:
// segment k, record i; k is len(o.segs) if there is none.
func (o *Outbox) seek(seq uint64) (k, i int) {
	k = sort.Search(len(o.segs), func(k int) bool { return o.segs[k].lo() > seq }) - 1
	if k < 0 {
		return 0, 0
	}
	if i = o.segs[k].search(seq); i == o.segs[k].n() {
		return k + 1, 0
	}
	return k, i
}

// find returns the record holding seq.
func (o *Outbox) find(seq uint64) (*segment, int, bool) {
	k, i := o.seek(seq)
	if k == len(o.segs) || o.segs[k].seqAt(i) != seq {
		return nil, 0, false
	}
	return o.segs[k], i, true
}

// advanceHeadLocked moves the head to the first live message.
func (o *Outbox) advanceHeadLocked() {
	k, i := o.seek(o.head)
	for ; k < len(o.segs); k, i = k+1, 0 {
		s := o.segs[k]
		if s.live == 0 {
			continue
		}
		for ; i < s.n(); i++ {
			if s.meta[i]&flagDone == 0 {
				o.head = s.seqAt(i)
				return
			}
		}
	}
	if len(o.pending) > 0 {
		o.head = o.pending[0].Seq
	} else {
		o.head = o.nextSeq
	}
}

// Ready returns a channel that receives (non-blocking, capacity 1) whenever
// Append added messages, and once after Open if messages are waiting, so a
// sender can sleep until there is work. It is never closed.
func (o *Outbox) Ready() <-chan struct{} { return o.ready }

// Stats returns a snapshot of the outbox's account. It keeps working after
// Close.
func (o *Outbox) Stats() Stats {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := Stats{
		Depth:        o.live + len(o.pending),
		Bytes:        o.diskBytes,
		Appended:     o.appended,
		Acked:        o.acked,
		Dropped:      o.dropped,
		DroppedTotal: o.dropTotal,
		OverBound:    o.overBound,
		NextSeq:      o.nextSeq,
		Pending:      len(o.pending),
		Corrupt:      o.corrupt,
		Segments:     len(o.segs),
	}
	if o.live > 0 {
		if s, i, ok := o.find(o.head); ok {
			st.Oldest = time.Unix(0, s.times[i]).UTC()
		}
	} else if len(o.pending) > 0 {
		st.Oldest = o.pending[0].Time
	}
	return st
}

// Sync does at once what the background goroutine does every SyncEvery:
// writes messages held in memory if the disk has room, fsyncs the segments,
// persists the head, deletes acknowledged segments and compacts partly
// dropped ones. It returns an error matching ErrDiskFull while messages are
// still held in memory.
func (o *Outbox) Sync() error {
	o.mu.Lock()
	closed := o.closed
	o.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return o.maintain(true)
}

// Close syncs and closes the files and stops the background goroutine;
// further calls return ErrClosed. Messages still held in memory because the
// disk is full are lost (and the error says how many).
func (o *Outbox) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return ErrClosed
	}
	o.closed = true
	o.mu.Unlock()
	close(o.stop)
	<-o.done
	err := o.maintain(true)
	o.mu.Lock()
	if n := len(o.pending); n > 0 {
		o.log.Error("outbox: closed with messages the full disk refused; they are lost", "messages", n)
		err = fmt.Errorf("outbox: close: %d messages held in memory lost: %w", n, ErrDiskFull)
	}
	o.mu.Unlock()
	o.closeFiles()
	return err
}

// closeFiles closes every file the outbox holds, and unlocks the directory.
func (o *Outbox) closeFiles() {
	o.mu.Lock()
	o.released = true
	if o.wfile != nil {
		o.wfile.Close()
		o.wfile = nil
	}
	for _, f := range o.toSync {
		f.Close()
	}
	o.toSync = nil
	o.mu.Unlock()
	o.readMu.Lock()
	if o.rfile.f != nil {
		o.rfile.f.Close()
		o.rfile = readFile{}
	}
	o.readMu.Unlock()
	if o.lockFile != nil {
		o.lockFile.Close() // releases the flock
		o.lockFile = nil
	}
}

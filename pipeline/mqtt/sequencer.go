package mqtt

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Sequencer state files, in the directory given to OpenSequencer.
const (
	// seqFile holds the exact counters: rewritten (temp file and rename,
	// no fsync) at most every seqFlushEvery while running, and with fsync
	// and "clean": true by Close.
	seqFile = "seq.json"
	// reserveFile holds, per device, a ceiling no issued seq exceeds. It
	// is written with fsync before a seq above the old ceiling is issued,
	// and consulted only after an unclean shutdown.
	reserveFile = "seq.reserve.json"
)

// seqFlushEvery bounds how stale seq.json may be; seqBlock is how many seqs
// one fsynced reservation covers, and so the largest jump an unclean restart
// makes.
const (
	seqFlushEvery = 200 * time.Millisecond
	seqBlock      = 10000
)

// Sequencer hands out per-device sequence numbers that never repeat, also
// across restarts and crashes, and that continue without a jump after a
// clean shutdown.
//
// How: the exact counters are written to seq.json (atomically, without
// fsync) at most every 200 ms by a goroutine the Sequencer owns, and with
// fsync and a "clean" mark by Close. Before a device's seq passes its
// reservation ceiling, a new ceiling (+10000) is written to seq.reserve.json
// with fsync. After a clean shutdown the counters are exact and numbering
// continues at counter+1. After an unclean one (SIGKILL, power loss: the
// clean mark is missing, removed and fsynced at open) each known device
// continues above its ceiling, and its first seq carries Restart and the
// last seq known to have been issued ([Issued]), so consumers can tell an
// announced jump from lost messages. Only one fsync per 10000 seqs per
// device (and one at open and close) is ever on the caller's path.
//
// A Sequencer is safe for concurrent use. Next and Issue must not be called
// after Close (they still return unique seqs, at the price of an fsync each).
// Only one Sequencer may use a directory at a time.
type Sequencer struct {
	dir     string
	log     *slog.Logger
	unclean bool // opened after an unclean shutdown
	// floor is set when a state file was unreadable: every seq issued
	// before is below it (the open time in microseconds since 1970, far
	// above any count of polls), so devices whose counters were lost
	// continue above it rather than from 1.
	floor uint64

	mu       sync.Mutex
	counters map[string]uint64 // last seq issued per device
	ceilings map[string]uint64 // durable: no seq above it was issued
	restart  map[string]jump   // devices whose next seq jumps and announces it
	dirty    bool              // counters changed since the last write
	closed   bool
	errs     uint64
	lastErr  error

	writeMu sync.Mutex // serialises writes of seq.json
	stop    chan struct{}
	done    chan struct{}
}

// jump is the pending first seq of a device after an unclean shutdown: it
// continues above from (its reservation ceiling then) and announces prev.
type jump struct{ prev, from uint64 }

// Issued is one sequence number handed out by [Sequencer.Issue].
type Issued struct {
	Seq uint64
	// Restart is set on the first seq of a device after an unclean
	// shutdown; PrevSeq is then the last seq known to have been issued
	// before it (seqs in between may or may not have been issued).
	Restart bool
	PrevSeq uint64
}

// seqVersion is the format version of both state files. Files written
// before versions existed have none (0) and are read as version 1.
const seqVersion = 1

type seqState struct {
	Version  int               `json:"version"`
	Clean    bool              `json:"clean"`
	Counters map[string]uint64 `json:"counters"`
}

type reserveState struct {
	Version  int               `json:"version"`
	Ceilings map[string]uint64 `json:"ceilings"`
}

// errNewerVersion is a state file written by a newer facgw.
type errNewerVersion struct{ version int }

func (e errNewerVersion) Error() string {
	return fmt.Sprintf("format version %d, newer than this facgw reads (%d)", e.version, seqVersion)
}

// OpenSequencer loads the state in dir (creating dir if needed), marks it
// as in use (with fsync, so a crash from now on is recognised as unclean)
// and starts the goroutine that writes the counters. log may be nil.
func OpenSequencer(dir string, log *slog.Logger) (*Sequencer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mqtt: sequencer: %w", err)
	}
	s := &Sequencer{
		dir:      dir,
		log:      log,
		counters: map[string]uint64{},
		ceilings: map[string]uint64{},
		restart:  map[string]jump{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}

	var st seqState
	stErr := readJSON(filepath.Join(dir, seqFile), &st)
	if stErr == nil && st.Version > seqVersion {
		stErr, st = errNewerVersion{st.Version}, seqState{}
	}
	var rs reserveState
	rsErr := readJSON(filepath.Join(dir, reserveFile), &rs)
	if rsErr == nil && rs.Version > seqVersion {
		rsErr, rs = errNewerVersion{rs.Version}, reserveState{}
	}
	for i, err := range []error{stErr, rsErr} {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			continue
		}
		// A torn or corrupt file (power loss before the rename reached
		// the disk) or one of a newer facgw (a downgrade): treat the
		// shutdown as unclean and number above anything that file can
		// have issued (see floor). The file is kept, moved aside.
		name := []string{seqFile, reserveFile}[i]
		aside := filepath.Join(dir, name+".unreadable-"+time.Now().UTC().Format("20060102T150405Z"))
		if rerr := os.Rename(filepath.Join(dir, name), aside); rerr != nil {
			aside = "(not moved: " + rerr.Error() + ")"
		}
		log.Error("mqtt: sequencer state unreadable; numbering continues above any seq it can hold, with a restart mark", "file", name, "moved_to", aside, "error", err)
		s.floor = uint64(time.Now().UnixMicro())
	}
	for d, c := range st.Counters {
		s.counters[d] = c
	}
	for d, c := range rs.Ceilings {
		s.ceilings[d] = c
	}
	fresh := errors.Is(stErr, fs.ErrNotExist) && errors.Is(rsErr, fs.ErrNotExist)
	s.unclean = !fresh && (stErr != nil || !st.Clean)
	if s.floor > 0 {
		// Devices the surviving file does not name may have issued seqs
		// too: they restart above the floor on their first Issue.
		for d := range s.counters {
			s.ceilings[d] = max(s.ceilings[d], s.floor)
		}
		for d := range s.ceilings {
			s.ceilings[d] = max(s.ceilings[d], s.floor)
		}
	}

	if s.unclean {
		devices := map[string]bool{}
		for d := range s.counters {
			devices[d] = true
		}
		for d := range s.ceilings {
			devices[d] = true
		}
		for d := range devices {
			prev := s.counters[d]
			from, ok := s.ceilings[d]
			if !ok || from < prev {
				// No reservation survived: jump a whole block past
				// the last known counter, the best that can be done.
				from = prev + seqBlock
			}
			// counters keeps the last seq known to be issued (the
			// prev_seq a later crash announces); the jump is applied
			// by the first Issue.
			s.restart[d] = jump{prev: prev, from: from}
			s.ceilings[d] = from + seqBlock
		}
		log.Warn("mqtt: sequencer: previous run did not shut down cleanly; sequence numbers jump past their reservations", "dir", dir, "devices", len(devices))
	}
	// Reserve a block for every known device in one fsync, so the first
	// poll of each does not pay for it.
	for d, c := range s.counters {
		if _, j := s.restart[d]; !j && s.ceilings[d] < c+seqBlock/2 {
			s.ceilings[d] = c + seqBlock
		}
	}
	if err := s.writeReserve(); err != nil {
		return nil, fmt.Errorf("mqtt: sequencer: %w", err)
	}
	// Remove the clean mark durably before any seq is issued: were it to
	// survive a crash, the next start would reuse seqs.
	if err := s.writeState(false, true); err != nil {
		return nil, fmt.Errorf("mqtt: sequencer: %w", err)
	}
	go s.flusher()
	return s, nil
}

// Unclean reports whether the previous run ended without Close.
func (s *Sequencer) Unclean() bool { return s.unclean }

// Next returns the device's next sequence number (Issue without the restart
// announcement).
func (s *Sequencer) Next(device string) uint64 { return s.Issue(device).Seq }

// Issue returns the device's next sequence number. The first seq of each
// device is 1. It blocks for an fsync only when the device's reservation
// must be extended (once per 10000 seqs). A failure to persist is logged
// and counted ([Sequencer.Err]), never returned: losing telemetry because
// the state disk is full would be worse than a possible repeat after a
// crash on that disk.
func (s *Sequencer) Issue(device string) Issued {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counters[device] + 1
	j, jumped := s.restart[device]
	if !jumped && s.floor > 0 && c == 1 {
		// A device first seen after the state was lost: its earlier
		// seqs are unknown, so it starts above the floor, announced.
		j, jumped = jump{from: s.floor}, true
	}
	if jumped {
		c = max(c, j.from+1)
		delete(s.restart, device)
	}
	if c > s.ceilings[device] {
		s.ceilings[device] = c - 1 + seqBlock
		if err := s.writeReserve(); err != nil {
			s.failed(err)
		}
	}
	s.counters[device] = c
	s.dirty = true
	is := Issued{Seq: c}
	if jumped {
		is.Restart, is.PrevSeq = true, j.prev
	}
	if s.closed {
		// No flusher any more, and seq.json says clean: make it say
		// otherwise before this seq can be used.
		if err := s.writeStateLocked(false, true); err != nil {
			s.failed(err)
		}
	}
	return is
}

// Err returns how many writes of the state failed and the last error.
func (s *Sequencer) Err() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs, s.lastErr
}

// Close stops the writer goroutine and writes the exact counters with the
// clean mark, with fsync, so the next start continues without a jump.
func (s *Sequencer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	// Written under s.mu so that a (mistaken) Issue after Close cannot
	// slip between the snapshot and the clean mark.
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writeStateLocked(true, true); err != nil {
		return fmt.Errorf("mqtt: sequencer: %w", err)
	}
	return nil
}

// flusher writes the counters at most every seqFlushEvery until Close.
func (s *Sequencer) flusher() {
	defer close(s.done)
	t := time.NewTicker(seqFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			dirty := s.dirty
			s.mu.Unlock()
			if !dirty {
				continue
			}
			if err := s.writeState(false, false); err != nil {
				s.mu.Lock()
				s.failed(err)
				s.mu.Unlock()
			}
		}
	}
}

// failed records a persistence error; s.mu must be held.
func (s *Sequencer) failed(err error) {
	s.errs++
	if s.lastErr == nil || s.lastErr.Error() != err.Error() {
		s.log.Error("mqtt: sequencer: cannot persist sequence numbers", "dir", s.dir, "error", err)
	}
	s.lastErr = err
}

// writeState snapshots the counters and writes seq.json.
func (s *Sequencer) writeState(clean, sync bool) error {
	s.mu.Lock()
	snap := make(map[string]uint64, len(s.counters))
	for d, c := range s.counters {
		snap[d] = c
	}
	s.dirty = false
	s.mu.Unlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return writeJSON(s.dir, seqFile, seqState{Version: seqVersion, Clean: clean, Counters: snap}, sync)
}

// writeStateLocked is writeState with s.mu already held.
func (s *Sequencer) writeStateLocked(clean, sync bool) error {
	s.dirty = false
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return writeJSON(s.dir, seqFile, seqState{Version: seqVersion, Clean: clean, Counters: s.counters}, sync)
}

// writeReserve writes the ceilings with fsync; s.mu must be held (or s not
// yet shared).
func (s *Sequencer) writeReserve() error {
	return writeJSON(s.dir, reserveFile, reserveState{Version: seqVersion, Ceilings: s.ceilings}, true)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeJSON replaces dir/name atomically (temp file and rename). With sync,
// the file and the directory are fsynced, so the new content survives a
// power loss; without, it survives a crash of the process only.
func writeJSON(dir, name string, v any, sync bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	if sync {
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", dir, err)
		}
	}
	return nil
}

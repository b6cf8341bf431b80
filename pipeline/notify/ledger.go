package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/facgw/facgw/internal/alert"
	"github.com/facgw/facgw/internal/diskfile"
)

// Files of the ledger's directory.
const (
	// LedgerFile holds the ledger: written whole and atomically (temp
	// file, fsync, rename, fsync of the directory) on every change. Since
	// version 2 it holds no history, so it stays small: the episodes
	// firing, the events not yet dispatched and the silences.
	LedgerFile = "ledger.json"
	// HistoryFile is the history of recorded events, one JSON object per
	// line, appended on every change and rewritten (compacted to the
	// latest LedgerOptions.Recent) when it holds twice that. It is a
	// record for the API and the dashboard: a line lost in a crash
	// loses nothing that is delivered.
	HistoryFile = "history.jsonl"
	// ledgerLock is flock(2)ed while a Ledger is open.
	ledgerLock = "ledger.lock"
	tmpSuffix  = ".tmp"
	// LedgerVersion is the format version written in LedgerFile: 2 since
	// the history moved to HistoryFile. Version 1 files (history inside)
	// are read; a file of any other version is moved aside, never read
	// half-understood.
	LedgerVersion = 2
)

// Defaults of LedgerOptions.
const (
	DefaultRecent     = 500
	DefaultMaxSilence = 7 * 24 * time.Hour
)

// Errors of the ledger, matched with errors.Is.
var (
	// ErrNotPersisted wraps a failure to write the ledger file. The call
	// changed nothing: its events got no Seq and were announced to no one.
	ErrNotPersisted = errors.New("notify: ledger not persisted")
	// ErrUnknownEpisode is returned by Ack for an id the ledger does not
	// hold.
	ErrUnknownEpisode = errors.New("notify: unknown episode")
	// ErrLedgerClosed is returned by every method after Close.
	ErrLedgerClosed = errors.New("notify: ledger closed")
	// ErrUnknownSilence is returned for a silence id the ledger does not
	// hold (never added, removed or expired).
	ErrUnknownSilence = errors.New("notify: unknown silence")
)

// LedgerOptions configures a Ledger. OpenLedger uses the defaults.
type LedgerOptions struct {
	// Dir is the ledger's own directory, created if missing. Two Ledgers
	// (or processes) cannot share it: it is locked while open.
	Dir string
	// Log receives recovery and consistency messages (default: discard).
	Log *slog.Logger
	// Recent bounds the history of recorded events kept for Recent and
	// Get (default DefaultRecent).
	Recent int
	// MaxSilence bounds how long a silence may last (default
	// DefaultMaxSilence): a forgotten silence must end by itself.
	MaxSilence time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	// beforeRename is a test hook, called after the temp file is written
	// and fsynced and before it is renamed over LedgerFile; an error
	// stands for a crash at that moment.
	beforeRename func() error
}

// Ledger is the durable record of alert events: it assigns each event its
// Seq, stamps acknowledgements and silences on it, and keeps what has not
// been dispatched to every path yet, the active episodes (the latest event
// of each episode that fired and has not resolved; an episode's
// acknowledgement is the Ack of its active event), a bounded history of
// recent events and the silences.
//
// Every change is persisted before the method returns (MarkDispatched is
// the exception: it is persisted with the next change or Flush, because a
// re-dispatch after a crash is a tolerated duplicate). All methods are safe
// for concurrent use.
type Ledger struct {
	opts LedgerOptions
	log  *slog.Logger
	path string
	lock *os.File

	mu     sync.Mutex
	closed bool
	st     state
	dirty  bool // dispatch marks not yet persisted

	// hist is HistoryFile, open for appending; histLines counts its
	// lines; histPending are the events applied since the last persist,
	// appended by it; histRewrite says the file must be rewritten from
	// st.recent (after a version 1 file, a torn line, or a failed append).
	hist        *os.File
	histLines   int
	histPending []alert.Event
	histRewrite bool
}

// state is what the ledger file holds.
type state struct {
	nextSeq      uint64
	undispatched []alert.Event // in Seq order
	active       map[string]alert.Event
	recent       []alert.Event // oldest first, at most opts.Recent
	silences     []Silence     // in creation order
}

// clone copies what a change may modify, so a failed write can be undone.
// Events are values whose maps and pointers are never modified in place.
// recent is only ever appended to (and cut at the front by reslicing), so
// its slice header alone restores it: an append never writes below the
// length it had.
func (s *state) clone() state {
	return state{
		nextSeq:      s.nextSeq,
		undispatched: slices.Clone(s.undispatched),
		active:       maps.Clone(s.active),
		recent:       s.recent,
		silences:     slices.Clone(s.silences),
	}
}

// fileV1 is the JSON layout of LedgerFile, versions 1 and 2 (version 2
// leaves Recent out: the history is in HistoryFile).
type fileV1 struct {
	Version int    `json:"version"`
	NextSeq uint64 `json:"next_seq"`
	// DispatchedUpTo: every event with a smaller or equal Seq has been
	// handed to every target (informative; Undispatched is what counts).
	DispatchedUpTo uint64        `json:"dispatched_up_to"`
	Undispatched   []alert.Event `json:"undispatched"`
	Active         []alert.Event `json:"active"`
	Recent         []alert.Event `json:"recent,omitempty"`
	Silences       []Silence     `json:"silences"`
}

// OpenLedger opens (or creates) the ledger in dir with the default
// options; see OpenLedgerWith.
func OpenLedger(dir string, log *slog.Logger) (*Ledger, error) {
	return OpenLedgerWith(LedgerOptions{Dir: dir, Log: log})
}

// OpenLedgerWith opens (or creates) the ledger in opts.Dir and locks the
// directory. A ledger file that cannot be read (not JSON, inconsistent, or
// of another format version) is renamed to ledger.json.unreadable-<time>
// and logged as an error, never deleted, and the ledger starts empty (it
// keeps the old file's next seq when that much can be read, so Seqs never
// repeat). An error means the directory cannot be used at all.
func OpenLedgerWith(opts LedgerOptions) (*Ledger, error) {
	if opts.Dir == "" {
		return nil, errors.New("notify: ledger: no directory")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Recent <= 0 {
		opts.Recent = DefaultRecent
	}
	if opts.MaxSilence <= 0 {
		opts.MaxSilence = DefaultMaxSilence
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("notify: ledger: %w", err)
	}
	lf, err := diskfile.Lock(filepath.Join(opts.Dir, ledgerLock))
	if err != nil {
		return nil, fmt.Errorf("notify: ledger %s: %w", opts.Dir, err)
	}
	l := &Ledger{
		opts: opts,
		log:  opts.Log.With("ledger", opts.Dir),
		path: filepath.Join(opts.Dir, LedgerFile),
		lock: lf,
	}
	if err := l.load(); err != nil {
		lf.Close()
		return nil, err
	}
	if err := l.openHistory(); err != nil {
		lf.Close()
		return nil, err
	}
	return l, nil
}

// load reads the ledger file into l.st.
func (l *Ledger) load() error {
	l.st = state{nextSeq: 1, active: map[string]alert.Event{}}
	// A temp file is a write that a crash interrupted before its rename:
	// the ledger file is still the previous, complete state.
	if err := os.Remove(l.path + tmpSuffix); err == nil {
		l.log.Warn("notify: ledger: removed the temp file of an interrupted write; the ledger file before it is intact")
	}
	b, err := os.ReadFile(l.path)
	if errors.Is(err, os.ErrNotExist) {
		// A history without its ledger (the ledger file lost or removed
		// by hand) would number its events like the new ones: it goes
		// aside, not deleted.
		hist := filepath.Join(l.opts.Dir, HistoryFile)
		if _, err := os.Stat(hist); err == nil {
			dst := hist + ".orphan-" + l.opts.Now().UTC().Format("20060102T150405.000000000Z")
			if err := os.Rename(hist, dst); err != nil {
				return fmt.Errorf("notify: ledger: %s has no ledger file and cannot be moved aside: %w", hist, err)
			}
			l.log.Warn("notify: ledger: a history without its ledger file moved aside; starting an empty ledger", "moved_to", dst)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("notify: ledger: %w", err)
	}
	st, version, reason := decodeLedger(b, l.opts.Recent)
	if reason == "" {
		l.st = st
		if version >= 2 {
			l.loadHistory()
		} else {
			// The history is in the version 1 file: it moves to
			// HistoryFile with the next write.
			l.histRewrite = true
		}
		l.log.Info("notify: ledger loaded", "version", version, "next_seq", st.nextSeq, "active", len(st.active),
			"undispatched", len(st.undispatched), "silences", len(st.silences), "history", len(l.st.recent))
		return nil
	}
	// Seqs must not repeat, also after a file was lost.
	l.st.nextSeq = max(st.nextSeq, 1)
	dst := l.path + ".unreadable-" + l.opts.Now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(l.path, dst); err != nil {
		return fmt.Errorf("notify: ledger: %s is unreadable (%s) and cannot be moved aside: %w", l.path, reason, err)
	}
	if err := diskfile.SyncDir(l.opts.Dir); err != nil {
		return fmt.Errorf("notify: ledger: %w", err)
	}
	l.log.Error("notify: ledger file unreadable; moved aside, not deleted, and starting with an empty ledger: active alerts, acknowledgements and silences of before are not known",
		"file", l.path, "moved_to", dst, "reason", reason, "next_seq", l.st.nextSeq)
	// Its history goes with it: the new ledger starts empty.
	hist := filepath.Join(l.opts.Dir, HistoryFile)
	if err := os.Rename(hist, dst+"."+HistoryFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("notify: ledger: %s cannot be moved aside with its ledger: %w", hist, err)
	}
	return nil
}

// loadHistory reads HistoryFile into st.recent: the latest opts.Recent
// events below next seq, in seq order. A line that does not decode (torn
// by a crash mid-append), is out of order, or is at or above next seq (an
// append whose ledger write a crash prevented: its seq was never issued)
// is left out, and the file is rewritten without it.
func (l *Ledger) loadHistory() {
	path := filepath.Join(l.opts.Dir, HistoryFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		l.log.Error("notify: ledger: history unreadable; starting it anew (delivery is not affected)", "file", path, "err", err)
		l.histRewrite = true
		return
	}
	var evs []alert.Event
	lines, bad, ahead := 0, 0, 0
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		lines++
		var ev alert.Event
		if err := json.Unmarshal(line, &ev); err != nil || checkEvent(&ev) != nil || ev.Seq == 0 ||
			(len(evs) > 0 && ev.Seq <= evs[len(evs)-1].Seq) {
			bad++
			continue
		}
		if ev.Seq >= l.st.nextSeq {
			ahead++
			continue
		}
		evs = append(evs, ev)
	}
	if len(evs) > l.opts.Recent {
		evs = slices.Clone(evs[len(evs)-l.opts.Recent:])
	}
	l.st.recent, l.histLines = evs, lines
	if bad > 0 || ahead > 0 {
		l.log.Warn("notify: ledger: history lines left out (torn by a crash, or of a write that did not complete); rewriting it",
			"file", path, "undecodable", bad, "not_recorded", ahead)
		l.histRewrite = true
	}
}

// openHistory opens HistoryFile for appending, rewriting it first when it
// must be.
func (l *Ledger) openHistory() error {
	if l.histRewrite {
		l.rewriteHistory()
		if l.hist != nil {
			return nil
		}
	}
	f, err := os.OpenFile(filepath.Join(l.opts.Dir, HistoryFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("notify: ledger: history: %w", err)
	}
	l.hist = f
	return nil
}

// rewriteHistory replaces HistoryFile with st.recent, atomically; on
// failure it logs and leaves histRewrite set, to try again with the next
// write (the history is a record; delivery does not depend on it).
func (l *Ledger) rewriteHistory() {
	path := filepath.Join(l.opts.Dir, HistoryFile)
	var buf []byte
	for i := range l.st.recent {
		b, err := json.Marshal(&l.st.recent[i])
		if err != nil {
			continue
		}
		buf = append(append(buf, b...), '\n')
	}
	err := diskfile.WriteSync(path+tmpSuffix, buf, 0o640)
	if err == nil {
		err = os.Rename(path+tmpSuffix, path)
	}
	var f *os.File
	if err == nil {
		_ = diskfile.SyncDir(l.opts.Dir)
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	}
	if err != nil {
		os.Remove(path + tmpSuffix)
		l.histRewrite = true
		l.log.Error("notify: ledger: cannot rewrite the history; trying again with the next change (delivery is not affected)", "file", path, "err", err)
		return
	}
	if l.hist != nil {
		l.hist.Close()
	}
	l.hist, l.histLines, l.histRewrite = f, len(l.st.recent), false
}

// decodeLedger decodes a ledger file. A non-empty reason means it cannot be
// used; st.nextSeq is then whatever could be salvaged.
func decodeLedger(b []byte, recentMax int) (st state, version int, reason string) {
	var head struct {
		Version *int   `json:"version"`
		NextSeq uint64 `json:"next_seq"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return state{}, 0, fmt.Sprintf("not a ledger file: %v", err)
	}
	st.nextSeq = head.NextSeq
	switch {
	case head.Version == nil:
		return st, 0, "no version field"
	case *head.Version != 1 && *head.Version != LedgerVersion:
		return st, *head.Version, fmt.Sprintf("format version %d, this facgw reads versions 1 and %d", *head.Version, LedgerVersion)
	}
	version = *head.Version
	var f fileV1
	if err := json.Unmarshal(b, &f); err != nil {
		return st, version, fmt.Sprintf("version %d ledger does not decode: %v", version, err)
	}
	if version >= 2 && len(f.Recent) > 0 {
		return st, version, fmt.Sprintf("version %d ledger with a recent list (its history is in %s)", version, HistoryFile)
	}
	st = state{nextSeq: f.NextSeq, undispatched: f.Undispatched, active: map[string]alert.Event{}, recent: f.Recent, silences: f.Silences}
	for _, evs := range [][]alert.Event{f.Undispatched, f.Active, f.Recent} {
		for _, ev := range evs {
			// Should the file be unusable, Seqs still must not repeat.
			st.nextSeq = max(st.nextSeq, ev.Seq+1)
		}
	}
	check := func(what string, evs []alert.Event) string {
		for i := range evs {
			if err := checkEvent(&evs[i]); err != nil {
				return fmt.Sprintf("%s[%d]: %v", what, i, err)
			}
			if evs[i].Seq == 0 || evs[i].Seq >= f.NextSeq {
				return fmt.Sprintf("%s[%d]: seq %d not below next_seq %d", what, i, evs[i].Seq, f.NextSeq)
			}
		}
		return ""
	}
	for _, c := range []struct {
		what string
		evs  []alert.Event
	}{{"undispatched", f.Undispatched}, {"active", f.Active}, {"recent", f.Recent}} {
		if r := check(c.what, c.evs); r != "" {
			return st, version, r
		}
	}
	for i, ev := range f.Active {
		if ev.State != alert.Firing {
			return st, version, fmt.Sprintf("active[%d]: episode %q is %s", i, ev.ID, ev.State)
		}
		st.active[ev.ID] = ev
	}
	for i, s := range f.Silences {
		if s.ID == "" || s.Until.IsZero() || s.Severity < alert.Info || s.Severity > alert.Critical {
			return st, version, fmt.Sprintf("silences[%d]: missing id, until or severity", i)
		}
	}
	sort.Slice(st.undispatched, func(i, j int) bool { return st.undispatched[i].Seq < st.undispatched[j].Seq })
	if len(st.recent) > recentMax {
		st.recent = slices.Clone(st.recent[len(st.recent)-recentMax:])
	}
	return st, version, ""
}

// checkEvent reports what makes ev unfit for the ledger.
func checkEvent(ev *alert.Event) error {
	switch {
	case ev.ID == "":
		return errors.New("no episode id")
	case ev.Rule == "":
		return errors.New("no rule")
	case ev.Severity < alert.Info || ev.Severity > alert.Critical:
		return fmt.Errorf("severity %s (want one of %s)", ev.Severity, strings.Join(alert.Severities, ", "))
	case ev.State != alert.Firing && ev.State != alert.Resolved:
		return fmt.Errorf("state %q is never delivered (want firing or resolved)", ev.State)
	}
	switch ev.Kind {
	case alert.KindFiring, alert.KindAcknowledged, alert.KindSilenced, alert.KindUnsilenced:
		if ev.State != alert.Firing {
			return fmt.Errorf("kind %s with state %s (want firing)", ev.Kind, ev.State)
		}
	case alert.KindResolved:
		if ev.State != alert.Resolved {
			return fmt.Errorf("kind resolved with state %s", ev.State)
		}
	default:
		return fmt.Errorf("unknown kind %q", ev.Kind)
	}
	return nil
}

// Record assigns each event its Seq, stamps it and persists the ledger once
// for the whole call; it returns the recorded events, in order. Stamps: an
// event of an acknowledged episode carries that Ack; an event matched by an
// active silence (of at least its severity, see Silence) carries its
// SilenceRef, and one that is not carries none (a recorded Silence is
// recomputed, so a worse alert is never hidden by a stale stamp). At is set
// to now when zero.
//
// A resolved event for an episode already resolved is a duplicate and is
// dropped (logged at debug level; not returned). A resolved event for an
// episode the ledger never saw fire is recorded and delivered, with a
// warning: the ledger may have lost the episode (an unreadable file moved
// aside), while consumers may still show it firing; a resolve nobody
// expected is harmless to them, a lost one leaves an alarm open.
//
// An invalid event (no ID or rule, a pending state, a kind that does not
// fit its state, an unknown severity) fails the whole call, naming it. On a
// write error nothing is recorded and the error matches ErrNotPersisted.
func (l *Ledger) Record(evs []alert.Event) ([]alert.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrLedgerClosed
	}
	for i := range evs {
		if err := checkEvent(&evs[i]); err != nil {
			return nil, fmt.Errorf("notify: ledger: record event %d of %d (rule %q, episode %q): %w", i+1, len(evs), evs[i].Rule, evs[i].ID, err)
		}
	}
	saved := l.st.clone()
	now := l.opts.Now()
	out := make([]alert.Event, 0, len(evs))
	for _, ev := range evs {
		if rec, ok := l.applyLocked(ev, now); ok {
			out = append(out, rec)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := l.persistLocked(); err != nil {
		l.st = saved
		return nil, err
	}
	return out, nil
}

// applyLocked stamps and numbers ev and updates the state; false means it
// was dropped as a duplicate.
func (l *Ledger) applyLocked(ev alert.Event, now time.Time) (alert.Event, bool) {
	if ev.At.IsZero() {
		ev.At = now
	}
	prev, isActive := l.st.active[ev.ID]
	if ev.State == alert.Resolved && !isActive {
		if last, ok := l.lastLocked(ev.ID); ok && last.State == alert.Resolved {
			l.log.Debug("notify: ledger: duplicate resolved event dropped", "episode", ev.ID, "rule", ev.Rule, "instance", ev.Instance())
			return ev, false
		}
		l.log.Warn("notify: ledger: resolved event for an episode the ledger does not hold as firing; recorded and delivered",
			"episode", ev.ID, "rule", ev.Rule, "instance", ev.Instance())
	}
	if ev.Ack == nil && isActive {
		ev.Ack = prev.Ack
	}
	ev.Silence = nil
	if s := l.coveringLocked(&ev, now); s != nil {
		ev.Silence = s.ref()
	}
	ev.Seq = l.st.nextSeq
	l.st.nextSeq++
	if ev.State == alert.Firing {
		l.st.active[ev.ID] = ev
	} else {
		delete(l.st.active, ev.ID)
	}
	l.st.undispatched = append(l.st.undispatched, ev)
	l.st.recent = append(l.st.recent, ev)
	l.histPending = append(l.histPending, ev)
	if n := len(l.st.recent) - l.opts.Recent; n > 0 {
		l.st.recent = l.st.recent[n:]
	}
	return ev, true
}

// lastLocked returns the latest event of episode id in the history.
func (l *Ledger) lastLocked(id string) (alert.Event, bool) {
	for i := len(l.st.recent) - 1; i >= 0; i-- {
		if l.st.recent[i].ID == id {
			return l.st.recent[i], true
		}
	}
	return alert.Event{}, false
}

// Active returns the latest event of every active (firing) episode, most
// severe first, then oldest first.
func (l *Ledger) Active() []alert.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.activeLocked()
}

func (l *Ledger) activeLocked() []alert.Event {
	out := slices.Collect(maps.Values(l.st.active))
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if !a.ActiveAt.Equal(b.ActiveAt) {
			return a.ActiveAt.Before(b.ActiveAt)
		}
		return a.ID < b.ID
	})
	return out
}

// Recent returns up to n of the most recently recorded events of every
// kind, newest first; n <= 0 means all that are kept.
func (l *Ledger) Recent(n int) []alert.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n <= 0 || n > len(l.st.recent) {
		n = len(l.st.recent)
	}
	out := make([]alert.Event, 0, n)
	for i := len(l.st.recent) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, l.st.recent[i])
	}
	return out
}

// Since returns the recorded events with a seq above seq, oldest first:
// at most max, the oldest of them when there are more (the caller asks
// again from the last one it got). It reads the bounded recent history: a
// caller further behind than that misses what fell out of it.
func (l *Ledger) Since(seq uint64, max int) []alert.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := len(l.st.recent)
	for i > 0 && l.st.recent[i-1].Seq > seq {
		i--
	}
	end := len(l.st.recent)
	if max > 0 && end-i > max {
		end = i + max
	}
	return slices.Clone(l.st.recent[i:end])
}

// LastSeq returns the seq of the latest recorded event, 0 before any.
func (l *Ledger) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.st.recent); n > 0 {
		return l.st.recent[n-1].Seq
	}
	return 0
}

// Get returns the latest event of episode id: the active one, or else the
// latest in the recent history.
func (l *Ledger) Get(id string) (alert.Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ev, ok := l.st.active[id]; ok {
		return ev, true
	}
	return l.lastLocked(id)
}

// Ack acknowledges the active episode id on behalf of by and records a
// KindAcknowledged event carrying the Ack (and so does every later event of
// the episode). Acknowledging an acknowledged episode changes nothing: the
// first acknowledgement stands and the episode's current event is returned.
// An unknown id (ErrUnknownEpisode), a resolved episode or an empty by is
// an error naming it. at zero means now.
func (l *Ledger) Ack(id, by, comment string, at time.Time) (alert.Event, error) {
	ev, _, err := l.ack(id, by, comment, at)
	return ev, err
}

// ack is Ack that also says whether a new event was recorded.
func (l *Ledger) ack(id, by, comment string, at time.Time) (alert.Event, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return alert.Event{}, false, ErrLedgerClosed
	}
	if strings.TrimSpace(by) == "" {
		return alert.Event{}, false, fmt.Errorf("notify: ack episode %q: by is required (who acknowledges)", id)
	}
	cur, ok := l.st.active[id]
	if !ok {
		if last, found := l.lastLocked(id); found && last.State == alert.Resolved {
			return alert.Event{}, false, fmt.Errorf("notify: ack episode %q (%s on %s): already resolved at %s",
				id, last.Rule, last.Instance(), last.ResolvedAt.UTC().Format(time.RFC3339))
		}
		return alert.Event{}, false, fmt.Errorf("%w: ack episode %q: no such active alert", ErrUnknownEpisode, id)
	}
	if cur.Ack != nil {
		return cur, false, nil
	}
	now := l.opts.Now()
	if at.IsZero() {
		at = now
	}
	ev := cur
	ev.Kind = alert.KindAcknowledged
	ev.Ack = &alert.Ack{By: by, At: at.UTC(), Comment: comment}
	ev.At = at
	saved := l.st.clone()
	rec, _ := l.applyLocked(ev, now)
	if err := l.persistLocked(); err != nil {
		l.st = saved
		return alert.Event{}, false, err
	}
	l.log.Info("notify: alert acknowledged", "episode", id, "rule", rec.Rule, "instance", rec.Instance(), "by", by, "seq", rec.Seq)
	return rec, true, nil
}

// Undispatched returns the recorded events not yet marked dispatched, in
// Seq order.
func (l *Ledger) Undispatched() []alert.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.st.undispatched)
}

// MarkDispatched records that every target took event seq. It is persisted
// lazily (with the next change, Flush or Close): after a crash the event is
// dispatched again, a duplicate consumers tolerate. Marking an unknown or
// already dispatched seq is a no-op.
func (l *Ledger) MarkDispatched(seq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrLedgerClosed
	}
	i, ok := slices.BinarySearchFunc(l.st.undispatched, seq, func(e alert.Event, s uint64) int {
		switch {
		case e.Seq < s:
			return -1
		case e.Seq > s:
			return 1
		}
		return 0
	})
	if !ok {
		return nil
	}
	l.st.undispatched = slices.Delete(l.st.undispatched, i, i+1)
	l.dirty = true
	return nil
}

// Flush persists dispatch marks not yet written. The Dispatcher calls it
// every second.
func (l *Ledger) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrLedgerClosed
	}
	if !l.dirty {
		return nil
	}
	return l.persistLocked()
}

// Close flushes the ledger and unlocks its directory; later calls of any
// method return ErrLedgerClosed.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrLedgerClosed
	}
	var err error
	if l.dirty {
		err = l.persistLocked()
	}
	l.closed = true
	if l.hist != nil {
		l.hist.Close()
	}
	l.lock.Close() // releases the flock
	return err
}

// persistLocked appends the events applied since the last call to the
// history, then writes the ledger file atomically: temp file, fsync,
// rename, fsync of the directory. Either the old or the new ledger file is
// complete after a crash at any point; history lines appended for a write
// that did not complete are at or above its next seq, and left out when
// the history is read. On failure the appended lines are cut off again
// (the caller puts the state back).
func (l *Ledger) persistLocked() error {
	pending := l.histPending
	l.histPending = nil
	histSize := int64(-1)
	if len(pending) > 0 && !l.histRewrite && l.hist != nil {
		histSize = l.appendHistory(pending)
	}
	err := l.writeLedgerLocked()
	if err != nil {
		if histSize >= 0 {
			if terr := l.hist.Truncate(histSize); terr != nil {
				l.histRewrite = true
			}
		}
		return err
	}
	l.histLines += len(pending)
	if l.histRewrite || l.histLines > 2*l.opts.Recent {
		l.rewriteHistory()
	}
	return nil
}

// appendHistory appends evs to the history, not synced (a crash may lose
// the last lines: a record, not a delivery). It returns the file's size
// before, or -1 when the append failed (the history is then rewritten
// whole after the ledger write).
func (l *Ledger) appendHistory(evs []alert.Event) int64 {
	fi, err := l.hist.Stat()
	if err != nil {
		l.histRewrite = true
		return -1
	}
	var buf []byte
	for i := range evs {
		b, err := json.Marshal(&evs[i])
		if err != nil {
			l.histRewrite = true
			return -1
		}
		buf = append(append(buf, b...), '\n')
	}
	if _, err := l.hist.Write(buf); err != nil {
		l.log.Error("notify: ledger: cannot append to the history; rewriting it after this write (delivery is not affected)", "err", err)
		_ = l.hist.Truncate(fi.Size())
		l.histRewrite = true
		return -1
	}
	return fi.Size()
}

// writeLedgerLocked writes the ledger file atomically.
func (l *Ledger) writeLedgerLocked() error {
	f := fileV1{
		Version:      LedgerVersion,
		NextSeq:      l.st.nextSeq,
		Undispatched: l.st.undispatched,
		Active:       l.activeLocked(),
		Silences:     l.st.silences,
	}
	f.DispatchedUpTo = l.st.nextSeq - 1
	if len(l.st.undispatched) > 0 {
		f.DispatchedUpTo = l.st.undispatched[0].Seq - 1
	}
	b, err := json.Marshal(&f)
	if err != nil {
		return fmt.Errorf("%w: encode: %w", ErrNotPersisted, err)
	}
	tmp := l.path + tmpSuffix
	if err := diskfile.WriteSync(tmp, b, 0o640); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%w: %w", ErrNotPersisted, err)
	}
	if l.opts.beforeRename != nil {
		if err := l.opts.beforeRename(); err != nil {
			return fmt.Errorf("%w: %w", ErrNotPersisted, err)
		}
	}
	if err := os.Rename(tmp, l.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%w: %w", ErrNotPersisted, err)
	}
	l.dirty = false
	if err := diskfile.SyncDir(l.opts.Dir); err != nil {
		// The rename happened and the file is what this process reads
		// from now on; only its durability across a power loss is in
		// doubt, and undoing the change in memory would reuse Seqs. The
		// next write syncs the directory again.
		l.log.Error("notify: ledger: cannot fsync the directory after a write", "dir", l.opts.Dir, "err", err)
	}
	return nil
}

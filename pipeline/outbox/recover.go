package outbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/facgw/facgw/internal/diskfile"
)

// recover loads the state file and indexes every segment; see "Recovery"
// in the package documentation. It runs before the background goroutine
// starts, so it needs no lock, but takes it for the helpers that expect it.
func (o *Outbox) recover() error {
	dir := o.opts.Dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	var st persisted
	var bases []uint64
	for _, e := range entries {
		name, path := e.Name(), filepath.Join(dir, e.Name())
		switch {
		case strings.HasSuffix(name, tmpExt):
			// A state or compaction temporary of a crash: the file it was
			// to replace is intact.
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("outbox: %w", err)
			}
		case name == stateName:
			b, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("outbox: %w", err)
			}
			if st, err = decodeState(b); err != nil {
				st = persisted{}
				if err := o.moveAside(path, err); err != nil {
					return err
				}
			}
		default:
			if base, ok := parseSegName(name); ok && e.Type().IsRegular() {
				bases = append(bases, base)
			}
		}
	}
	slices.Sort(bases)

	// next is the lowest NextSeq that cannot repeat a seq ever assigned.
	next := max(st.next, 1)
	var last uint64 // the highest seq indexed so far
	for j, base := range bases {
		s, l, err := o.loadSegment(filepath.Join(dir, segName(base)), base, last, st.head, j == len(bases)-1)
		if err != nil {
			return err
		}
		// Also above the base of every file, readable or not: its name
		// says seqs from base on may have been assigned, and a new segment
		// must not take the name of an old one.
		next = max(next, base+1, l+1)
		if s == nil {
			continue
		}
		last = l
		o.segs = append(o.segs, s)
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	o.nextSeq = next
	o.dropTotal = st.dropped
	o.written = st
	for _, s := range o.segs {
		o.live += s.live
		o.retained += s.retained()
		o.diskBytes += s.size
	}
	o.head = min(st.head, next)
	o.advanceHeadLocked()
	o.teleFrom = o.head
	o.enforceLocked(o.opts.now())
	return nil
}

// loadSegment indexes the segment file at path, whose records must all
// have seqs above last, and returns it with its highest seq (last if it has
// no records). Records below head are already acknowledged. It returns no
// segment, and no error, for a file it moved aside or removed as empty; the
// error is for I/O that makes the directory unusable.
func (o *Outbox) loadSegment(path string, base, last, head uint64, newest bool) (*segment, uint64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, last, fmt.Errorf("outbox: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, last, fmt.Errorf("outbox: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		// A crash between creating the file and writing its header: it
		// never held a record.
		o.log.Warn("outbox: removing an empty segment file", "segment", path)
		if err := os.Remove(path); err != nil {
			return nil, last, fmt.Errorf("outbox: %w", err)
		}
		return nil, last, nil
	}

	hdr := make([]byte, segHeaderLen)
	n, err := io.ReadFull(f, hdr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, last, fmt.Errorf("outbox: read %s: %w", path, err)
	}
	hbase, herr := decodeHeader(hdr[:n])
	if herr == nil && hbase != base {
		herr = fmt.Errorf("%w: base seq %d in a file named for %d", errBadHeader, hbase, base)
	}
	if herr != nil {
		return nil, last, o.moveAside(path, herr)
	}

	s := &segment{base: base, path: path, first: base}
	br := bufio.NewReaderSize(f, 256<<10)
	off := int64(segHeaderLen)
	var body []byte
	var bad error // why the valid part ends before the file does
	for {
		var pre [recPrefixLen]byte
		if _, err := io.ReadFull(br, pre[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				bad = errors.New("incomplete record header")
			} else if err != io.EOF {
				return nil, last, fmt.Errorf("outbox: read %s: %w", path, err)
			}
			break
		}
		blen := int64(le.Uint32(pre[:]))
		end := off + recPrefixLen + blen
		if blen < recFixedLen || blen > maxBody || end > math.MaxUint32 {
			bad = fmt.Errorf("implausible record length %d", blen)
			break
		}
		if end > size {
			bad = errors.New("incomplete record")
			break
		}
		body = slices.Grow(body[:0], int(blen))[:blen]
		if _, err := io.ReadFull(br, body); err != nil {
			return nil, last, fmt.Errorf("outbox: read %s: %w", path, err)
		}
		if checksum(body) != le.Uint32(pre[4:]) {
			bad = errors.New("checksum mismatch")
			break
		}
		h, err := parseBody(body)
		if err != nil {
			bad = err
			break
		}
		if h.seq <= last || h.seq < base {
			bad = fmt.Errorf("seq %d out of order (after %d, base %d)", h.seq, last, base)
			break
		}
		s.add(h.seq, off, h.time, h.class)
		if h.seq < head {
			s.markDone(s.n()-1, flagAcked)
		}
		last = h.seq
		off = end
	}
	s.size = off
	s.seal()
	if bad == nil {
		return s, last, nil
	}

	if newest {
		o.log.Warn("outbox: truncating a torn record at the end of the newest segment (a crash while appending)",
			"segment", path, "offset", off, "bytes", size-off, "reason", bad)
	} else {
		if err := o.saveTail(f, path, off, size, bad); err != nil {
			return nil, last, err
		}
	}
	if err := f.Truncate(off); err != nil {
		return nil, last, fmt.Errorf("outbox: truncate %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return nil, last, fmt.Errorf("outbox: %w", err)
	}
	return s, last, nil
}

// saveTail copies the bytes of f from off to size into a file set aside,
// before they are truncated away.
func (o *Outbox) saveTail(f *os.File, path string, off, size int64, reason error) error {
	dst := asideName(path, o.opts.now())
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	_, err = io.Copy(out, io.NewSectionReader(f, off, size-off))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("outbox: save unreadable tail of %s: %w", path, err)
	}
	o.log.Error("outbox: unreadable records in a segment; kept the readable part, moved the rest aside",
		"segment", path, "offset", off, "bytes", size-off, "moved_to", dst, "reason", reason)
	return nil
}

// moveAside renames an unreadable file out of the way, never deleting it,
// and logs why.
func (o *Outbox) moveAside(path string, reason error) error {
	dst := asideName(path, o.opts.now())
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("outbox: move unreadable %s aside: %w", path, err)
	}
	o.log.Error("outbox: unreadable file moved aside, not deleted", "file", path, "moved_to", dst, "reason", reason)
	return diskfile.SyncDir(filepath.Dir(path))
}

func asideName(path string, now time.Time) string {
	return path + ".unreadable-" + now.UTC().Format("20060102T150405.000000000Z")
}

// Package diskfile holds the few file-system steps every durable store of
// facgw (the outboxes, the alert ledger, the load-shed state) takes the
// same way: an exclusive lock on its directory, a file written and
// fsynced before it is renamed into place, and an fsync of a directory
// after creating, renaming or removing files in it.
package diskfile

import (
	"errors"
	"os"
)

// ErrLocked is returned by Lock when another process (or another store in
// this one) holds the lock.
var ErrLocked = errors.New("locked by another user of the directory")

// SyncDir fsyncs a directory, making file creations, renames and deletions
// in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteSync writes b to a new file at path (replacing one there) with
// perm and fsyncs it: the first step of an atomic replace (then rename,
// then SyncDir).
func WriteSync(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

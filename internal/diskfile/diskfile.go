// Package diskfile holds the few file-system steps every durable store of
// facgw (the outboxes, the alert ledger) takes the same way: an exclusive
// lock on its directory and an fsync of a directory after creating,
// renaming or removing files in it.
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

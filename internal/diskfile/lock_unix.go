//go:build unix

package diskfile

import (
	"errors"
	"os"
	"syscall"
)

// Lock takes an exclusive flock(2) on the file at path (created if
// missing), so that two processes, or two stores in one process, never
// write the same directory. The kernel releases it when the process dies,
// so a crash leaves no stale lock; closing the returned file releases it
// too. A lock held elsewhere is ErrLocked.
func Lock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, err
	}
	return f, nil
}

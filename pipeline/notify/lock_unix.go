//go:build unix

package notify

import (
	"errors"
	"os"
	"syscall"
)

// lockDir takes an exclusive flock(2) on path, so that two processes never
// write the same ledger. The kernel releases it when the process dies, so a
// crash leaves no stale lock.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.New("in use by another ledger (locked)")
		}
		return nil, err
	}
	return f, nil
}

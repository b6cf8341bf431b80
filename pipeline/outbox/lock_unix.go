//go:build unix

package outbox

import (
	"errors"
	"os"
	"syscall"
)

// lockDir takes an exclusive flock(2) on path, so that two processes (or two
// outboxes in one process) never append to the same directory. The kernel
// releases it when the process dies, so a crash leaves no stale lock.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.New("in use by another outbox (locked)")
		}
		return nil, err
	}
	return f, nil
}

//go:build darwin || freebsd || linux || netbsd || openbsd

package modbus

import (
	"errors"
	"fmt"
	"syscall"
)

// drainInput discards what the serial port at path has received and nobody
// has read, by reading it through a descriptor of its own: the input queue
// belongs to the tty, not to a descriptor, so this empties it for goburrow's
// descriptor too. The port must be open and in goburrow's raw mode (VMIN 0),
// so a read returns at once when the queue is empty. A line that keeps
// talking is read for a bounded number of times only.
func drainInput(path string) error {
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("drain serial input: %w", err)
	}
	defer syscall.Close(fd)
	var buf [256]byte
	for range 64 {
		n, err := syscall.Read(fd, buf[:])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EAGAIN) || (err == nil && n == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("drain serial input: %w", err)
		}
	}
	return nil
}

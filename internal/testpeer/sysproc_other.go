//go:build unix && !linux

package testpeer

import "syscall"

// sysProcAttr puts the peer in its own process group, so that it and any
// children can be signalled together without touching the test binary's
// group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

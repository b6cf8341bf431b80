package testpeer

import "syscall"

// sysProcAttr puts the peer in its own process group, so that it and any
// children can be signalled together without touching the test binary's
// group. Pdeathsig kills the peer if the test binary dies without running its
// cleanups (e.g. a `go test -timeout` panic), so no peer outlives the test
// holding a port. (Pdeathsig follows the OS thread that started the child;
// the Go runtime does not retire threads unless a goroutine locked with
// runtime.LockOSThread exits, which the tests do not do.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

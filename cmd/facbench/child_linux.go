package main

import "syscall"

// childAttr makes a child process (the gateway, Alertmanager) die with
// facbench, even when facbench itself is killed and its deferred cleanup
// never runs.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

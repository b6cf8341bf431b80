//go:build !linux

package main

import "syscall"

// childAttr is nil where the parent's death cannot be signalled to a
// child; facbench reads /proc and is meant for Linux anyway.
func childAttr() *syscall.SysProcAttr { return nil }

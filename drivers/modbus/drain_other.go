//go:build !(darwin || freebsd || linux || netbsd || openbsd)

package modbus

// drainInput does nothing where goburrow/serial has no POSIX port.
func drainInput(string) error { return nil }

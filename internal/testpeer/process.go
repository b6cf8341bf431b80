package testpeer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long Stop (and the cleanup) waits after SIGTERM before
// sending SIGKILL; killWait is how long we wait for a SIGKILLed process to be
// reaped before reporting it.
const (
	stopGrace = 3 * time.Second
	killWait  = 10 * time.Second
)

// logTail is how much of each output file is logged when a test fails.
const logTail = 4 << 10

// Option configures [StartProcess].
type Option func(*procConfig)

type procConfig struct {
	env      []string
	dir      string
	readyTCP []string
	ready    []func() error
	tries    int
}

// WithEnv adds "KEY=value" entries to the environment, which is otherwise the
// test's own (later entries win over inherited ones).
func WithEnv(kv ...string) Option {
	return func(c *procConfig) { c.env = append(c.env, kv...) }
}

// WithDir sets the working directory. The default is the process's own new
// temp dir, which also holds its output files ([Process.Dir]).
func WithDir(dir string) Option {
	return func(c *procConfig) { c.dir = dir }
}

// WithReadyTCP makes StartProcess and Restart wait until addr accepts TCP
// connections before returning. May be given more than once.
func WithReadyTCP(addr string) Option {
	return func(c *procConfig) { c.readyTCP = append(c.readyTCP, addr) }
}

// WithReady makes StartProcess and Restart poll check until it returns nil
// (after any WithReadyTCP addresses accept), e.g. an SNMP GET for a UDP peer.
// check runs on the test goroutine and must not block for long: give its
// network calls a short timeout.
func WithReady(check func() error) Option {
	return func(c *procConfig) { c.ready = append(c.ready, check) }
}

// WithTries sets how many times each readiness check is polled, [PollInterval]
// apart (default [DefaultTries]).
func WithTries(n int) Option {
	return func(c *procConfig) { c.tries = n }
}

// Process is a peer program started by [StartProcess]. It runs in its own
// process group (its PID is the group id); Kill, Stop and the test cleanup
// signal that group only, and only while its main process has not been
// reaped, so they never reach an unrelated process. A peer must therefore
// run in the foreground (not daemonize). Methods must be called from the
// test's goroutine.
type Process struct {
	t      testing.TB
	name   string
	args   []string
	cfg    procConfig
	logDir string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current run has been reaped
	reaped  bool          // the current run's main process has been reaped
	waitErr error         // the current run's exit status
	killed  bool          // the current run was stopped by us
	runs    int
	shown   bool // a start error already carried the output
}

// StartProcess runs the program name with args for the duration of the test
// and returns once it is ready (see [WithReadyTCP], [WithReady]; without
// readiness options, once it has been started). The program gets no stdin;
// its stdout and stderr are appended to files in a new temp dir
// ([Process.StdoutPath], [Process.StderrPath]) across restarts.
//
// The test fails (t.Fatalf, with the tail of the program's stderr) if the
// program cannot be started, exits before it is ready, or never becomes
// ready. A t.Cleanup stops the process group (SIGTERM, then SIGKILL after a
// grace period) and reaps it; if the test failed, or the program exited on
// its own, the cleanup logs the tail of its output.
//
// name should be an absolute path (StartProcess does not check that the
// software is installed; call [Require] first).
func StartProcess(t testing.TB, name string, args []string, opts ...Option) *Process {
	t.Helper()
	p := &Process{
		t:      t,
		name:   name,
		args:   append([]string(nil), args...),
		logDir: t.TempDir(),
	}
	for _, o := range opts {
		o(&p.cfg)
	}
	if p.cfg.dir == "" {
		p.cfg.dir = p.logDir
	}
	// Registered after t.TempDir, so it runs before the temp dirs are removed.
	t.Cleanup(p.cleanup)
	if err := p.start(); err != nil {
		t.Fatalf("testpeer: %v", err)
	}
	return p
}

// Kill sends SIGKILL to the process group and waits until the main process
// has been reaped: the way to simulate a peer crashing or a host going away
// in outage tests. A no-op if the process is not running.
func (p *Process) Kill() {
	p.t.Helper()
	if err := p.signalAndWait(syscall.SIGKILL, killWait); err != nil {
		p.t.Fatalf("testpeer: kill %s: %v", p, err)
	}
}

// Stop sends SIGTERM to the process group, waits a few seconds for it to exit
// and sends SIGKILL if it does not: a clean shutdown of the peer. A no-op if
// the process is not running.
func (p *Process) Stop() {
	p.t.Helper()
	if err := p.stop(); err != nil {
		p.t.Fatalf("testpeer: stop %s: %v", p, err)
	}
}

// Restart starts the program again with the same arguments, environment and
// working directory (killing it first if it is still running) and waits until
// it is ready, like [StartProcess]. State the peer kept in its directory
// survives; for a listening peer the port is the same, since it is in args.
func (p *Process) Restart() {
	p.t.Helper()
	if err := p.signalAndWait(syscall.SIGKILL, killWait); err != nil {
		p.t.Fatalf("testpeer: restart %s: %v", p, err)
	}
	if err := p.start(); err != nil {
		p.t.Fatalf("testpeer: restart: %v", err)
	}
}

// PID returns the process id of the current run (also its process group id).
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Done returns a channel closed when the current run has exited and been
// reaped. After Restart, call Done again for the new run.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Dir returns the working directory of the process.
func (p *Process) Dir() string { return p.cfg.dir }

// StdoutPath returns the file the program's stdout is appended to.
func (p *Process) StdoutPath() string { return filepath.Join(p.logDir, "stdout.log") }

// StderrPath returns the file the program's stderr is appended to.
func (p *Process) StderrPath() string { return filepath.Join(p.logDir, "stderr.log") }

// Stdout returns everything the program has written to stdout so far.
func (p *Process) Stdout() string { return readFile(p.StdoutPath()) }

// Stderr returns everything the program has written to stderr so far.
func (p *Process) Stderr() string { return readFile(p.StderrPath()) }

// String returns the program's base name and current PID, for messages.
func (p *Process) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return filepath.Base(p.name)
	}
	return fmt.Sprintf("%s (pid %d)", filepath.Base(p.name), p.cmd.Process.Pid)
}

// start runs the program once and waits for readiness. On error the new run
// has been killed and reaped, and the error carries the tail of its stderr.
func (p *Process) start() error {
	stdout, err := os.OpenFile(p.StdoutPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open stdout log: %w", err)
	}
	defer stdout.Close()
	stderr, err := os.OpenFile(p.StderrPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open stderr log: %w", err)
	}
	defer stderr.Close()

	cmd := exec.Command(p.name, p.args...)
	cmd.Dir = p.cfg.dir
	cmd.Env = append(os.Environ(), p.cfg.env...)
	cmd.Stdout = stdout // *os.File: handed to the child, no copying goroutine
	cmd.Stderr = stderr
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}

	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.reaped, p.waitErr, p.killed = cmd, done, false, nil, false
	p.runs++
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		if p.cmd == cmd {
			p.reaped, p.waitErr = true, err
		}
		p.mu.Unlock()
		close(done)
	}()

	if err := p.waitReady(done); err != nil {
		_ = p.signalAndWait(syscall.SIGKILL, killWait)
		p.mu.Lock()
		p.shown = true
		p.mu.Unlock()
		return fmt.Errorf("%s %v: %w\n--- stderr (tail) ---\n%s", p.name, p.args, err, tail(p.Stderr(), logTail))
	}
	return nil
}

// waitReady runs the readiness checks, giving up when done is closed.
func (p *Process) waitReady(done <-chan struct{}) error {
	exitErr := func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		return fmt.Errorf("exited before it was ready (%v)", p.waitErr)
	}
	for _, addr := range p.cfg.readyTCP {
		err := pollReady(p.cfg.tries, done, func() error { return dialTCP(addr) })
		if errors.Is(err, errExited) {
			return exitErr()
		}
		if err != nil {
			return fmt.Errorf("never accepted a connection on %s: %w", addr, err)
		}
	}
	for _, check := range p.cfg.ready {
		err := pollReady(p.cfg.tries, done, check)
		if errors.Is(err, errExited) {
			return exitErr()
		}
		if err != nil {
			return fmt.Errorf("never became ready: %w", err)
		}
	}
	// A program that exits at once should not look started.
	select {
	case <-done:
		return exitErr()
	default:
	}
	return nil
}

// signalAndWait signals the current run's process group and waits up to
// timeout for it to be reaped. It does nothing if the run has already been
// reaped: the group is signalled only while its leader's PID cannot have been
// reused.
func (p *Process) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	p.mu.Lock()
	if p.cmd == nil || p.reaped {
		p.mu.Unlock()
		return nil
	}
	pid, done := p.cmd.Process.Pid, p.done
	p.killed = true
	err := syscall.Kill(-pid, sig)
	p.mu.Unlock()
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal process group %d: %w", pid, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("process group %d still running %v after %v", pid, timeout, sig)
	}
}

func (p *Process) stop() error {
	if err := p.signalAndWait(syscall.SIGTERM, stopGrace); err == nil {
		return nil
	}
	return p.signalAndWait(syscall.SIGKILL, killWait)
}

func (p *Process) cleanup() {
	p.mu.Lock()
	exitedOnItsOwn := p.cmd != nil && p.reaped && !p.killed
	waitErr, shown := p.waitErr, p.shown
	p.mu.Unlock()
	if shown {
		// The start error already carried the output; just make sure the
		// process is gone.
		if err := p.stop(); err != nil {
			p.t.Errorf("testpeer: stop %s at cleanup: %v", p, err)
		}
		return
	}
	if exitedOnItsOwn {
		p.t.Logf("testpeer: %s exited on its own during the test: %v", p, waitErr)
	}
	if err := p.stop(); err != nil {
		p.t.Errorf("testpeer: stop %s at cleanup: %v", p, err)
	}
	if p.t.Failed() || exitedOnItsOwn {
		p.t.Logf("testpeer: %s %v output (runs: %d, dir %s)\n--- stderr (tail) ---\n%s--- stdout (tail) ---\n%s",
			p.name, p.args, p.runs, p.logDir, tail(p.Stderr(), logTail), tail(p.Stdout(), logTail))
	}
}

func readFile(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return string(b)
}

// tail returns the last n bytes of s, marked when cut.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[...]" + s[len(s)-n:]
}

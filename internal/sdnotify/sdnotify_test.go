package sdnotify

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// listen plays systemd: a unixgram socket named by NOTIFY_SOCKET.
func listen(t *testing.T) <-chan string {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	ch := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return ch
}

func TestNotify(t *testing.T) {
	ch := listen(t)
	if err := Notify("READY=1\nSTATUS=polling"); err != nil {
		t.Fatal(err)
	}
	if got := <-ch; got != "READY=1\nSTATUS=polling" {
		t.Errorf("got %q", got)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify("READY=1"); err != nil {
		t.Errorf("without systemd: got %v, want nil", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	if got := WatchdogInterval(); got != 30*time.Second {
		t.Errorf("got %s, want 30s", got)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if got := WatchdogInterval(); got != 0 {
		t.Errorf("watchdog for another pid: got %s, want 0", got)
	}
}

// TestWatchdogStopsWhenStuck: pings flow while the heartbeat moves and
// stop once it is frozen (an injected hang of the main loop).
func TestWatchdogStopsWhenStuck(t *testing.T) {
	ch := listen(t)
	var beat atomic.Uint64
	var frozen atomic.Bool
	stopBeat := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopBeat:
				return
			default:
			}
			if !frozen.Load() {
				beat.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	defer close(stopBeat)
	done := make(chan error, 1)
	go func() { done <- Watchdog(context.Background(), 40*time.Millisecond, beat.Load) }()
	for i := 0; i < 3; i++ {
		if got := <-ch; !strings.Contains(got, "WATCHDOG=1") {
			t.Fatalf("got %q, want a watchdog ping", got)
		}
	}
	frozen.Store(true)
	if err := <-done; err != ErrStuck {
		t.Fatalf("got %v, want ErrStuck once the heartbeat froze", err)
	}
}

// Package sdnotify speaks systemd's notification protocol (sd_notify(3)):
// readiness, status text and watchdog pings sent as datagrams to the
// socket named by $NOTIFY_SOCKET. Outside systemd every call is a no-op, so
// facgw runs the same from a terminal.
package sdnotify

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"time"
)

// Notify sends state ("READY=1", "WATCHDOG=1", "STATUS=...",
// "STOPPING=1", several joined by newlines). It returns nil without
// $NOTIFY_SOCKET.
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' { // abstract socket
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// WatchdogInterval returns how often systemd expects a ping
// ($WATCHDOG_USEC, for this process per $WATCHDOG_PID), or 0 when the
// watchdog is off.
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond
}

// ErrStuck is returned by Watchdog when the heartbeat stopped moving.
var ErrStuck = errors.New("sdnotify: heartbeat stopped for a whole watchdog interval; no more pings")

// Watchdog pings systemd about twice per interval for as long as heartbeat
// keeps moving: heartbeat is a counter the gateway's main loop advances,
// so a gateway whose main loop hangs stops pinging and systemd restarts it
// (rather than a goroutine that would ping whatever the rest of the
// process does). It checks four times per interval, pings when the
// heartbeat moved since the last check and half an interval has passed
// since the last ping, and returns ErrStuck once the heartbeat has not
// moved for a whole interval (systemd is restarting facgw by then), or nil
// when ctx ends. The main loop must beat more often than interval/4.
func Watchdog(ctx context.Context, interval time.Duration, heartbeat func() uint64) error {
	if interval <= 0 {
		return nil
	}
	t := time.NewTicker(interval / 4)
	defer t.Stop()
	last, moved, pinged := heartbeat(), time.Now(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		if b := heartbeat(); b != last {
			last, moved = b, now
		} else if now.Sub(moved) >= interval {
			return ErrStuck
		}
		if moved.After(pinged) && now.Sub(pinged) >= interval/2 {
			if err := Notify("WATCHDOG=1"); err != nil {
				return err
			}
			pinged = now
		}
	}
}

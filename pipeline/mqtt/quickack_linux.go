package mqtt

import (
	"net"
	"syscall"
)

// quickAck wraps a TCP connection so that every read re-arms TCP_QUICKACK.
//
// Why: brokers commonly leave Nagle's algorithm on (mosquitto's
// set_tcp_nodelay defaults to false), so a broker holds each small PUBACK
// until its previous one is acknowledged at the TCP level. While our
// in-flight window is full we send nothing that could carry that ACK, and
// Linux delays it by up to 40 ms: the drain of a backlog then crawls in
// 40 ms steps (measured: ~2.5k instead of ~19k messages/s per broker).
// Quick-ack mode is not sticky in Linux, hence the re-arm after each read;
// reads are buffered (bufferedConn), so that is one setsockopt per burst.
//
// The returned flush sends an ACK the kernel is still holding back (setting
// TCP_QUICKACK does that at once): the sender calls it before it waits for
// PUBACKs with nothing to send.
func quickAck(c net.Conn) (net.Conn, func()) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, func() {}
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c, func() {}
	}
	q := &quickAckConn{TCPConn: tc, rc: rc}
	q.arm()
	return q, q.arm
}

type quickAckConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

func (q *quickAckConn) Read(b []byte) (int, error) {
	n, err := q.TCPConn.Read(b)
	if err == nil {
		q.arm()
	}
	return n, err
}

func (q *quickAckConn) arm() {
	q.rc.Control(func(fd uintptr) {
		// Best effort: without it the connection is only slower.
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}

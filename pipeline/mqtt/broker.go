package mqtt

import (
	"fmt"
	"log/slog"
	"net"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// EmbeddedBroker is an in-process MQTT broker (mochi-mqtt) for the demo:
// `make run` publishes to two of them so redundancy can be watched without
// installing anything. It accepts anonymous clients, keeps nothing on disk
// and listens on loopback only. Not for production.
type EmbeddedBroker struct {
	srv  *mochi.Server
	addr string
}

// StartEmbeddedBroker starts a broker listening on addr, a loopback
// "host:port" (port 0 picks a free one; Addr tells which). The broker's
// goroutines run until Close. log may be nil.
func StartEmbeddedBroker(addr string, log *slog.Logger) (*EmbeddedBroker, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("mqtt: embedded broker: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("mqtt: embedded broker: address %q: anonymous demo broker listens on loopback only", addr)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := mochi.New(&mochi.Options{Logger: log.With("component", "embedded-mqtt")})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("mqtt: embedded broker: %w", err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(l); err != nil {
		return nil, fmt.Errorf("mqtt: embedded broker: listen %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("mqtt: embedded broker: %w", err)
	}
	return &EmbeddedBroker{srv: srv, addr: l.Address()}, nil
}

// Addr returns the address the broker listens on ("127.0.0.1:port").
func (b *EmbeddedBroker) Addr() string { return b.addr }

// URL returns "tcp://" + Addr, for a BrokerConfig.
func (b *EmbeddedBroker) URL() string { return "tcp://" + b.addr }

// Close disconnects every client and stops listening.
func (b *EmbeddedBroker) Close() error { return b.srv.Close() }

// Package mqtt publishes facgw's telemetry to several MQTT brokers at once,
// active-active: every broker gets every message, each through its own
// [Publisher] with its own connection, its own durable outbox on disk
// (package pipeline/outbox) and its own sender goroutine, so a slow or dead
// broker delays nobody but itself.
//
// The outbox is the source of truth; paho (github.com/eclipse/paho.mqtt.golang)
// is only the transport. A message leaves a broker's outbox only when that
// broker has acknowledged it (QoS 1 PUBACK) on the connection it was sent on.
// This package does not rely on paho for anything paho is known not to
// guarantee:
//
//   - several broker URLs in one paho client mean failover at connect time,
//     not redundancy (eclipse/paho.mqtt.golang#530): we run one client per
//     broker;
//   - after a reconnect paho may resend stored messages out of order
//     (eclipse/paho.mqtt.golang#731): paho's auto-reconnect is off, every
//     connection is a new client with a clean session, and after any loss we
//     resend from the head of our own outbox, in order;
//   - a publish token can complete without the message having been delivered
//     when the connection drops (eclipse/paho.mqtt.golang#563): a token is
//     trusted only if it completed without error, on the current connection
//     epoch, while that connection was still up;
//   - paho's file store is not replayed after a restart
//     (eclipse/paho.mqtt.golang#90): we never give paho a durable store; our
//     outbox is replayed by construction.
//
// The wire contract (topics, payloads, ordering and duplicate rules) is in
// contract.go and documented for consumers in docs/mqtt.md. [Fanout] turns a
// poll's points into one telemetry message with a per-device sequence number
// from a [Sequencer] (shared by all brokers, so a consumer subscribed to two
// brokers can de-duplicate) plus the device's retained state message, and
// appends both to every publisher's outbox. [EmbeddedBroker] runs an
// in-process broker for the demo.
package mqtt

// Package notify takes alert events from the rules engine to every delivery
// path (MQTT, Alertmanager, SNMP notifications, webhook) without losing one.
//
// The flow of one event:
//
//	rules engine ──Submit──▶ Dispatcher ──Record──▶ Ledger (Seq, ledger.json, fsync)
//	                              │
//	                              ├──Enqueue──▶ Target "mqtt"          (durable before it returns)
//	                              ├──Enqueue──▶ Path "alertmanager"   ── outbox ── Sender ──▶ Alertmanager
//	                              └──Enqueue──▶ Path "webhook"        ── outbox ── Sender ──▶ receiver
//	                              │
//	                              └──MarkDispatched(seq) once every target took it
//
// The Ledger is the gateway's memory of alerts: it assigns each event its
// Seq, stamps acknowledgements and silences on it, keeps the active episodes
// and recent history, and persists all that atomically before the event is
// handed to any target. A crash between Record and MarkDispatched makes the
// Dispatcher hand the event to every target again after the restart: a path
// may deliver an event twice (same ID, same Seq), never lose one. An event
// that was not recorded was never announced to anyone.
//
// A Path is a Target built from a Sender and its own durable outbox
// (pipeline/outbox, class Alert, fsynced on every Append): one goroutine per
// path delivers the outbox in order, backs off while the destination is
// down, and never drops an alert, not even one the destination refuses.
// A slow or dead destination delays only its own path.
//
// The Dispatcher watches its targets: a path that has been down for
// DegradedAfter raises a synthetic alert, rule "gateway/delivery-path-degraded",
// which the other paths carry (and the degraded one delivers once it is back).
//
// docs/alerting.md describes the whole design for operators and consumers.
package notify

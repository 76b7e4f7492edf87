// Package mqtt is the MQTT 3.1.1 and 5.0 protocol adapter. It maps MQTT
// onto the broker core as docs/design/mqtt.md describes: every publish goes
// through the vhost's amq.topic exchange, and a session is a queue bound to
// it once per subscribed filter, consumed by the client's connection.
//
// Concurrency: each connection has a reader goroutine, which owns the
// session state (inbound topic aliases, the CONNECT), and a writer
// goroutine draining its outbox. The ack queue (publish.go) has its own
// mutex: the reader adds to it, and the store's commit goroutine or the
// reader send the PUBACKs/PUBRECs as they become ready; it also holds the
// inbound QoS 2 packet ids awaiting PUBREL. Deliveries arrive from queues on any
// goroutine through subscriber.TryDeliver, which encodes PUBLISH packets
// into the outbox under conn.mu; conn.mu also guards the outbound in-flight
// table that the reader consults on PUBACK, PUBREC and PUBCOMP, the
// subscriptions, and the outbound topic aliases. Lock order: queue →
// conn.mu → outbox; ack queue → outbox. Session expiry timers (expiry.go)
// run on their own goroutines (in Advance, with a test's fake clock) and
// take only the expiry's mutex and the vhost's.
//
// Time: every expiry (session, will delay, message, retained), publish
// time stamp and rate-limit hold reads the broker's clock (Broker.Clock),
// so tests advance a fake one; keep-alive is a socket deadline, real time.
package mqtt

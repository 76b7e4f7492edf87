// Package mqtt is the MQTT 3.1.1 and 5.0 protocol adapter. It maps MQTT
// onto the broker core as docs/design/mqtt.md describes: every publish goes
// through the vhost's amq.topic exchange, and a session is a queue bound to
// it once per subscribed filter, consumed by the client's connection.
//
// Concurrency: each connection has a reader goroutine, which owns the
// session state (subscriptions, inbound QoS 2 state, topic aliases), and a
// writer goroutine draining its outbox. Deliveries arrive from queues on any
// goroutine through subscriber.TryDeliver, which encodes PUBLISH packets
// into the outbox under conn.mu; conn.mu also guards the outbound in-flight
// table that the reader consults on PUBACK, PUBREC and PUBCOMP. Lock order:
// queue → conn.mu → outbox.
package mqtt

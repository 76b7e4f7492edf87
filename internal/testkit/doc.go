// Package testkit starts real Tern servers in-process for tests and holds
// the helpers tests share: Eventually, client dialing, and raw AMQP and MQTT
// clients (raw.go, mqtt.go) for protocol-violation tests that no
// well-behaved library can produce.
// Tests only; nothing in the broker imports it.
package testkit

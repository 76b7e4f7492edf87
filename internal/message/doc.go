// Package message is the vocabulary every layer shares: a published
// Message with its protocol-neutral Properties and broker-known Origin, the
// Completion a log calls when a message is durable, the StoredMessage a
// log recovers, and the stored record codec (AppendMessage, DecodeMessage).
// It imports nothing of ours, so broker, store, the protocol adapters and
// later the cluster can all use it without depending on each other.
//
// Properties are the AMQP basic properties, which MQTT 5 maps onto;
// headers are kept both as an ordered list with repeated names (MQTT 5
// user properties must keep both) and as a map for lookups.
//
// The record format reuses the AMQP 0-9-1 encodings: the properties
// section is AMQP basic properties and header values are AMQP field-table
// values. That encoding is documented, self-describing (a type octet per
// value) and covers every value type a header can hold, and it keeps the
// bytes on disk identical to what earlier versions wrote, so old records
// read unchanged; it also lets an AMQP delivery send a stored message's
// properties without re-encoding. The field-table codec therefore lives
// here and wire/amqp091 uses it (so a Decimal or a nested table decoded by
// either has the same Go type); the AMQP-specific conversions from
// decoded frames stay in the AMQP adapter. See docs/design/storage.md.
//
// Messages are immutable once published (copy before changing; clear
// WireProps when Props change). Everything else here is a pure function of
// its arguments and safe for concurrent use.
package message

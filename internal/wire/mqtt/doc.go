// Package mqtt is the MQTT 3.1.1 and 5.0 wire format: every control packet,
// the 5.0 properties and reason codes. Spec clauses are cited inline as
// [MQTT-x.y.z-n] (5.0 numbering unless marked 3.1.1).
//
// Decoding never panics: every read is bounds checked and a malformed
// packet is an *Error carrying the reason code 5.0 prescribes (0x81
// Malformed Packet, 0x82 Protocol Error, …). Nothing here is safe for
// concurrent use; each connection owns its Reader.
package mqtt

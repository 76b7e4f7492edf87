// Package amqp091 is the AMQP 0-9-1 wire format: frames, method arguments,
// content-header properties and field tables.
//
// The method structs, their codecs and the Properties struct are generated
// from ../shared/spec/amqp-rabbitmq-0.9.1.json by ./gen (see methods_gen.go);
// the primitives (Decoder, Encoder, field tables, frames) are written by hand.
//
// Invariants: decoding never panics on any input — every read is bounds
// checked and the first error sticks in the Decoder; encoding appends to a
// caller-owned byte slice so a hot path can reuse its buffer and allocate
// nothing. Nothing here is safe for concurrent use; each connection owns its
// own Decoder, Encoder and FrameReader.
package amqp091

//go:generate go run ./gen -spec ../../../../shared/spec/amqp-rabbitmq-0.9.1.json -out methods_gen.go

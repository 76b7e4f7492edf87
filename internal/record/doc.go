// Package record is the byte-level encoding that the node's durable logs
// and its cluster wire share, so that it is written (and fuzzed) once:
//
//   - Framing (frame.go): a record is length uint32 (of type byte +
//     payload) | CRC-32C uint32 (of type byte + payload) | type byte |
//     payload, little-endian. internal/store frames its queue, keyed and
//     definitions logs so, and internal/cluster/wal its WAL; what the type
//     bytes and payloads mean stays with each of them, and so does the
//     largest record each accepts.
//   - Reading fields (reader.go): a Reader walks a payload or a wire body
//     with every read bounds-checked, the first failure sticking, so a
//     decoder reads all its fields and checks one error at the end. The
//     WAL's record decoder and the forwarding protocol's message decoders
//     (internal/cluster/forward) use it.
//
// The package is a leaf: it imports the standard library only.
package record

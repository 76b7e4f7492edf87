// Package memnet is an in-memory network for cluster tests: a Network
// hands out one Endpoint (a transport.Transport) per node and lets the test
// drop, delay, duplicate and reorder messages, and partition or isolate
// nodes.
//
// Raft messages are encoded with proto.Marshal on send and decoded on
// delivery, as on the wire, so sender and receiver never share a message.
// Each endpoint receives on one goroutine from a bounded queue (a full
// queue drops, as a slow TCP peer's would). Delays run on the Network's
// clock, so a test on a clock.Fake moves messages in flight by advancing
// it. Fault decisions come from one seeded random source: given the same
// sequence of sends they repeat, though goroutine scheduling makes the
// sequence itself vary between runs.
package memnet

// Package freeport picks loopback TCP ports for tests whose servers must be
// told their address before they start (cluster members are given every
// peer's address), so cannot listen on :0.
//
// A port found by listening on :0 and closing comes from the kernel's
// ephemeral range, the same range every outgoing connection takes its
// source port from: between the pick and the server's bind, a dial from
// any test running at the time can take it ("address already in use"), and
// a node restarted on its old address meets the same race. The ports
// handed out here lie below that range, where the kernel never allocates
// on its own; only another test choosing the same random port at the same
// moment can collide, and a port is never handed out twice in one process.
// Tests only; nothing in the broker imports it.
package freeport

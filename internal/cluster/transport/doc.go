// Package transport carries Raft messages and forwarding requests between
// cluster nodes: one multiplexed connection per peer pair (TCP, in this
// package), and a fault-injecting in-memory network for tests (memnet).
//
// # One connection per pair
//
// Of two peers, only the one with the lower node id dials; the higher one
// waits to be dialed and refuses a connection from a higher id. So there
// is never a race between two connections of a pair. When a dialer
// reconnects (it restarted, or its old connection is half-dead behind a
// cut link), the acceptor keeps the newest authenticated connection and
// closes the old one. Outgoing connections leave from the host of the
// listen address, so peers on 127.0.0.11 and 127.0.0.12 of one machine are
// told apart by address.
//
// # Handshake
//
// Both sides prove the shared cluster secret with HMAC-SHA256 over both
// sides' hellos (node ids and random nonces) and never send it (see
// handshake.go). A wrong secret, an unknown node id, a node claiming our
// own id, or a connection addressed to another node is refused with a
// logged reason (slog Warn, naming the remote address); the connection
// closes and every other connection keeps serving. With TLS configured
// the handshake runs inside TLS.
//
// # Frames and backpressure
//
// After the handshake each side sends frames (frame.go): Raft batches
// (one per SendRaft call: a group's messages, proto-marshalled), requests,
// replies, errors, notifies and pings. A frame over MaxFrame, an unknown
// type or a malformed body is a protocol error that closes that
// connection only. Senders append whole frames to the connection's
// queue and never wait on the network; one writer goroutine per
// connection writes everything queued since its last write in one
// writev (in steps of at most 1 MiB). The queue is bounded (MaxQueueBytes): Raft messages and notifies
// beyond it, or to a peer without a connection, are dropped and counted
// (Raft retries); replies are never dropped while the connection lives.
// A peer that takes no byte for WriteTimeout, or sends no byte (not even
// the pings an idle connection carries) for IdleTimeout, is disconnected;
// both measure silence, so a large frame on a slow link is not cut off.
//
// # Concurrency
//
// Every method is safe for concurrent use. Per connection one reader
// goroutine calls Handler.HandleRaft and HandleNotify in arrival order
// (so they must not block long) and starts one goroutine per request
// for HandleRequest (at most MaxInflight at once; one more is answered
// with a busy RemoteError, so slow handlers never hold up Raft traffic);
// one writer goroutine owns the socket's write side; per dialed peer one
// goroutine redials with backoff. Close cancels and joins all of them.
package transport

// Package amqp is the AMQP 0-9-1 protocol adapter: it runs connections and
// channels as state machines and turns their methods into broker calls.
//
// Concurrency: each connection has one reader goroutine, which owns the
// connection and channel state machines, and one writer goroutine, which
// flushes the connection's outbox to the socket. Deliveries do not hop
// goroutines: a queue hands a message to a consumer (Consumer.TryDeliver)
// on whatever goroutine published or acked, and the consumer encodes the
// frames straight into the outbox under the channel's delivery lock
// (channel.mu) and the outbox's lock, in that order. The outbox is bounded:
// past its limit a consumer refuses deliveries and the queue keeps them until
// the writer drains it.
//
// Invariants: a channel's delivery tags increase by one per delivery; its
// unacked list is ordered by tag; every unacked message goes back to its
// queue, in order and marked redelivered, when the channel or connection
// goes away. Protocol errors close only their channel (soft errors) or
// their connection (hard errors), never anything else.
package amqp

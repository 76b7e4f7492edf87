// Package broker is Tern's protocol-agnostic core: virtual hosts, exchanges,
// bindings, queues, consumers, acknowledgements, dead-lettering and delayed
// delivery, and definitions changed as commands. The protocol adapters
// (internal/amqp, internal/mqtt) translate their frames into calls on this
// package; it knows no wire format, no file format and no cluster. It
// reaches the disk only through its own interfaces (Storage, Log,
// StreamLog, DelayedLog in log.go and delayed.go), which internal/server
// implements on internal/store and memstore implements in memory for the
// core's tests, and a cluster only through Replication (replication.go).
// What it does define is the encoding of its own commands and definitions
// (codec.go, codec_defs.go), the bytes the store and the cluster keep
// without reading them.
//
// Concurrency:
//   - A VHost guards its exchange and queue maps with mu for mutation; lookups
//     on the publish path use sync.Map and take no lock.
//   - An Exchange's routing table is immutable and swapped through an
//     atomic.Pointer whenever its bindings change, so routing takes no lock.
//   - A Queue's own fields are immutable once it is published (its
//     bindings are indexed by the vhost, under the vhost's mu); its backend, chosen by its
//     QueueType at creation (queue_backend.go), owns its messages and
//     consumers under the backend's own mu; methods named …Locked expect
//     it held. Lock order is queue → consumer internals
//     (Consumer.TryDeliver is called with the queue locked and must not call
//     back into the queue). Dead-lettering, auto-delete and reading
//     paged-out bodies from the log run after the queue's lock is released.
//     See docs/design/queues.md.
//   - Definitions change only through Command values applied by
//     VHost.applyLocked under the vhost's mu; a durable command is appended
//     to the store's definitions log there (so the log's order is the order
//     of application) and waited for after mu is released. A snapshot takes
//     Broker.mu, then every vhost's mu in name order. In a cluster a
//     client's command is proposed with no lock held and applied by
//     ApplyReplicated on the metadata group's goroutine, which takes the
//     vhost's mu like any change (meta.go); nothing waits for a proposal
//     while holding a broker lock.
//
// Invariants: a message is in exactly one of a queue's ready list or a
// consumer's unacked set (or neither once acked); requeued messages go back
// in their original order and are marked redelivered.
package broker

package forward

// Transport kinds of the forwarding protocol: requests and notifies in
// the range 64–127 that the node's transport Handler routes here
// (HandleRequest, HandleNotify). Owns reports whether a kind is ours.
const (
	KindPublish   uint8 = 64 // request: a batch of publishes; reply: one outcome each, once all are durable
	KindConsume   uint8 = 65 // request: open a consumer on the owner
	KindControl   uint8 = 66 // request: a batch of settles, credits and cancels of one client node's consumers
	KindGet       uint8 = 67 // request: basic.get
	KindPurge     uint8 = 68 // request: queue.purge
	KindCounts    uint8 = 69 // request: a queue's counts
	KindKeepalive uint8 = 70 // request: the client node's consumers are alive; reply: what the owner pushed
	KindDeliver   uint8 = 71 // notify, owner → client: deliveries to forwarded consumers
	KindCancelled uint8 = 72 // notify, owner → client: the owner removed a forwarded consumer
	KindStatus    uint8 = 73 // request: forwarded consumers' single-active status; reply: one status each

	kindFirst uint8 = 64
	kindLast  uint8 = 127
)

// Owns reports whether kind belongs to the forwarding protocol (64–127).
func Owns(kind uint8) bool { return kind >= kindFirst && kind <= kindLast }

package broker

import "math"

// quorumAheadMin is the smallest prefetch for which a quorum consumer's
// checkout asks for more credit than its prefetch (checkoutCredit).
const quorumAheadMin = 100

// checkoutCredit is the credit a consumer with the given prefetch checks
// out with (0: unlimited).
//
// The machine frees a consumer's credit when its settlement applies, not
// when the client acks: an acked message holds its credit for the time
// the settlement takes to commit and reach the consumer's node. With a
// credit of exactly the prefetch, a consumer's rate is therefore at most
// prefetch / (commit latency + the delivery's round trip to the client),
// while a publisher with as many confirms in flight runs at window /
// commit latency: the consumer can never keep up with it, least of all
// when the queue's leader is on the publisher's node and the consumer's
// settlements take the longer, forwarded path (measured: the consumer's
// node held its 1,000 checked out, all acked by the client and waiting
// for their settlements to commit, while the backlog grew by thousands a
// second). A consumer with a prefetch of quorumAheadMin or more therefore
// checks out twice its prefetch: the machine assigns the next prefetch's
// worth while the settlements are on their way, and the consumer's node
// holds them (deliverLocked) until the client's acks make room. The client
// never holds more than its prefetch unacked, as before. Smaller
// prefetches (a work queue's prefetch 1, where a message assigned ahead to
// a busy consumer would wait while another consumer is idle) keep a credit
// of exactly the prefetch.
func checkoutCredit(prefetch int) uint32 {
	switch {
	case prefetch <= 0:
		return 0
	case prefetch < quorumAheadMin:
		return uint32(prefetch)
	case prefetch >= math.MaxUint32/2:
		return math.MaxUint32
	}
	return uint32(2 * prefetch)
}

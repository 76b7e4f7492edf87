package cluster

import "time"

// every runs f each d until the node closes: the loop of the node's
// periodic background goroutines (rebalancing quorum leaders, reconciling
// membership), which n.wg counts.
func (n *Node) every(d time.Duration, f func()) {
	defer n.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		f()
	}
}

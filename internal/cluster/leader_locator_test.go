package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
)

// A quorum queue is led by the node it was declared on (client-local, as
// RabbitMQ's default leader locator): declared through each of three
// nodes, each queue is led by that node, so the declaring
// client's publishes reach the leader without a hop.
func TestQuorumQueueLedWhereDeclared(t *testing.T) {
	nodes := startBrokerCluster(t, 3)
	for i, bn := range nodes {
		name := fmt.Sprintf("local-%d", i)
		if _, err := bn.b.VHost("/").DeclareQueue(broker.QueueConfig{Name: name, Durable: true,
			Args: map[string]any{"x-queue-type": "quorum"}}, false, 0); err != nil {
			t.Fatal(err)
		}
		// It campaigns first; should another node's timer win under
		// load, the rebalance hands leadership back within seconds.
		waitUntil(t, 20*time.Second, name+" led by "+bn.cfg.Self.Name, func() bool { return quorumLeader(bn, name) == bn.cfg.Self.Name })
	}
}

package cluster

import (
	"testing"
)

// A session resumed on another node consumes its queue from there; when
// the queue's node restarts, that consumer is gone (the owner forgot it),
// and the client is disconnected so it reconnects and re-attaches, rather
// than staying connected and silent while its messages wait on the
// session's node (before: subscriber.Cancelled did nothing).
func TestMQTTResumedSessionIsDisconnectedWhenItsNodeRestarts(t *testing.T) {
	nodes := startBrokerCluster(t, 3)
	urls := make([]string, len(nodes))
	for i, bn := range nodes {
		urls[i], _ = bn.serveMQTT(t, true)
	}
	first := dialMQTT(t, urls[0], "roamer", false)
	mqttDo(t, first.Subscribe("roam/#", 1, nil))
	first.Disconnect(50)
	sub := dialMQTT(t, urls[1], "roamer", false) // resumes n1's session on n2
	pub := dialMQTT(t, urls[2], "roam-pub", true)
	mqttDo(t, pub.Publish("roam/x", 1, false, "before"))
	sub.waitFor(t, "a delivery from n1's queue", func() bool { return len(sub.received()) == 1 })

	if err := nodes[0].node.Close(); err != nil {
		t.Fatal(err)
	}
	nodes[0].restart(t)
	sub.waitFor(t, "the n2 connection to be closed once n1 restarted", sub.lost.Load)
}

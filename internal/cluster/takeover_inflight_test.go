package cluster

import (
	"context"
	"testing"
	"time"
)

// A takeover whose old connection on a peer is slow to close does not
// hold the takeovers of other client ids to that peer: they go in a
// request of their own and are answered at once. (Before, one request was
// in flight per peer: the others waited for the slow one's answer, up to
// the whole bound, and their CONNECTs then went on without that peer's
// answer while their old connections there still lived.)
func TestTakeoverOfOneClientIDDoesNotWaitForAnotherOnesSlowClose(t *testing.T) {
	saved := TakeoverWait
	t.Cleanup(func() { TakeoverWait = saved })
	TakeoverWait = 30 * time.Second // far beyond the wait below: a queued takeover would blow it
	nodes := startBrokerCluster(t, 2)
	slowAsked := make(chan struct{})
	slowEnded := make(chan struct{})
	nodes[1].node.SetClientTakeover(func(_, clientID string, _ bool) <-chan struct{} {
		if clientID == "slow" {
			close(slowAsked)
			return slowEnded // its connection is still closing
		}
		return nil // no connection of that client id here
	})
	waitConnected(t, nodes[0], nodes[1])

	slowDone := make(chan error, 1)
	go func() { slowDone <- nodes[0].node.TakeOver(context.Background(), "/", "slow", false) }()
	select {
	case <-slowAsked:
	case <-time.After(10 * time.Second):
		t.Fatal("the peer was not asked to take the slow client id over")
	}
	fastDone := make(chan error, 1)
	go func() { fastDone <- nodes[0].node.TakeOver(context.Background(), "/", "fast", false) }()
	select {
	case err := <-fastDone:
		if err != nil {
			t.Fatalf("the other client id's takeover: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other client id's takeover waited for the slow one's")
	}
	select {
	case err := <-slowDone:
		// The peer gives up waiting on a connection after 5 s and
		// answers "closing": had the fast one queued behind the slow
		// one, the slow one's answer would have come first.
		t.Fatalf("the other client id's takeover was answered only after the slow one's: %v", err)
	default:
	}
	close(slowEnded)
	if err := <-slowDone; err != nil {
		t.Fatalf("the slow takeover, once its connection ended: %v", err)
	}
}

// waitConnected waits until a has a transport connection to b.
func waitConnected(t *testing.T, a, b *brokerNode) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !a.node.NodeReachable(b.node.ID()) {
		if time.Now().After(deadline) {
			t.Fatal("the nodes are not connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package transport

import (
	"slices"
	"testing"
)

func TestConnectedFollowsTheConnection(t *testing.T) {
	t.Parallel()
	a, b := startNode(t, 1, "", nil), startNode(t, 2, "", nil)
	if a.Connected(2) || len(a.ConnectedPeers(nil)) != 0 {
		t.Fatal("connected before any peer was set")
	}
	a.SetPeer(2, b.Addr().String())
	b.SetPeer(1, a.Addr().String())
	waitConnected(t, a, b)
	if !a.Connected(2) || !b.Connected(1) || a.Connected(3) {
		t.Fatalf("Connected: a→2 %v, b→1 %v, a→3 %v", a.Connected(2), b.Connected(1), a.Connected(3))
	}
	if got := a.ConnectedPeers(nil); !slices.Equal(got, []NodeID{2}) {
		t.Fatalf("ConnectedPeers %v", got)
	}
	a.RemovePeer(2)
	if a.Connected(2) || len(a.ConnectedPeers(nil)) != 0 {
		t.Fatal("still connected to a removed peer")
	}
}

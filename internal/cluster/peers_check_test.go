package cluster

import (
	"slices"
	"testing"
)

// user7 5.7: a restarted node's --peers that disagree with the recorded
// membership are reported, each difference once; its own moved address
// is the one that matters to the others.
func TestPeersDiffer(t *testing.T) {
	rec := []Member{{Name: "n2", Addr: "h:2"}, {Name: "n3", Addr: "h:3"}, {Name: "n4", Addr: "h:4"}}
	removed := []Member{{Name: "n1", Addr: "h:1"}}
	if d, moved := peersDiffer("n3", rec, rec, removed); len(d) != 0 || moved {
		t.Fatalf("the same membership: %q %v", d, moved)
	}
	given := []Member{{Name: "n1", Addr: "h:1"}, {Name: "n2", Addr: "h:2"}, {Name: "n3", Addr: "h:33"}, {Name: "n9", Addr: "h:9"}}
	d, moved := peersDiffer("n3", given, rec, removed)
	want := []string{"n1 was removed from the cluster", "n3 is at h:33 in --peers, h:3 in the membership",
		"n9 is not a member", "n4 (a member) is not in --peers"}
	if !slices.Equal(d, want) || !moved {
		t.Fatalf("differences %q (self moved %v), want %q", d, moved, want)
	}
	if _, moved := peersDiffer("n2", given, rec, removed); moved {
		t.Fatal("another node's address counted as this node's")
	}
}

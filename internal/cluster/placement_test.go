package cluster

import (
	"fmt"
	"slices"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
)

func members(n int, standby ...uint64) []Member {
	var out []Member
	for i := 1; i <= n; i++ {
		out = append(out, Member{ID: uint64(i * 100), Name: fmt.Sprintf("n%d", i), Standby: slices.Contains(standby, uint64(i*100))})
	}
	return out
}

func TestPlacementIsDeterministicAndSpread(t *testing.T) {
	ms := members(5)
	firsts := map[uint64]int{}
	for q := 0; q < 1000; q++ {
		id := fmt.Sprintf("queue-%d", q)
		v, l := Placement(id, ms, 3)
		rev := slices.Clone(ms)
		slices.Reverse(rev)
		v2, l2 := Placement(id, rev, 3)
		if !slices.Equal(v, v2) || !slices.Equal(l, l2) {
			t.Fatalf("%s: placement depends on the members' order: %v/%v vs %v/%v", id, v, l, v2, l2)
		}
		if len(v) != 3 || len(l) != 2 {
			t.Fatalf("%s: %d voters, %d learners", id, len(v), len(l))
		}
		all := append(slices.Clone(v), l...)
		slices.Sort(all)
		if len(slices.Compact(all)) != 5 {
			t.Fatalf("%s: a node is both voter and learner or missing: %v %v", id, v, l)
		}
		firsts[v[0]]++
	}
	for _, m := range ms {
		if firsts[m.ID] < 120 { // 200 expected of 1000
			t.Fatalf("node %d is the first voter of only %d of 1000 queues: %v", m.ID, firsts[m.ID], firsts)
		}
	}
}

func TestPlacementCapsAndStandbys(t *testing.T) {
	ms := members(3, 300)
	v, l := Placement("q", ms, 5)
	if len(v) != 2 || !slices.Equal(l, []uint64{300}) {
		t.Fatalf("size 5 on 2 voting nodes and a standby: voters %v learners %v", v, l)
	}
	v, l = Placement("q", ms, 0)
	if len(v) != 2 || len(l) != 1 {
		t.Fatalf("default size: voters %v learners %v", v, l)
	}
	v, _ = Placement("q", members(3), 1)
	if len(v) != 1 {
		t.Fatalf("size 1: voters %v", v)
	}
}

func TestQuorumGroupIDNeverTheMetadataGroup(t *testing.T) {
	seen := map[uint64]bool{}
	for i := 0; i < 10000; i++ {
		g := QuorumGroupID(fmt.Sprint(i))
		if g == MetadataGroup || g == heartbeatGroup || seen[g] {
			t.Fatalf("group %d for queue %d", g, i)
		}
		seen[g] = true
	}
}

// TestLocalQueueIDLeadsWhereDeclared: the id localQueueID chooses makes
// the declaring node the first voter (the preferred leader) of its
// placement, for every node, with standbys among the members; a standby
// (not a voter anywhere) gets a plain id.
func TestLocalQueueIDLeadsWhereDeclared(t *testing.T) {
	for _, ms := range [][]Member{members(3), members(5), members(4, 200)} {
		for _, m := range ms {
			for range 50 {
				id := localQueueID(m.ID, ms, broker.NewQueueID)
				v, _ := Placement(id, ms, 3)
				if m.Standby {
					if len(id) != 24 {
						t.Fatalf("standby %d: id %q", m.ID, id)
					}
					continue
				}
				if v[0] != m.ID {
					t.Fatalf("members %v: id %q chosen for %d is first led by %d (voters %v)", ms, id, m.ID, v[0], v)
				}
			}
		}
	}
	// A generator that never lands on the node gives up after a bounded
	// number of tries and returns a plain id.
	tries := 0
	id := localQueueID(100, members(3), func() string { tries++; return "fixed" })
	if id != "fixed" || tries != 64*3+1 {
		t.Fatalf("id %q after %d tries", id, tries)
	}
}

package raftnode

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
)

// TestCampaignFirstKeepsItsOwnVoteRound (review8 F1): CampaignFirst's
// retry (campaignAgain) called rn.Campaign at every tick while no leader
// was known — also while the node was already a candidate whose vote
// requests waited for its own HardState fsync (ticks run in awaitSave).
// etcd's hup() campaigns again from a candidate: the node became a
// pre-candidate, ignored the votes of the round in flight and needed a
// second election in a higher term. Here each save of node 1 is held
// across one tick (a fsync slower than a tick): one election must do.
func TestCampaignFirstKeepsItsOwnVoteRound(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	hosts, stores := gatedHosts(t, fc, 3, nil)
	groups := map[NodeID]*Group{}
	for id, h := range hosts {
		g, err := h.Start(9, []NodeID{1, 2, 3}, nil, &countSM{})
		if err != nil {
			t.Fatal(err)
		}
		groups[id] = g
	}
	g1 := groups[1]
	rounds := 0
	for rounds < 30 && g1.Status().Leader == 0 {
		stores[1].setHold()
		if rounds == 0 {
			g1.CampaignFirst()
		}
		// wait until node 1's goroutine sits in a save (its candidate HardState)
		if !waitUntil(2*time.Second, func() bool { return stores[1].waiting() > 0 }) {
			stores[1].release()
			fc.Advance(100 * time.Millisecond)
			rounds++
			continue
		}
		fc.Advance(100 * time.Millisecond) // one tick while the fsync is in flight
		waitUntil(50*time.Millisecond, func() bool { return caughtUpInbox(g1) })
		stores[1].release()
		waitUntil(2*time.Second, func() bool { return g1.Status().Leader != 0 })
		rounds++
	}
	st := hosts[1].Stats()
	t.Logf("rounds=%d leader=%d term=%d elections=%d prevotes=%d", rounds, g1.Status().Leader, g1.Status().Term, st.Elections, st.PreVotes)
	if l := g1.Status().Leader; l != 1 {
		t.Fatalf("leader %d, want 1 (CampaignFirst)", l)
	}
	if st.Elections > 1 {
		t.Errorf("node 1 stood for election %d times (term now %d): a campaignAgain during its own save restarted the election and discarded the votes in flight", st.Elections, g1.Status().Term)
	}
}

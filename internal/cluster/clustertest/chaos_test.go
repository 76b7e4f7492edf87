package clustertest

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// TestChaos runs rounds of random faults — crashes and restarts, network
// partitions, drops, delays, reordering, duplicates — against 5 nodes
// proposing all along; then heals everything and checks that every
// acknowledged value is on every replica and no two replicas diverge. On
// memory storage and on the WAL, whose crashes tear unsynced writes.
func TestChaos(t *testing.T) {
	for seed := uint64(1); seed <= uint64(*chaosSeeds); seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			eachStorage(t, func(t *testing.T, o Options) { chaos(t, seed, o) })
		})
	}
}

func chaos(t *testing.T, seed uint64, o Options) {
	const n = 5
	rounds := 25
	if testing.Short() {
		rounds = 10
	}
	// A short proposal timeout keeps rounds without a quorum quick.
	o.Seed = seed
	o.Host = func(cfg *raftnode.HostConfig) {
		smallSnapshots(cfg)
		cfg.ProposalTimeout = 5 * time.Second
	}
	c := New(t, n, o)
	rng := rand.New(rand.NewPCG(seed, 99))
	var mu sync.Mutex
	var acked []string
	duplicates := false
	for round := range rounds {
		switch rng.IntN(7) {
		case 0: // crash a node, keeping a majority up
			if up := c.Up(); len(up) > n/2+1 {
				c.Crash(up[rng.IntN(len(up))])
			}
		case 1: // restart a crashed node
			for _, id := range c.IDs() {
				if c.Host(id) == nil {
					c.Restart(id)
					break
				}
			}
		case 2: // two sides
			ids := c.IDs()
			rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			cut := 1 + rng.IntN(n-1)
			c.Partition(ids[:cut], ids[cut:])
		case 3:
			c.Heal()
		case 4:
			c.Net.Drop(0.05 + rng.Float64()*0.2)
			c.Net.Delay(0, time.Duration(rng.IntN(300))*time.Millisecond)
		case 5:
			c.Net.Reorder(0.3, 500*time.Millisecond)
			if rng.IntN(2) == 0 {
				c.Net.Duplicate(0.1)
				duplicates = true
			}
		case 6:
			c.Net.Calm()
		}
		// Propose through random running nodes; failures are expected (no
		// quorum, no leader); what is acknowledged must survive.
		var wg sync.WaitGroup
		up := c.Up()
		for i := range 4 {
			v := fmt.Sprintf("r%d-%d", round, i)
			wg.Add(1)
			c.Group(up[rng.IntN(len(up))], 1).ProposeAsync([]byte(v), func(_ any, err error) {
				if err == nil {
					mu.Lock()
					acked = append(acked, v)
					mu.Unlock()
				}
				wg.Done()
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(wait):
			t.Fatalf("round %d: a proposal never completed", round)
		}
	}
	c.Heal()
	c.Net.Calm()
	for _, id := range c.IDs() {
		if c.Host(id) == nil {
			c.Restart(id)
		}
	}
	leader := c.WaitLeader(1, nil, wait)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Propose(ctx, leader, 1, "final"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	all := append(acked, "final")
	mu.Unlock()
	c.WaitApplied(1, nil, all, wait)
	if duplicates {
		c.CheckNoDivergence(1)
	} else {
		c.CheckNoDuplicates(1)
	}
	c.CheckElections()
	t.Logf("%d rounds: %d of %d proposals acknowledged; %d messages dropped, %d duplicated",
		rounds, len(all)-1, rounds*4, c.Net.Dropped.Load(), c.Net.Duplicated.Load())
}

// chaosSeeds is how many seeds TestChaos runs (1, 2, …): go test -run
// Chaos ./internal/cluster/clustertest/ -args -chaos.seeds=20
var chaosSeeds = flag.Int("chaos.seeds", 2, "seeds TestChaos runs")

package clustertest

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
	"github.com/tern-broker/tern/internal/cluster/wal"
	"github.com/tern-broker/tern/internal/vfs"
)

// longTests makes TestWALTornAtEveryStep cut the power before every file
// operation instead of a sample: go test -run Torn
// ./internal/cluster/clustertest/ -args -long (or TERN_LONG_TESTS=1).
var longTests = flag.Bool("long", os.Getenv("TERN_LONG_TESTS") != "", "exhaustive versions of the slow tests")

// tornProposals is the workload of TestWALTornAtEveryStep, two at a time
// to two groups: enough, with snapshots every 10 entries, 512-byte segments
// and an idle third group, for the node to snapshot, compact, roll
// segments, rewrite the idle group forward and delete segments.
const tornProposals = 30

// tornSample bounds the cuts per role when not -long: every one of the
// first and last tornEdge operations, and tornSample spread between.
const (
	tornEdge   = 20
	tornSample = 40
)

// TestWALTornAtEveryStep cuts the power of one node — the leader, or a
// follower — right before the k-th file operation its WAL makes during a
// workload of proposals, for every k (or, by default, the first and last
// 20 and 40 spread between). The file system it restarts on holds what was
// synced before the cut, with the unsynced bytes lost, torn at an offset,
// or kept sector by sector (vfs.MemFS.Crash, CrashSectors); from the cut
// on every file operation fails, so nothing later is acknowledged. The
// node restarts from its WAL (which must recover without a corruption
// error), the cluster converges, and every proposal acknowledged to its
// caller is applied exactly once on every replica, all replicas holding
// the identical sequence.
func TestWALTornAtEveryStep(t *testing.T) {
	for _, role := range []string{"leader", "follower"} {
		t.Run(role, func(t *testing.T) {
			start := time.Now()
			// The number of operations varies from run to run: timing
			// decides how saves batch and how many proposals share a batch
			// entry (72 to 110 were seen). The cuts are spread over the
			// fewest of three counting runs, so most trials reach theirs.
			ops := -1
			t.Run("count", func(t *testing.T) {
				for range 3 {
					r := tornTrial(t, role, -1)
					if ops < 0 || r.ops < ops {
						ops = r.ops
					}
					t.Logf("the %s's WAL made %d file operations for %d proposals; WAL %+v; host %+v", role, r.ops, tornProposals, r.walStats, r.hostStats)
					if r.walStats.Deleted == 0 || r.walStats.Rewritten == 0 || r.hostStats.SnapshotsCreated == 0 {
						t.Errorf("the workload deleted no segment, rewrote no group or made no snapshot: too little to test")
					}
				}
			})
			if t.Failed() {
				return
			}
			ks := tornCuts(ops, *longTests)
			cut := 0
			for _, k := range ks {
				t.Run(fmt.Sprintf("cut=%d", k), func(t *testing.T) {
					if tornTrial(t, role, k).cut {
						cut++
					}
				})
				if t.Failed() {
					return
				}
			}
			// Most cuts must land.
			if cut < len(ks)*3/4 {
				t.Errorf("only %d of %d trials reached their cut", cut, len(ks))
			}
			t.Logf("%d cuts of %d operations, %d reached, in %v", len(ks), ops, cut, time.Since(start).Round(time.Millisecond))
		})
	}
}

// tornCuts picks the operations to cut before: all of 0..ops when all is
// set or there are few, else the first and last tornEdge and tornSample
// evenly spread between (deterministic).
func tornCuts(ops int, all bool) []int {
	var ks []int
	if all || ops+1 <= 2*tornEdge+tornSample {
		for k := 0; k <= ops; k++ {
			ks = append(ks, k)
		}
		return ks
	}
	for k := 0; k < tornEdge; k++ {
		ks = append(ks, k)
	}
	lo, hi := tornEdge, ops-tornEdge // the middle: [lo, hi]
	for i := range tornSample {
		ks = append(ks, lo+(hi-lo)*(2*i+1)/(2*tornSample))
	}
	for k := ops - tornEdge + 1; k <= ops; k++ {
		ks = append(ks, k)
	}
	return slices.Compact(ks)
}

type tornResult struct {
	ops       int  // file operations counted (all of them, if not cut)
	cut       bool // the cut happened
	walStats  wal.Stats
	hostStats raftnode.Stats
}

// crashImage is what a power cut before operation k leaves of fs: the
// unsynced bytes lost, torn at a point, or kept in some sectors and not
// others, depending on k.
func crashImage(fs *vfs.MemFS, k int) *vfs.MemFS {
	switch k % 3 {
	case 0:
		return fs.Crash(nil)
	case 1:
		return fs.Crash(func(_ string, unsynced int) int { return (k*37 + 11) % (unsynced + 1) })
	default:
		return fs.CrashSectors(func(_ string, sector int) bool { return (sector*7+k)%3 != 0 })
	}
}

// tornTrial runs the workload on a fresh cluster with the power of the
// node in role cut before its k-th file operation from the workload's
// start (k < 0: no cut, only counting), and checks the outcome.
//
// So that the cut node's WAL is what keeps the committed entries, the
// third node is starved: the leader's messages to it are cut from the
// start, so entries commit on the leader and one follower, the two that
// hold them. At the cut the other of the two holders is isolated at once
// and then crashed and kept down while the cut node restarts: the cut
// node and the starved one must then elect and carry on with everything
// that was acknowledged, which only the cut node's recovered WAL holds.
// At the end the network heals and the holder restarts.
func tornTrial(t *testing.T, role string, k int) tornResult {
	t.Helper()
	// The cut node's failing WAL and stopping group log errors, as they
	// should; the count run (k < 0) shows them if anything goes wrong.
	level := slog.LevelError + 1
	if k < 0 {
		level = slog.LevelWarn
	}
	ws := NewWALStorage(wal.Options{
		// About 3 KB are written in all (a commit-only hard state is not
		// saved on its own): 512-byte segments make the 3 allowed roll
		// over, so groups are rewritten forward and segments deleted.
		SegmentSize: 512,
		MaxSegments: 3,
		Logger:      slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level})),
	})
	c := New(t, 3, Options{
		Storage:  ws.Open,
		LogLevel: level,
		Host: func(cfg *raftnode.HostConfig) {
			cfg.SnapshotEntries = 10
			cfg.SnapshotSlack = 3
		},
	})
	// Two active groups share each node's WAL, their saves batched
	// together, and an idle third pins the first segment until the WAL
	// rewrites it forward (a checkpoint record).
	active := []uint64{1, 2}
	for _, id := range c.IDs() {
		for _, g := range []uint64{2, 3} {
			if _, err := c.StartGroup(id, g, c.IDs(), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Propose(context.Background(), c.WaitLeader(3, nil, wait), 3, "idle"); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitLeader(1, nil, wait)
	if l2 := c.WaitLeader(2, nil, wait); l2 != leader {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		err := c.Group(leader, 2).TransferLeadership(ctx, leader)
		cancel()
		if err != nil {
			t.Fatalf("moving group 2's leadership to node %d: %v", leader, err)
		}
	}
	followers := others(c, leader)
	target, holder, starved := followers[0], leader, followers[1]
	if role == "leader" {
		target, holder = leader, followers[0]
	}
	c.Net.Cut(leader, starved)

	var mu sync.Mutex
	ops := 0
	var image *vfs.MemFS
	fired := make(chan struct{})
	fs := c.FS(target)
	ws.SetInjector(target, func(vfs.Op, string, int) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if image != nil {
			return 0, vfs.ErrIO // the power is off: nothing more reaches the disk
		}
		if ops == k {
			image = crashImage(fs, k)
			c.Net.Isolate(holder)
			close(fired)
			return 0, vfs.ErrIO
		}
		ops++
		return 0, nil
	})
	restarted := false
	atCut := map[uint64]map[NodeID][]Item{} // group → node → applied at the cut
	// reboot, once the cut happened, restarts the target on its crash
	// image, with the holder down.
	reboot := func() {
		select {
		case <-fired:
		default:
			return
		}
		if restarted {
			return
		}
		restarted = true
		// What any replica applied by now was committed: it must stay.
		for _, g := range active {
			atCut[g] = map[NodeID][]Item{}
			for _, id := range c.Up() {
				if sm := c.SM(id, g); sm != nil {
					atCut[g][id] = sm.Items()
				}
			}
		}
		mu.Lock()
		img := image
		mu.Unlock()
		c.CrashWith(target, img)
		c.Crash(holder)
		c.Heal() // the starved node now hears the target
		ws.SetInjector(target, nil)
		c.Restart(target) // fails the test if the WAL does not recover
		if gs := ws.WAL(target).Groups(); !slices.Equal(gs, []uint64{1, 2, 3}) {
			t.Fatalf("cut before op %d of the %s (node %d): its WAL recovered groups %v, want [1 2 3]", k, role, target, gs)
		}
	}

	acked := map[uint64][]string{}
	// propose proposes name to every active group at once and waits until
	// each has acknowledged an attempt. Every attempt is a new value: a
	// failed attempt may still commit, and must then be applied once, like
	// any other.
	propose := func(name string) {
		t.Helper()
		type result struct {
			g   uint64
			v   string
			err error
		}
		done := make(chan result, len(active))
		attempts := map[uint64]int{}
		start := func(g uint64) {
			if attempts[g] == 30 {
				t.Fatalf("%s never committed in group %d: %s", name, g, c.describe(g))
			}
			v := fmt.Sprintf("%s.%d", name, attempts[g])
			attempts[g]++
			gr := tornLeader(c, g, reboot)
			if gr == nil {
				t.Fatalf("%s: no leader of group %d within %v: %s", name, g, wait, c.describe(g))
			}
			gr.ProposeAsync([]byte(v), func(_ any, err error) { done <- result{g, v, err} })
		}
		reboot()
		for _, g := range active {
			start(g)
		}
		cutNow := fired
		for ok := 0; ok < len(active); {
			select {
			case r := <-done:
				if r.err == nil {
					acked[r.g] = append(acked[r.g], r.v)
					ok++
					continue
				}
				reboot()
				start(r.g)
			case <-cutNow:
				reboot() // ends the proposals of the nodes it took down
				cutNow = nil
			case <-time.After(wait):
				t.Fatalf("%s: a proposal never completed: %s", name, c.describe(1))
			}
		}
	}
	for i := range tornProposals / len(active) {
		propose(fmt.Sprintf("p%d", i))
	}

	mu.Lock()
	res := tornResult{ops: ops, cut: image != nil}
	mu.Unlock()
	reboot()
	ws.SetInjector(target, nil)
	if res.cut {
		// The two survivors serve without the holder.
		propose("survivors")
	}
	c.Heal()
	if c.Host(holder) == nil {
		c.Restart(holder)
	}

	// Converge: one more proposal, then every replica holds everything.
	propose("final")
	for _, g := range active {
		c.WaitApplied(g, c.IDs(), acked[g], wait)
		var lists map[NodeID][]Item
		same := func() bool {
			lists = map[NodeID][]Item{}
			for _, id := range c.IDs() {
				lists[id] = c.SM(id, g).Items()
			}
			for _, id := range c.IDs() {
				if !slices.Equal(lists[id], lists[c.IDs()[0]]) {
					return false
				}
			}
			return true
		}
		if !c.Eventually(wait, same) {
			for id, l := range lists {
				t.Logf("node %d: %v", id, l)
			}
			t.Fatalf("cut before op %d of the %s (node %d): group %d's replicas diverge", k, role, target, g)
		}
		final := lists[target]
		checkExactlyOnce(t, final, acked[g])
		for id, items := range atCut[g] {
			if len(final) < len(items) || !slices.Equal(final[:len(items)], items) {
				t.Fatalf("cut before op %d of the %s (node %d): group %d: node %d had applied %v at the cut; the replicas ended with %v",
					k, role, target, g, id, items, final)
			}
		}
	}
	c.WaitApplied(3, c.IDs(), []string{"idle"}, wait)
	c.CheckNoDuplicates(3)
	c.CheckElections()
	res.walStats = ws.WAL(target).Stats()
	res.hostStats = c.Host(target).Stats()
	return res
}

// tornLeader returns the replica of group that leads (nil if none
// within wait), calling reboot while it waits so a node whose power was
// cut comes back.
func tornLeader(c *Cluster, group uint64, reboot func()) *raftnode.Group {
	var leader *raftnode.Group
	c.Eventually(wait, func() bool {
		reboot()
		for _, id := range c.Up() {
			if g := c.Group(id, group); g != nil && g.IsLeader() {
				leader = g
				return true
			}
		}
		return false
	})
	return leader
}

// checkExactlyOnce fails unless items, in Raft index order (proposals
// batched in one entry share its index), hold every acked value once and
// no value twice.
func checkExactlyOnce(t *testing.T, items []Item, acked []string) {
	t.Helper()
	seen := map[string]int{}
	for i, it := range items {
		if i > 0 && it.Index < items[i-1].Index {
			t.Fatalf("applied index %d after %d", it.Index, items[i-1].Index)
		}
		seen[it.Value]++
		if seen[it.Value] > 1 {
			t.Fatalf("value %q applied twice", it.Value)
		}
	}
	for _, v := range acked {
		if seen[v] != 1 {
			t.Fatalf("acknowledged value %q applied %d times", v, seen[v])
		}
	}
}

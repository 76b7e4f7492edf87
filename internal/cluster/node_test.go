package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/cluster/clustertest"
	"github.com/tern-broker/tern/internal/vfs"

	"github.com/tern-broker/tern/internal/testkit/freeport"
)

const testSecret = "node-test-secret-0123456789abcdef"

// fakeBroker is a meta.Target that records what it applies: vhosts only,
// which is enough to see every node apply the same commands in order.
type fakeBroker struct {
	mu     sync.Mutex
	vhosts []string
	// slow delays applying vhosts named "slow…" (visible_test.go).
	slow time.Duration
}

var errRefused = errors.New("refused by the fake broker")

func (f *fakeBroker) ApplyReplicated(c broker.Command) error {
	v, ok := c.(broker.AddVHost)
	if !ok {
		return fmt.Errorf("fake broker: %T", c)
	}
	if strings.HasPrefix(v.Name, "refuse") {
		return errRefused
	}
	f.mu.Lock()
	slow := f.slow
	f.mu.Unlock()
	if strings.HasPrefix(v.Name, "slow") {
		time.Sleep(slow)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vhosts = append(f.vhosts, v.Name)
	return nil
}

func (f *fakeBroker) DefinitionsSnapshot() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return broker.EncodeDefinitions(&broker.Definitions{VHosts: slices.Clone(f.vhosts)})
}

func (f *fakeBroker) RestoreDefinitions(data []byte) error {
	d, err := broker.DecodeDefinitions(data)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vhosts = slices.Clone(d.VHosts)
	return nil
}

func (f *fakeBroker) VHosts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.vhosts)
}

type testNode struct {
	cfg    Config
	node   *Node
	broker *fakeBroker
}

// newTestNodes configures n nodes on loopback, each with its own data
// directory on the real file system; none is started.
func newTestNodes(t testing.TB, n int) []*testNode {
	t.Helper()
	var members []Member
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("n%d", i)
		members = append(members, Member{ID: uint64(1000 + i), Name: name, Addr: freeport.Loopback(t)})
	}
	var out []*testNode
	for _, m := range members {
		out = append(out, &testNode{cfg: Config{Self: m, Members: members, Dir: filepath.Join(t.TempDir(), "cluster"),
			FS: vfs.Default, Secret: []byte(testSecret), StartTimeout: 30 * time.Second}})
	}
	return out
}

// start runs New and Start on every node concurrently (Start waits for a
// quorum, so they must come up together).
func startAll(t *testing.T, nodes []*testNode) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, tn := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tn.start(t)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", nodes[i].cfg.Self.Name, err)
		}
	}
}

func (tn *testNode) start(t *testing.T) error {
	n, err := New(tn.cfg)
	if err != nil {
		return err
	}
	tn.node, tn.broker = n, &fakeBroker{}
	t.Cleanup(func() { _ = n.Close() })
	return n.Start(context.Background(), tn.broker)
}

func waitUntil(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMetadataReplicatesToEveryNodeInOrder(t *testing.T) {
	nodes := newTestNodes(t, 3)
	startAll(t, nodes)
	ctx := t.Context()
	var want []string
	for i := range 20 {
		name := fmt.Sprintf("v%d", i)
		// Propose on every node in turn: followers forward to the leader.
		if err := nodes[i%3].node.Propose(ctx, broker.AddVHost{Name: name}); err != nil {
			t.Fatalf("propose %s on %s: %v", name, nodes[i%3].cfg.Self.Name, err)
		}
		// Propose returns once the proposer applied it.
		if got := nodes[i%3].broker.VHosts(); !slices.Contains(got, name) {
			t.Fatalf("Propose returned before %s applied it: %v", nodes[i%3].cfg.Self.Name, got)
		}
		want = append(want, name)
	}
	if err := nodes[1].node.Propose(ctx, broker.AddVHost{Name: "refuse-me"}); !errors.Is(err, errRefused) {
		t.Fatalf("a command the broker refuses: %v, want its error back", err)
	}
	for _, tn := range nodes {
		waitUntil(t, 10*time.Second, tn.cfg.Self.Name+" to apply every command", func() bool {
			return slices.Equal(tn.broker.VHosts(), want)
		})
	}
	st := nodes[0].node.Status()
	if len(st.Groups) != 1 || st.Groups[0].Kind != "metadata" || st.Groups[0].Leader == "" || len(st.Groups[0].Voters) != 3 {
		t.Fatalf("status: %+v", st)
	}
	for _, ns := range st.Nodes {
		if !ns.Reachable || ns.Role != "voter" {
			t.Fatalf("node %+v", ns)
		}
	}
}

func TestQuorumGroupsOnEveryNode(t *testing.T) {
	nodes := newTestNodes(t, 3)
	startAll(t, nodes)
	def := broker.QueueDef{VHost: "/", ID: "q-stable-id", QueueConfig: broker.QueueConfig{Name: "orders", Durable: true,
		Args: map[string]any{"x-queue-type": "quorum", "x-quorum-initial-group-size": int32(2)}}}
	sms := make([]*clustertest.ListSM, 3)
	logs := make([]broker.ReplicatedLog, 3)
	for i, tn := range nodes {
		sms[i] = &clustertest.ListSM{}
		l, err := tn.node.Quorum().Open(def, sms[i])
		if err != nil {
			t.Fatal(err)
		}
		logs[i] = l
	}
	if _, err := nodes[0].node.Quorum().Open(def, &clustertest.ListSM{}); err == nil {
		t.Fatal("a second Open of the same queue succeeded")
	}
	done := make(chan error, 10)
	for i := range 10 {
		logs[i%3].Propose([]byte(fmt.Sprint(i)), func(_ any, err error) { done <- err })
	}
	for range 10 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("proposals not completed")
		}
	}
	for i, sm := range sms {
		waitUntil(t, 10*time.Second, fmt.Sprintf("replica %d to apply all", i), func() bool { return len(sm.Values()) == 10 })
		if !slices.Equal(sm.Values(), sms[0].Values()) {
			t.Fatalf("replicas diverge: %v vs %v", sm.Values(), sms[0].Values())
		}
	}
	st := nodes[1].node.Status()
	var q *GroupStatus
	for i := range st.Groups {
		if st.Groups[i].Kind == "quorum" {
			q = &st.Groups[i]
		}
	}
	if q == nil || q.Queue != "orders" || q.VHost != "/" || len(q.Voters) != 2 || len(q.Learners) != 1 {
		t.Fatalf("quorum group status: %+v", st.Groups)
	}
	leaders := 0
	for _, l := range logs {
		if l.IsLeader() {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d replicas think they lead", leaders)
	}
	logs[2].Delete()
	if len(nodes[2].node.Status().Groups) != 1 {
		t.Fatal("a deleted group still listed")
	}
}

func TestStartRefusesAnotherNodesDirectory(t *testing.T) {
	nodes := newTestNodes(t, 2)
	cfg := nodes[1].cfg
	cfg.Dir = nodes[0].cfg.Dir
	if err := ClaimDir(vfs.Default, nodes[0].cfg.Dir, nodes[0].cfg.Self.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "another node's data directory") {
		t.Fatalf("n2 on n1's directory: %v", err)
	}
}

func TestStartGivesUpWithoutQuorum(t *testing.T) {
	nodes := newTestNodes(t, 3)
	nodes[0].cfg.StartTimeout = 2 * time.Second
	nodes[0].cfg.ProposalTimeout = 500 * time.Millisecond
	err := nodes[0].start(t)
	if err == nil || !strings.Contains(err.Error(), "no leader or quorum") || !strings.Contains(err.Error(), "not to [n2 n3]") {
		t.Fatalf("alone of three: %v", err)
	}
}

func TestRestartRecoversTheMetadataFromTheWAL(t *testing.T) {
	nodes := newTestNodes(t, 3)
	startAll(t, nodes)
	ctx := t.Context()
	for i := range 5 {
		if err := nodes[0].node.Propose(ctx, broker.AddVHost{Name: fmt.Sprint("before-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// n3 stops; the others go on without it, then it comes back on its
	// directory with an empty broker and must apply everything.
	if err := nodes[2].node.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := nodes[1].node.Propose(ctx, broker.AddVHost{Name: fmt.Sprint("while-down-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nodes[2].start(t); err != nil {
		t.Fatal(err)
	}
	// Start returned: everything committed before it is applied here.
	if got := nodes[2].broker.VHosts(); !slices.Equal(got, nodes[0].broker.VHosts()) || len(got) != 10 {
		t.Fatalf("after the restart n3 has %v, n1 %v", got, nodes[0].broker.VHosts())
	}
}

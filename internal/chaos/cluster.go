package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"time"
)

// ClusterPort is every node's cluster port, on its own address.
const ClusterPort = 25672

// clusterFlags are the `tern server` flags of issue 12 a multi-node run needs.
var clusterFlags = []string{"--node-id", "--cluster-addr", "--peers", "--cluster-secret-file"}

// ErrNoCluster says the binary cannot run a cluster yet.
var ErrNoCluster = fmt.Errorf("chaos: the cluster is not built yet: `tern server --help` lacks %s, so --nodes 3|5 cannot run (use --nodes 1)", strings.Join(clusterFlags, ", "))

// ClusterSupported asks the binary itself (`tern server --help`) whether it
// has the cluster flags, rather than assuming either way.
func ClusterSupported(bin string) error {
	out, _ := exec.Command(bin, "server", "--help").CombinedOutput()
	for _, f := range clusterFlags {
		if !strings.Contains(string(out), "-"+strings.TrimLeft(f, "-")+" ") && !strings.Contains(string(out), "-"+strings.TrimLeft(f, "-")+"\n") {
			return ErrNoCluster
		}
	}
	return nil
}

// clusterArgs are node n's cluster flags: its id, its cluster address on its
// own loopback address (outgoing cluster connections leave from that host
// part, so nft rules can match links by address pair), and every peer.
func clusterArgs(n, nodes int, secretFile string) []string {
	var peers []string
	for i := 1; i <= nodes; i++ {
		peers = append(peers, fmt.Sprintf("n%d@%s:%d", i, NodeIP(i), ClusterPort))
	}
	return []string{
		"--node-id", fmt.Sprintf("n%d", n),
		"--cluster-addr", fmt.Sprintf("%s:%d", NodeIP(n), ClusterPort),
		"--peers", strings.Join(peers, ","),
		"--cluster-secret-file", secretFile,
	}
}

// clusterStatus is the part of GET /api/cluster the runner reads.
type clusterStatus struct {
	Node   string `json:"node"`
	Groups []struct {
		Kind    string `json:"kind"`
		Queue   string `json:"queue"`
		Leader  string `json:"leader"`
		Term    uint64 `json:"term"`
		Commit  uint64 `json:"commit"`
		Applied uint64 `json:"applied"`
	} `json:"groups"`
}

// fetchStatus reads a node's GET /api/cluster (guest is an administrator).
func fetchStatus(ctx context.Context, n *Node) (clusterStatus, error) {
	var st clusterStatus
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTPAddr()+"/api/cluster", nil)
	if err != nil {
		return st, err
	}
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("chaos: GET /api/cluster on node %d: %s", n.ID, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// queueLeader asks the running nodes who leads queue's Raft group and
// returns the node (1-based) that the highest term names. It waits, bounded
// by 10 s, while an election is under way.
func queueLeader(ctx context.Context, nodes []*Node, queue string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var last error = errors.New("no node answered")
	for ctx.Err() == nil {
		var sts []clusterStatus
		for _, n := range nodes {
			if !n.Running() {
				continue
			}
			st, err := fetchStatus(ctx, n)
			if err != nil {
				last = err
				continue
			}
			sts = append(sts, st)
		}
		if best := pickLeader(sts, queue, len(nodes)); best > 0 {
			return best, nil
		}
		last = fmt.Errorf("no leader known for %s", queue)
		sleepCtx(ctx, 200*time.Millisecond)
	}
	return 0, fmt.Errorf("chaos: finding the leader of %s: %w", queue, last)
}

// pickLeader returns the node (1-based, from its name n1, n2, …) that the
// answers with the highest term name as queue's leader, or 0: a node that
// has not heard of a newer election still names the old leader.
func pickLeader(sts []clusterStatus, queue string, nodes int) int {
	best, term := 0, uint64(0)
	for _, st := range sts {
		for _, g := range st.Groups {
			if g.Kind != "quorum" || g.Queue != queue || g.Leader == "" || g.Term < term {
				continue
			}
			var id int
			if _, err := fmt.Sscanf(g.Leader, "n%d", &id); err == nil && id >= 1 && id <= nodes {
				best, term = id, g.Term
			}
		}
	}
	return best
}

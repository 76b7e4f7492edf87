package chaos

import (
	"fmt"
	"os/exec"
	"strings"
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

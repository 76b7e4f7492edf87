package chaos

import (
	"fmt"
	"os/exec"
	"strings"
)

// Partition kinds.
const (
	PartitionIsolate = "isolate" // one node cut from every other
	PartitionHalves  = "halves"  // n/2 nodes from Node on (cyclically) against the rest
	PartitionBridge  = "bridge"  // Node sees every node; the others, in two halves, do not see each other
	PartitionRing    = "ring"    // majorities ring: each node sees itself and its two ring neighbours (5 nodes)
	PartitionOneWay  = "one-way" // packets from Node to Peer dropped, the other direction kept
)

// nftTable is the one table the runner owns; healing deletes it whole.
const nftTable = "tern_chaos"

func partitionKinds(nodes int) []string {
	if nodes >= 5 {
		return []string{PartitionIsolate, PartitionHalves, PartitionRing, PartitionBridge, PartitionOneWay}
	}
	return []string{PartitionIsolate, PartitionHalves, PartitionBridge, PartitionOneWay}
}

// NodeIP is node n's own loopback address: 127.0.0.(10+n).
func NodeIP(n int) string { return fmt.Sprintf("127.0.0.%d", 10+n) }

// ClientIP is client k's loopback address, 127.0.0.21 to 127.0.0.29.
func ClientIP(k int) string { return fmt.Sprintf("127.0.0.%d", 21+k%9) }

// link is a directed pair of nodes whose packets a rule drops.
type link struct{ from, to int }

// cutLinks lists the directed links a partition cuts.
func cutLinks(f Fault, nodes int) ([]link, error) {
	var out []link
	both := func(a, b int) { out = append(out, link{a, b}, link{b, a}) }
	switch f.Partition {
	case PartitionIsolate:
		for n := 1; n <= nodes; n++ {
			if n != f.Node {
				both(f.Node, n)
			}
		}
	case PartitionHalves:
		minority := map[int]bool{}
		for i := 0; i < nodes/2; i++ {
			minority[(f.Node-1+i)%nodes+1] = true
		}
		for a := 1; a <= nodes; a++ {
			for b := 1; b <= nodes; b++ {
				if minority[a] && !minority[b] {
					both(a, b)
				}
			}
		}
	case PartitionBridge:
		// Jepsen's bridge: a leader on either side still reaches a
		// majority through Node, so check-quorum keeps it; the two sides
		// cannot talk to each other.
		var others []int
		for n := 1; n <= nodes; n++ {
			if n != f.Node {
				others = append(others, n)
			}
		}
		half := len(others) / 2
		for _, a := range others[:half] {
			for _, b := range others[half:] {
				both(a, b)
			}
		}
	case PartitionRing:
		if nodes < 5 {
			return nil, fmt.Errorf("%w: a majorities ring needs 5 nodes", ErrSchedule)
		}
		for a := 1; a <= nodes; a++ {
			for b := a + 1; b <= nodes; b++ {
				if d := min(b-a, nodes-(b-a)); d > 1 {
					both(a, b)
				}
			}
		}
	case PartitionOneWay:
		out = append(out, link{f.Node, f.Peer})
	default:
		return nil, fmt.Errorf("%w: unknown partition %q", ErrSchedule, f.Partition)
	}
	return out, nil
}

// NFTRules renders the nft script for a partition or loss fault: one table
// with an output-hook chain (every packet on lo passes output once) holding
// one rule per cut direction, matched by the nodes' own addresses only, so
// clients (127.0.0.2x) keep reaching every node.
func NFTRules(f Fault, nodes int) (string, error) {
	var rules []string
	switch f.Kind {
	case FaultPartition:
		links, err := cutLinks(f, nodes)
		if err != nil {
			return "", err
		}
		for _, l := range links {
			rules = append(rules, fmt.Sprintf("ip saddr %s ip daddr %s drop", NodeIP(l.from), NodeIP(l.to)))
		}
	case FaultLoss:
		if f.LossPercent < 1 || f.LossPercent > 100 {
			return "", fmt.Errorf("%w: loss_percent %d", ErrSchedule, f.LossPercent)
		}
		for _, l := range []link{{f.Node, f.Peer}, {f.Peer, f.Node}} {
			rules = append(rules, fmt.Sprintf("ip saddr %s ip daddr %s numgen random mod 100 < %d drop", NodeIP(l.from), NodeIP(l.to), f.LossPercent))
		}
	default:
		return "", fmt.Errorf("%w: %s is not a network fault", ErrSchedule, f.Kind)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n\tchain output {\n\t\ttype filter hook output priority 0; policy accept;\n", nftTable)
	for _, r := range rules {
		fmt.Fprintf(&b, "\t\toif \"lo\" %s\n", r)
	}
	b.WriteString("\t}\n}\n")
	return b.String(), nil
}

// applyNFT loads a script with `nft -f -`, inside the sandbox only.
func applyNFT(script string) error {
	if err := RequireSandbox(); err != nil {
		return err
	}
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: nft: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// healNFT deletes the runner's table (and with it every rule).
func healNFT() error {
	if err := RequireSandbox(); err != nil {
		return err
	}
	if out, err := exec.Command("nft", "delete", "table", "ip", nftTable).CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: nft delete: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

package chaos

import (
	"strings"
	"testing"
)

func TestNFTRulesByAddressPair(t *testing.T) {
	head := "table ip tern_chaos {\n\tchain output {\n\t\ttype filter hook output priority 0; policy accept;\n"
	tail := "\t}\n}\n"
	rule := func(a, b int) string {
		return "\t\toif \"lo\" ip saddr " + NodeIP(a) + " ip daddr " + NodeIP(b) + " drop\n"
	}
	cases := []struct {
		name  string
		f     Fault
		nodes int
		want  string
	}{
		{"isolate 2 of 3", Fault{Kind: FaultPartition, Partition: PartitionIsolate, Node: 2}, 3,
			rule(2, 1) + rule(1, 2) + rule(2, 3) + rule(3, 2)},
		{"halves of 3", Fault{Kind: FaultPartition, Partition: PartitionHalves, Node: 1}, 3,
			rule(1, 2) + rule(2, 1) + rule(1, 3) + rule(3, 1)},
		{"halves of 3 from node 3", Fault{Kind: FaultPartition, Partition: PartitionHalves, Node: 3}, 3,
			rule(3, 1) + rule(1, 3) + rule(3, 2) + rule(2, 3)},
		{"halves of 5 from node 4", Fault{Kind: FaultPartition, Partition: PartitionHalves, Node: 4}, 5,
			rule(4, 1) + rule(1, 4) + rule(4, 2) + rule(2, 4) + rule(4, 3) + rule(3, 4) + rule(5, 1) + rule(1, 5) + rule(5, 2) + rule(2, 5) + rule(5, 3) + rule(3, 5)},
		{"bridge 2 of 3", Fault{Kind: FaultPartition, Partition: PartitionBridge, Node: 2}, 3,
			rule(1, 3) + rule(3, 1)},
		{"bridge 3 of 5", Fault{Kind: FaultPartition, Partition: PartitionBridge, Node: 3}, 5,
			rule(1, 4) + rule(4, 1) + rule(1, 5) + rule(5, 1) + rule(2, 4) + rule(4, 2) + rule(2, 5) + rule(5, 2)},
		{"one-way 3 to 1", Fault{Kind: FaultPartition, Partition: PartitionOneWay, Node: 3, Peer: 1}, 3,
			rule(3, 1)},
		// 5 nodes in a ring: each keeps its two neighbours, so 1-3, 1-4, 2-4, 2-5, 3-5 are cut.
		{"ring of 5", Fault{Kind: FaultPartition, Partition: PartitionRing, Node: 1}, 5,
			rule(1, 3) + rule(3, 1) + rule(1, 4) + rule(4, 1) + rule(2, 4) + rule(4, 2) + rule(2, 5) + rule(5, 2) + rule(3, 5) + rule(5, 3)},
		{"loss 1-2", Fault{Kind: FaultLoss, Node: 1, Peer: 2, LossPercent: 30}, 3,
			"\t\toif \"lo\" ip saddr 127.0.0.11 ip daddr 127.0.0.12 numgen random mod 100 < 30 drop\n" +
				"\t\toif \"lo\" ip saddr 127.0.0.12 ip daddr 127.0.0.11 numgen random mod 100 < 30 drop\n"},
	}
	for _, c := range cases {
		got, err := NFTRules(c.f, c.nodes)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if want := head + c.want + tail; got != want {
			t.Errorf("%s:\n%s\nwant:\n%s", c.name, got, want)
		}
	}
}

func TestNFTRulesNeverNameAnAddressOutsideTheNodes(t *testing.T) {
	for _, nodes := range []int{3, 5} {
		for _, p := range partitionKinds(nodes) {
			script, err := NFTRules(Fault{Kind: FaultPartition, Partition: p, Node: 1, Peer: 2}, nodes)
			if err != nil {
				t.Fatal(err)
			}
			for _, field := range strings.Fields(script) {
				if strings.Count(field, ".") == 3 && !strings.HasPrefix(field, "127.0.0.1") {
					t.Fatalf("%s on %d nodes names %s", p, nodes, field)
				}
			}
		}
	}
}

func TestNFTRulesRefuseNonsense(t *testing.T) {
	for _, f := range []Fault{
		{Kind: FaultPartition, Partition: "moat"},
		{Kind: FaultPartition, Partition: PartitionRing},
		{Kind: FaultLoss, Node: 1, Peer: 2, LossPercent: 0},
		{Kind: FaultKill},
	} {
		if _, err := NFTRules(f, 3); err == nil {
			t.Errorf("%+v: no error", f)
		}
	}
}

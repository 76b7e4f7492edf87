package chaos

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestPickLeaderTrustsTheHighestTerm(t *testing.T) {
	// Shaped like GET /api/cluster: n1 has not heard of the election n2 won.
	docs := []string{
		`{"node":"n1","groups":[{"kind":"metadata","leader":"n3","term":9},{"kind":"quorum","queue":"chaos-quorum","leader":"n1","term":3}]}`,
		`{"node":"n2","groups":[{"kind":"quorum","queue":"other","leader":"n3","term":8},{"kind":"quorum","queue":"chaos-quorum","leader":"n2","term":4}]}`,
		`{"node":"n3","groups":[{"kind":"quorum","queue":"chaos-quorum","leader":"","term":5}]}`,
	}
	var sts []clusterStatus
	for _, d := range docs {
		var st clusterStatus
		if err := json.Unmarshal([]byte(d), &st); err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	if got := pickLeader(sts, "chaos-quorum", 3); got != 2 {
		t.Fatalf("leader %d, want 2 (term 4 beats term 3; a term without a leader names none)", got)
	}
	if got := pickLeader(sts, "missing", 3); got != 0 {
		t.Fatalf("leader of an unknown queue: %d", got)
	}
	if got := pickLeader(sts[:1], "chaos-quorum", 0); got != 0 {
		t.Fatalf("a leader outside the nodes: %d", got)
	}
}

func TestClusterArgsPutEveryNodeOnItsOwnAddress(t *testing.T) {
	args := clusterArgs(2, 3, "/s")
	want := []string{"--node-id", "n2", "--cluster-addr", "127.0.0.12:25672",
		"--peers", "n1@127.0.0.11:25672,n2@127.0.0.12:25672,n3@127.0.0.13:25672", "--cluster-secret-file", "/s"}
	if !slices.Equal(args, want) {
		t.Fatalf("%v", args)
	}
	n := &Node{ID: 2, Cluster: true, Dir: t.TempDir()}
	if err := n.writeConfig(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(n.listeners(), " "); got != "127.0.0.12:5672 127.0.0.12:15672" {
		t.Fatalf("listeners %s", got)
	}
}

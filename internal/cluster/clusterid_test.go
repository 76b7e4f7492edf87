package cluster

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/vfs"
)

// TestMismatchRules: which peer identities a node refuses.
func TestMismatchRules(t *testing.T) {
	n := &Node{cfg: Config{Self: Member{Name: "n1"}}, drawn: "d1"}
	n.savedCluster.Store("")
	cases := []struct {
		own    string
		peer   identity
		refuse string // a fragment of the reason, "" for none
	}{
		{"", identity{Node: "n2"}, ""},                // nobody knows yet (founding)
		{"X", identity{Node: "n2"}, ""},               // the peer is new: it learns X from the log
		{"X", identity{Node: "n2", Cluster: "X"}, ""}, // same cluster
		{"X", identity{Node: "n2", Cluster: "Y"}, "belongs to cluster Y, this node to cluster X"},
		{"", identity{Node: "n2", Cluster: "Y"}, ""},                                         // a founder starting late
		{"", identity{Node: "n2", Cluster: "Y", Started: map[string]string{"n1": "d1"}}, ""}, // our own start
		{"", identity{Node: "n2", Cluster: "Y", Started: map[string]string{"n1": "d0"}}, "recorded this node's start"},
		{"Y", identity{Node: "n2", Cluster: "Y", Started: map[string]string{"n1": "d0"}}, "recorded this node's start"},
	}
	for _, c := range cases {
		n.ms.st.Cluster = c.own
		got := n.mismatch(c.peer)
		if (c.refuse == "") != (got == "") || !strings.Contains(got, c.refuse) {
			t.Errorf("own %q, peer %+v: refusal %q, want one with %q", c.own, c.peer, got, c.refuse)
		}
	}
}

// TestFoundersRecordNamesTheCluster: the first founders record applied
// names the cluster; every one records its node's draw, the first per node.
func TestFoundersRecordNamesTheCluster(t *testing.T) {
	var s memberState
	ms := []Member{{Name: "n1", ID: MemberID("n1"), Addr: "127.0.0.1:1"}}
	for _, op := range []memberOp{
		{Op: opFounders, Members: ms, Cluster: "A", Node: "n1"},
		{Op: opFounders, Members: ms, Cluster: "B", Node: "n2"},
		{Op: opFounders, Members: ms, Cluster: "C", Node: "n1"},
	} {
		if err := s.apply(op); err != nil {
			t.Fatal(err)
		}
	}
	if s.Cluster != "A" || s.Started["n1"] != "A" || s.Started["n2"] != "B" {
		t.Fatalf("state %+v", s)
	}
	c := s.clone()
	c.Started["n3"] = "x"
	if s.Started["n3"] != "" {
		t.Fatal("clone shares Started")
	}
}

// TestDrawIsKeptPerDataDirectory: the draw survives a restart and differs
// between directories.
func TestDrawIsKeptPerDataDirectory(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	d1, err := loadDraw(vfs.Default, a)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := loadDraw(vfs.Default, a)
	if err != nil || d2 != d1 {
		t.Fatalf("second load %q %v, want %q", d2, err, d1)
	}
	d3, err := loadDraw(vfs.Default, b)
	if err != nil || d3 == d1 || len(d3) != 32 {
		t.Fatalf("another directory drew %q %v", d3, err)
	}
}

// FuzzHandleIdentity: any request body is answered or refused with an
// error, never a panic, and an answer is an identity document.
func FuzzHandleIdentity(f *testing.F) {
	for _, s := range []string{"", "{}", `{"node":"n2","cluster":"Y"}`, `{"node":"n2","cluster":"X","started":{"n1":"d0"}}`, `[1]`, `{"started":{"a":1}}`} {
		f.Add([]byte(s))
	}
	n := &Node{cfg: Config{Self: Member{Name: "n1"}}, drawn: "d1", log: slog.New(slog.DiscardHandler)}
	n.savedCluster.Store("")
	n.ms.st.Cluster = "X"
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := n.handleIdentity(7, body)
		if err != nil {
			return
		}
		var id identity
		if err := json.Unmarshal(out, &id); err != nil || id.Node != "n1" || id.Cluster != "X" {
			t.Fatalf("answer %s: %+v %v", out, id, err)
		}
	})
}

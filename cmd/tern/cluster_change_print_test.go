package main

import (
	"strings"
	"testing"
)

// user8 F10: promote, add-node and remove-node print a sentence drawn
// from the answer, not the raw document.
func TestPrintMembershipChange(t *testing.T) {
	doc := `{"node":"n1","nodes":[{"name":"n1","address":"127.0.0.1:1","role":"voter","self":true,"reachable":true},
		{"name":"n2","address":"127.0.0.1:2","role":"voter","reachable":true},
		{"name":"n4","address":"127.0.0.1:4","role":"standby","reachable":true}],
		"groups":[{"kind":"metadata","voters":["n1","n2","n4"]},{"kind":"quorum","vhost":"/","queue":"q","voters":["n1","n2"],"learners":["n4"]}]}`
	for _, c := range []struct {
		cmd, node string
		standby   bool
		want      string
	}{
		{"promote", "n4", false, "Promoted n4: a voter in 1 group of 2 (as node n1 sees it)"},
		{"add-node", "n4", false, "Added n4 at 127.0.0.1:4 (role now standby, in 2 groups of 2); it makes itself a voter and serves clients once it has caught up. Members now n1, n2, n4.\n"},
		{"add-node", "n4", true, "it stays a standby until promoted"},
		{"remove-node", "n3", false, "Removed n3 from the cluster for good; members now n1, n2, n4.\n"},
	} {
		var b strings.Builder
		if err := printMembershipChange(&b, c.cmd, c.node, doc, c.standby); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), c.want) || strings.Contains(b.String(), "{") {
			t.Errorf("%s %s: %q, want it to contain %q", c.cmd, c.node, b.String(), c.want)
		}
	}
	var b strings.Builder
	if err := printMembershipChange(&b, "promote", "n4", "<html>", false); err == nil {
		t.Error("a non-JSON answer printed no error")
	}
}

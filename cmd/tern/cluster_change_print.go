package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// printMembershipChange writes the answer of promote, add-node and
// remove-node (GET /api/cluster's document after the change) as one
// sentence, as tern ctl's changes print theirs (user8 F10); --json prints
// the document itself.
func printMembershipChange(w io.Writer, cmd, node, doc string, standby bool) error {
	var st clusterStatus
	if err := json.Unmarshal([]byte(doc), &st); err != nil {
		return fmt.Errorf("the node's answer is not a cluster status: %w", err)
	}
	var voterOf, learnerOf int
	for _, g := range st.Groups {
		if slices.Contains(g.Voters, node) {
			voterOf++
		} else if slices.Contains(g.Learners, node) {
			learnerOf++
		}
	}
	var members []string
	for _, n := range st.Nodes {
		members = append(members, n.Name)
	}
	groups := func(n int) string {
		if n == 1 {
			return "1 group"
		}
		return fmt.Sprintf("%d groups", n)
	}
	total := len(st.Groups)
	switch cmd {
	case "promote":
		_, err := fmt.Fprintf(w, "Promoted %s: a voter in %s of %d (as node %s sees it); it serves clients once its ports are open.\n",
			node, groups(voterOf), total, st.Node)
		return err
	case "add-node":
		role, addr := "", ""
		for _, n := range st.Nodes {
			if n.Name == node {
				role, addr = n.Role, n.Address
			}
		}
		then := "it makes itself a voter and serves clients once it has caught up"
		if standby {
			then = "it stays a standby until promoted"
		}
		_, err := fmt.Fprintf(w, "Added %s at %s (role now %s, in %s of %d); %s. Members now %s.\n",
			node, addr, role, groups(learnerOf+voterOf), total, then, strings.Join(members, ", "))
		return err
	default: // remove-node, remove
		_, err := fmt.Fprintf(w, "Removed %s from the cluster for good; members now %s.\n", node, strings.Join(members, ", "))
		return err
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/tern-broker/tern/internal/cluster"
)

// printClusterStatus writes GET /api/cluster's document as an operator
// reads it at a terminal, as rabbitmqctl cluster_status does: the members
// and whether this node reaches them, then one line per Raft group with
// its leader and the followers' lag where this node leads. --json prints
// the document itself, for scripts.
func printClusterStatus(w io.Writer, doc string) error {
	var st cluster.Status
	if err := json.Unmarshal([]byte(doc), &st); err != nil {
		return fmt.Errorf("the node's answer is not a cluster status: %w", err)
	}
	fmt.Fprintf(w, "Cluster status as node %s sees it\n\nNodes\n", st.Node)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tADDRESS\tROLE\tREACHABLE\t")
	for _, n := range st.Nodes {
		name := n.Name
		if n.Self {
			name += " (this node)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t\n", name, n.Address, n.Role, yesNo(n.Reachable))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nGroups (%d)\n", len(st.Groups))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  GROUP\tLEADER\tTERM\tCOMMIT\tVOTERS\tLEARNERS\tFOLLOWERS' LAG\t")
	for _, g := range st.Groups {
		leader := g.Leader
		if leader == "" {
			leader = "(none known)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%s\t%s\t\n", groupName(g), leader, g.Term, g.Commit,
			strings.Join(g.Voters, ","), dash(strings.Join(g.Learners, ",")), followersLag(g.Followers))
	}
	return tw.Flush()
}

// printGrowResults writes POST /api/cluster/grow's or shrink's answer (a
// JSON array) one object per line, as docs/clustering.md shows it, so a
// script can read it line by line and a person can scan it.
func printGrowResults(w io.Writer, doc string) error {
	var items []json.RawMessage
	if err := json.Unmarshal([]byte(doc), &items); err != nil {
		_, werr := io.WriteString(w, doc) // not an array: print what came
		return werr
	}
	for _, it := range items {
		var b bytes.Buffer
		if err := json.Compact(&b, it); err != nil {
			return err
		}
		b.WriteByte('\n')
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

func groupName(g cluster.GroupStatus) string {
	if g.Kind == "metadata" {
		return "metadata"
	}
	return fmt.Sprintf("queue %s in vhost %s", g.Queue, g.VHost)
}

func followersLag(fs []cluster.FollowerStatus) string {
	if len(fs) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		s := fmt.Sprintf("%s %d", f.Node, f.Lag)
		if !f.Active {
			s += " (inactive)"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

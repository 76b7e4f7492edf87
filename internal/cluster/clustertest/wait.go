package clustertest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// pollEvery is how often the wait helpers look again (real time).
const pollEvery = time.Millisecond

// Eventually polls cond until it holds or timeout (real time) passes.
func (c *Cluster) Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
}

// WaitTicks lets n ticks of the cluster's clock pass (the driver runs
// them; real time about n × TickEvery).
func (c *Cluster) WaitTicks(n int) {
	c.T.Helper()
	end := c.Clock.Now().Add(time.Duration(n) * c.tick)
	if !c.Eventually(time.Duration(n)*c.opts.TickEvery*100+time.Second, func() bool { return !c.Clock.Now().Before(end) }) {
		c.T.Fatalf("the clock did not advance %d ticks (paused?)", n)
	}
}

// WaitLeader waits until one of the nodes in among (nil: every running
// node) leads group and all of among know it; it fails the test after
// timeout (real time).
func (c *Cluster) WaitLeader(group uint64, among []NodeID, timeout time.Duration) NodeID {
	c.T.Helper()
	if among == nil {
		among = c.Up()
	}
	var leader NodeID
	ok := c.Eventually(timeout, func() bool {
		leader = 0
		for _, id := range among {
			g := c.Group(id, group)
			if g == nil {
				return false
			}
			if g.IsLeader() {
				leader = id
			}
		}
		if leader == 0 {
			return false
		}
		for _, id := range among {
			if c.Group(id, group).Leader() != leader {
				return false
			}
		}
		return true
	})
	if !ok {
		c.T.Fatalf("group %d: no leader agreed among %v within %v: %s", group, among, timeout, c.describe(group))
	}
	return leader
}

// describe summarises each node's view of group, for failure messages.
func (c *Cluster) describe(group uint64) string {
	var b strings.Builder
	for _, id := range c.ids {
		g := c.Group(id, group)
		if g == nil {
			fmt.Fprintf(&b, "[n%d down] ", id)
			continue
		}
		st := g.Status()
		fmt.Fprintf(&b, "[n%d %s term=%d leader=%d commit=%d applied=%d] ", id, st.State, st.Term, st.Leader, st.Commit, st.Applied)
	}
	return b.String()
}

// Propose proposes value on node id's replica of group and waits for its
// apply there (or ctx).
func (c *Cluster) Propose(ctx context.Context, id NodeID, group uint64, value string) error {
	g := c.Group(id, group)
	if g == nil {
		return fmt.Errorf("node %d does not run group %d", id, group)
	}
	_, err := g.Propose(ctx, []byte(value))
	return err
}

// WaitApplied waits until every node in nodes (nil: every running node
// with the group) has applied all values; it fails the test after timeout.
func (c *Cluster) WaitApplied(group uint64, nodes []NodeID, values []string, timeout time.Duration) {
	c.T.Helper()
	if nodes == nil {
		for _, id := range c.Up() {
			if c.SM(id, group) != nil {
				nodes = append(nodes, id)
			}
		}
	}
	ok := c.Eventually(timeout, func() bool {
		for _, id := range nodes {
			sm := c.SM(id, group)
			if sm == nil || !sm.Contains(values) {
				return false
			}
		}
		return true
	})
	if !ok {
		var missing []string
		for _, id := range nodes {
			if sm := c.SM(id, group); sm == nil || !sm.Contains(values) {
				missing = append(missing, fmt.Sprint(id))
			}
		}
		c.T.Fatalf("group %d: nodes %s did not apply all %d values within %v: %s", group, strings.Join(missing, ","), len(values), timeout, c.describe(group))
	}
}

// CheckNoDivergence fails the test unless every running replica's applied
// list of group is a prefix of the longest one — same values at the same
// Raft indexes; it returns the longest.
func (c *Cluster) CheckNoDivergence(group uint64) []Item {
	c.T.Helper()
	var longest []Item
	var from NodeID
	lists := map[NodeID][]Item{}
	for _, id := range c.Up() {
		if sm := c.SM(id, group); sm != nil {
			items := sm.Items()
			lists[id] = items
			if len(items) > len(longest) {
				longest, from = items, id
			}
		}
	}
	for id, items := range lists {
		if !slices.Equal(items, longest[:len(items)]) {
			for i := range items {
				if items[i] != longest[i] {
					c.T.Fatalf("group %d: node %d diverges from node %d at position %d: %+v vs %+v", group, id, from, i, items[i], longest[i])
				}
			}
		}
	}
	return longest
}

// CheckNoDuplicates fails the test if a value was applied twice by the
// longest replica of group. (Raft does not deduplicate: a MsgProp the
// network duplicates is appended twice, so tests with Duplicate on
// propose on the leader.)
func (c *Cluster) CheckNoDuplicates(group uint64) {
	c.T.Helper()
	longest := c.CheckNoDivergence(group)
	seen := map[string]uint64{}
	for _, it := range longest {
		if prev, ok := seen[it.Value]; ok {
			c.T.Fatalf("group %d: value %q applied twice, at %d and %d", group, it.Value, prev, it.Index)
		}
		seen[it.Value] = it.Index
	}
}

package cluster

// MetadataCurrent reports whether this node's definitions can be trusted
// to be the cluster's: the metadata group has a leader this node knows and
// this node hears from a majority of the group's voters (itself
// included), as of the last election timeout. A node cut off from the
// majority loses both within about an election timeout (1-2 s: its group
// stops following a leader it no longer hears from); until it hears from
// them again it routes with the definitions it had, which may lack what
// the majority declared meanwhile. The broker asks before it confirms an
// unroutable publish (broker.MetadataCurrency).
func (n *Node) MetadataCurrent() bool {
	g := n.meta.Load()
	if g == nil {
		return false
	}
	st := g.Status()
	if st.Leader == 0 || len(st.Voters) == 0 || !n.host.NodeLive(st.Leader) {
		return false
	}
	live := 0
	for _, v := range st.Voters {
		if n.host.NodeLive(v) {
			live++
		}
	}
	return live > len(st.Voters)/2
}

package transport

// Connected reports whether the transport has a live connection to the
// peer now. It is a snapshot: the connection may be lost a moment later,
// and a peer cut off without a reset stays "connected" until IdleTimeout.
// Callers use it to skip peers a Request would wait ConnectWait for.
func (t *TCP) Connected(to NodeID) bool {
	p := t.peer(to)
	return p != nil && p.conn.Load() != nil
}

// ConnectedPeers appends the peers with a live connection now to dst.
func (t *TCP) ConnectedPeers(dst []NodeID) []NodeID {
	for id, p := range *t.view.Load() {
		if p.conn.Load() != nil {
			dst = append(dst, id)
		}
	}
	return dst
}

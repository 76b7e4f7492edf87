package transport

// PeerStats are one peer's counters since the peer was added; they
// survive reconnections.
type PeerStats struct {
	Addr      string // the configured address
	Connected bool
	// LocalAddr and RemoteAddr are the live connection's socket
	// addresses ("" when not connected).
	LocalAddr, RemoteAddr string
	// BytesSent counts bytes written to the socket, BytesReceived bytes
	// read as frames. MessagesSent counts Raft messages, requests,
	// replies and notifies queued on a live connection; MessagesReceived
	// those decoded from it. Pings count as bytes only.
	BytesSent, BytesReceived       uint64
	MessagesSent, MessagesReceived uint64
	// Dropped counts Raft messages, requests and notifies not sent
	// because the peer was not connected or its queue was full, and
	// received Raft messages dropped because their batch named another
	// sender than the peer.
	Dropped uint64
	// Reconnects counts connections after the first.
	Reconnects uint64
	// Refusal is the reason the peer gave when it last refused this
	// node's dial ("unknown node id …" from a peer that does not count
	// this node in), until a dial connects; "" when it never refused, or
	// this node does not dial it (the lower id dials).
	Refusal string
}

// Stats is a snapshot of the transport's counters, for metrics.
type Stats struct {
	Peers map[NodeID]PeerStats
	// Established counts authenticated connections, dialed or accepted.
	Established uint64
	// Refused counts handshakes this node refused or that failed on a
	// refusal (wrong secret, unknown or duplicate node id, TLS).
	Refused uint64
	// ProtocolErrors counts connections closed for a malformed frame.
	ProtocolErrors uint64
	// Busy counts requests refused because MaxInflight were running.
	Busy uint64
}

// Stats returns the transport's counters.
func (t *TCP) Stats() Stats {
	view := *t.view.Load()
	s := Stats{
		Peers:          make(map[NodeID]PeerStats, len(view)),
		Established:    t.established.Load(),
		Refused:        t.refused.Load(),
		ProtocolErrors: t.protocolErrors.Load(),
		Busy:           t.busy.Load(),
	}
	for id, p := range view {
		ps := PeerStats{
			Addr:             p.address(),
			BytesSent:        p.bytesSent.Load(),
			BytesReceived:    p.bytesRecv.Load(),
			MessagesSent:     p.msgsSent.Load(),
			MessagesReceived: p.msgsRecv.Load(),
			Dropped:          p.dropped.Load(),
			Reconnects:       p.reconnects.Load(),
		}
		if r := p.refusal.Load(); r != nil {
			ps.Refusal = *r
		}
		if c := p.conn.Load(); c != nil {
			ps.Connected = true
			ps.LocalAddr = c.nc.LocalAddr().String()
			ps.RemoteAddr = c.nc.RemoteAddr().String()
		}
		s.Peers[id] = ps
	}
	return s
}

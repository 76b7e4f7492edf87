package transport

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"time"
)

// TCPConfig configures a TCP transport. Zero durations and sizes take the
// defaults named beside them.
type TCPConfig struct {
	// Self is this node's id; Peers the other nodes' cluster addresses
	// (an entry for Self is ignored). Peers may be empty at first and
	// filled with SetPeer (tests listening on port 0 do that).
	Self  NodeID
	Peers map[NodeID]string
	// ListenAddr is the node's --cluster-addr (host:port). Outgoing
	// connections leave from its host (port chosen by the kernel), so
	// nodes on 127.0.0.11, 127.0.0.12, … of one machine are told apart
	// by address; an unspecified host (0.0.0.0, ::, "") leaves the
	// choice to the kernel.
	ListenAddr string
	// Secret is the shared cluster secret; required, never sent.
	Secret []byte
	// TLS, when set, wraps every cluster connection: it is used as the
	// server config for accepted connections and as the client config
	// for dialed ones (ServerName defaults to the peer address's host),
	// so it holds this node's certificate, the CA pool for peers
	// (RootCAs and ClientCAs) and normally ClientAuth
	// tls.RequireAndVerifyClientCert. The secret handshake runs inside.
	TLS *tls.Config
	// ClientTLS, when set, is called for each dial and its result used
	// as the client config instead of TLS, so a certificate and CA
	// reloaded from files (certs.Reloader) apply to the next connection
	// while open ones keep theirs. It is required when TLS hands out its
	// certificate through GetConfigForClient, which only a server calls.
	ClientTLS func() *tls.Config
	// Handler receives what peers send; required.
	Handler Handler
	// Logger receives refusals, protocol errors and connection changes
	// (default slog.Default()).
	Logger *slog.Logger
	// Unreachable, when set, is called on SendRaft's goroutine for every
	// group whose messages SendRaft dropped (peer not connected or its
	// queue full), so the caller can tell the group's RawNode
	// (ReportUnreachable). It must not block or call back into the
	// transport.
	Unreachable func(to NodeID, group Group)
	// OnRemoved, when set, is called when a peer answers this node's dial
	// with an authenticated notice that this node was removed from the
	// cluster (RemovedError; see Tombstone). It must not block.
	OnRemoved func(by NodeID)
	// OnDisconnect, when set, is called when a connection to a peer
	// closes (not when the transport or the peer is being removed), so
	// the caller can find out at once whether the peer died. It must not
	// block.
	OnDisconnect func(peer NodeID)

	DialTimeout      time.Duration // one TCP connect (default 2 s)
	HandshakeTimeout time.Duration // TLS plus secret handshake (default 5 s)
	WriteTimeout     time.Duration // a peer that takes no byte of a write for this long is dropped (default 5 s)
	PingInterval     time.Duration // a ping goes out when nothing else was written for this long (default 1 s)
	IdleTimeout      time.Duration // a connection with no byte read for this long is dropped (default 5 s)
	ConnectWait      time.Duration // how long Request waits for a missing connection, within its ctx (default 1 s)
	BackoffMin       time.Duration // first redial delay (default 50 ms)
	BackoffMax       time.Duration // largest redial delay (default 1 s)
	MaxFrame         int           // largest frame body sent or accepted (default DefaultMaxFrame, 64 MiB)
	MaxSnapshotFrame int           // largest Raft batch carrying a snapshot, sent or accepted (default DefaultMaxSnapshotFrame, 4 GiB - 1)
	MaxQueueBytes    int           // per-peer send queue; Raft beyond it is dropped (default 64 MiB; an empty queue takes any frame, frames ≤ 4 KiB may use 1/8 more)
	MaxInflight      int           // requests one connection handles at once; more are answered with a busy RemoteError (default 1024)
}

func (c *TCPConfig) setDefaults() error {
	if len(c.Secret) == 0 {
		return errors.New("transport: a cluster secret is required")
	}
	if c.Handler == nil {
		return errors.New("transport: a Handler is required")
	}
	if c.ListenAddr == "" {
		return errors.New("transport: a listen address (--cluster-addr) is required")
	}
	if c.Self == 0 {
		return errors.New("transport: node id 0 is not a valid Raft id")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.DialTimeout, 2*time.Second)
	def(&c.HandshakeTimeout, 5*time.Second)
	def(&c.WriteTimeout, 5*time.Second)
	def(&c.PingInterval, time.Second)
	def(&c.IdleTimeout, 5*time.Second)
	def(&c.ConnectWait, time.Second)
	def(&c.BackoffMin, 50*time.Millisecond)
	def(&c.BackoffMax, time.Second)
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.IdleTimeout <= c.PingInterval {
		return errors.New("transport: IdleTimeout must exceed PingInterval")
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.MaxSnapshotFrame <= 0 {
		c.MaxSnapshotFrame = DefaultMaxSnapshotFrame
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 64 << 20
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 1024
	}
	return nil
}

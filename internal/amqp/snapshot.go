package amqp

import (
	"crypto/tls"
	"net"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// Read-only snapshots of the listener's connections, channels and
// consumers for the management API. Everything a snapshot reads is either
// fixed once the handshake is done (published through connection.info, an
// atomic pointer, so no lock is needed), an atomic counter, or guarded by a
// lock other goroutines already take (chMu, a channel's mu). Nothing here
// runs on the message path: the only per-connection costs are two atomic
// adds per socket read and write (recvOct, sendOct).

// ConnectionInfo describes one open AMQP connection.
type ConnectionInfo struct {
	// Name is RabbitMQ's: "peer_host:peer_port -> host:port".
	Name             string
	ID               uint64
	User, VHost      string
	PeerHost, Host   string
	PeerPort, Port   int
	ClientProperties amqp091.Table
	AuthMechanism    string
	TLS              bool
	FrameMax         uint32
	ChannelMax       uint16
	Heartbeat        time.Duration
	ConnectedAt      time.Time
	Channels         int
	RecvOct, SendOct uint64
	Blocked, Closing bool
}

// connInfo is what the handshake fixed, published once it is done.
type connInfo struct {
	name, user, vhost, peerHost, host, mechanism string
	peerPort, port                               int
	props                                        amqp091.Table
	tls                                          bool
	frameMax                                     uint32
	channelMax                                   uint16
	heartbeat                                    time.Duration
	at                                           time.Time
}

// connStats are a connection's byte counters, read by snapshots.
type connStats struct {
	info             atomic.Pointer[connInfo]
	recvOct, sendOct atomic.Uint64
}

// ConnectionName is RabbitMQ's name for a connection from peer to local.
func ConnectionName(peer, local net.Addr) string {
	return peer.String() + " -> " + local.String()
}

func splitAddr(a net.Addr) (string, int) {
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// publishInfo records the handshake's outcome for snapshots; called by the
// reader once the connection is open.
func (c *connection) publishInfo() {
	_, isTLS := c.nc.(*tls.Conn)
	ph, pp := splitAddr(c.nc.RemoteAddr())
	h, p := splitAddr(c.nc.LocalAddr())
	c.st.info.Store(&connInfo{name: ConnectionName(c.nc.RemoteAddr(), c.nc.LocalAddr()), user: c.user.Name,
		vhost: c.vhost.Name(), peerHost: ph, peerPort: pp, host: h, port: p, mechanism: c.mechanism, props: c.clientProps,
		tls: isTLS, frameMax: c.frameMax, channelMax: c.channelMax, heartbeat: c.heartbeat, at: time.Now()})
}

// countingConn counts the bytes the writer sends.
type countingConn struct {
	net.Conn
	n *atomic.Uint64
}

func (w countingConn) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	w.n.Add(uint64(n))
	return n, err
}

// Connections lists the open connections (those past the handshake),
// sorted by name.
func (s *Server) Connections() []ConnectionInfo {
	var out []ConnectionInfo
	for _, c := range s.conns.Live() {
		in := c.st.info.Load()
		if in == nil {
			continue
		}
		c.chMu.Lock()
		n := len(c.chList)
		c.chMu.Unlock()
		out = append(out, ConnectionInfo{Name: in.name, ID: c.id, User: in.user, VHost: in.vhost,
			PeerHost: in.peerHost, PeerPort: in.peerPort, Host: in.host, Port: in.port, ClientProperties: in.props,
			AuthMechanism: in.mechanism, TLS: in.tls, FrameMax: in.frameMax, ChannelMax: in.channelMax,
			Heartbeat: in.heartbeat, ConnectedAt: in.at, Channels: n,
			RecvOct: c.st.recvOct.Load(), SendOct: c.st.sendOct.Load(),
			Blocked: c.blockNotified.Load(), Closing: c.forced.Load()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CloseConnection closes the named connection with 320 CONNECTION_FORCED
// and reason as RabbitMQ's management plugin does ("CONNECTION_FORCED -
// reason"). It reports whether such a connection was open.
func (s *Server) CloseConnection(name, reason string) bool {
	found := false
	for _, c := range s.conns.Live() {
		if in := c.st.info.Load(); in != nil && in.name == name {
			c.closeFromOutside(amqp091.ConnectionForced, "CONNECTION_FORCED - "+reason)
			found = true
		}
	}
	return found
}

// ChannelInfo describes one open channel.
type ChannelInfo struct {
	Connection  string // the connection's name
	ConnID      uint64
	Number      uint16
	User, VHost string
	// PrefetchCount is the per-consumer prefetch for consumers created
	// next (basic.qos global=false), GlobalPrefetchCount the
	// channel-wide one, as RabbitMQ reports them.
	PrefetchCount, GlobalPrefetchCount uint16
	Unacked                            int
	Consumers                          int
	Stats                              ChannelStats // message_stats
}

// ConsumerInfo describes one consumer.
type ConsumerInfo struct {
	Connection    string
	ConnID        uint64
	Channel       uint16
	User, VHost   string
	Tag, Queue    string
	AckRequired   bool
	PrefetchCount uint16
	// Status is whether a single-active-consumer queue delivers to it.
	Status broker.ConsumerStatus
}

// Channels lists every open channel, by connection name and number.
func (s *Server) Channels() []ChannelInfo {
	var out []ChannelInfo
	s.eachChannel(func(in *connInfo, c *connection, ch *channel) {
		ch.mu.Lock()
		ci := ChannelInfo{Connection: in.name, ConnID: c.id, Number: ch.id, User: in.user, VHost: in.vhost,
			PrefetchCount: ch.consumerCount, GlobalPrefetchCount: ch.prefetchCount, Unacked: ch.live,
			Consumers: len(ch.consumers), Stats: ch.counters.load()}
		ch.mu.Unlock()
		out = append(out, ci)
	})
	return out
}

// Consumers lists every consumer, by connection, channel and tag.
func (s *Server) Consumers() []ConsumerInfo {
	var out []ConsumerInfo
	var ks []*consumer
	s.eachChannel(func(in *connInfo, c *connection, ch *channel) {
		ch.mu.Lock()
		start := len(out)
		for _, k := range ch.consumers {
			if k.cancelled {
				continue
			}
			out = append(out, ConsumerInfo{Connection: in.name, ConnID: c.id, Channel: ch.id, User: in.user,
				VHost: in.vhost, Tag: k.tag, Queue: k.queue.Name(), AckRequired: !k.noAck, PrefetchCount: k.prefetch})
			ks = append(ks, k)
		}
		ch.mu.Unlock()
		part, pk := out[start:], ks[start:]
		sort.Sort(byTag{part, pk})
	})
	// Asked of the queues with no channel lock held: a queue delivers
	// with its own lock held and then takes the channel's.
	for i, k := range ks {
		out[i].Status = k.queue.ConsumerStatus(k)
	}
	return out
}

// byTag sorts one channel's consumers and their infos together.
type byTag struct {
	info []ConsumerInfo
	ks   []*consumer
}

func (b byTag) Len() int           { return len(b.info) }
func (b byTag) Less(i, j int) bool { return b.info[i].Tag < b.info[j].Tag }
func (b byTag) Swap(i, j int) {
	b.info[i], b.info[j] = b.info[j], b.info[i]
	b.ks[i], b.ks[j] = b.ks[j], b.ks[i]
}

func (s *Server) eachChannel(f func(*connInfo, *connection, *channel)) {
	conns := s.conns.Live()
	sort.Slice(conns, func(i, j int) bool { return conns[i].id < conns[j].id })
	for _, c := range conns {
		in := c.st.info.Load()
		if in == nil {
			continue
		}
		c.chMu.Lock()
		chans := append([]*channel(nil), c.chList...)
		c.chMu.Unlock()
		sort.Slice(chans, func(i, j int) bool { return chans[i].id < chans[j].id })
		for _, ch := range chans {
			f(in, c, ch)
		}
	}
}

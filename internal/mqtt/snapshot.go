package mqtt

import (
	"crypto/tls"
	"net"
	"sort"
	"strconv"
)

// administrativeAction is MQTT 5's DISCONNECT reason 0x98.
const administrativeAction byte = 0x98

// ConnectionInfo describes one connected MQTT client, for the management
// API. It is read from the server's table of active clients under its
// lock: a client enters the table only after its handshake set every field
// read here, so no lock of the connection is needed.
type ConnectionInfo struct {
	// Name is RabbitMQ's: "peer_host:peer_port -> host:port".
	Name             string
	ClientID         string
	User, VHost      string
	PeerHost, Host   string
	PeerPort, Port   int
	ProtocolVersion  byte // 4 (3.1.1) or 5
	KeepAliveSeconds int
	Persistent       bool
	TLS              bool
}

func splitAddr(a net.Addr) (string, int) {
	h, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// isTLS says whether nc is a TLS connection (MQTTS; a secure WebSocket's
// connection is its own type and reports false).
func isTLS(nc net.Conn) bool {
	_, ok := nc.(*tls.Conn)
	return ok
}

// Connections lists the connected clients, sorted by name.
func (s *Server) Connections() []ConnectionInfo {
	s.mu.Lock()
	out := make([]ConnectionInfo, 0, len(s.active))
	for _, c := range s.active {
		ph, pp := splitAddr(c.nc.RemoteAddr())
		h, p := splitAddr(c.nc.LocalAddr())
		out = append(out, ConnectionInfo{Name: c.nc.RemoteAddr().String() + " -> " + c.nc.LocalAddr().String(),
			ClientID: c.clientID, User: c.user.Name, VHost: c.vhost.Name(), PeerHost: ph, PeerPort: pp, Host: h, Port: p,
			ProtocolVersion: c.v, KeepAliveSeconds: int(c.keepAlive.Seconds()), Persistent: c.persistent, TLS: isTLS(c.nc)})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CloseConnection disconnects the named client, an MQTT 5 client with
// DISCONNECT reason 0x98 (administrative action), as a session takeover
// does with its own reason. It reports whether the client was connected.
func (s *Server) CloseConnection(name string) bool {
	s.mu.Lock()
	var victim *conn
	for _, c := range s.active {
		if c.nc.RemoteAddr().String()+" -> "+c.nc.LocalAddr().String() == name {
			victim = c
			break
		}
	}
	s.mu.Unlock()
	if victim == nil {
		return false
	}
	victim.kick(administrativeAction)
	return true
}

package server

import (
	"net"
	"os"
	"strconv"
	"time"

	"github.com/tern-broker/tern/internal/mgmt"
)

// managementAPI gives the HTTP API (mgmt.API) the node's broker, its
// listeners' snapshots and a description of the node. done stops its rate
// sampler.
func (s *Server) managementAPI(done <-chan struct{}, started time.Time) *mgmt.API {
	api := &mgmt.API{Broker: s.Broker, Done: done,
		Connections: s.amqp.Connections, Channels: s.amqp.Channels, Consumers: s.amqp.Consumers,
		CloseConnection: s.amqp.CloseConnection,
		Definitions:     []mgmt.DefinitionsSection{mgmt.SecurityDefinitions(s.Broker, s.log.With("component", "definitions"))}}
	if s.mqtt != nil {
		api.MQTTConnections, api.CloseMQTT = s.mqtt.Connections, s.mqtt.CloseConnection
	}
	host, _ := os.Hostname()
	name := "tern@" + host
	if s.cfg.Cluster.NodeID != "" {
		name = s.cfg.Cluster.NodeID + "@" + host
	}
	api.Node = mgmt.NodeInfo{Name: name, ClusterName: name, Version: Version, Started: started}
	if s.node != nil {
		api.NodeSuffix = "@" + host
		api.ClusterName = s.node.ClusterName // one name on every node (user8 F16)
		api.OtherNodes = func() []mgmt.OtherNode {
			var out []mgmt.OtherNode
			for _, m := range s.node.MemberStates() {
				if !m.Self {
					out = append(out, mgmt.OtherNode{Name: m.Name, Running: m.Reachable})
				}
			}
			return out
		}
		api.Placement = func() mgmt.PlaceFunc {
			where := s.node.Placements()
			return func(vhost, name string, home uint64, quorum bool) mgmt.QueuePlacement {
				p := where(vhost, name, home, quorum)
				return mgmt.QueuePlacement{Node: p.Node, Down: p.Down, Leader: p.Leader, Members: p.Members, Online: p.Online}
			}
		}
	}
	api.Listeners = s.listeners
	return api
}

// listeners are the node's bound listeners now: a standby binds its AMQP
// and MQTT ones when it is promoted, after the HTTP API started.
func (s *Server) listeners() []mgmt.Listener {
	var out []mgmt.Listener
	for _, l := range []struct {
		proto string
		addr  net.Addr
	}{
		{"amqp", s.AMQPAddr()}, {"amqp/ssl", s.AMQPSAddr()}, {"mqtt", s.MQTTAddr()}, {"mqtt/ssl", s.MQTTSAddr()},
		{"http/web-mqtt", s.MQTTWSAddr()}, {"https/web-mqtt", s.MQTTWSSAddr()}, {"http", s.HTTPAddr()}, {"https", s.HTTPSAddr()},
	} {
		if l.addr == nil {
			continue
		}
		h, p, err := net.SplitHostPort(l.addr.String())
		if err != nil {
			continue
		}
		port, _ := strconv.Atoi(p)
		out = append(out, mgmt.Listener{Protocol: l.proto, IP: h, Port: port})
	}
	return out
}

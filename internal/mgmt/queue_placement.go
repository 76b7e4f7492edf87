package mgmt

import "github.com/tern-broker/tern/internal/broker"

// QueuePlacement is where a queue lives in a cluster, as RabbitMQ's
// /api/queues shows it: node is the node holding a classic queue or stream
// (the one that declared it) or a quorum queue's leader; a classic queue
// whose node this node cannot reach is "down"; a quorum queue also lists
// its leader, its members (the voters) and those of them online (reached
// by this node).
type QueuePlacement struct {
	Node    string
	Down    bool
	Leader  string
	Members []string
	Online  []string
}

// PlaceFunc answers where one queue lives: home is broker.Queue.Node (0 for
// a quorum queue, whose replicas are on several nodes).
type PlaceFunc func(vhost, name string, home uint64, quorum bool) QueuePlacement

// placeQueue fills j's node, state, leader, members and online from where,
// when this node is in a cluster (where is nil on a single node, whose
// queues are all its own).
func (s *apiServer) placeQueue(j *queueJSON, where PlaceFunc, q *broker.Queue) {
	if where == nil {
		return
	}
	p := where(j.VHost, j.Name, q.Node(), q.Type() == broker.Quorum)
	if p.Node != "" {
		j.Node = s.nodeName(p.Node)
	}
	if p.Down {
		j.State = "down"
	}
	if p.Leader != "" {
		j.Leader = s.nodeName(p.Leader)
	}
	for _, m := range p.Members {
		j.Members = append(j.Members, s.nodeName(m))
	}
	for _, m := range p.Online {
		j.Online = append(j.Online, s.nodeName(m))
	}
}

// placement is the lookup for one listing, built once (nil on a single
// node).
func (s *apiServer) placement() PlaceFunc {
	if s.api.Placement == nil {
		return nil
	}
	return s.api.Placement()
}

// nodeName writes a cluster member's name as this node writes its own
// (NodeInfo.Name: "n1@host"), so /api/queues' node matches /api/nodes'.
func (s *apiServer) nodeName(member string) string {
	if s.api.NodeSuffix == "" {
		return member
	}
	return member + s.api.NodeSuffix
}

package mgmt

import (
	"net/http"
	"time"

	"github.com/tern-broker/tern/internal/amqp"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/mqtt"
)

// API is what the RabbitMQ-compatible management API reads and changes
// (docs/http-api.md). Every field but Broker may be nil: the listener it
// describes is off, and its listings are empty.
type API struct {
	// Broker holds the vhosts, exchanges, queues and bindings; the API
	// declares and deletes through the same VHost methods as AMQP
	// clients (as connection 0, the broker itself).
	Broker *broker.Broker

	// Connections, Channels and Consumers are the AMQP listener's
	// snapshots; CloseConnection closes one with 320 CONNECTION_FORCED
	// and the reason, reporting whether it was open.
	Connections     func() []amqp.ConnectionInfo
	Channels        func() []amqp.ChannelInfo
	Consumers       func() []amqp.ConsumerInfo
	CloseConnection func(name, reason string) bool
	// MQTTConnections and CloseMQTT are the MQTT listener's.
	MQTTConnections func() []mqtt.ConnectionInfo
	CloseMQTT       func(name string) bool

	// Node describes this node for /api/overview and /api/nodes.
	Node NodeInfo
	// Listeners, if set, lists the node's listeners as they are now, in
	// place of Node.Listeners: a promoted standby binds its client
	// listeners after the API starts (port-listener checks, overview).
	Listeners func() []Listener
	// Placement, on a cluster node, returns where queues live (their
	// node, leader and members in /api/queues), a lookup built once per
	// listing; nil on a single node. NodeSuffix is what Node.Name adds to
	// the node's cluster name ("@host"), added to other members' names.
	Placement  func() PlaceFunc
	NodeSuffix string
	// ClusterName, on a cluster node, is the cluster-wide name (the same
	// on every node); nil: Node.ClusterName.
	ClusterName func() string
	// OtherNodes, on a cluster node, lists the other members by their
	// cluster names and whether this node reaches them (/api/nodes lists
	// every member, as RabbitMQ's does); nil on a single node.
	OtherNodes func() []OtherNode
	// Definitions are the parts of GET/POST /api/definitions that other
	// packages own (users, permissions, policies…): definitions.go.
	Definitions []DefinitionsSection
	// Done stops the once-a-second rate sampler; nil samples on demand.
	Done <-chan struct{}
}

// OtherNode is another member of this node's cluster.
type OtherNode struct {
	Name    string // its cluster name (n2), without NodeSuffix
	Running bool   // this node reaches it
}

// NodeInfo describes the node.
type NodeInfo struct {
	Name        string // RabbitMQ's node name, e.g. "tern@host"
	ClusterName string
	Version     string
	Started     time.Time
	Listeners   []Listener
}

// listeners are the node's listeners now.
func (s *apiServer) listeners() []Listener {
	if s.api.Listeners != nil {
		return s.api.Listeners()
	}
	return s.api.Node.Listeners
}

// Listener is one listening port, as /api/overview lists them.
type Listener struct {
	Protocol string `json:"protocol"` // amqp, amqp/ssl, mqtt, http…
	IP       string `json:"ip_address"`
	Port     int    `json:"port"`
}

// apiServer serves the API's endpoints.
type apiServer struct {
	src     Sources
	api     *API
	rates   *rateSampler
	ticking bool
	qindex  queueIndex // each vhost's queues sorted by name (queue_index.go)
}

// handleAPI registers the RabbitMQ-compatible endpoints on mux, under
// /api/ (more specific patterns registered on mux, such as /api/limits,
// keep theirs).
func handleAPI(mux *http.ServeMux, src Sources) {
	if src.API == nil || src.API.Broker == nil {
		return
	}
	s := &apiServer{src: src, api: src.API, rates: newRateSampler(src, nil)}
	if src.API.Done != nil {
		s.ticking = true
		go s.rates.run(src.API.Done)
	}
	rt := &router{}
	s.routeOverview(rt)    // overview.go
	s.routeConnections(rt) // connections.go
	s.routeChannels(rt)    // channels.go
	s.routeExchanges(rt)   // exchanges.go
	s.routeQueues(rt)      // queues.go
	s.routeBindings(rt)    // bindings.go
	s.routeDefinitions(rt) // definitions.go
	s.routeHealth(rt)      // health_checks.go
	mux.Handle("/api/", rt)
	// /api/vhosts/… is the security routes' (users.go); a vhost's
	// connections and channels are served here, by patterns more specific
	// than theirs. The default vhost is spelled out: ServeMux's wildcards
	// do not match a bare %2F segment.
	for _, sub := range []string{"connections", "channels"} {
		for _, v := range []string{"{vhost}", "%2F"} { // the mux matches %2f as %2F
			mux.Handle("GET /api/vhosts/"+v+"/"+sub, rt)
		}
	}
}

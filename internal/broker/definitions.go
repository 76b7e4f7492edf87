package broker

import "github.com/tern-broker/tern/internal/auth"

// Definitions are the durable objects of a node: what survives a restart.
type Definitions struct {
	VHosts    []string
	Exchanges []ExchangeDef
	Queues    []QueueDef
	Bindings  []BindingDef
	// Users, permissions and limits (security.go).
	Users            []PutUser
	Permissions      []auth.PermissionEntry
	TopicPermissions []auth.TopicPermissionEntry
	VHostLimits      []auth.LimitEntry
	UserLimits       []auth.LimitEntry
	// Policies and OperatorPolicies are the vhosts' policies (policy.go).
	Policies         []Policy
	OperatorPolicies []Policy
}

// ExchangeDef is a durable exchange.
type ExchangeDef struct {
	VHost string
	ExchangeConfig
}

// QueueDef is a queue and the id of its log.
type QueueDef struct {
	VHost string
	ID    string
	// Node is, in a cluster, the node that holds a classic queue's (or a
	// stream's) messages: the node that declared it. Other nodes know the
	// queue and hold none of its messages (Queue.Node). 0: no cluster, or
	// a queue every node holds (quorum).
	Node uint64
	QueueConfig
}

// BindingDef is a binding between durable objects.
type BindingDef struct {
	VHost          string
	Source         string
	Destination    string
	DestIsExchange bool
	// DestID, when set (a cluster's bindings), is the destination queue's
	// id (QueueDef.ID): a binding replayed after its queue was deleted
	// and declared again does not bind the new queue. A single node
	// leaves it empty and binds by name.
	DestID string
	Key    string
	Args   map[string]any
}

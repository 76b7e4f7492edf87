package broker

// Definitions are the durable objects of a node: what survives a restart.
type Definitions struct {
	VHosts    []string
	Exchanges []ExchangeDef
	Queues    []QueueDef
	Bindings  []BindingDef
}

// ExchangeDef is a durable exchange.
type ExchangeDef struct {
	VHost string
	ExchangeConfig
}

// QueueDef is a durable queue and the id of its log.
type QueueDef struct {
	VHost string
	ID    string
	QueueConfig
}

// BindingDef is a binding between durable objects.
type BindingDef struct {
	VHost          string
	Source         string
	Destination    string
	DestIsExchange bool
	Key            string
	Args           map[string]any
}

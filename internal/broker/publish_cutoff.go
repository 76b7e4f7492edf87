package broker

// MetadataCurrency is what a cluster's MetadataLog may also implement:
// whether this node's definitions are the cluster's now. A node cut off
// from the majority routes with the definitions it had, which may lack a
// queue or binding declared since.
type MetadataCurrency interface {
	MetadataCurrent() bool
}

// RoutingMayBeStale reports whether this node's definitions may lack what
// the rest of the cluster declared: it is a cluster node cut off from the
// metadata group's majority. An AMQP publish with confirms that reached no
// queue is nacked then rather than confirmed as unroutable: the queue may
// exist on the majority's side, and a confirm would tell the publisher
// that a message nobody stored was handled. (MQTT's "no matching
// subscribers" stays an acknowledgement: a publish to a topic no one
// subscribes to is normal there.) Cheap unless the node is clustered.
func (v *VHost) RoutingMayBeStale() bool {
	mc, ok := v.broker.cfg.Replication.Metadata.(MetadataCurrency)
	if !ok || mc.MetadataCurrent() {
		return false
	}
	v.broker.log.Debug("this node is cut off from the metadata group's majority: its definitions may be stale", "vhost", v.name)
	return true
}

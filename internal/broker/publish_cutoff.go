package broker

// MetadataCurrency is what a cluster's MetadataLog may also implement:
// whether this node's definitions are the cluster's now. A node cut off
// from the majority routes with the definitions it had, which may lack a
// queue or binding declared since.
type MetadataCurrency interface {
	MetadataCurrent() bool
}

// unroutableUnsure reports whether a publish with confirms that reached no
// queue must be nacked rather than confirmed: on a cluster node whose
// definitions may be stale, "unroutable" may be wrong (the queue may
// exist on the majority's side), and a confirm would tell the publisher
// that a message nobody stored was handled. A nack lets it publish again.
func (v *VHost) unroutableUnsure() bool {
	mc, ok := v.broker.cfg.Replication.Metadata.(MetadataCurrency)
	if !ok || mc.MetadataCurrent() {
		return false
	}
	v.broker.log.Debug("nacking an unroutable publish: this node is cut off from the metadata group's majority, its definitions may be stale", "vhost", v.name)
	return true
}

package broker

// streamInvalidArgs are the queue arguments a stream refuses, as RabbitMQ
// does (rabbit_stream_queue:check_invalid_arguments): each would otherwise
// be accepted and silently mean nothing — x-message-ttl in particular,
// where a stream's retention is x-max-age or x-max-length-bytes.
var streamInvalidArgs = []string{"x-expires", "x-message-ttl", "x-max-priority", "x-queue-mode", "x-overflow",
	"x-max-in-memory-length", "x-max-in-memory-bytes", "x-quorum-initial-group-size", "x-cancel-on-ha-failover"}

// checkStreamArgs refuses a new stream's arguments it would ignore, with
// RabbitMQ's text (406). It is checked when a client declares (and when
// definitions are imported), not when stored definitions are replayed: a
// stream an earlier version accepted still loads.
func checkStreamArgs(vhost string, cfg QueueConfig) error {
	if t, _ := cfg.Args["x-queue-type"].(string); t != "stream" {
		return nil
	}
	for _, k := range streamInvalidArgs {
		if _, ok := cfg.Args[k]; ok {
			return errorf(KindPreconditionFailed, "invalid arg '%s' for queue '%s' in vhost '%s'", k, cfg.Name, vhost)
		}
	}
	return nil
}

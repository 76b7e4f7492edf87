package mgmt

import (
	"encoding/json"
	"fmt"
)

// A vhost's default queue type (RabbitMQ 3.11+: a queue declared in the
// vhost without x-queue-type gets it) is not built: Tern's vhosts keep no
// metadata, and a queue declared without x-queue-type is classic. Accepted
// and ignored, a default of quorum left an operator who asked for
// replicated queues with classic ones, which a cluster loses with their
// node. So a vhost PUT or a definitions import that asks for another
// default than classic is refused, naming the key, as a policy with
// classic mirroring keys is; "classic" (what RabbitMQ exports for a vhost
// with no default) is accepted.

// vhostQueueTypeRefusal says why a vhost's description (a PUT body or a
// definitions file's vhost, as a JSON object) cannot be taken, or "" when
// it can: default_queue_type, at the top or in metadata, must be absent,
// empty or classic.
func vhostQueueTypeRefusal(body map[string]json.RawMessage) string {
	check := func(raw json.RawMessage) string {
		if len(raw) == 0 || string(raw) == "null" {
			return ""
		}
		var t string
		if err := json.Unmarshal(raw, &t); err != nil {
			return fmt.Sprintf("default_queue_type must be a string, not %s", raw)
		}
		if t == "" || t == "classic" {
			return ""
		}
		return fmt.Sprintf("default_queue_type '%s' is not supported: Tern has no per-vhost default queue type, "+
			"and a queue declared without x-queue-type is classic (leave the key out or set it to classic, "+
			"and declare the queues with x-queue-type: %s)", t, t)
	}
	if r := check(body["default_queue_type"]); r != "" {
		return r
	}
	var meta map[string]json.RawMessage
	if raw, ok := body["metadata"]; ok && json.Unmarshal(raw, &meta) == nil {
		return check(meta["default_queue_type"])
	}
	return ""
}

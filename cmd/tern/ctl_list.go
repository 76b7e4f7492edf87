package main

import (
	"flag"
	"sort"
	"strings"
)

// listKind is one `tern ctl list` kind: its endpoint, where its vhost is
// in each object ("" when it has none) and its default columns.
type listKind struct {
	path    string
	vhostAt string
	columns []string
}

var listKinds = map[string]listKind{
	"queues":            {"/api/queues", "vhost", []string{"vhost", "name", "type", "durable", "messages", "messages_ready", "messages_unacknowledged", "consumers"}},
	"exchanges":         {"/api/exchanges", "vhost", []string{"vhost", "name", "type", "durable", "auto_delete", "internal"}},
	"bindings":          {"/api/bindings", "vhost", []string{"vhost", "source", "destination", "destination_type", "routing_key", "arguments"}},
	"connections":       {"/api/connections", "vhost", []string{"name", "user", "vhost", "protocol", "channels", "state"}},
	"channels":          {"/api/channels", "vhost", []string{"name", "user", "vhost", "prefetch_count", "consumer_count", "messages_unacknowledged"}},
	"consumers":         {"/api/consumers", "queue.vhost", []string{"queue.vhost", "queue.name", "consumer_tag", "channel_details.name", "ack_required", "prefetch_count", "active"}},
	"users":             {"/api/users", "", []string{"name", "tags"}},
	"vhosts":            {"/api/vhosts", "", []string{"name"}},
	"policies":          {"/api/policies", "vhost", []string{"vhost", "name", "pattern", "apply-to", "priority", "definition"}},
	"operator-policies": {"/api/operator-policies", "vhost", []string{"vhost", "name", "pattern", "apply-to", "priority", "definition"}},
	"permissions":       {"/api/permissions", "vhost", []string{"user", "vhost", "configure", "write", "read"}},
	"topic-permissions": {"/api/topic-permissions", "vhost", []string{"user", "vhost", "exchange", "write", "read"}},
	"vhost-limits":      {"/api/vhost-limits", "vhost", []string{"vhost", "value"}},
	"user-limits":       {"/api/user-limits", "", []string{"user", "value"}},
	"nodes":             {"/api/nodes", "", []string{"name", "type", "running", "uptime", "mem_used", "mem_alarm", "disk_free_alarm"}},
}

func listKindNames() string {
	names := make([]string, 0, len(listKinds))
	for k := range listKinds {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func init() {
	ctlCommands = append(ctlCommands, &ctlCommand{
		name: "list", args: "KIND [--vhost V] [--columns a,b] [--json]", min: 1, max: 1,
		summary: "list objects; KIND is one of " + listKindNames() + " (every vhost's unless --vhost)",
		def:     func(*flag.FlagSet) func(*ctlRun, []string) error { return runList },
	})
}

func runList(r *ctlRun, args []string) error {
	k, ok := listKinds[args[0]]
	if !ok {
		return usageErr("list: unknown kind %q; one of %s", args[0], listKindNames())
	}
	cl, err := r.client()
	if err != nil {
		return err
	}
	if r.g.vhostSet {
		// An unknown vhost is "not found" (exit 2), as with rabbitmqctl,
		// rather than an empty list.
		if err := cl.getJSON(apiPath("vhosts", r.g.vhost), &map[string]any{}); err != nil {
			return err
		}
	}
	var rows []map[string]any
	if err := cl.getJSON(k.path, &rows); err != nil {
		return err
	}
	if r.g.vhostSet && k.vhostAt != "" {
		kept := rows[:0]
		for _, row := range rows {
			if v, _ := field(row, k.vhostAt); v == r.g.vhost {
				kept = append(kept, row)
			}
		}
		rows = kept
	}
	if rows == nil {
		rows = []map[string]any{}
	}
	return r.emitRows(k.columns, rows)
}

// Package mgmt serves Tern's HTTP endpoints: /healthz (503 naming the
// active resource alarms), Prometheus /metrics, the publish rate limits at
// /api/limits (GET, and PUT to replace them) and, when enabled, Go's
// profiler under /debug/pprof/. Every request needs HTTP basic credentials
// (access.go) except GET and HEAD of the configured open paths (/healthz
// and /metrics by default) and a user tagged monitoring, management,
// policymaker or administrator; what each may read and change is
// RabbitMQ's model (authz.go): changes to queues, exchanges and bindings
// as the user's vhost permissions allow, policies for policymakers,
// everything else and the profiler for administrators.
// Failed logins are logged with the source address and throttled per
// address (throttle.go).
//
// Under /api/ it serves the RabbitMQ-compatible management API (api.go,
// docs/http-api.md): overview, nodes, connections, channels, consumers,
// exchanges, queues, bindings, definitions and health checks with
// RabbitMQ's paths, JSON field names and error bodies. It reads the broker
// through Sources.API (the broker's vhosts and the listeners' snapshots)
// and samples counters once a second for rates (rates.go). The web console
// (internal/console) is served at /.
//
// Metrics are gathered at scrape time from the components' Stats()
// snapshots through a custom collector, so nothing on the message path
// touches a metrics registry.
package mgmt

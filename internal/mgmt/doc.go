// Package mgmt serves Tern's HTTP endpoints: /healthz (503 naming the
// active resource alarms), Prometheus /metrics, the publish rate limits at
// /api/limits (GET, and PUT to replace them) and, when enabled, Go's
// profiler under /debug/pprof/. Every request needs HTTP basic credentials
// (access.go) except GET and HEAD of the configured open paths (/healthz
// and /metrics by default): reads a user tagged monitoring, management,
// policymaker or administrator, changes and the profiler an administrator.
// Failed logins are logged with the source address and throttled per
// address (throttle.go). There is no management API for queues, exchanges
// or users and no console.
//
// Metrics are gathered at scrape time from the components' Stats()
// snapshots through a custom collector, so nothing on the message path
// touches a metrics registry.
package mgmt

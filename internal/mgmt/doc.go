// Package mgmt serves Tern's HTTP endpoints: /healthz (503 naming the
// active resource alarms), Prometheus /metrics, the publish rate limits at
// /api/limits (GET, and PUT to replace them) and, when enabled, Go's
// profiler under /debug/pprof/. Reads are open; every other method needs an
// administrator's HTTP basic credentials (admin.go). There is no management
// API for queues, exchanges or users and no console.
//
// Metrics are gathered at scrape time from the components' Stats()
// snapshots through a custom collector, so nothing on the message path
// touches a metrics registry.
package mgmt

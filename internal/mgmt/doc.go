// Package mgmt serves Tern's HTTP endpoints: /healthz and Prometheus
// /metrics for now, the management API and console later.
//
// Metrics are gathered at scrape time from the components' Stats()
// snapshots through a custom collector, so nothing on the message path
// touches a metrics registry.
package mgmt

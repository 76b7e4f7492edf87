package mgmt

import (
	"encoding/json"
	"fmt"
	"net/http"
	httppprof "net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tern-broker/tern/internal/flow"
)

// Handler returns the HTTP handler for /healthz, /metrics, /api/limits and,
// on a cluster node, /api/cluster,
// and Go's profiler under /debug/pprof/ when pprof is set. Every request
// outside src.OpenPaths needs basic credentials and a management tag
// (access.go); what each tag may do is authz.go's.
func Handler(src Sources, pprof bool) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.Raft != nil {
		reg.MustRegister(raftCollector{src.Raft})
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if pprof {
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	}
	if src.Limits != nil {
		mux.HandleFunc("GET /api/limits", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, src.Limits.Limits())
		})
		mux.HandleFunc("PUT /api/limits", func(w http.ResponseWriter, r *http.Request) { putLimits(w, r, src) })
	}
	handlePolicies(mux, src) // policies.go
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { healthz(w, src) })
	handleSecurity(mux, src.Security) // users.go, permissions.go
	if src.Cluster != nil {
		mux.HandleFunc("GET /api/cluster", func(w http.ResponseWriter, _ *http.Request) { clusterStatus(w, src) })
		if src.Promote != nil {
			mux.HandleFunc("POST /api/cluster/promote", func(w http.ResponseWriter, r *http.Request) { promote(w, r, src) })
		}
		handleClusterNodes(mux, src) // cluster_nodes.go
		handleClusterGrow(mux, src)  // cluster_grow.go
	}
	handleAPI(mux, src) // api.go: the RabbitMQ-compatible API
	handleConsole(mux)  // console.go: the web console at /
	th := newThrottle(nil)
	return withConsole(src.Access, func(a Access) http.Handler { return authorize(src.Users, a, th, mux) })
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// putLimits replaces the publish rate limits at run time. The body is a JSON
// array of limits; anything invalid answers 400 with the reason and changes
// nothing.
func putLimits(w http.ResponseWriter, r *http.Request, src Sources) {
	var limits []flow.Limit
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&limits); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be a JSON array of limits: " + err.Error()})
		return
	}
	for _, l := range limits {
		if err := l.Validate(); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if src.VHostExists != nil && !src.VHostExists(l.VHost) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("unknown vhost %q", l.VHost)})
			return
		}
	}
	set := src.Limits.Set
	if src.SetLimits != nil {
		set = src.SetLimits
	}
	if err := set(limits); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, src.Limits.Limits())
}

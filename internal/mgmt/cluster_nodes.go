package mgmt

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// handleClusterNodes registers the membership endpoints of a cluster node:
// POST /api/cluster/nodes and DELETE /api/cluster/nodes/{name}. Like
// every request that is not a GET, they need an administrator.
func handleClusterNodes(mux *http.ServeMux, src Sources) {
	if src.AddNode != nil {
		mux.HandleFunc("POST /api/cluster/nodes", func(w http.ResponseWriter, r *http.Request) { addNode(w, r, src) })
	}
	if src.RemoveNode != nil {
		mux.HandleFunc("DELETE /api/cluster/nodes/{name}", func(w http.ResponseWriter, r *http.Request) { removeNode(w, r, src) })
	}
}

// membershipTimeout bounds one membership change: every quorum queue's
// group changes its configuration, one after the other.
const membershipTimeout = 50 * time.Second

// addNode serves POST /api/cluster/nodes {"name": "n4", "addr":
// "127.0.0.1:25675", "role": "voter"|"standby"}: the node becomes a member
// and a learner in every group; a voter promotes itself once it caught up
// (GET /api/cluster shows its role). It answers with the cluster's status.
func addNode(w http.ResponseWriter, r *http.Request, src Sources) {
	var body struct {
		Name string `json:"name"`
		Addr string `json:"addr"`
		Role string `json:"role"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Name == "" || body.Addr == "" ||
		(body.Role != "" && body.Role != "voter" && body.Role != "standby") {
		if tooLarge(w, err) {
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be {"name": "NAME", "addr": "HOST:PORT", "role": "voter" or "standby"}`})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	answer(w, src, src.AddNode(ctx, body.Name, body.Addr, body.Role == "standby"))
}

// removeNode serves DELETE /api/cluster/nodes/{name}.
func removeNode(w http.ResponseWriter, r *http.Request, src Sources) {
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	answer(w, src, src.RemoveNode(ctx, r.PathValue("name")))
}

// answer writes the cluster's status, or err: 400 for a BadRequest, 503
// otherwise (no quorum in time: retry).
func answer(w http.ResponseWriter, src Sources, err error) {
	if err != nil {
		status := http.StatusServiceUnavailable
		var br BadRequest
		if errors.As(err, &br) {
			status = http.StatusBadRequest
		}
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, src.Cluster())
}

package mgmt

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// GrowRequest is the body of POST /api/cluster/grow and /api/cluster/shrink:
// the node, RabbitMQ-style regular expressions for vhosts and queues
// (empty: all), and for grow the strategy "all" (default) or "even".
type GrowRequest struct {
	Node         string `json:"node"`
	VHostPattern string `json:"vhost_pattern,omitempty"`
	QueuePattern string `json:"queue_pattern,omitempty"`
	Strategy     string `json:"strategy,omitempty"`
}

// handleClusterGrow registers POST /api/cluster/grow and POST
// /api/cluster/shrink (administrators only, like every request that is
// not a GET). They answer with one result per matching quorum queue.
func handleClusterGrow(mux *http.ServeMux, src Sources) {
	if src.Grow != nil {
		mux.HandleFunc("POST /api/cluster/grow", func(w http.ResponseWriter, r *http.Request) { growShrink(w, r, src.Grow, true) })
	}
	if src.Shrink != nil {
		mux.HandleFunc("POST /api/cluster/shrink", func(w http.ResponseWriter, r *http.Request) { growShrink(w, r, src.Shrink, false) })
	}
}

func growShrink(w http.ResponseWriter, r *http.Request, do func(context.Context, GrowRequest) (any, error), grow bool) {
	var body GrowRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	err := dec.Decode(&body)
	if err == nil && (body.Node == "" || (body.Strategy != "" && body.Strategy != "all" && body.Strategy != "even") || (!grow && body.Strategy != "")) {
		err = errors.New("bad body")
	}
	if err != nil {
		if tooLarge(w, err) {
			return
		}
		want := `{"node": "NAME", "vhost_pattern": "REGEX", "queue_pattern": "REGEX", "strategy": "all" or "even"}`
		if !grow {
			want = `{"node": "NAME", "vhost_pattern": "REGEX", "queue_pattern": "REGEX"}`
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be " + want})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
	defer cancel()
	res, err := do(ctx, body)
	if err != nil {
		status := http.StatusServiceUnavailable
		var br BadRequest
		if errors.As(err, &br) {
			status = http.StatusBadRequest
		}
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

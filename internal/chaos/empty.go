package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tern-broker/tern/internal/chaos/checker"
)

// emptyDeadline bounds the wait, after the drain, for the queue to hold
// nothing on every node.
const emptyDeadline = 20 * time.Second

// queueDepth is the part of GET /api/queues/{vhost}/{name} the runner reads.
type queueDepth struct {
	Ready   int `json:"messages_ready"`
	Unacked int `json:"messages_unacknowledged"`
}

// fetchDepth reads one node's counts for queue in vhost "/".
func fetchDepth(ctx context.Context, n *Node, queue string) (queueDepth, error) {
	var d queueDepth
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	u := "http://" + n.HTTPAddr() + "/api/queues/%2F/" + url.PathEscape(queue)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return d, err
	}
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("GET /api/queues/%%2F/%s: %s", queue, resp.Status)
	}
	return d, json.NewDecoder(resp.Body).Decode(&d)
}

// queueEmpty waits, after the drain and with the consumer still attached
// and acking, until every running node reports queue empty: no message
// ready, none unacked. The drain only saw each confirmed value delivered
// once; a value delivered and never acked that the broker then keeps
// checked out to a consumer that is gone, or holds back from a consumer
// that is there, is still in the queue, and fails here (the checker's
// stranded verdict). Unknown and nacked publishes that were stored are
// delivered and acked meanwhile, so empty is the right end state.
func (r *run) queueEmpty(ctx context.Context, queue string) checker.Op {
	op := checker.Op{Process: "runner", Op: checker.OpEmpty, Queue: queue, Start: now(), DeadlineMS: emptyDeadline.Milliseconds()}
	deadline := time.Now().Add(emptyDeadline)
	var last string
	for {
		var seen []string
		empty, answered := true, 0
		for _, n := range r.nodes {
			if !n.Running() {
				continue
			}
			d, err := fetchDepth(ctx, n, queue)
			if err != nil {
				seen, empty = append(seen, fmt.Sprintf("n%d: %v", n.ID, err)), false
				continue
			}
			answered++
			seen = append(seen, fmt.Sprintf("n%d: ready %d unacked %d", n.ID, d.Ready, d.Unacked))
			if d.Ready+d.Unacked > 0 {
				empty = false
			}
		}
		last = strings.Join(seen, "; ")
		if empty && answered > 0 {
			op.End, op.Outcome, op.Detail = now(), checker.OK, last
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			op.End, op.Outcome, op.Error, op.Detail = now(), checker.Fail, "messages left in the queue after the drain", last
			if answered == 0 {
				op.Error = "no node answered"
			}
			break
		}
		sleepCtx(ctx, 250*time.Millisecond)
	}
	fmt.Fprintf(r.log, "queue empty: %s in %v: %s\n", op.Outcome, time.Duration(op.End-op.Start).Round(time.Millisecond), last)
	return op
}

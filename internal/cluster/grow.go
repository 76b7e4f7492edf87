package cluster

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// Growing and shrinking quorum queues onto a node, RabbitMQ's
// `rabbitmq-queues grow NODE all|even` and `shrink NODE`. Every member of
// a Tern cluster already holds every quorum queue — as a voter of the
// queue's Raft group or as a non-voting learner (placement.go) — so a node
// added to the cluster replicates existing queues from the start, but
// counts in none of their quorums: reconcile only promotes it where a
// queue has fewer voters than its x-quorum-initial-group-size. Grow makes
// it a voter of each matching queue (a Raft configuration change);
// shrink demotes it back to a learner. Neither moves data: a learner has
// the log already.

// GrowRequest selects the quorum queues Grow and Shrink change.
type GrowRequest struct {
	Node string
	// VHostPattern and QueuePattern are regular expressions matched
	// (unanchored, as RabbitMQ's) against the vhost and queue names;
	// empty matches every one.
	VHostPattern, QueuePattern string
	// Even (grow only): only queues with an even number of voters, which
	// gain fault tolerance from one more (RabbitMQ's `even`); otherwise
	// every matching queue (`all`).
	Even bool
}

// GrowResult is what happened to one quorum queue.
type GrowResult struct {
	VHost  string `json:"vhost"`
	Queue  string `json:"queue"`
	Result string `json:"result"` // "grown", "shrunk", "skipped: …" or "error: …"
	Voters int    `json:"voters"` // voters after the change
}

// queueMatcher compiles a request's patterns.
func queueMatcher(req GrowRequest) (func(vhost, name string) bool, error) {
	comp := func(p string) (*regexp.Regexp, error) {
		if p == "" {
			p = ".*"
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("%w: pattern %q: %v", ErrBadMember, p, err)
		}
		return re, nil
	}
	vre, err := comp(req.VHostPattern)
	if err != nil {
		return nil, err
	}
	qre, err := comp(req.QueuePattern)
	if err != nil {
		return nil, err
	}
	return func(vhost, name string) bool { return vre.MatchString(vhost) && qre.MatchString(name) }, nil
}

// sortedGroups are the open quorum groups in vhost, name order, so results
// read the same on every call.
func (n *Node) sortedGroups() []queueGroup {
	qs := n.openGroups()
	slices.SortFunc(qs, func(a, b queueGroup) int {
		if c := strings.Compare(a.vhost, b.vhost); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	return qs
}

// Grow makes req.Node a voter of every matching quorum queue it is not a
// voter of (adding it as a learner first where it is not in the group at
// all). The node must be a voting member (promote a standby first).
// Queues are changed one after another; a failure on one is reported in
// its result and the others go on.
func (n *Node) Grow(ctx context.Context, req GrowRequest) ([]GrowResult, error) {
	m, err := n.votingMember(req.Node)
	if err != nil {
		return nil, err
	}
	match, err := queueMatcher(req)
	if err != nil {
		return nil, err
	}
	out := []GrowResult{}
	for _, q := range n.sortedGroups() {
		if !match(q.vhost, q.name) {
			continue
		}
		st := q.g.Status()
		r := GrowResult{VHost: q.vhost, Queue: q.name, Voters: len(st.Voters)}
		switch {
		case slices.Contains(st.Voters, m.ID):
			r.Result = "skipped: already a voter"
		case req.Even && len(st.Voters)%2 != 0:
			r.Result = fmt.Sprintf("skipped: %d voters, an odd number", len(st.Voters))
		default:
			var err error
			if !inConf(st, m.ID) {
				err = q.g.AddLearner(ctx, m.ID)
			}
			if err == nil {
				err = q.g.Promote(ctx, m.ID)
			}
			if err != nil {
				r.Result = "error: " + err.Error()
			} else {
				r.Result, r.Voters = "grown", r.Voters+1
				n.log.Info("quorum queue grown onto a node", "vhost", q.vhost, "queue", q.name, "node", m.Name, "voters", r.Voters)
			}
		}
		out = append(out, r)
		if ctx.Err() != nil {
			break
		}
	}
	return out, nil
}

// Shrink demotes req.Node to a learner in every matching quorum queue it
// is a voter of, handing leadership away first when it leads. A queue
// whose voters would fall below min(x-quorum-initial-group-size, voting
// members) is skipped: the demoted node would promote itself back
// (reconcile). To take a node out of every queue for good, remove it from
// the cluster (RemoveNode).
func (n *Node) Shrink(ctx context.Context, req GrowRequest) ([]GrowResult, error) {
	m, err := n.votingMember(req.Node)
	if err != nil {
		return nil, err
	}
	match, err := queueMatcher(req)
	if err != nil {
		return nil, err
	}
	voting := 0
	for _, mb := range n.members() {
		if !mb.Standby {
			voting++
		}
	}
	out := []GrowResult{}
	for _, q := range n.sortedGroups() {
		if !match(q.vhost, q.name) {
			continue
		}
		st := q.g.Status()
		r := GrowResult{VHost: q.vhost, Queue: q.name, Voters: len(st.Voters)}
		switch {
		case !slices.Contains(st.Voters, m.ID):
			r.Result = "skipped: not a voter"
		case len(st.Voters)-1 < q.wantVoters(voting) || len(st.Voters) == 1:
			r.Result = fmt.Sprintf("skipped: %d voters, its size is %d", len(st.Voters), q.wantVoters(voting))
		default:
			var err error
			if st.Leader == m.ID {
				err = n.handOffFrom(ctx, q.g, m.ID)
			}
			if err == nil {
				err = q.g.AddLearner(ctx, m.ID) // a voter made a learner: a demotion
			}
			if err != nil {
				r.Result = "error: " + err.Error()
			} else {
				r.Result, r.Voters = "shrunk", r.Voters-1
				n.log.Info("quorum queue shrunk off a node (it stays a learner)", "vhost", q.vhost, "queue", q.name, "node", m.Name, "voters", r.Voters)
			}
		}
		out = append(out, r)
		if ctx.Err() != nil {
			break
		}
	}
	return out, nil
}

// votingMember is the member named name, refused when it is unknown or a
// standby.
func (n *Node) votingMember(name string) (Member, error) {
	st := n.memberState()
	m, ok := st.find(name)
	if !ok {
		for _, mb := range n.members() { // before the membership is recorded
			if mb.Name == name {
				m, ok = mb, true
			}
		}
	}
	if !ok {
		return Member{}, fmt.Errorf("%w: %q", ErrUnknownNode, name)
	}
	if m.Standby {
		return Member{}, fmt.Errorf("%w: %s is a standby: promote it first (tern cluster promote)", ErrBadMember, name)
	}
	return m, nil
}

// handOffFrom moves g's leadership from node (which leads) to another
// voter: this node when it is one and not node itself.
func (n *Node) handOffFrom(ctx context.Context, g *raftnode.Group, node uint64) error {
	st := g.Status()
	to := uint64(0)
	for _, v := range st.Voters {
		if v != node && (to == 0 || v == n.cfg.Self.ID) {
			to = v
		}
	}
	if to == 0 {
		return errors.New("no other voter to hand leadership to")
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return g.TransferLeadership(tctx, to)
}

// wantVoters is how many voters reconcile keeps the queue at, given the
// cluster's voting members: its x-quorum-initial-group-size (default 3),
// or its x-quorum-target-group-size when that is larger — RabbitMQ's
// target group size, with which a queue grows onto nodes added later —
// never more than there are voting members.
func (q queueGroup) wantVoters(voting int) int {
	size := q.size
	if size <= 0 {
		size = DefaultQuorumSize
	}
	return min(max(size, q.target), voting)
}

// targetGroupSize reads x-quorum-target-group-size (0 when absent or not
// a positive integer).
func targetGroupSize(args map[string]any) int {
	var n int64
	switch v := args["x-quorum-target-group-size"].(type) {
	case int:
		n = int64(v)
	case int8:
		n = int64(v)
	case int16:
		n = int64(v)
	case int32:
		n = int64(v)
	case int64:
		n = v
	case uint8:
		n = int64(v)
	case uint16:
		n = int64(v)
	case uint32:
		n = int64(v)
	case float64:
		n = int64(v)
	}
	if n <= 0 || n > 1<<16 {
		return 0
	}
	return int(n)
}

package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// A definition change answered on one node must be in force on every node
// before the client is told it is done: a client that declares a queue
// through n1 and then publishes through n2 (a consumer's declare, a
// producer on another node, RPC reply queues) must find the queue on n2.
// Propose returns once the change applied on the proposing node, which
// says nothing of the others: a follower learns of the commit with the
// leader's next message and applies it a little later. A publish on it
// in between found no queue there: unroutable, dropped, and — as for any
// unroutable message — confirmed. That lost three confirmed messages in
// TestAddAndRemoveNodesOfARunningCluster (CI); a loop of declares on n1 and
// publishes on n2 and n3 found 12 of 80 unroutable
// (TestDeclareOkMeansEveryNodeRoutesToTheQueue in cmd/tern).
//
// So after applying, Propose asks every other member of the metadata
// group that is live and connected to answer once it has applied the
// entry (kindMetaApplied), and waits for them, at most visibleWait. A
// member that is down, cut off, or slower than that is not waited for:
// it is not serving clients a stale view for long (it applies as soon as
// it hears from the leader), and a metadata change must not hang on it.

// kindMetaApplied is the request "answer when your metadata group has
// applied index i" (body: uvarint i; reply: empty). Requests below 64
// are the node's own (forward owns 64–127).
const kindMetaApplied uint8 = 16

// visibleWait bounds how long a definition change waits for the other
// members to apply it.
const visibleWait = 3 * time.Second

// appliedAt is what the metadata group's Apply returns (memberMachine):
// the entry's index beside the applied command's result, so the proposer
// knows which index the other members must reach.
type appliedAt struct {
	index  uint64
	result any
}

// unwrapApplied splits a metadata proposal's result.
func unwrapApplied(res any) (uint64, any) {
	if a, ok := res.(appliedAt); ok {
		return a.index, a.result
	}
	return 0, res
}

// waitVisible waits until every live, connected member of the metadata
// group other than this node has applied index, or visibleWait passes.
// It reports the members that did not confirm, for the log.
func (n *Node) waitVisible(ctx context.Context, g *raftnode.Group, index uint64) []uint64 {
	if index == 0 {
		return nil
	}
	st := g.Status()
	peers := append(slices.Clone(st.Voters), st.Learners...)
	ts := n.tr.Stats()
	ctx, cancel := context.WithTimeout(ctx, visibleWait)
	defer cancel()
	body := binary.AppendUvarint(nil, index)
	var (
		mu      sync.Mutex
		missing []uint64
		wg      sync.WaitGroup
	)
	for _, p := range peers {
		if p == n.cfg.Self.ID || !ts.Peers[p].Connected || !g.Live(p) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := n.tr.Request(ctx, p, kindMetaApplied, body); err != nil {
				mu.Lock()
				missing = append(missing, p)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return missing
}

// handleMetaApplied answers kindMetaApplied: it returns once this node's
// metadata group has applied the index asked for, or fails when ctx (the
// asker's deadline) ends first.
func (n *Node) handleMetaApplied(ctx context.Context, body []byte) ([]byte, error) {
	index, err := decodeMetaApplied(body)
	if err != nil {
		return nil, err
	}
	g := n.meta.Load()
	if g == nil {
		return nil, errors.New("cluster: the metadata group is not running yet")
	}
	if !n.started.Load() || (n.cfg.Self.Standby && n.IsStandby()) {
		// No client is served here yet (still catching up at start, or a
		// standby not promoted): nothing to wait for, and a node catching
		// up from far behind must not hold every definition change.
		return nil, nil
	}
	// Polled: the wait is short (the entry is committed; this node applies
	// it with the leader's next message) and rare (definition changes).
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for g.Status().Applied < index {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: metadata index %d not applied here (at %d): %w", index, g.Status().Applied, ctx.Err())
		case <-n.stop:
			return nil, raftnode.ErrClosed
		case <-t.C:
		}
	}
	return nil, nil
}

// decodeMetaApplied decodes a kindMetaApplied body: one uvarint, nothing
// after it.
func decodeMetaApplied(body []byte) (uint64, error) {
	index, k := binary.Uvarint(body)
	if k <= 0 || k != len(body) {
		return 0, errors.New("cluster: malformed metadata-applied request")
	}
	return index, nil
}

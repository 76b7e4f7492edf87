package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/vfs"
)

// A cluster has an identity, as a RabbitMQ cluster has its cluster id, so
// that a node never mixes two clusters' Raft logs. Without one, a node
// started without --join on a new data directory bootstraps the metadata
// group from its --peers, and if enough of those peers are new too (two
// nodes whose data was lost while the third was down) they found a second
// cluster under the same names; when the third comes back, both sides take
// each other's Raft messages for their own group's. Nothing noticed.
//
// Each node draws a random id once per data directory (DrawFile) and puts
// it in the founders record it proposes at start-up (membership.go). The
// first founders record applied names the cluster (memberState.Cluster);
// each one records its node's draw (memberState.Started). Nodes ask each
// connected peer for its identity (kindIdentity) while they start and
// every identityEvery after, and refuse a peer when
//
//   - both know their cluster and the ids differ (two clusters met), or
//   - the peer's cluster recorded this node's start with another draw than
//     this data directory's: this directory is not the one that node
//     started with (its data was lost, or another machine took its name).
//
// A node refusing while it starts fails Start (the server exits non-zero);
// a serving node logs the refusal and drops the peer's Raft messages.

// DrawFile, under the cluster directory, holds this data directory's
// draw: the id it proposes as the cluster's in its founders record.
const DrawFile = "CLUSTER_DRAW"

// kindIdentity is the request "who are you": body and reply are JSON
// identity documents.
const kindIdentity uint8 = 17

// identityEvery is how often a serving node checks its peers' identities.
const identityEvery = 3 * time.Second

// identity is what a node says of itself in a kindIdentity exchange.
type identity struct {
	Node    string            `json:"node"`
	Cluster string            `json:"cluster,omitempty"` // "" until the founders record applied here
	Members []string          `json:"members,omitempty"`
	Started map[string]string `json:"started,omitempty"`
}

// ClusterFile, under the cluster directory, holds the cluster's id once
// this node has applied the founders record, so that the node can say
// which cluster it belongs to before it replays its log at the next start.
const ClusterFile = "CLUSTER"

// readSmall reads a one-line file in dir ("" when it does not exist).
func readSmall(fsys vfs.FS, dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	f, err := fsys.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cluster: reading %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, 64)
	k, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("cluster: reading %s: %w", path, err)
	}
	return strings.TrimSpace(string(buf[:k])), nil
}

// writeSmall writes a one-line file in dir: written, synced and renamed
// like the NODE file, so a crash leaves it whole or absent.
func writeSmall(fsys vfs.FS, dir, name, value string) error {
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	_, err = io.WriteString(f, value+"\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("cluster: writing %s: %w", path, err)
	}
	return nil
}

// loadDraw returns the draw recorded in dir, drawing and recording one on
// the first start.
func loadDraw(fsys vfs.FS, dir string) (string, error) {
	d, err := readSmall(fsys, dir, DrawFile)
	if err != nil || d != "" {
		return d, err
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	d = hex.EncodeToString(b[:])
	return d, writeSmall(fsys, dir, DrawFile, d)
}

// noteCluster records the cluster's id in ClusterFile the first time this
// node learns it (on the metadata group's goroutine).
func (n *Node) noteCluster(id string) {
	if id == "" || n.savedCluster.Load() == id {
		return
	}
	if err := writeSmall(n.cfg.FS, n.cfg.Dir, ClusterFile, id); err != nil {
		n.log.Warn("could not record the cluster's id", "err", err)
		return
	}
	n.savedCluster.Store(id)
}

// ClusterID is the cluster's identity as this node knows it ("" before the
// founders record applied here).
func (n *Node) ClusterID() string {
	n.ms.mu.Lock()
	id := n.ms.st.Cluster
	n.ms.mu.Unlock()
	if id == "" {
		id, _ = n.savedCluster.Load().(string) // recorded at an earlier start, log not replayed yet
	}
	return id
}

// selfIdentity is this node's identity document.
func (n *Node) selfIdentity() identity {
	st := n.memberState()
	id := identity{Node: n.cfg.Self.Name, Cluster: n.ClusterID(), Started: st.Started}
	for _, m := range st.Members {
		id.Members = append(id.Members, m.Name)
	}
	return id
}

// handleIdentity answers kindIdentity, and refuses an asker of another
// cluster as if this node had asked (the asker may refuse and exit before
// this node's own check reaches it).
func (n *Node) handleIdentity(from uint64, body []byte) ([]byte, error) {
	var asker identity
	if err := json.Unmarshal(body, &asker); err != nil {
		return nil, fmt.Errorf("cluster: malformed identity request: %w", err)
	}
	if asker.Cluster != "" && n.ClusterID() != "" && asker.Cluster != n.ClusterID() {
		n.markStranger(from, n.mismatch(asker))
	}
	return json.Marshal(n.selfIdentity())
}

// mismatch says why this node must refuse a peer that presented peer, or
// "" when nothing is wrong (or nothing can be told yet).
func (n *Node) mismatch(peer identity) string {
	own := n.ClusterID()
	if peer.Cluster == "" {
		return "" // the peer has not applied its founders record yet
	}
	if own != "" && own != peer.Cluster {
		// Say it the same way on both sides: the peer's cluster first.
		return fmt.Sprintf("peer %s belongs to cluster %s, this node to cluster %s: they were founded apart (a node started without --join on a new data directory bootstraps a cluster of its own) and must not exchange Raft messages; stop the nodes of the cluster that should not exist, and bring their names back with fresh data directories through tern cluster add-node",
			peer.Node, peer.Cluster, own)
	}
	if d := peer.Started[n.cfg.Self.Name]; d != "" && d != n.drawn {
		return fmt.Sprintf("cluster %s (as peer %s knows it) recorded this node's start earlier, but this data directory is new to it (its draw is %s, the cluster's record %s): this node's data was lost or another node took its name; remove it with tern cluster remove-node and add a new node under a new name with --join",
			peer.Cluster, peer.Node, n.drawn, d)
	}
	return ""
}

// checkIdentities asks every connected peer for its identity and returns
// the first refusal's reason (and peer id); peers found wrong are marked
// strangers, whose Raft messages are dropped.
func (n *Node) checkIdentities(ctx context.Context) (uint64, string) {
	body, _ := json.Marshal(n.selfIdentity())
	ts := n.tr.Stats()
	type bad struct {
		id     uint64
		reason string
	}
	var (
		mu    sync.Mutex
		found []bad
		wg    sync.WaitGroup
	)
	for _, m := range n.members() {
		if m.ID == n.cfg.Self.ID || !ts.Peers[m.ID].Connected {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			out, err := n.tr.Request(rctx, m.ID, kindIdentity, body)
			if err != nil {
				return // an older node, or not reachable now: asked again later
			}
			var peer identity
			if json.Unmarshal(out, &peer) != nil {
				return
			}
			if r := n.mismatch(peer); r != "" {
				mu.Lock()
				found = append(found, bad{m.ID, r})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(found, func(a, b bad) int { return strings.Compare(a.reason, b.reason) })
	for _, b := range found {
		n.markStranger(b.id, b.reason)
	}
	if len(found) == 0 {
		return 0, ""
	}
	return found[0].id, found[0].reason
}

// Peer verdicts of the Raft gate (peerGate).
const (
	peerUnchecked = iota
	peerOK
	peerStranger
)

// idState is the gate's table, replaced whole on every change (copy on
// write: HandleRaft reads it on every message batch).
type idState struct {
	verdict    map[uint64]int
	reconnects map[uint64]uint64 // the peer's transport reconnects when it was checked
}

// peerGate says whether Raft messages from id may pass: a peer is checked
// once per connection before its messages reach a group, so a node of
// another cluster never gets a vote or an append in. The first messages
// of a new connection are dropped while the check runs (Raft resends).
func (n *Node) peerGate(id uint64) bool {
	st := n.ids.Load()
	if st != nil && st.verdict[id] == peerOK {
		return true
	}
	if st == nil || st.verdict[id] != peerStranger {
		select {
		case n.verify <- id:
		default:
		}
	}
	return false
}

func (n *Node) setVerdict(id uint64, v int, reconnects uint64) {
	n.idmu.Lock()
	defer n.idmu.Unlock()
	old := n.ids.Load()
	st := &idState{verdict: map[uint64]int{}, reconnects: map[uint64]uint64{}}
	if old != nil {
		st.verdict = maps.Clone(old.verdict)
		st.reconnects = maps.Clone(old.reconnects)
	}
	if st.verdict[id] == peerStranger && v != peerStranger {
		return // a refusal stands for this process's life
	}
	st.verdict[id], st.reconnects[id] = v, reconnects
	n.ids.Store(st)
}

// markStranger refuses a peer (its Raft messages are dropped from now on),
// logs it once and keeps the first reason for Start.
func (n *Node) markStranger(id uint64, reason string) {
	if st := n.ids.Load(); st != nil && st.verdict[id] == peerStranger {
		return
	}
	n.setVerdict(id, peerStranger, 0)
	n.refused.CompareAndSwap(nil, &reason)
	n.log.Error("refusing a peer of another cluster: its Raft messages are dropped", "node", n.memberName(id), "reason", reason)
}

// verifyPeers runs the gate's checks, one peer at a time, as peerGate asks
// for them, until the node closes.
func (n *Node) verifyPeers() {
	defer n.wg.Done()
	last := map[uint64]time.Time{}
	for {
		var id uint64
		select {
		case <-n.stop:
			return
		case id = <-n.verify:
		}
		if st := n.ids.Load(); st != nil && st.verdict[id] != peerUnchecked {
			continue
		}
		if time.Since(last[id]) < 200*time.Millisecond {
			continue
		}
		last[id] = time.Now()
		n.verifyPeer(id)
	}
}

// verifyPeer asks one peer for its identity and records the verdict.
func (n *Node) verifyPeer(id uint64) {
	reconnects := n.tr.Stats().Peers[id].Reconnects
	body, _ := json.Marshal(n.selfIdentity())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	out, err := n.tr.Request(ctx, id, kindIdentity, body)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			// The peer answered with an error: a version without
			// identities. Nothing can be checked; let it in.
			n.log.Debug("a peer does not answer identity requests", "node", n.memberName(id), "err", err)
			n.setVerdict(id, peerOK, reconnects)
		}
		return
	}
	var peer identity
	if err := json.Unmarshal(out, &peer); err != nil {
		return
	}
	if r := n.mismatch(peer); r != "" {
		n.markStranger(id, r)
		return
	}
	n.setVerdict(id, peerOK, reconnects)
}

// forgetReconnected sends peers whose connection was re-established
// since their check back through the gate: the process behind the address
// may be another one now.
func (n *Node) forgetReconnected() {
	st := n.ids.Load()
	if st == nil {
		return
	}
	ts := n.tr.Stats()
	for id, v := range st.verdict {
		if v == peerOK && ts.Peers[id].Reconnects != st.reconnects[id] {
			n.setVerdict(id, peerUnchecked, 0)
		}
	}
}

// refusal is the first peer refusal's reason, or "".
func (n *Node) refusal() string {
	if r := n.refused.Load(); r != nil {
		return *r
	}
	return ""
}

// watchIdentities checks the peers' identities every identityEvery until
// the node closes.
func (n *Node) watchIdentities() {
	defer n.wg.Done()
	t := time.NewTicker(identityEvery)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.forgetReconnected()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n.checkIdentities(ctx)
		cancel()
	}
}

// checkWhileStarting checks the peers' identities every half second while
// Start runs, and ends Start when one is refused.
func (n *Node) checkWhileStarting(ctx context.Context, cancel context.CancelCauseFunc) {
	defer n.wg.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	refusedRounds := 0
	for i := 0; ; i++ {
		if _, r := n.checkIdentities(ctx); r != "" {
			cancel(errors.New(r))
			return
		}
		if i >= 4 && i%4 == 0 { // from 2 s on, every 2 s: lower peers that are up have dialed by then
			n.probeLowerPeers(ctx) // removed_notice.go
			n.warnNotMember()      // not_member.go
			if names := n.refusedByEveryReachable(); len(names) > 0 && !n.cfg.Join {
				if refusedRounds++; refusedRounds >= notAMemberRounds {
					cancel(errNotAMember{n.notMemberHint(names)})
					return
				}
			} else {
				refusedRounds = 0
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-n.stop:
			return
		case <-n.Removed():
			cancel(n.RemovedError())
			return
		case <-t.C:
		}
	}
}

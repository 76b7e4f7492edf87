package broker

import (
	"cmp"
	"slices"
)

// A quorum queue's backend is its group's replicated machine: it hands
// the group the machine's snapshot and, given one, restores the machine
// and reconciles this node's consumers with it (what they were given
// against what the snapshot says they hold). The snapshot's encoding is
// quorum_snapshot.go's.

// Snapshot implements ReplicatedMachine.
func (b *quorumBackend) Snapshot() ([]byte, error) {
	return b.AppendSnapshot(nil)
}

// AppendSnapshot appends the snapshot to dst: the cluster's group passes
// a buffer holding its own version byte, so the state (megabytes with a
// backlog) is not copied behind it afterwards.
func (b *quorumBackend) AppendSnapshot(dst []byte) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m.appendSnapshot(dst), nil
}

// Restore implements ReplicatedMachine. What this node's consumers were
// given and the snapshot no longer has them hold is forgotten; what the
// snapshot has them hold that this node never saw assigned (the entries
// the snapshot replaces) is delivered now.
func (b *quorumBackend) Restore(data []byte) error {
	b.mu.Lock()
	if err := b.m.Restore(data); err != nil {
		b.mu.Unlock()
		return err
	}
	b.reconcileLocked()
	for key, lc := range b.local {
		q := b.m.consumer(b.node, key)
		if q == nil {
			continue
		}
		known := map[uint64]bool{}
		for _, d := range lc.pending {
			known[d.id] = true
		}
		for _, m := range sortedOut(q) {
			id := m.id
			if _, held := lc.held[id]; !known[id] && !held {
				lc.pending = append(lc.pending, qdelivery{node: b.node, key: key, id: id, rec: m.rec,
					redelivered: m.redelivered(), count: m.count, acquired: m.acquired, remaining: b.m.ready.len()})
			}
		}
		slices.SortFunc(lc.pending, func(x, y qdelivery) int { return cmp.Compare(x.id, y.id) })
	}
	stale := b.staleRunLocked()
	down := b.localDownLocked()
	settle := b.deliverLocked()
	b.armExpiryLocked()
	b.armUnusedLocked()
	b.mu.Unlock()
	if len(settle) > 0 {
		b.soon(func() { b.proposeSettlement(qcSettleAt, 0, settle) })
	}
	if down {
		// The leader reported this node down in the entries the snapshot
		// replaces: Apply never saw the node-down, so ask for the
		// consumers back here, or they take nothing for good.
		b.soon(func() { b.proposeRetry(&qcmd{kind: qcNodeUp, target: b.node}, quorumRetryN, nil) })
	}
	if stale {
		// The snapshot holds consumers of an earlier run of this node
		// (it replaced the entries that would have told it at open):
		// they are gone, their messages must come back.
		b.soon(b.announceRun)
	}
	return nil
}

package broker

// StateSize is about the size of the queue's snapshot now (what
// appendSnapshot sizes its buffer to), in constant time: the cluster's
// Raft group asks it to decide when a snapshot is worth its cost
// (raftnode.StateSizer), so a queue that drained after a burst is
// snapshotted at its current size instead of keeping, in memory, the log
// of up to four times its peak backlog.
func (b *quorumBackend) StateSize() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m.stateSize()
}

func (m *quorumMachine) stateSize() uint64 {
	return uint64(128 + 34*len(m.consumers) + m.msgs.len()*(29+4+recordSlack) + int(m.msgBytes))
}

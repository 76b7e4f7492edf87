package cluster

import (
	"hash/fnv"
	"slices"
)

// Member is a node of the cluster.
type Member struct {
	// ID is the node's Raft replica id (config.NodeIDFor of its name).
	ID   uint64
	Name string
	// Addr is the node's cluster address (host:port).
	Addr string
	// Standby nodes are non-voting learners in every group.
	Standby bool
}

// MetadataGroup is the Raft group every node applies definitions from.
const MetadataGroup uint64 = 0

// heartbeatGroup is the group id raftnode reserves for its node-wide
// heartbeats (raftnode.NodeHeartbeatGroup; node.go checks they agree).
const heartbeatGroup = ^uint64(0)

// QuorumGroupID is the Raft group of the quorum queue whose stable id
// (broker.QueueDef.ID, which never changes for the queue's life) is
// queueID: the FNV-64a hash of "quorum/" and the id, so every node derives
// the same group from the definition alone. A hash that is a reserved id
// (0, the metadata group; 2^64-1, raftnode's node heartbeats) is moved to
// 1.
func QuorumGroupID(queueID string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("quorum/" + queueID))
	if g := h.Sum64(); g != MetadataGroup && g != heartbeatGroup {
		return g
	}
	return 1
}

// DefaultQuorumSize is x-quorum-initial-group-size's default, RabbitMQ's.
const DefaultQuorumSize = 3

// Placement chooses the voters of a quorum queue's group: size of the
// voting members (capped at their count, at least 1), starting at a
// position the queue id hashes to in the members sorted by id, so queues
// spread their voters — and, as the first voter campaigns first (see
// Node.preferredLeader), their leaders — across the nodes. Every other member
// (the voters left out, and standby nodes) is a learner: every node hosts
// every quorum queue, so consumers on any node are served from its local
// replica. The result depends only on its arguments, so every node
// computes the same placement.
func Placement(queueID string, members []Member, size int) (voters, learners []uint64) {
	var candidates []uint64
	for _, m := range members {
		if m.Standby {
			learners = append(learners, m.ID)
		} else {
			candidates = append(candidates, m.ID)
		}
	}
	slices.Sort(candidates)
	if size <= 0 {
		size = DefaultQuorumSize
	}
	size = min(size, len(candidates))
	if len(candidates) == 0 {
		return nil, learners
	}
	start := placementStart(queueID, len(candidates))
	for i := range candidates {
		id := candidates[(start+i)%len(candidates)]
		if i < size {
			voters = append(voters, id)
		} else {
			learners = append(learners, id)
		}
	}
	slices.Sort(learners)
	return voters, learners
}

// placementStart is the position among n candidates at which Placement
// starts the voters of queueID: its first voter, the preferred leader.
func placementStart(queueID string, n int) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(queueID))
	return int(h.Sum64() % uint64(n))
}

// localQueueID returns a fresh queue id (broker.NewQueueID) whose
// placement among members starts at self, so self is the queue's
// preferred leader; a random one when self is not a voting member. Each
// try succeeds with probability 1/candidates: 64 per candidate fail with
// a probability below e^-64.
func localQueueID(self uint64, members []Member, newID func() string) string {
	var candidates []uint64
	for _, m := range members {
		if !m.Standby {
			candidates = append(candidates, m.ID)
		}
	}
	slices.Sort(candidates)
	at := slices.Index(candidates, self)
	if at < 0 {
		return newID()
	}
	for range 64 * len(candidates) {
		if id := newID(); placementStart(id, len(candidates)) == at {
			return id
		}
	}
	return newID()
}

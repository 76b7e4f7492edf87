package raftnode

import (
	"context"
	"log/slog"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport"
)

// NodeID names a node: its replica id in every group.
type NodeID = transport.NodeID

// RequestHandler answers the transport's forwarding traffic; the Host
// passes HandleRequest and HandleNotify to it (Raft messages it routes
// itself).
type RequestHandler interface {
	HandleRequest(ctx context.Context, from NodeID, kind uint8, body []byte) ([]byte, error)
	HandleNotify(from NodeID, kind uint8, body []byte)
}

// HostConfig configures a Host. Zero fields take the defaults noted.
type HostConfig struct {
	ID        NodeID              // this node's replica id in every group; not 0
	Transport transport.Transport // sends to peers
	Clock     clock.Clock         // ticks and proposal timeouts; default the system clock
	Logger    *slog.Logger        // default slog.Default()
	// NodeName and GroupName, when set, name a replica and a group in the
	// log lines an operator reads (a leader change), beside their ids:
	// the cluster's member names and its queues, as /api/cluster shows
	// them.
	NodeName  func(NodeID) string
	GroupName func(group uint64) string

	TickInterval    time.Duration // default 100 ms
	ElectionTicks   int           // default 10
	HeartbeatTicks  int           // default 1
	ProposalTimeout time.Duration // default 5 s

	// SnapshotEntries is how many applied entries trigger a snapshot
	// (default 10,000); SnapshotSlack is how many entries before the
	// snapshot stay in the log so a follower slightly behind catches up
	// from the log, not a snapshot (default SnapshotEntries/10).
	SnapshotEntries uint64
	SnapshotSlack   uint64
	// SnapshotBytes is how many bytes of applied entries trigger a
	// snapshot before SnapshotEntries do (default 16 MiB): batch entries
	// (batch.go) hold many proposals each, and the log between two
	// snapshots lives in memory. A snapshot it triggers keeps a tenth of
	// the entries since the last one (at most SnapshotSlack).
	// The bytes trigger also waits for snapshotRatio (4) times the size
	// of the state (StateSizer, else the last snapshot; snapshot.go), so
	// a large state is not copied again every SnapshotBytes.
	SnapshotBytes uint64

	// MaxSizePerMsg bounds one append message's entries (default 1 MiB);
	// MaxInflightMsgs the appends in flight per follower (default 256).
	MaxSizePerMsg   uint64
	MaxInflightMsgs int
	// MaxUncommittedBytes bounds the entries a leader holds uncommitted
	// (default 64 MiB): beyond it Raft refuses proposals, which wait and
	// are proposed again each tick until they time out — backpressure
	// for a leader that lost its quorum, instead of unbounded memory.
	MaxUncommittedBytes uint64
	// MaxQueuedProposalBytes bounds the proposals waiting for a group's
	// goroutine (default 16 MiB): while it is held up (a hung fsync)
	// further proposals fail at once with ErrBusy rather than pile up.
	MaxQueuedProposalBytes int

	// QuiesceTicks is how many ticks a leader's group stays idle before it
	// goes quiet (default 2 × ElectionTicks); DisableQuiesce keeps every
	// group ticking and stops the node heartbeats.
	QuiesceTicks   int
	DisableQuiesce bool

	// NewStorage opens (or creates) a group's durable state; the node
	// passes its WAL's, tests NewMemoryStorage's.
	NewStorage func(group uint64) Storage

	// Requests receives the transport's forwarding requests and one-way
	// messages; nil refuses them.
	Requests RequestHandler
}

func (c *HostConfig) setDefaults() {
	c.Clock = clock.Or(c.Clock)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = 1
	}
	if c.ProposalTimeout <= 0 {
		c.ProposalTimeout = 5 * time.Second
	}
	if c.QuiesceTicks <= 0 {
		c.QuiesceTicks = 2 * c.ElectionTicks
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = 10000
	}
	if c.SnapshotSlack == 0 {
		c.SnapshotSlack = c.SnapshotEntries / 10
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = 16 << 20
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = 1 << 20
	}
	if c.MaxUncommittedBytes == 0 {
		c.MaxUncommittedBytes = 64 << 20
	}
	if c.MaxQueuedProposalBytes <= 0 {
		c.MaxQueuedProposalBytes = 16 << 20
	}
	if c.MaxInflightMsgs <= 0 {
		c.MaxInflightMsgs = 256
	}
}

// proposalTicks is the proposal timeout in ticks (at least one).
func (c *HostConfig) proposalTicks() uint64 {
	return uint64(max(1, (c.ProposalTimeout+c.TickInterval-1)/c.TickInterval))
}

package chaos

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
)

// Fault kinds.
const (
	FaultKill      = "kill"      // kill -9, down for DurationMS, restart
	FaultTornTail  = "torn-tail" // kill -9, cut or extend the newest segment while down, restart
	FaultPause     = "pause"     // SIGSTOP for DurationMS, SIGCONT
	FaultDiskFull  = "disk-full" // a ballast file leaves FreeBytes free for DurationMS
	FaultPartition = "partition" // nft drop rules between node addresses (3 or 5 nodes)
	FaultLoss      = "loss"      // nft random drop on one link (3 or 5 nodes)
	// FaultKillLeader is a kill -9 of whichever node leads the workload's
	// quorum queue when the fault starts (GET /api/cluster); the fault's
	// history line names that node. 3 or 5 nodes.
	FaultKillLeader = "kill-leader"
	// FaultKillAll is a kill -9 of every node at once (a whole-cluster
	// crash), all restarted together after DurationMS: every replica
	// rebuilds its queue from its own write-ahead log. 3 or 5 nodes.
	FaultKillAll = "kill-all"
	// FaultBandwidth limits one link between two nodes, both directions,
	// to RateKbit (tc htb on lo, u32 filters on the address pair). 3 or 5
	// nodes. Skipped, with the reason recorded, where the kernel lacks htb
	// or u32.
	FaultBandwidth = "bandwidth"
	// FaultDelay delays every cluster frame between two nodes, both
	// directions, by DelayMS (a hook in the cluster transport; the nodes
	// must run a binary built with -tags chaos, else the fault is skipped
	// with that reason). 3 or 5 nodes.
	FaultDelay = "delay"
	// FaultClockSkew moves one node's broker clock (internal/clock) by
	// SkewMS, forward or back, for DurationMS: a hook behind -tags chaos,
	// skipped with that reason otherwise.
	FaultClockSkew = "clock-skew"
)

// hookFaults need the nodes' binary built with -tags chaos.
var hookFaults = []string{FaultDelay, FaultClockSkew}

// singleNodeFaults are the kinds that need no peer.
var singleNodeFaults = []string{FaultKill, FaultTornTail, FaultPause, FaultDiskFull}

// clusterFaults are the kinds a 3- or 5-node run draws from. Torn tails
// and full disks are left out: a quorum queue's messages live in the Raft
// WAL, and cutting an fsynced WAL record breaks Raft's own assumption (an
// acknowledged entry stays on disk) instead of testing Tern; a full disk
// under the WAL is not covered yet.
var clusterFaults = []string{FaultKill, FaultKillLeader, FaultKillAll, FaultPause, FaultPartition, FaultLoss, FaultBandwidth, FaultDelay, FaultClockSkew}

// singleNodeLongFaults is the long profile's list on one node: the ci
// list (kept as it was, so the CI seeds keep their schedules) plus a
// clock skew.
var singleNodeLongFaults = []string{FaultKill, FaultTornTail, FaultPause, FaultDiskFull, FaultClockSkew}

// clusterCIFaults is the ci profile's list on 3 or 5 nodes (seed-ordered):
// two partitions, because there are several kinds of them.
var clusterCIFaults = []string{FaultKill, FaultKillLeader, FaultKillAll, FaultPause, FaultPartition, FaultPartition, FaultLoss, FaultBandwidth, FaultDelay, FaultClockSkew}

// Fault is one scheduled fault.
type Fault struct {
	AtMS       int64  `json:"at_ms"` // from the workload's start; a fault never starts before the last one healed
	Kind       string `json:"kind"`
	Node       int    `json:"node"`        // target, from 1 (partition: the isolated node or the one-way source)
	DurationMS int64  `json:"duration_ms"` // down, paused, full, partitioned
	// TornBytes is how many bytes a torn tail cuts from the newest segment
	// (at most the last record, so only one record is torn) or appends.
	TornBytes int  `json:"torn_bytes,omitempty"`
	Garbage   bool `json:"garbage,omitempty"` // torn-tail: append garbage instead of cutting
	// FreeBytes is the space the disk-full ballast leaves: 0 makes writes
	// fail with ENOSPC; less than half the disk_free_limit makes the store
	// refuse messages; less than the limit raises the alarm.
	FreeBytes   int64  `json:"free_bytes,omitempty"`
	Partition   string `json:"partition,omitempty"` // isolate, halves, ring, one-way
	Peer        int    `json:"peer,omitempty"`      // one-way and loss: the other end
	LossPercent int    `json:"loss_percent,omitempty"`
	// RateKbit is a bandwidth fault's limit per direction, kbit/s.
	RateKbit int `json:"rate_kbit,omitempty"`
	// DelayMS is a delay fault's added latency per direction.
	DelayMS int `json:"delay_ms,omitempty"`
	// SkewMS is a clock-skew fault's offset (negative: back in time).
	SkewMS int64 `json:"skew_ms,omitempty"`
}

// Schedule is schedule.json: everything a run does, from its seed.
type Schedule struct {
	Version    int     `json:"version"`
	Seed       uint64  `json:"seed"`
	Nodes      int     `json:"nodes"`
	Profile    string  `json:"profile"`
	WorkloadMS int64   `json:"workload_ms"`
	Faults     []Fault `json:"faults"`
	// NoMQTTQoS2 leaves the MQTT QoS 2 producer and subscriber out of a
	// one-node run (tern chaos run --mqtt-qos2=false), as CI did while
	// their exactly-once finding was open (docs/reliability.md, Findings);
	// CI runs them now.
	NoMQTTQoS2 bool `json:"no_mqtt_qos2,omitempty"`
}

// ErrSchedule wraps every schedule error.
var ErrSchedule = errors.New("chaos: bad schedule")

// Generate makes the schedule of a seed: the same seed, nodes and profile
// give the same schedule on every machine (math/rand/v2's PCG is specified).
func Generate(seed uint64, nodes int, profile string) (Schedule, error) {
	p, err := ProfileNamed(profile)
	if err != nil {
		return Schedule{}, err
	}
	if nodes != 1 && nodes != 3 && nodes != 5 {
		return Schedule{}, fmt.Errorf("%w: --nodes must be 1, 3 or 5, not %d", ErrSchedule, nodes)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x7465726e63686173)) // "ternchas"
	s := Schedule{Version: 1, Seed: seed, Nodes: nodes, Profile: profile, WorkloadMS: p.Workload.Milliseconds()}
	kinds := p.kinds(nodes, rng)
	// Faults are spread over the workload with a quiet start and end, each
	// in its own slot so a single node heals before the next one.
	slot := (s.WorkloadMS - 2*p.Quiet.Milliseconds()) / int64(max(len(kinds), 1))
	for i, kind := range kinds {
		f := Fault{Kind: kind, Node: 1 + rng.IntN(nodes)}
		maxDur := min(p.MaxFault.Milliseconds(), slot*2/3)
		f.DurationMS = 300 + rng.Int64N(max(maxDur-300, 1))
		f.AtMS = p.Quiet.Milliseconds() + int64(i)*slot + rng.Int64N(max(slot-f.DurationMS, 1))
		switch kind {
		case FaultTornTail:
			f.Garbage = rng.IntN(2) == 0
			f.TornBytes = 1 + rng.IntN(600)
		case FaultDiskFull:
			f.FreeBytes = []int64{0, p.DiskFreeLimit / 4, p.DiskFreeLimit * 3 / 4}[rng.IntN(3)]
		case FaultPartition:
			f.Partition = partitionKinds(nodes)[rng.IntN(len(partitionKinds(nodes)))]
			if f.Partition == PartitionOneWay {
				f.Peer = otherNode(rng, nodes, f.Node)
			}
		case FaultLoss:
			f.Peer = otherNode(rng, nodes, f.Node)
			f.LossPercent = 5 + rng.IntN(46)
		case FaultBandwidth:
			f.Peer = otherNode(rng, nodes, f.Node)
			f.RateKbit = 64 + rng.IntN(1985) // 64 kbit/s to 2 Mbit/s
		case FaultDelay:
			f.Peer = otherNode(rng, nodes, f.Node)
			f.DelayMS = 10 + rng.IntN(491) // up to half the election timeout
		case FaultClockSkew:
			f.SkewMS = 1000 + rng.Int64N(59_000)
			if rng.IntN(2) == 0 {
				f.SkewMS = -f.SkewMS
			}
		}
		s.Faults = append(s.Faults, f)
	}
	return s, s.Validate()
}

func otherNode(rng *rand.Rand, nodes, not int) int {
	n := 1 + rng.IntN(nodes-1)
	if n >= not {
		n++
	}
	return n
}

// Validate checks what a hand-edited or damaged schedule file could get wrong.
func (s Schedule) Validate() error {
	if s.Version != 1 {
		return fmt.Errorf("%w: version %d (this tern reads version 1)", ErrSchedule, s.Version)
	}
	if s.Nodes != 1 && s.Nodes != 3 && s.Nodes != 5 {
		return fmt.Errorf("%w: nodes %d (1, 3 or 5)", ErrSchedule, s.Nodes)
	}
	if _, err := ProfileNamed(s.Profile); err != nil {
		return err
	}
	if s.WorkloadMS <= 0 || s.WorkloadMS > 24*3600*1000 {
		return fmt.Errorf("%w: workload_ms %d", ErrSchedule, s.WorkloadMS)
	}
	for i, f := range s.Faults {
		bad := func(why string) error { return fmt.Errorf("%w: fault %d (%s): %s", ErrSchedule, i, f.Kind, why) }
		switch f.Kind {
		case FaultKill, FaultTornTail, FaultPause, FaultDiskFull:
		case FaultKillLeader, FaultKillAll:
			if s.Nodes == 1 {
				return bad("needs 3 or 5 nodes")
			}
		case FaultPartition:
			if s.Nodes == 1 {
				return bad("needs 3 or 5 nodes")
			}
			if !slices.Contains(partitionKinds(s.Nodes), f.Partition) {
				return bad(fmt.Sprintf("unknown partition %q for %d nodes", f.Partition, s.Nodes))
			}
		case FaultLoss:
			if s.Nodes == 1 {
				return bad("needs 3 or 5 nodes")
			}
			if f.LossPercent < 1 || f.LossPercent > 100 {
				return bad("loss_percent must be 1..100")
			}
		case FaultBandwidth:
			if s.Nodes == 1 {
				return bad("needs 3 or 5 nodes")
			}
			if f.RateKbit < 8 || f.RateKbit > 10_000_000 {
				return bad("rate_kbit must be 8..10000000")
			}
		case FaultDelay:
			if s.Nodes == 1 {
				return bad("needs 3 or 5 nodes")
			}
			if f.DelayMS < 1 || f.DelayMS > 60_000 {
				return bad("delay_ms must be 1..60000")
			}
		case FaultClockSkew:
			if f.SkewMS == 0 || f.SkewMS < -86_400_000 || f.SkewMS > 86_400_000 {
				return bad("skew_ms must be non-zero, within a day")
			}
		default:
			return bad("unknown fault kind")
		}
		if f.Node < 1 || f.Node > s.Nodes {
			return bad(fmt.Sprintf("node %d of %d", f.Node, s.Nodes))
		}
		if (f.Kind == FaultLoss || f.Kind == FaultBandwidth || f.Kind == FaultDelay || f.Partition == PartitionOneWay) && (f.Peer < 1 || f.Peer > s.Nodes || f.Peer == f.Node) {
			return bad(fmt.Sprintf("peer %d", f.Peer))
		}
		if f.AtMS < 0 || f.AtMS > s.WorkloadMS || f.DurationMS <= 0 || f.DurationMS > 600_000 {
			return bad(fmt.Sprintf("at_ms %d, duration_ms %d", f.AtMS, f.DurationMS))
		}
		if f.TornBytes < 0 || f.TornBytes > 1<<20 || f.FreeBytes < 0 {
			return bad("torn_bytes or free_bytes out of range")
		}
	}
	return nil
}

// Save writes the schedule as indented JSON.
func (s Schedule) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// LoadSchedule reads and validates a schedule file.
func LoadSchedule(path string) (Schedule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Schedule{}, fmt.Errorf("%w: %v", ErrSchedule, err)
	}
	return ParseSchedule(b)
}

// ParseSchedule decodes and validates a schedule; unknown fields are errors.
func ParseSchedule(b []byte) (Schedule, error) {
	var s Schedule
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Schedule{}, fmt.Errorf("%w: %v", ErrSchedule, err)
	}
	return s, s.Validate()
}

package chaos

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"time"
)

// Profile sizes a run.
type Profile struct {
	Name     string
	Workload time.Duration // producers run this long
	Quiet    time.Duration // no fault in the first and last Quiet of the workload
	MaxFault time.Duration // longest down/pause/full time
	Faults   int           // faults in the long profile (ci: one of each single-node kind)
	// Rates per producer, messages per second.
	AMQPRate, StreamRate, MQTTRate int
	AMQPProducers                  int
	Window                         int           // unconfirmed AMQP publishes per producer
	ConfirmTimeout                 time.Duration // a publish unconfirmed this long makes its producer reconnect
	RecoverDeadline                time.Duration // fault healed → first confirm
	DrainDeadline                  time.Duration // workload over → every confirmed message delivered
	DiskSize                       int64         // the node's tmpfs
	DiskFreeLimit                  int64         // the node's disk_free_limit
}

var profiles = map[string]Profile{
	"ci": {
		Name: "ci", Workload: 36 * time.Second, Quiet: 3 * time.Second, MaxFault: 3 * time.Second,
		AMQPRate: 60, StreamRate: 40, MQTTRate: 30, AMQPProducers: 2, Window: 8,
		ConfirmTimeout: 15 * time.Second, RecoverDeadline: 20 * time.Second, DrainDeadline: 20 * time.Second,
		DiskSize: 48 << 20, DiskFreeLimit: 8 << 20,
	},
	"long": {
		Name: "long", Workload: 5 * time.Minute, Quiet: 5 * time.Second, MaxFault: 8 * time.Second, Faults: 24,
		AMQPRate: 150, StreamRate: 100, MQTTRate: 60, AMQPProducers: 3, Window: 16,
		ConfirmTimeout: 20 * time.Second, RecoverDeadline: 30 * time.Second, DrainDeadline: 60 * time.Second,
		DiskSize: 96 << 20, DiskFreeLimit: 8 << 20,
	},
}

// ProfileNamed returns a profile by name.
func ProfileNamed(name string) (Profile, error) {
	p, ok := profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("%w: unknown profile %q (ci or long)", ErrSchedule, name)
	}
	return p, nil
}

// kinds lists the run's faults in order. ci: each single-node kind once,
// in a seed-chosen order (3 or 5 nodes: clusterCIFaults); long: Faults
// kinds drawn from the seed (3 or 5 nodes: from clusterFaults).
func (p Profile) kinds(nodes int, rng *rand.Rand) []string {
	all := append([]string(nil), singleNodeFaults...)
	if nodes == 1 && p.Faults > 0 {
		all = append([]string(nil), singleNodeLongFaults...)
	}
	if nodes > 1 {
		all = append([]string(nil), clusterFaults...)
		if p.Faults == 0 {
			all = append([]string(nil), clusterCIFaults...)
		}
	}
	if p.Faults == 0 {
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		return all
	}
	out := make([]string, p.Faults)
	for i := range out {
		out[i] = all[rng.IntN(len(all))]
	}
	return out
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

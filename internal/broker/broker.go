package broker

import (
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/flow"
)

// Config is the broker core's configuration.
type Config struct {
	// MemoryHighWatermark is the memory of queued messages (bodies plus
	// their measured per-message cost, see memory.go) above which
	// publishers are blocked until it falls below 90% of it again, the
	// alarm having been on for at least a second; 0 disables the alarm.
	MemoryHighWatermark int64
	// QueueMemoryLimit is how many body bytes of ready persistent messages
	// a durable queue keeps in memory; past it bodies stay in the log until
	// due (RabbitMQ's lazy behaviour). Default 4 MiB.
	QueueMemoryLimit int64
	// Storage keeps durable queues and definitions; nil keeps everything
	// in memory.
	Storage Storage
	// Delayed keeps the persistent messages of durable delayed-message
	// exchanges; nil keeps them in memory. See RestoreDelayed.
	Delayed DelayedLog
	Logger  *slog.Logger
	// Clock is the broker's one time source (nil: the system clock): the
	// memory alarm's hold, delayed delivery, publish rate limits and the
	// publish time stamped on messages. Tests inject a clock.Fake.
	Clock clock.Clock
	// Replication joins the broker to a cluster (replication.go); the
	// zero value is the single node.
	Replication Replication
	// Users holds the users, permissions and limits the security commands
	// change (security.go); nil: a new empty store.
	Users *auth.Store
}

// Broker is the root of the core: the virtual hosts and node-wide state.
type Broker struct {
	cfg    Config
	log    *slog.Logger
	mu     sync.Mutex
	vhosts map[string]*VHost

	snapMu      sync.Mutex  // one definitions snapshot at a time
	meta        metaWaiters // cluster: this node's proposals awaiting their application (meta.go)
	stats       counters
	activity    activity     // queues whose rates moved, for the management API's sampler (queue_activity.go)
	queuedBytes atomic.Int64 // accounted memory of queued messages
	memPeak     atomic.Int64 // highest queuedBytes since the last release to the OS
	release     memRelease
	memoryAlarm *flow.Alarm
	memTrigger  *flow.Trigger
	diskAlarm   *flow.Alarm
	limits      *flow.Limiter
	users       *auth.Store
	userClosers userClosers // security.go
}

// New returns a broker with the default vhost "/".
func New(cfg Config) *Broker {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.QueueMemoryLimit <= 0 {
		cfg.QueueMemoryLimit = 4 << 20
	}
	cfg.Clock = clock.Or(cfg.Clock)
	b := &Broker{cfg: cfg, log: cfg.Logger, vhosts: map[string]*VHost{}, memoryAlarm: flow.NewAlarm("memory"), diskAlarm: flow.NewAlarm("disk"), limits: flow.NewLimiter(cfg.Clock)}
	b.users = cfg.Users
	if b.users == nil {
		b.users = auth.NewStore()
	}
	b.memTrigger = b.newMemoryTrigger(cfg.Clock)
	b.vhosts["/"] = newVHost(b, "/")
	return b
}

// Clock is the broker's time source (Config.Clock): protocol adapters
// stamp publish times and time their expiries by it.
func (b *Broker) Clock() clock.Clock { return b.cfg.Clock }

// VHost returns the named vhost, or nil.
func (b *Broker) VHost(name string) *VHost {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.vhosts[name]
}

// AddVHost creates a vhost if it does not exist and returns it; a new one
// is a durable AddVHost command. A failure to store it is logged: the
// vhost exists until the restart.
func (b *Broker) AddVHost(name string) *VHost {
	if b.clustered() {
		return b.addVHostReplicated(name)
	}
	v, err := b.addVHost(name, false)
	if err != nil {
		b.log.Error("storing a new vhost failed", "vhost", name, "err", err)
	}
	return v
}

// addVHost applies AddVHost, logging it unless replaying, and waits until
// it is durable.
func (b *Broker) addVHost(name string, replay bool) (*VHost, error) {
	b.mu.Lock()
	if v, ok := b.vhosts[name]; ok {
		b.mu.Unlock()
		return v, nil
	}
	v := newVHost(b, name)
	b.vhosts[name] = v
	fx := &effects{replay: replay}
	v.logLocked(AddVHost{Name: name}, fx) // under b.mu: ordered before the vhost's commands
	b.mu.Unlock()
	return v, v.finish(fx)
}

// VHosts lists the vhosts by name.
func (b *Broker) VHosts() []*VHost {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*VHost, 0, len(b.vhosts))
	for _, v := range b.vhosts {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// MemoryAlarm is on while queued messages take more memory than the high
// watermark (with hysteresis, see memory.go).
func (b *Broker) MemoryAlarm() *flow.Alarm { return b.memoryAlarm }

// DiskAlarm is on while the data directory's free space is below its limit;
// the server's disk monitor drives it.
func (b *Broker) DiskAlarm() *flow.Alarm { return b.diskAlarm }

// Limits are the node's publish rate limits; protocol adapters consult them
// before each publish and hold the publisher back as long as they say.
func (b *Broker) Limits() *flow.Limiter { return b.limits }

// Alarms lists the alarms that block publishers.
func (b *Broker) Alarms() []*flow.Alarm { return []*flow.Alarm{b.memoryAlarm, b.diskAlarm} }

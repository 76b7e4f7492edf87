package broker

import (
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/tern-broker/tern/internal/flow"
)

// Config is the broker core's configuration.
type Config struct {
	// MemoryHighWatermark is the number of message bytes held in queues
	// above which publishers are blocked until it falls below again; 0
	// disables the alarm.
	MemoryHighWatermark int64
	// QueueMemoryLimit is how many body bytes of ready persistent messages
	// a durable queue keeps in memory; past it bodies stay in the log until
	// due (RabbitMQ's lazy behaviour). Default 4 MiB.
	QueueMemoryLimit int64
	// Storage keeps durable queues and definitions; nil keeps everything
	// in memory.
	Storage Storage
	Logger  *slog.Logger
}

// Broker is the root of the core: the virtual hosts and node-wide state.
type Broker struct {
	cfg    Config
	log    *slog.Logger
	mu     sync.Mutex
	vhosts map[string]*VHost

	defsMu      sync.Mutex // serialises definition saves
	stats       counters
	queuedBytes atomic.Int64
	memoryAlarm *flow.Alarm
	diskAlarm   *flow.Alarm
	limits      *flow.Limiter
}

// New returns a broker with the default vhost "/".
func New(cfg Config) *Broker {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.QueueMemoryLimit <= 0 {
		cfg.QueueMemoryLimit = 4 << 20
	}
	b := &Broker{cfg: cfg, log: cfg.Logger, vhosts: map[string]*VHost{}, memoryAlarm: flow.NewAlarm("memory"), diskAlarm: flow.NewAlarm("disk"), limits: flow.NewLimiter()}
	b.vhosts["/"] = newVHost(b, "/")
	return b
}

// VHost returns the named vhost, or nil.
func (b *Broker) VHost(name string) *VHost {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.vhosts[name]
}

// AddVHost creates a vhost if it does not exist and returns it.
func (b *Broker) AddVHost(name string) *VHost {
	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.vhosts[name]; ok {
		return v
	}
	v := newVHost(b, name)
	b.vhosts[name] = v
	return v
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

// MemoryAlarm is on while queued message bytes exceed the high watermark.
func (b *Broker) MemoryAlarm() *flow.Alarm { return b.memoryAlarm }

// DiskAlarm is on while the data directory's free space is below its limit;
// the server's disk monitor drives it.
func (b *Broker) DiskAlarm() *flow.Alarm { return b.diskAlarm }

// Limits are the node's publish rate limits; protocol adapters consult them
// before each publish and hold the publisher back as long as they say.
func (b *Broker) Limits() *flow.Limiter { return b.limits }

// Alarms lists the alarms that block publishers.
func (b *Broker) Alarms() []*flow.Alarm { return []*flow.Alarm{b.memoryAlarm, b.diskAlarm} }

// accountBytes tracks the body bytes held by queues and drives the memory
// alarm.
func (b *Broker) accountBytes(delta int64) {
	n := b.queuedBytes.Add(delta)
	if w := b.cfg.MemoryHighWatermark; w > 0 {
		if on := n > w; on != b.memoryAlarm.Active() {
			if on {
				b.log.Warn("memory alarm set: queued message bytes above the high watermark", "bytes", n, "watermark", w)
			} else {
				b.log.Info("memory alarm cleared", "bytes", n, "watermark", w)
			}
			b.memoryAlarm.Set(on)
		}
	}
}

package broker

import (
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/flow"
)

// What a queued message costs. The memory alarm counts this, not the body
// alone, so memory_high_watermark (by default 40% of RAM) bounds the
// process's memory, not just its bodies.
//
// Measured with the real binary (cmd/tern TestQueuedMessageCostMatchesRSS
// and the M_N measurement there): the resident set grew by 439 bytes per
// message for 1M transient 64-byte messages and by 1,530 bytes per message
// for 300k 1 KiB messages — about 1.14 × body + 366 bytes (the Message,
// its properties and their wire form, the queue entry, and the heap's
// headroom between collections). A message whose body is paged out to the
// log still costs its queue entry and index entry: 262 bytes per message
// for 1M persistent 64-byte messages in a durable queue.
const (
	msgOverhead    = 360 // bytes beyond the body of a message held in memory
	pagedEntryCost = 250 // bytes of a message whose body stays on disk
)

// memCost is the accounted cost of a message whose body is in memory.
func memCost(body int64) int64 { return body + body/8 + msgOverhead }

// Memory alarm: on above the watermark, off again below 90% of it and
// after memoryAlarmHold, so a consumer draining a queue near the
// watermark while publishers wait does not flip the alarm (and every
// publisher's blocked state) hundreds of times a second.
const (
	memoryAlarmHold = time.Second
	memoryAlarmLow  = 90 // percent of the watermark
)

func (b *Broker) newMemoryTrigger(c clock.Clock) *flow.Trigger {
	t := flow.NewTrigger(b.memoryAlarm, b.queuedBytes.Load, c, memoryAlarmHold, func(on bool, level, high, low int64) {
		if on {
			b.log.Warn("memory alarm set: queued messages above the high watermark; blocking publishers", "bytes", level, "watermark", high)
		} else {
			b.log.Info("memory alarm cleared", "bytes", level, "watermark", high, "clear_below", low)
		}
	})
	if w := b.cfg.MemoryHighWatermark; w > 0 {
		t.SetThresholds(w, w/100*memoryAlarmLow)
	}
	return t
}

// bodyIn accounts a message body entering memory (published, or read back
// from the log); bodyOut one leaving it (settled, or paged out).
func (b *Broker) bodyIn(size int64)  { b.account(memCost(size)) }
func (b *Broker) bodyOut(size int64) { b.account(-memCost(size)) }

// pagedIn accounts n messages whose bodies stay on disk; pagedOut one
// leaving that state (read back, or settled).
func (b *Broker) pagedIn(n int) { b.account(int64(n) * pagedEntryCost) }
func (b *Broker) pagedOut()     { b.account(-pagedEntryCost) }

func (b *Broker) account(delta int64) {
	n := b.queuedBytes.Add(delta)
	if delta > 0 && n > b.memPeak.Load() {
		b.memPeak.Store(n) // racy maximum: an estimate is enough
	}
	b.memTrigger.Check()
}

// Returning memory to the OS: the Go runtime keeps freed heap for reuse
// and returns it only slowly, so after a large backlog drains the process
// would hold its peak for minutes. ReleaseMemory, called periodically by
// the server, forces the release once the accounted memory fell far below
// its peak.
const (
	releaseMinDrop  = 64 << 20         // at least this much drained since the peak
	releaseInterval = 30 * time.Second // at most one forced release per interval
)

// memRelease is the state of ReleaseMemory.
type memRelease struct {
	last atomic.Int64 // UnixNano of the last forced release
	free func()       // debug.FreeOSMemory; tests count calls instead
}

// ReleaseMemory returns freed memory to the OS (debug.FreeOSMemory, which
// collects and scavenges: tens of milliseconds for a large heap) when the
// accounted memory dropped by at least 64 MiB and to less than half of its
// peak since the last release, at most once every 30 s. It reports whether
// it did. Not for the hot path: the server calls it once a second.
func (b *Broker) ReleaseMemory(now time.Time) bool {
	cur, peak := b.queuedBytes.Load(), b.memPeak.Load()
	if peak-cur < releaseMinDrop || cur > peak/2 || now.UnixNano()-b.release.last.Load() < int64(releaseInterval) {
		return false
	}
	b.release.last.Store(now.UnixNano())
	b.memPeak.Store(cur)
	free := b.release.free
	if free == nil {
		free = debug.FreeOSMemory
	}
	free()
	b.log.Info("returned memory to the OS after a backlog drained", "peak_bytes", peak, "bytes", cur)
	return true
}

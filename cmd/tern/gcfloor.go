package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// The garbage collector's floor (issue 16: CPU per message). With Go's
// default (GOGC=100) a collection starts when the heap has grown by as
// much as was live after the last one, and at least to 4 MiB. An MQTT
// broker with few queued messages has a live heap of a few MiB, so a busy
// one collected several times a second: at 10,000 messages/s (about 1 KiB
// allocated per message) over five collections a second, each waking
// threads to mark, stopping the world twice, and leaving freed pages the
// scavenger then returned to the OS and the heap faulted in again. In a
// 100 → 1 fan-in that was 10–20 % of the broker's CPU per message
// (docs/performance.md).
//
// keepGCFloor lets the heap grow by at least gcFloor beyond what is live
// before a collection: after each collection it sets GOGC to
// gcFloor ÷ live heap (at least 100, Go's default, which it is again once
// the live heap exceeds gcFloor), so a small heap is collected every
// gcFloor of allocation and a large one as before. The price is at most
// gcFloor more resident memory. The memory alarm is unaffected: it counts
// queued messages, not the heap. GOGC or GOMEMLIMIT in the environment
// turn this off (the operator's choice stands).
const gcFloor = 32 << 20

// keepGCFloor starts adjusting GOGC after every collection, unless the
// environment sets it.
func keepGCFloor() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	f := &gcFloorState{sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}, percent: 100}
	f.adjust()
	f.arm()
}

type gcFloorState struct {
	sample  []metrics.Sample
	percent int
}

// gcSentinel is garbage from birth: its finalizer runs after the next
// collection, adjusts GOGC and arms a new one.
type gcSentinel struct{ f *gcFloorState }

func (f *gcFloorState) arm() {
	s := &gcSentinel{f: f}
	runtime.SetFinalizer(s, func(s *gcSentinel) {
		s.f.adjust()
		s.f.arm()
	})
}

func (f *gcFloorState) adjust() {
	metrics.Read(f.sample)
	var live uint64
	if f.sample[0].Value.Kind() == metrics.KindUint64 {
		live = f.sample[0].Value.Uint64()
	}
	p := gcPercentFor(live)
	// Small changes are not worth the heap lock: a tenth either way.
	if p != f.percent && (p*10 > f.percent*11 || p*11 < f.percent*10 || p == 100) {
		debug.SetGCPercent(p)
		f.percent = p
	}
}

// gcPercentFor is the GOGC that lets a heap of live bytes grow by gcFloor,
// at least 100. GOGC also scales the runtime's own minimum heap (4 MiB at
// 100), so it is capped where that minimum would pass gcFloor.
func gcPercentFor(live uint64) int {
	const maxPercent = gcFloor / (4 << 20) * 100
	if live == 0 {
		return maxPercent
	}
	p := uint64(gcFloor) * 100 / live
	return int(min(max(p, 100), maxPercent))
}

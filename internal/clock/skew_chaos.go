//go:build chaos

package clock

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ChaosHooks says whether this binary was built with -tags chaos.
const ChaosHooks = true

// ControlEnv names the directory `tern chaos` writes a node's fault
// settings to; this file reads clock_offset_ms there.
const ControlEnv = "TERN_CHAOS_CONTROL"

// skewFile holds the offset, in milliseconds (negative: back in time),
// that the default clock adds to the system time; absent or empty is 0.
const skewFile = "clock_offset_ms"

// skewNS is the current offset, read by every Now.
var skewNS atomic.Int64

func init() {
	if dir := os.Getenv(ControlEnv); dir != "" {
		go pollSkew(filepath.Join(dir, skewFile))
	}
}

// pollSkew rereads the offset file every 20 ms for the process's life
// (the chaos build only; a node is killed or stopped at the run's end).
func pollSkew(path string) {
	for {
		loadSkew(path)
		time.Sleep(20 * time.Millisecond)
	}
}

// loadSkew sets the offset from path and says on stderr (the node's log)
// when it changes, so a run shows the fault took effect.
func loadSkew(path string) {
	var ms int64
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		if ms, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil {
			fmt.Fprintf(os.Stderr, "chaos hook: %s: %v\n", path, err)
			return
		}
	}
	ns := ms * int64(time.Millisecond)
	if skewNS.Swap(ns) != ns {
		fmt.Fprintf(os.Stderr, "chaos hook: broker clock offset now %d ms\n", ms)
	}
}

// skewed is the system clock plus the offset. The offset moves the
// monotonic reading too, so a duration measured across a change sees the
// jump: harsher than an NTP step, which Go's monotonic clock hides.
// Timers (AfterFunc, Sleep) are relative and do not move.
type skewed struct{ System }

// Now implements Clock.
func (skewed) Now() time.Time { return time.Now().Add(time.Duration(skewNS.Load())) }

func defaultClock() Clock { return skewed{} }

package clustertest

import (
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// BenchmarkIdleGroups starts 1,000 groups on 3 in-process nodes at the
// real 100 ms tick, waits until they are idle, then measures the process's
// CPU time per second of real time (each b.N is one second) and the heap
// per replica. With quiescence the idle groups tick nothing; the
// "ticking" variant disables it for comparison.
func BenchmarkIdleGroups(b *testing.B) {
	for _, quiesce := range []bool{true, false} {
		name := "quiet"
		if !quiesce {
			name = "ticking"
		}
		b.Run(name, func(b *testing.B) { idleGroups(b, quiesce) })
	}
}

func idleGroups(b *testing.B, quiesce bool) {
	const groups = 1000
	c := New(b, 3, Options{LogLevel: slog.LevelWarn, TickEvery: 100 * time.Millisecond,
		Host: func(cfg *raftnode.HostConfig) { cfg.DisableQuiesce = !quiesce }})
	for g := uint64(2); g <= groups; g++ {
		for _, id := range c.IDs() {
			if _, err := c.StartGroup(id, g, c.IDs(), nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	settled := c.Eventually(2*time.Minute, func() bool {
		for _, id := range c.IDs() {
			s := c.Host(id).Stats()
			if quiesce && s.Quiet != groups {
				return false
			}
		}
		for g := uint64(1); g <= groups; g++ {
			if c.Group(1, g).Leader() == 0 {
				return false
			}
		}
		return true
	})
	if !settled {
		b.Fatal("groups did not settle")
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	sent := c.Net.Sent.Load()
	cpu0 := cpuTime()
	start := time.Now()
	b.ResetTimer()
	for range b.N {
		time.Sleep(time.Second)
	}
	b.StopTimer()
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/secs, "cpu-ms/s")
	b.ReportMetric(float64(c.Net.Sent.Load()-sent)/secs, "msgs/s")
	b.ReportMetric(float64(ms.HeapInuse)/float64(3*groups), "heap-B/replica")
	b.ReportMetric(float64(ms.StackInuse)/float64(3*groups), "stack-B/replica")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

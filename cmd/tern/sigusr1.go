package main

import (
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// freeMemoryOnSIGUSR1 collects garbage and returns freed pages to the OS on
// every SIGUSR1, then logs the resident set. It is for measuring (tern bench
// --server-gc, the idle-connection tests): without it the resident set
// holds garbage and pages the scavenger has not yet returned, and a
// per-connection figure is off by up to the GC's headroom. It returns a
// function that stops listening.
func freeMemoryOnSIGUSR1(log *slog.Logger) func() {
	usr := make(chan os.Signal, 1)
	signal.Notify(usr, syscall.SIGUSR1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-usr:
				runtime.GC()
				debug.FreeOSMemory()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				log.Info("SIGUSR1: garbage collected and freed memory returned to the OS",
					"heap_inuse", ms.HeapInuse, "stack_inuse", ms.StackInuse, "goroutines", runtime.NumGoroutine(), "gc_cycles", ms.NumGC)
			}
		}
	}()
	return func() {
		signal.Stop(usr)
		close(done)
	}
}

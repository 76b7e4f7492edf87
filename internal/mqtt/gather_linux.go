package mqtt

import (
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Gathering events (issue 16: CPU per message). In a fan-in of devices
// each sending now and then, events come one at a time: every PUBLISH
// woke a sleeping thread, which ran the runtime's scheduler and poller,
// the loop, and an epoll_wait, for one read and one write to the
// subscriber. On this 2-core virtual machine a thread's sleep and wake
// and each system call cost more than handling the packet, so the loop
// spent most of a message's CPU getting to it.
//
// Once events come closer together than gatherWindow (a busy broker), the
// loop stops being woken per event: it closes the gate (the sockets' epoll
// descriptor sits inside a second one, the gate, which alone is in the
// runtime's poller; closed, the sockets' events no longer reach the
// runtime), sleeps gatherWindow, serves everything that came meanwhile —
// the subscriber's deliveries of a whole window in one write — and sleeps
// again. A window in which nothing came opens the gate, and the loop waits
// in the runtime's poller as before. So a message waits at most one
// window (plus the timer's slack) before it is read, and only while the
// broker is busy; an idle or lightly used broker is woken per event as
// before.
//
// The sleep is nanosleep(2) through RawSyscall, not time.Sleep: a
// goroutine woken by a timer readies itself through the scheduler, which
// wakes the other P's thread to look for work (a futex wake, and a sleep
// again, per window), and a Syscall wakes the runtime's monitor when the
// other P is idle (rawio_linux.go). A raw sleep keeps its P: a goroutine
// the loop readied (a runner, a writer) is taken by the other P, whose
// thread the scheduler woke for it; should that P be busy, it waits until
// it is free or, at worst, until the loop pauses (maxGatherWindows,
// 4 ms). Only one loop in a process gathers at a time (gatherer). Yielding before each window (runtime.Gosched) was measured: it
// wakes the other P's thread every time, and cost QoS 1 fan-in 15-50 %.
// With a single P the loop does not gather at all.

// gatherWindow bounds how long a readable socket waits while the loop
// gathers: at 10,000 messages/s it serves about five per window.
const gatherWindow = 500 * time.Microsecond

// maxGatherWindows bounds how long the loop holds its P gathering without
// a pause: then it opens the gate and waits in the runtime's poller, which
// frees the P, and gathers again when events come (a wake-up per 4 ms of
// steady traffic).
const maxGatherWindows = 8

// gatherer is held by the loop that is gathering: one at a time in a
// process, so gathering holds at most one P (a process with several MQTT
// servers, as the tests are, never has all its Ps asleep in loops).
var gatherer atomic.Bool

// The gate's registration of the sockets' epoll descriptor: open passes
// every event on to the runtime's poller (edge-triggered: the gate is
// never read, every event wakes it), closed passes none (no poll events
// in the mask: epoll treats the entry as disabled).
const (
	gateOpen   = unix.EPOLLIN | unix.EPOLLET
	gateClosed = unix.EPOLLET
)

// busy says whether events come close enough together to gather them: the
// previous wake-up that found events was less than a window ago. With a
// single P the loop never gathers: its sleep would hold the process's only
// P (every other goroutine, timers and the runtime's poller) for windows on
// end.
func (p *poller) busy() bool {
	now := time.Now().UnixNano()
	last := p.lastWake
	p.lastWake = now
	return now-last < int64(gatherWindow) && runtime.GOMAXPROCS(0) > 1
}

// gather serves events a window at a time with the gate closed, until a
// window brings none or maxGatherWindows have passed; then it opens the gate and serves what came before
// the gate opened (events after it wake the runtime's poller). It fails
// only when the poller is closing.
func (p *poller) gather(events []unix.EpollEvent) error {
	if !gatherer.CompareAndSwap(false, true) {
		return nil // another server's loop holds a P gathering (tests run many)
	}
	defer gatherer.Store(false)
	if err := p.setGate(gateClosed); err != nil {
		return err
	}
	p.gathers.Add(1)
	p.gathering.Store(true)
	defer p.gathering.Store(false)
	for w := 0; w < maxGatherWindows && !p.stop.Load(); w++ {
		sysNanosleep(gatherWindow)
		n, err := p.collect(events)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	if err := p.setGate(gateOpen); err != nil {
		return err
	}
	p.lastWake = 0
	return nil
}

// setGate changes the gate's registration of the sockets' epoll
// descriptor.
func (p *poller) setGate(events uint32) error {
	var cerr error
	err := p.raw.Control(func(fd uintptr) {
		if gerr := p.graw.Control(func(g uintptr) {
			ev := unix.EpollEvent{Events: events}
			cerr = sysEpollCtl(int(g), unix.EPOLL_CTL_MOD, int(fd), &ev)
		}); gerr != nil {
			cerr = gerr
		}
	})
	if err != nil {
		return err
	}
	return cerr
}

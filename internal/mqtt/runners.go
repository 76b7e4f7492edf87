package mqtt

import (
	"sync/atomic"
	"time"
)

// runners run parked connections' wake-ups (io.go: run, expired) that the
// event loop does not serve itself, and the ends it hands over (inline.go),
// on goroutines kept between wake-ups. A new goroutine starts on a 2 KiB stack
// and a wake-up's calls (the handshake, a session queue's declare, a
// publish's routing) grow it to 8–16 KiB, copying it at each doubling, and
// the runtime frees a grown stack when its goroutine ends: in a connect
// storm that growth was about a tenth of the broker's CPU per connect. A
// runner keeps its grown stack; when none is idle a new one starts, so a
// wake-up never waits for another to finish. At most maxIdleRunners wait
// for work (16 KiB stacks: 2 MiB at most), each for at most runnerIdle, so an
// idle broker keeps none.
type runners struct {
	work chan runJob // unbuffered: a send succeeds only to a waiting runner
	idle atomic.Int32
	gate handshakeGate // handshakes.go: how many handshakes run at once
}

type runJob struct {
	c       *conn
	expired bool
	gated   bool // a handshake: holds a place in the gate
	// ending: end c with reason endReason (inline.go: the event loop
	// hands a connection's teardown, which may wait, to a runner).
	ending    bool
	endReason string
}

const (
	maxIdleRunners = 128
	runnerIdle     = time.Second
)

func newRunners() *runners { return &runners{work: make(chan runJob)} }

// start runs c's wake-up (c.run, or c.expired) on an idle runner or a new
// one.
func (r *runners) start(c *conn, expired bool) {
	// The caller owns c until the job runs (a new connection, or one it
	// woke), so c.connected is its own to read.
	gated := !expired && !c.connected
	if gated && !r.gate.enter(c) {
		return // queued: a runner ending a handshake runs it
	}
	r.startJob(runJob{c: c, expired: expired, gated: gated})
}

// startEnd runs c.end(reason) on a runner.
func (r *runners) startEnd(c *conn, reason string) {
	r.startJob(runJob{c: c, ending: true, endReason: reason})
}

func (r *runners) startJob(j runJob) {
	select {
	case r.work <- j:
	default:
		go r.loop(j)
	}
}

func (r *runners) loop(j runJob) {
	var t *time.Timer
	var hold *gateHold // handshakes.go: a handshake may give its place up
	for {
		if j.gated {
			growStack() // a handshake's stack in one copy (stackgrow.go)
			if hold == nil {
				hold = &gateHold{r: r}
			}
			hold.held = true
			j.c.hold = hold
		}
		switch {
		case j.ending:
			j.c.end(j.endReason)
		case j.expired:
			j.c.expired()
		default:
			j.c.run()
		}
		if j.gated && hold.held {
			hold.held = false
			if next := r.gate.leave(); next != nil {
				j = runJob{c: next, gated: true} // its place is this one
				continue
			}
		}
		if r.idle.Add(1) > maxIdleRunners {
			r.idle.Add(-1)
			return
		}
		if t == nil {
			t = time.NewTimer(runnerIdle)
		} else {
			t.Reset(runnerIdle)
		}
		select {
		case j = <-r.work:
			r.idle.Add(-1)
			t.Stop()
		case <-t.C:
			r.idle.Add(-1)
			return
		}
	}
}

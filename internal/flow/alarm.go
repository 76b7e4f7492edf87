package flow

import (
	"sync"
	"sync/atomic"
)

// Alarm is a named on/off condition (memory high, disk low) that blocks
// publishers while it is on.
type Alarm struct {
	name   string
	active atomic.Bool

	mu   sync.Mutex // serialises Set so subscribers see transitions in order
	subs map[uint64]func(active bool)
	next uint64
}

// NewAlarm returns an alarm that is off.
func NewAlarm(name string) *Alarm { return &Alarm{name: name, subs: map[uint64]func(bool){}} }

// Name returns the alarm's name, used in connection.blocked reasons.
func (a *Alarm) Name() string { return a.name }

// Active reports whether the alarm is on.
func (a *Alarm) Active() bool { return a.active.Load() }

// Set turns the alarm on or off and tells subscribers about a change.
func (a *Alarm) Set(on bool) {
	if a.active.Load() == on {
		return
	}
	a.mu.Lock()
	if a.active.Load() == on {
		a.mu.Unlock()
		return
	}
	a.active.Store(on)
	subs := make([]func(bool), 0, len(a.subs))
	for _, f := range a.subs {
		subs = append(subs, f)
	}
	a.mu.Unlock()
	for _, f := range subs {
		f(on)
	}
}

// Subscribe calls f on every change until the returned function is called.
func (a *Alarm) Subscribe(f func(active bool)) (unsubscribe func()) {
	a.mu.Lock()
	a.next++
	id := a.next
	a.subs[id] = f
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		delete(a.subs, id)
		a.mu.Unlock()
	}
}

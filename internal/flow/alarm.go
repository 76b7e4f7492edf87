package flow

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-broker/tern/internal/clock"
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

// Trigger drives an Alarm from a measured level with hysteresis and a
// minimum hold time, so a level hovering at the threshold does not make
// the alarm (and every blocked publisher) flap:
//
//   - the alarm goes on as soon as the level is above High (never later:
//     it protects memory or disk);
//   - it goes off only once the level is at or below Low (Low < High) and
//     it has been on for at least Hold. When the level drops early, a timer
//     re-checks at the end of the hold, so the alarm clears even if nothing
//     else changes the level meanwhile.
//
// Check is safe to call on a hot path: it reads the level and two atomics
// and takes the lock only when the alarm's state is to change, then
// decides again under the lock from a fresh reading of the level, so two
// callers cannot flip it on stale values.
type Trigger struct {
	alarm    *Alarm
	level    func() int64
	clock    clock.Clock
	hold     time.Duration
	onChange func(on bool, level, high, low int64)

	enabled   atomic.Bool
	high, low atomic.Int64

	mu      sync.Mutex
	since   time.Time // when the alarm last went on
	pending bool      // a re-check at the end of the hold is scheduled
	changes atomic.Uint64
}

// NewTrigger returns a disabled trigger of a; SetThresholds enables it.
// c (nil: the system clock) times the hold; level is read on every Check; onChange (may be nil) is called under the
// trigger's lock on every change of state, for logging.
func NewTrigger(a *Alarm, level func() int64, c clock.Clock, hold time.Duration, onChange func(on bool, level, high, low int64)) *Trigger {
	return &Trigger{alarm: a, level: level, clock: clock.Or(c), hold: hold, onChange: onChange}
}

// SetThresholds sets High and Low (clamped to at most High) and enables
// the trigger.
func (t *Trigger) SetThresholds(high, low int64) {
	t.high.Store(high)
	t.low.Store(min(low, high))
	t.enabled.Store(true)
	t.Check()
}

// Disable turns the trigger, and its alarm, off.
func (t *Trigger) Disable() {
	t.enabled.Store(false)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.alarm.Active() {
		t.set(false, t.level())
	}
}

// Changes counts the alarm's changes of state made by this trigger.
func (t *Trigger) Changes() uint64 { return t.changes.Load() }

// Check re-evaluates the alarm against the current level.
func (t *Trigger) Check() {
	if !t.enabled.Load() {
		return
	}
	on, n := t.alarm.Active(), t.level()
	if (!on && n <= t.high.Load()) || (on && n > t.low.Load()) {
		return // the common case: nothing to change, no lock
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	on, n = t.alarm.Active(), t.level()
	switch {
	case !t.enabled.Load():
	case !on && n > t.high.Load():
		t.since = t.clock.Now()
		t.set(true, n)
		// Re-check when the hold ends: a caller that lowered the level
		// while this one was turning the alarm on may have seen it still
		// off and not called again.
		t.recheckLocked(t.hold)
	case on && n <= t.low.Load():
		if left := t.hold - t.clock.Now().Sub(t.since); left > 0 {
			t.recheckLocked(left)
			return
		}
		t.set(false, n)
	}
}

// recheckLocked schedules a Check after d, unless one is pending.
func (t *Trigger) recheckLocked(d time.Duration) {
	if t.pending {
		return
	}
	t.pending = true
	t.clock.AfterFunc(d, func() {
		t.mu.Lock()
		t.pending = false
		t.mu.Unlock()
		t.Check()
	})
}

// set changes the alarm; t.mu is held, so changes are made and reported
// in order.
func (t *Trigger) set(on bool, n int64) {
	t.changes.Add(1)
	if t.onChange != nil {
		t.onChange(on, n, t.high.Load(), t.low.Load())
	}
	t.alarm.Set(on)
}

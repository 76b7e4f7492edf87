package clock

import "time"

// Clock tells the time and calls back after a duration.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once, on its own goroutine (System) or in
	// Fake.Advance, after d; Stop on the returned timer cancels it.
	AfterFunc(d time.Duration, f func()) Timer
	// Sleep returns once d has passed on this clock.
	Sleep(d time.Duration)
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop cancels the call; it reports false if it had run or was stopped.
	Stop() bool
	// Reset makes the call due d from now, whether it had run or not; it
	// reports whether it was still pending.
	Reset(d time.Duration) bool
}

// System is the real clock.
type System struct{}

// Now implements Clock.
func (System) Now() time.Time { return time.Now() }

// AfterFunc implements Clock.
func (System) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Sleep implements Clock.
func (System) Sleep(d time.Duration) { time.Sleep(d) }

// Or returns c, or the system clock when c is nil: the default of every
// configuration that takes a clock.
func Or(c Clock) Clock {
	if c == nil {
		return defaultClock()
	}
	return c
}

//go:build !chaos

package clock

// ChaosHooks says whether this binary was built with -tags chaos, whose
// default clock can be skewed by `tern chaos` (skew_chaos.go).
const ChaosHooks = false

// defaultClock is the clock Or gives for nil: the system clock. Under the
// chaos build tag it is a skewable one instead; without it this is all
// there is, so the hook costs nothing.
func defaultClock() Clock { return System{} }

package mqtt_test

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/testkit"
)

// startFake starts a server whose time is a fake clock the test advances.
// It starts at the real time: checks not yet on the injected clock see
// ordinary publish times.
func startFake(t *testing.T, opts ...testkit.Option) (*testkit.Server, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Now())
	return testkit.Start(t, append([]testkit.Option{testkit.WithClock(clk)}, opts...)...), clk
}

// advanceUntil advances clk by step until cond holds, for events armed at
// a moment the test cannot observe (a paho client's disconnect); bounded
// in steps and in real time.
func advanceUntil(t *testing.T, clk *clock.Fake, step time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, what, func() bool {
		if cond() {
			return true
		}
		clk.Advance(step)
		return cond()
	})
}

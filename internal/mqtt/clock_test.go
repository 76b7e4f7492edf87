package mqtt_test

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/flow"
	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
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

// An MQTT publisher over its rate limit is held, not dropped, until the
// broker's clock has refilled its bucket.
func TestMQTTPublishRateLimitHoldsUntilTheClockRefills(t *testing.T) {
	t.Parallel()
	s, clk := startFake(t, func(c *config.Config) {
		c.Limits = []flow.Limit{{VHost: "/", User: "*", PublishRate: 1, PublishBurst: 1}}
	})
	r, _ := connect5(t, s, "limited", nil)
	r.Send(&wire.Publish{QoS: 1, PacketID: 1, Topic: "rate/x", Payload: []byte("1")})
	if pa, ok := r.Expect().(*wire.Ack); !ok || pa.PacketID != 1 {
		t.Fatalf("want PUBACK 1 (the burst), got %+v", pa)
	}
	r.Send(&wire.Publish{QoS: 1, PacketID: 2, Topic: "rate/x", Payload: []byte("2")})
	// The reader sleeps on the clock (its only timer here), the message
	// not yet published.
	testkit.Eventually(t, wait, "the second publish held", func() bool { return clk.Pending() == 1 })
	if n := s.Broker.Stats().Published; n != 1 {
		t.Fatalf("%d messages published while the bucket is empty, want 1", n)
	}
	clk.Advance(time.Second)
	if pa, ok := r.Expect().(*wire.Ack); !ok || pa.PacketID != 2 {
		t.Fatalf("want PUBACK 2 once the clock refilled the bucket, got %+v", pa)
	}
	if n := s.Broker.Stats().Published; n != 2 {
		t.Fatalf("%d messages published, want 2: nothing is dropped", n)
	}
}

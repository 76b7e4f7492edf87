package amqp_test

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/testkit"
)

// x-stream-offset takes an interval before now, spelled as x-max-age is
// ("1h", "7D"), RabbitMQ's sixth kind of offset: a reader starts at the
// first message published within it.
func TestStreamOffsetInterval(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	s := testkit.Start(t, testkit.WithClock(clk))
	c, ch := s.Channel(t)
	declareStream(t, ch, "intervals", nil)
	publishConfirmed(t, ch, "", "intervals", 0, 5, nil)
	clk.Advance(2 * time.Hour)
	_, ch2 := s.Channel(t)
	publishConfirmed(t, ch2, "", "intervals", 5, 5, nil)
	clk.Advance(time.Minute)
	if b, _ := readStream(t, consumeStream(t, c, "intervals", amqp.Table{"x-stream-offset": "1h"}), 5); b[0] != "5" {
		t.Fatalf("1h starts at %s, want 5 (the batch 1 min old)", b[0])
	}
	if b, _ := readStream(t, consumeStream(t, c, "intervals", amqp.Table{"x-stream-offset": "7D"}), 10); b[0] != "0" {
		t.Fatalf("7D starts at %s, want 0", b[0])
	}
}

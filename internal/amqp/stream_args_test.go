package amqp_test

import (
	"errors"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// A stream refuses the queue arguments it would ignore, with RabbitMQ's
// 406 text (x-message-ttl, x-expires, x-max-priority, x-overflow, …),
// instead of accepting them: a user who wanted age-based expiry learns
// that a stream's is x-max-age.
func TestStreamRefusesArgumentsItWouldIgnore(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	conn, ch := s.Channel(t)
	for k, v := range map[string]any{"x-message-ttl": int32(1000), "x-expires": int32(60000), "x-max-priority": int32(5),
		"x-overflow": "reject-publish", "x-queue-mode": "lazy"} {
		c, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.QueueDeclare("st-"+k, true, false, false, false, amqp.Table{"x-queue-type": "stream", k: v})
		var ae *amqp.Error
		if want := "PRECONDITION_FAILED - invalid arg '" + k + "' for queue 'st-" + k + "' in vhost '/'"; !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed || ae.Reason != want {
			t.Errorf("stream with %s: got %v, want 406 %q", k, err, want)
		}
	}
	declareStream(t, ch, "st-ok", amqp.Table{"x-max-age": "7D", "x-max-length-bytes": int64(1 << 30)})
	// A classic queue still takes them.
	if _, err := ch.QueueDeclare("classic-ttl", true, false, false, false, amqp.Table{"x-message-ttl": int32(1000)}); err != nil {
		t.Fatal(err)
	}
}

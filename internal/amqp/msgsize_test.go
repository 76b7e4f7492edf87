package amqp_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

// A message over amqp.max_message_size (RabbitMQ's max_message_size), or
// over its vhost's max-message-size, closes the channel with 406
// PRECONDITION_FAILED and RabbitMQ's text; the connection stays, and a
// message of exactly the limit passes. A vhost limit set while the channel
// is open applies to its next publish.
func TestMaxMessageSizeAMQP(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, func(c *config.Config) { c.AMQP.MaxMessageSize = 4096 })
	conn, ch := s.Channel(t)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	// publish sends n bytes and returns the channel's close, or nil once
	// the message is in the queue.
	publish := func(ch *amqp.Channel, n int) error {
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ch.PublishWithContext(ctx, "", q.Name, false, false, amqp.Publishing{Body: make([]byte, n)}); err != nil {
			return err
		}
		// The refusal closes the channel asynchronously; a message that
		// was taken is in the queue for a get on the same channel.
		done := make(chan error, 1)
		go func() {
			_, ok, err := ch.Get(q.Name, true)
			if err == nil && !ok {
				err = errors.New("the queue is empty")
			}
			done <- err
		}()
		select {
		case e := <-closed:
			if e == nil {
				return errors.New("channel closed without an error")
			}
			return e
		case err := <-done:
			if err != nil {
				select {
				case e := <-closed:
					if e != nil {
						return e
					}
				case <-time.After(10 * time.Second):
				}
			}
			return err
		case <-time.After(10 * time.Second):
			return errors.New("neither delivered nor refused")
		}
	}
	if err := publish(ch, 4096); err != nil {
		t.Fatalf("a message of the node's max size: %v", err)
	}
	ae := expectCode(t, publish(ch, 4097), amqp.PreconditionFailed)
	if ae.Reason != "PRECONDITION_FAILED - message size 4097 is larger than configured max size 4096" {
		t.Errorf("over max_message_size: %q", ae.Reason)
	}

	ch2, err := conn.Channel()
	if err != nil {
		t.Fatalf("the connection after the refusal: %v", err)
	}
	api(t, s, "PUT", "/api/vhost-limits/%2F/max-message-size", map[string]int{"value": 1000}, http.StatusNoContent)
	if err := publish(ch2, 1000); err != nil {
		t.Fatalf("a message of the vhost's max-message-size: %v", err)
	}
	ae = expectCode(t, publish(ch2, 1001), amqp.PreconditionFailed)
	if ae.Reason != "PRECONDITION_FAILED - message size 1001 is larger than configured max size 1000 (max-message-size of vhost '/')" {
		t.Errorf("over the vhost's max-message-size: %q", ae.Reason)
	}
	// Cleared, the node's limit is the only one again.
	api(t, s, "DELETE", "/api/vhost-limits/%2F/max-message-size", nil, http.StatusNoContent)
	ch3, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(ch3, 4096); err != nil {
		t.Fatalf("after the vhost's limit was removed: %v", err)
	}
}

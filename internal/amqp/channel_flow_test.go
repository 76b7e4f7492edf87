package amqp_test

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// RabbitMQ refuses channel.flow active=false from a client with 540
// NOT_IMPLEMENTED (a connection error) and answers active=true with
// flow-ok; client suites test exactly that.
func TestChannelFlowFalseIsNotImplemented(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	conn, ch := s.Channel(t)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Flow(true); err != nil {
		t.Fatalf("flow active=true: %v", err)
	}
	expectCode(t, ch.Flow(false), amqp.NotImplemented)
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.NotImplemented {
			t.Fatalf("connection closed with %v, want 540", e)
		}
	case <-time.After(wait):
		t.Fatal("connection not closed after flow active=false")
	}
}

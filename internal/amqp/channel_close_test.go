package amqp_test

import (
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// A publish to a missing exchange followed at once by the client's own
// channel.close: both sides close, and the connection must survive the
// client's close-ok for Tern's close (RabbitMQ keeps the channel closing
// until its close-ok arrives).
func TestCrossingChannelClosesKeepTheConnection(t *testing.T) {
	s := testkit.Start(t)
	r := s.DialRaw(t)
	r.Handshake(0)
	r.Send(2, &amqp091.ChannelOpen{})
	if _, ok := r.Expect().(*amqp091.ChannelOpenOk); !ok {
		t.Fatal("no channel.open-ok on channel 2")
	}

	buf := appendPublish(nil, 1, "no-such-exchange", "k", []byte("x"), false)
	buf = amqp091.AppendMethodFrame(buf, 1, &amqp091.ChannelClose{ReplyCode: 200, ReplyText: "bye"})
	r.Write(buf)
	cl, ok := r.Expect().(*amqp091.ChannelClose)
	if !ok || cl.ReplyCode != amqp091.NotFound {
		t.Fatalf("want channel.close 404, got %#v", cl)
	}
	if _, ok := r.Expect().(*amqp091.ChannelCloseOk); !ok {
		t.Fatal("Tern did not answer the client's crossing channel.close with close-ok")
	}
	// Still closing: anything but close-ok is discarded.
	r.Send(1, &amqp091.QueueDeclare{Queue: "discarded"})
	r.Send(1, &amqp091.ChannelCloseOk{})
	r.Send(2, &amqp091.QueueDeclare{Queue: "q2"})
	switch m := r.Expect().(type) {
	case *amqp091.QueueDeclareOk:
		if m.Queue != "q2" {
			t.Fatalf("declare-ok for %q, want q2", m.Queue)
		}
	default:
		t.Fatalf("after the close handshake: got %s, want queue.declare-ok on channel 2", m.Name())
	}
	// The channel id is free again.
	r.Send(1, &amqp091.ChannelOpen{})
	if _, ok := r.Expect().(*amqp091.ChannelOpenOk); !ok {
		t.Fatal("channel 1 could not be reopened")
	}
	r.Send(1, &amqp091.QueueDeclare{Queue: "discarded", Passive: true})
	if cl, ok := r.Expect().(*amqp091.ChannelClose); !ok || cl.ReplyCode != amqp091.NotFound {
		t.Fatalf("a method sent to the closing channel was not discarded: %#v", cl)
	}
}

// An ack of an unknown tag closes the channel with 406 while the client is
// closing it too.
func TestUnknownAckThenCloseKeepsTheConnection(t *testing.T) {
	s := testkit.Start(t)
	r := s.DialRaw(t)
	r.Handshake(0)
	buf := amqp091.AppendMethodFrame(nil, 1, &amqp091.BasicAck{DeliveryTag: 42})
	buf = amqp091.AppendMethodFrame(buf, 1, &amqp091.ChannelClose{ReplyCode: 200})
	r.Write(buf)
	if cl, ok := r.Expect().(*amqp091.ChannelClose); !ok || cl.ReplyCode != amqp091.PreconditionFailed {
		t.Fatalf("want channel.close 406, got %#v", cl)
	}
	if _, ok := r.Expect().(*amqp091.ChannelCloseOk); !ok {
		t.Fatal("no close-ok for the client's close")
	}
	r.Send(1, &amqp091.ChannelCloseOk{})
	r.Send(1, &amqp091.ChannelOpen{})
	if m, ok := r.Expect().(*amqp091.ChannelOpenOk); !ok {
		t.Fatalf("got %#v, want channel.open-ok", m)
	}
}

func TestAmqp091PublishToMissingExchangeThenCloseInALoop(t *testing.T) {
	s := testkit.Start(t)
	conn := s.Dial(t)
	other, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		_ = ch.Publish("no-such-exchange", "k", false, false, amqp.Publishing{Body: []byte("x")})
		_ = ch.Close()
		if conn.IsClosed() {
			t.Fatalf("round %d: connection closed", i)
		}
	}
	if _, err := other.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatalf("the other channel stopped working: %v", err)
	}
	if conn.IsClosed() {
		t.Fatal("connection closed")
	}
}

const pikaCloseLoop = `
import sys, pika
conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
other = conn.channel()
for i in range(100):
    ch = conn.channel()
    ch.basic_publish(exchange='no-such-exchange', routing_key='k', body=b'x')
    try:
        ch.close()
    except Exception as e:
        pass
    if not conn.is_open:
        print('connection closed in round', i); sys.exit(1)
other.queue_declare('', exclusive=True)
conn.process_data_events(0)
if not conn.is_open:
    print('connection closed'); sys.exit(1)
conn.close()
print('ok')
`

func TestPikaPublishToMissingExchangeThenCloseInALoop(t *testing.T) {
	s := testkit.Start(t)
	out := runPython(t, "pika", pikaCloseLoop, s.URL)
	if !strings.Contains(out, "ok") {
		t.Fatalf("pika: %s", out)
	}
}

// amqp091-go answers Tern's channel.close from one goroutine while another
// sends its own close, so the close-ok can come first: the late close on
// the freed id gets close-ok, not a 504.
func TestCloseOkBeforeTheClientsOwnCloseKeepsTheConnection(t *testing.T) {
	s := testkit.Start(t)
	r := s.DialRaw(t)
	r.Handshake(0)
	r.Write(appendPublish(nil, 1, "no-such-exchange", "k", []byte("x"), false))
	if cl, ok := r.Expect().(*amqp091.ChannelClose); !ok || cl.ReplyCode != amqp091.NotFound {
		t.Fatalf("want channel.close 404, got %#v", cl)
	}
	buf := amqp091.AppendMethodFrame(nil, 1, &amqp091.ChannelCloseOk{})
	buf = amqp091.AppendMethodFrame(buf, 1, &amqp091.ChannelClose{ReplyCode: 200})
	r.Write(buf)
	if m := r.Expect(); m.Name() != (&amqp091.ChannelCloseOk{}).Name() {
		t.Fatalf("got %s, want channel.close-ok for the late close", m.Name())
	}
	r.Send(1, &amqp091.ChannelOpen{})
	if m, ok := r.Expect().(*amqp091.ChannelOpenOk); !ok {
		t.Fatalf("got %#v, want channel.open-ok", m)
	}
}

package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	amqpc "github.com/rabbitmq/amqp091-go"
	"github.com/tern-broker/tern/internal/amqp"
	"github.com/tern-broker/tern/internal/auth"
)

// serveAMQP starts an AMQP listener on nd's broker and returns its URL.
func serveAMQP(t *testing.T, nd *node, users *auth.Store) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := amqp.NewServer(amqp.Config{}, nd.b, users, quietLogger())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "amqp://guest:guest@" + ln.Addr().String() + "/"
}

// Through the AMQP adapter: a client on node 2 publishes with confirms to
// a queue node 1 holds and consumes it with a prefetch, acking as it
// goes; a passive declare on node 2 reports the owner's count.
func TestAMQPThroughAnotherNode(t *testing.T) {
	ns := newCluster(t, 2, nil)
	users := auth.NewStore()
	users.Put(auth.User{Name: "guest", PasswordHash: auth.HashPassword("guest")})
	users.SetPermission("guest", "/", auth.Permission{Configure: ".*", Write: ".*", Read: ".*"})
	url1, url2 := serveAMQP(t, ns[0], users), serveAMQP(t, ns[1], users)

	c1, err := amqpc.Dial(url1)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	ch1, _ := c1.Channel()
	if _, err := ch1.QueueDeclare("q", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}

	c2, err := amqpc.Dial(url2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	pub, _ := c2.Channel()
	if err := pub.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := pub.NotifyPublish(make(chan amqpc.Confirmation, 1000))
	const n = 500
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range n {
		err := pub.PublishWithContext(ctx, "", "q", false, false, amqpc.Publishing{DeliveryMode: 2, Body: fmt.Appendf(nil, "m%d", i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		select {
		case cf := <-confirms:
			if !cf.Ack || cf.DeliveryTag != uint64(i+1) {
				t.Fatalf("confirm %d: %+v", i, cf)
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d confirms", i, n)
		}
	}
	// Counts on node 2 are the owner's.
	q, err := pub.QueueDeclarePassive("q", true, false, false, false, nil)
	if err != nil || q.Messages != n {
		t.Fatalf("passive declare on node 2: %+v %v", q, err)
	}

	con, _ := c2.Channel()
	if err := con.Qos(7, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs, err := con.Consume("q", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	q1 := queueOf(t, ns[0], "q")
	for i := range n {
		select {
		case m := <-msgs:
			if string(m.Body) != fmt.Sprintf("m%d", i) {
				t.Fatalf("delivery %d: %s", i, m.Body)
			}
			if _, u, _ := q1.Counts(); u > 7 {
				t.Fatalf("%d unacked on the owner with prefetch 7", u)
			}
			if err := m.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d deliveries", i, n)
		}
	}
	waitFor(t, 2*time.Second, "owner drained", nil, func() bool { r, u, _ := q1.Counts(); return r == 0 && u == 0 })

	// Closing the channel with unacked messages requeues them on the owner.
	for i := range 3 {
		if err := pub.PublishWithContext(ctx, "", "q", false, false, amqpc.Publishing{Body: fmt.Appendf(nil, "x%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		<-msgs
	}
	_ = con.Close()
	waitFor(t, 2*time.Second, "requeued on channel close", nil, func() bool { r, u, c := q1.Counts(); return r == 3 && u == 0 && c == 0 })
	get, _ := c2.Channel()
	m, ok, err := get.Get("q", false)
	if err != nil || !ok || string(m.Body) != "x0" || !m.Redelivered {
		t.Fatalf("basic.get on node 2: %v %v %s %v", err, ok, m.Body, m.Redelivered)
	}
	_ = m.Ack(false)
	waitFor(t, 2*time.Second, "get acked", nil, func() bool { r, u, _ := q1.Counts(); return r == 2 && u == 0 })
}

// With the queue's node down, basic.get and queue.purge on another node
// close the channel with 404, as RabbitMQ does ("home node … is down or
// inaccessible"), rather than answer get-empty or purge-ok with 0
// (finding 7).
func TestAMQPOwnerDownGetPurgeFail(t *testing.T) {
	ns := newCluster(t, 2, nil)
	users := auth.NewStore()
	users.Put(auth.User{Name: "guest", PasswordHash: auth.HashPassword("guest")})
	users.SetPermission("guest", "/", auth.Permission{Configure: ".*", Write: ".*", Read: ".*"})
	url2 := serveAMQP(t, ns[1], users)
	declare(t, ns[0], "q", nil)
	ns[0].f.Close()
	_ = ns[0].tr.Close()
	c2, err := amqpc.Dial(url2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for _, op := range []string{"get", "purge"} {
		ch, err := c2.Channel()
		if err != nil {
			t.Fatal(err)
		}
		switch op {
		case "get":
			_, ok, e := ch.Get("q", false)
			if ok {
				t.Fatal("get from a queue whose node is down found a message")
			}
			err = e
		case "purge":
			_, err = ch.QueuePurge("q", false)
		}
		var ae *amqpc.Error
		if !errors.As(err, &ae) || ae.Code != amqpc.NotFound {
			t.Fatalf("%s with the queue's node down: %v", op, err)
		}
	}
}

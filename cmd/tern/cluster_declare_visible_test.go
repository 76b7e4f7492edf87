package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestDeclareOkMeansEveryNodeRoutesToTheQueue: a queue declared through
// one node is routable on every other node as soon as declare-ok arrives.
// A publish on another node right after the declare used to find no queue
// there (that node had not applied the declaration yet): the message was
// unroutable, dropped and confirmed — the three confirmed messages
// TestAddAndRemoveNodesOfARunningCluster once lost in CI.
func TestDeclareOkMeansEveryNodeRoutesToTheQueue(t *testing.T) {
	nodes := startTestCluster(t, 3, 0)
	dc, dch := dialChannel(t, nodes[0].url())
	defer dc.Close()
	pubs := make([]*amqp.Channel, 0, 2)
	for _, nd := range nodes[1:] {
		c, ch := dialChannel(t, nd.url())
		defer c.Close()
		if err := ch.Confirm(false); err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, ch)
	}
	returns := make([]chan amqp.Return, len(pubs))
	for i, ch := range pubs {
		returns[i] = ch.NotifyReturn(make(chan amqp.Return, 100))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	unroutable := 0
	const rounds = 24
	for i := range rounds {
		typ := "quorum"
		if i%2 == 1 {
			typ = "classic"
		}
		name := fmt.Sprintf("visible-%d", i)
		if _, err := dch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": typ}); err != nil {
			t.Fatal(err)
		}
		for j, ch := range pubs {
			d, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", name, true, false, amqp.Publishing{Body: []byte(name)})
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := d.WaitContext(ctx); err != nil || !ok {
				t.Fatalf("%s through n%d: not confirmed (%v)", name, j+2, err)
			}
			select {
			case r := <-returns[j]:
				unroutable++
				t.Errorf("%s queue %s, declared through n1: n%d returned the publish as unroutable (%d %s)", typ, name, j+2, r.ReplyCode, r.ReplyText)
			default:
			}
		}
	}
	if unroutable > 0 {
		t.Fatalf("%d of %d publishes right after declare-ok found no queue", unroutable, 2*rounds)
	}
}

package main

import (
	"context"
	"regexp"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// user7 2.2, with real processes: a Celery worker's pidbox queue (classic,
// non-durable, auto-delete) lives on n3 and is bound, with a live queue on
// n1, to a fanout. kill -9 n3: the metadata leader finds n3's cluster port
// refusing connections (a crash, not a partition, so no down_grace) and
// deletes n3's transient queues; a confirmed broadcast through n1 is
// confirmed again once they are gone (n3 may have led the metadata group:
// then after the election). n3's durable queue stays, and n3 restarted
// does not have the transient one back.
func TestDownNodesTransientQueueStopsNackingABroadcast(t *testing.T) {
	nodes := newTestCluster(t, 3, 0)
	grace := writeConfig(t, "[cluster]\ndown_grace = \"2s\"\n")
	for _, nd := range nodes {
		nd.args = append(nd.args, "--config", grace)
		nd.start(t)
	}
	for _, nd := range nodes {
		nd.waitServing(t, 60*time.Second)
	}
	n1, n3 := nodes[0], nodes[2]
	c3, ch3 := dialChannel(t, n3.url())
	defer c3.Close()
	if _, err := ch3.QueueDeclare("celery@w1.celery.pidbox", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch3.QueueDeclare("n3-durable", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	c1, ch1 := dialChannel(t, n1.url())
	defer c1.Close()
	if err := ch1.ExchangeDeclare("celery.pidbox", "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch1.QueueDeclare("n1-live", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"celery@w1.celery.pidbox", "n1-live"} {
		if err := ch1.QueueBind(q, "", "celery.pidbox", false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch1.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch1.NotifyPublish(make(chan amqp.Confirmation, 16))
	broadcast := func() bool {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ch1.PublishWithContext(ctx, "celery.pidbox", "", false, false, amqp.Publishing{Body: []byte("ping")}); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-confirms:
			return c.Ack
		case <-ctx.Done():
			t.Fatal("no confirm")
		}
		return false
	}
	if !broadcast() {
		t.Fatal("a broadcast with every node up was nacked")
	}

	n3.kill9(t)
	killed := time.Now()
	acked := false
	for i := 0; i < 300 && !acked; i++ {
		if acked = broadcast(); !acked {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !acked {
		t.Fatal("broadcasts through n1 still nacked 30 s after n3 died")
	}
	t.Logf("broadcast confirmed again %v after kill -9", time.Since(killed).Round(100*time.Millisecond))
	if _, err := ch1.QueueDeclarePassive("n3-durable", true, false, false, false, nil); err != nil {
		t.Fatalf("n3's durable queue is gone: %v", err)
	}
	leaderLog := regexp.MustCompile(`msg="node (down|crashed [^"]*): its exclusive and non-durable queues deleted cluster-wide" .*node=n3 .*celery@w1.celery.pidbox`)
	if !leaderLog.MatchString(n1.log()) && !leaderLog.MatchString(nodes[1].log()) {
		t.Fatal("no node logged the deletion")
	}

	n3.start(t)
	n3.waitServing(t, 60*time.Second)
	c3b, ch3b := dialChannel(t, n3.url())
	defer c3b.Close()
	if _, err := ch3b.QueueDeclarePassive("celery@w1.celery.pidbox", false, true, false, false, nil); err == nil {
		t.Fatal("n3 restarted has its transient queue back")
	}
}

package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// A classic queue lives on the node that declared it; every other node
// forwards to it (internal/cluster/forward). Declared on n1, published to
// with confirms through n2 and consumed through n3, with the prefetch
// honoured and the order kept.
func TestClassicQueueIsReachableFromEveryNode(t *testing.T) {
	nodes := startTestCluster(t, 3, 0)

	c1, ch1 := dialChannel(t, nodes[0].url())
	if _, err := ch1.QueueDeclare("invoices", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	defer c1.Close()

	pc, pch := dialChannel(t, nodes[1].url())
	defer pc.Close()
	if err := pch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := pch.NotifyPublish(make(chan amqp.Confirmation, 1000))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const total = 1000
	for i := 0; i < total; i++ {
		if err := pch.PublishWithContext(ctx, "", "invoices", true, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, Body: []byte(strconv.Itoa(i)),
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < total; i++ {
		select {
		case c := <-confirms:
			if !c.Ack {
				t.Fatalf("publish %d through n2 to n1's queue was nacked", c.DeliveryTag)
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d confirms before the deadline", i, total)
		}
	}
	// The owner holds them.
	q, err := ch1.QueueDeclarePassive("invoices", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != total {
		t.Fatalf("n1 holds %d messages, want %d", q.Messages, total)
	}

	cc, cch := dialChannel(t, nodes[2].url())
	defer cc.Close()
	if err := cch.Qos(10, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := cch.Consume("invoices", "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume through n3 from n1's queue: %v", err)
	}
	for want := 0; want < total; want++ {
		select {
		case d := <-deliveries:
			if got, _ := strconv.Atoi(string(d.Body)); got != want {
				t.Fatalf("delivery %d through n3 is message %s: out of order", want, d.Body)
			}
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("consumed %d of %d before the deadline", want, total)
		}
	}
	// Every ack reached the owner: the queue drains to empty there.
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, err := ch1.QueueDeclarePassive("invoices", true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if q.Messages == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n1 still holds %d ready messages after every ack", q.Messages)
		}
		time.Sleep(50 * time.Millisecond)
	}
	queuePlacementShown(t, nodes, ch1)
}

// queuePlacementShown: /api/queues on another node names the node that
// holds a classic queue (not the node asked), lists a quorum queue's
// leader, members and online members, and shows the classic queue "down"
// once its node is killed, as RabbitMQ's API does.
func queuePlacementShown(t *testing.T, nodes []*ternNode, ch1 *amqp.Channel) {
	t.Helper()
	if _, err := ch1.QueueDeclare("ledger", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	type placed struct {
		Node    string   `json:"node"`
		State   string   `json:"state"`
		Leader  string   `json:"leader"`
		Members []string `json:"members"`
		Online  []string `json:"online"`
	}
	get := func(queue string) placed {
		var p placed
		b, err := httpGet(nodes[1].httpURL() + "/api/queues/%2F/" + queue)
		if err == nil {
			err = json.Unmarshal(b, &p)
		}
		if err != nil {
			t.Fatalf("GET /api/queues/%%2F/%s on n2: %v", queue, err)
		}
		return p
	}
	if p := get("invoices"); !strings.HasPrefix(p.Node, nodes[0].name+"@") || p.State != "running" {
		t.Fatalf("n2 shows n1's classic queue as %+v, want node %s@… running", p, nodes[0].name)
	}
	ok := nodes[1].waitFor(20*time.Second, func() bool {
		p := get("ledger")
		return p.Leader != "" && p.Node == p.Leader && len(p.Members) == 3 && len(p.Online) == 3
	})
	if !ok {
		t.Fatalf("n2 shows the quorum queue as %+v, want a leader, 3 members, 3 online", get("ledger"))
	}
	running := func() map[string]bool {
		var ns []struct {
			Name    string `json:"name"`
			Running bool   `json:"running"`
		}
		b, err := httpGet(nodes[1].httpURL() + "/api/nodes")
		if err == nil {
			err = json.Unmarshal(b, &ns)
		}
		if err != nil {
			t.Fatalf("GET /api/nodes on n2: %v", err)
		}
		out := map[string]bool{}
		for _, n := range ns {
			out[strings.SplitN(n.Name, "@", 2)[0]] = n.Running
		}
		return out
	}
	if r := running(); len(r) != 3 || !r[nodes[0].name] || !r[nodes[1].name] || !r[nodes[2].name] {
		t.Fatalf("n2's /api/nodes: %v, want the three members running", r)
	}
	nodes[0].kill9(t)
	ok = nodes[1].waitFor(20*time.Second, func() bool {
		return get("invoices").State == "down" && len(get("ledger").Online) == 2 && !running()[nodes[0].name]
	})
	if !ok {
		t.Fatalf("with n1 killed n2 shows %+v, %+v and nodes %v, want the classic queue down, 2 quorum members online, n1 not running",
			get("invoices"), get("ledger"), running())
	}
}

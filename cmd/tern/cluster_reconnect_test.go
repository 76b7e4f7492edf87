package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The reconnect pattern amqp091-go documents (its examples' "client" with
// NotifyClose, NotifyPublish and a redial loop), run against a Tern
// cluster: the client keeps a list of nodes, and when its connection dies
// it dials the next one, declares its topology again and carries on. The
// publisher re-sends what was not confirmed (at-least-once), the consumer
// dedupes.

// reconnectingClient is a connection that moves to the next node of its
// list whenever it is lost.
type reconnectingClient struct {
	urls  []string
	next  int
	queue string

	conn     *amqp.Connection
	ch       *amqp.Channel
	closed   chan *amqp.Error
	confirms chan amqp.Confirmation
	node     string
}

// connect dials the nodes in turn, from the one after the last used,
// until one gives a channel with the topology declared, or the deadline.
func (c *reconnectingClient) connect(ctx context.Context, confirm bool) error {
	var last error
	for attempt := 0; attempt < 200; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reconnecting: %w (last error: %v)", err, last)
		}
		url := c.urls[c.next%len(c.urls)]
		c.next++
		conn, err := amqp.DialConfig(url, amqp.Config{Heartbeat: 2 * time.Second, Dial: amqp.DefaultDial(2 * time.Second)})
		if err != nil {
			last = err
			time.Sleep(100 * time.Millisecond) // a node that is down refuses at once: pace the loop
			continue
		}
		ch, err := conn.Channel()
		if err == nil {
			// Declaring again on every connect is the pattern: it is
			// idempotent, and the definitions are the cluster's.
			_, err = ch.QueueDeclare(c.queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		}
		if err == nil && confirm {
			err = ch.Confirm(false)
		}
		if err != nil {
			last = err
			_ = conn.Close()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		c.conn, c.ch, c.node = conn, ch, url
		c.closed = conn.NotifyClose(make(chan *amqp.Error, 1))
		if confirm {
			c.confirms = ch.NotifyPublish(make(chan amqp.Confirmation, 1024))
		}
		return nil
	}
	return fmt.Errorf("no node answered: %v", last)
}

// publishConfirmed publishes n numbered messages, each until confirmed,
// moving to another node whenever the connection is lost; it calls
// onConfirmed after every confirm (the test kills a node from there).
func (c *reconnectingClient) publishConfirmed(ctx context.Context, n int, onConfirmed func(i int, node string)) error {
	if err := c.connect(ctx, true); err != nil {
		return err
	}
	for i := 0; i < n; {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err := c.ch.PublishWithContext(ctx, "", c.queue, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, Body: []byte(strconv.Itoa(i)),
		})
		if err == nil {
			select {
			case conf, ok := <-c.confirms:
				if ok && conf.Ack {
					onConfirmed(i, c.node)
					i++
					continue
				}
				if ok {
					continue // nacked: send it again on the same channel
				}
				err = errors.New("confirms closed: connection lost")
			case <-time.After(10 * time.Second):
				err = errors.New("no confirm within 10s")
			}
		}
		// Lost (or stuck): the outcome of message i is unknown. Close
		// what is left and send it again through another node.
		_ = c.conn.Close()
		if cerr := c.connect(ctx, true); cerr != nil {
			return fmt.Errorf("message %d (%v): %v", i, err, cerr)
		}
	}
	return c.conn.Close()
}

func TestAmqp091ReconnectPatternAcrossNodes(t *testing.T) {
	nodes := startTestCluster(t, 3, 0)
	byURL := map[string]*ternNode{}
	var urls []string
	for _, nd := range nodes {
		urls = append(urls, nd.url())
		byURL[nd.url()] = nd
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const total = 1500
	var (
		mu     sync.Mutex
		killed *ternNode
	)
	pub := &reconnectingClient{urls: urls, queue: "reconnect"}
	err := pub.publishConfirmed(ctx, total, func(i int, node string) {
		if i == total/3 {
			// Kill the node the publisher is on, mid-stream.
			mu.Lock()
			killed = byURL[node]
			mu.Unlock()
			t.Logf("message %d confirmed through %s: kill -9 it", i, killed.name)
			killed.kill9(t)
		}
	})
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	if killed == nil {
		t.Fatal("the publisher never reached the message that kills its node")
	}
	if byURL[pub.node] == killed {
		t.Fatalf("the publisher finished on %s, the node that was killed", killed.name)
	}
	t.Logf("publisher moved from %s to %s", killed.name, byURL[pub.node].name)

	// The consumer: the same pattern, consuming until every number has
	// arrived, from a node that is still up.
	cons := &reconnectingClient{urls: urls, queue: "reconnect"}
	seen := make(map[int]int, total)
	for len(seen) < total {
		if err := cons.connect(ctx, false); err != nil {
			t.Fatalf("consumer: %v (got %d of %d)", err, len(seen), total)
		}
		_ = cons.ch.Qos(100, 0, false)
		deliveries, err := cons.ch.Consume("reconnect", "", false, false, false, false, nil)
		if err != nil {
			_ = cons.conn.Close()
			continue
		}
	read:
		for len(seen) < total {
			select {
			case d, ok := <-deliveries:
				if !ok {
					break read // lost: reconnect
				}
				n, err := strconv.Atoi(string(d.Body))
				if err != nil || n < 0 || n >= total {
					t.Fatalf("unexpected message %q", d.Body)
				}
				seen[n]++
				_ = d.Ack(false)
			case <-ctx.Done():
				t.Fatalf("consumed %d of %d before the deadline", len(seen), total)
			}
		}
		_ = cons.conn.Close()
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("consumed all %d confirmed messages through %s (%d delivered twice: re-sent after the lost connection)", total, byURL[cons.node].name, dups)
}

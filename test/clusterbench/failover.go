package main

import (
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// failoverTarget is what a failover trial does to a cluster.
type failoverTarget struct {
	urls    []string                        // node i's AMQP URL
	leader  func(queue string) (int, error) // index of the queue's leader
	kill9   func(i int)
	restart func(i int) error // start node i again and wait until it has caught up
}

// trial is one kill -9 of the queue's leader under load.
type trial struct {
	leader, via int
	failover    time.Duration // kill → first confirm of a publish made after the kill (main publisher)
	probe       time.Duration // kill → first confirm of the probe (one publish every 20 ms on its own channel)
	nacked      int
	err         error
	probeErr    error
}

type probeResult struct {
	d   time.Duration
	err error
}

// failoverTrial follows TestQuorumQueueSurvivesKill9OfItsLeader: a
// publisher with confirms (256 in flight) on a node that does not lead the
// queue; once 1,000 publishes are confirmed the leader is killed with
// kill -9; the trial measures the time to the first confirm of a publish
// made after the kill, and, on a second channel publishing every 20 ms from
// the kill on, the time to its first confirm.
func failoverTrial(tg failoverTarget, queue string) trial {
	var tr trial
	leader, err := tg.leader(queue)
	if err != nil {
		tr.err = err
		return tr
	}
	tr.leader, tr.via = leader, (leader+1)%len(tg.urls)
	conn, err := amqp.Dial(tg.urls[tr.via])
	if err != nil {
		tr.err = err
		return tr
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		tr.err = err
		return tr
	}
	_, _ = ch.QueuePurge(queue, false)
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1<<16))
	var (
		mu              sync.Mutex
		acked, nacked   int
		published       uint64
		killedAt        time.Time
		publishedAtKill uint64
		firstAfter      = make(chan struct{})
	)
	go func() {
		for cf := range confirms {
			mu.Lock()
			if cf.Ack {
				acked++
				if !killedAt.IsZero() && tr.failover == 0 && cf.DeliveryTag > publishedAtKill {
					tr.failover = time.Since(killedAt)
					close(firstAfter)
				}
			} else {
				nacked++
			}
			mu.Unlock()
		}
	}()
	stop := make(chan struct{})
	pubDone := make(chan error, 1)
	body := make([]byte, 1024)
	go func() {
		for {
			select {
			case <-stop:
				pubDone <- nil
				return
			default:
			}
			mu.Lock()
			outstanding := published - uint64(acked+nacked)
			mu.Unlock()
			if outstanding >= 256 {
				time.Sleep(time.Millisecond)
				continue
			}
			if err := ch.Publish("", queue, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}); err != nil {
				pubDone <- err
				return
			}
			mu.Lock()
			published++
			mu.Unlock()
		}
	}()
	defer func() { close(stop); <-pubDone }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := acked
		mu.Unlock()
		if n >= 1000 {
			break
		}
		if time.Now().After(deadline) {
			tr.err = fmt.Errorf("only %d confirms in 60s before the kill", n)
			return tr
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	killedAt, publishedAtKill = time.Now(), published
	mu.Unlock()
	tg.kill9(leader)
	probeDone := make(chan probeResult, 1)
	go func() {
		d, err := probe(tg.urls[tr.via], queue, killedAt)
		probeDone <- probeResult{d, err}
	}()
	select {
	case <-firstAfter:
	case <-time.After(30 * time.Second):
		tr.err = fmt.Errorf("no confirm of a publish made after the kill within 30s")
	}
	pr := <-probeDone
	tr.probe, tr.probeErr = pr.d, pr.err
	mu.Lock()
	tr.nacked = nacked
	mu.Unlock()
	return tr
}

// probe publishes to queue every 20 ms on its own connection from killedAt
// and returns the time from killedAt to its first confirm.
func probe(url, queue string, killedAt time.Time) (time.Duration, error) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		return 0, err
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 4096))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(30 * time.Second)
	nacks := 0
	for {
		select {
		case cf, ok := <-confirms:
			if !ok {
				return 0, fmt.Errorf("probe channel closed: %v", ch.IsClosed())
			}
			if cf.Ack {
				return time.Since(killedAt), nil
			}
			nacks++
		case <-tick.C:
			if err := ch.Publish("", queue, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("probe")}); err != nil {
				return 0, fmt.Errorf("probe publish: %w", err)
			}
		case <-timeout:
			return 0, fmt.Errorf("probe: no confirm in 30s (%d nacks)", nacks)
		}
	}
}

package broker

import (
	"slices"
	"time"

	"github.com/tern-broker/tern/internal/message"
)

// deadLetter is a message leaving a queue for its dead-letter exchange.
type deadLetter struct {
	msg    *message.Message
	reason string // rejected, expired, maxlen
	// paged: the body is in the queue's log under seq, to be read (and the
	// message settled) once the queue's lock is released.
	seq   uint64
	paged bool
}

// deadLetter republishes messages to the queue's dead-letter exchange with
// the x-death history RabbitMQ writes. It runs without the queue's lock.
// A missing dead-letter exchange drops the messages, as in RabbitMQ.
func (q *Queue) deadLetter(dead []deadLetter) {
	if len(dead) == 0 || !q.cur().hasDLX {
		return
	}
	for i := range dead {
		if d := &dead[i]; d.paged {
			m, err := q.log.Read(d.seq)
			q.settle(d.seq, 0, false, true) // read first: the ack may free its segment
			if err != nil {
				q.readFailed(d.seq, err)
			}
			d.msg = m
		}
	}
	v := q.vhost
	x := v.exchange(q.cur().dlx)
	if x == nil {
		v.broker.stats.deadLetterDropped.Add(uint64(len(dead)))
		return
	}
	var scratch RouteScratch
	now := v.broker.cfg.Clock.Now()
	for _, d := range dead {
		if d.msg == nil {
			continue // unreadable: logged above
		}
		m := q.deadLetterCopy(d.msg, d.reason, now)
		targets := v.routeAll(&scratch, x, m)
		// A message that went round a cycle without ever being rejected is
		// dropped rather than looping forever (RabbitMQ's rule).
		targets = slices.DeleteFunc(targets, func(dst *Queue) bool { return isCycle(m, dst.cfg.Name) })
		if len(targets) == 0 {
			v.broker.stats.deadLetterDropped.Add(1)
		}
		for _, dst := range targets {
			dst.publish(m, nil, 0)
		}
		v.broker.stats.deadLettered.Add(1)
	}
}

// deadLetterCopy returns the dead-lettered form of m: new routing key if
// configured, expiration removed (kept as original-expiration), and x-death
// updated.
func (q *Queue) deadLetterCopy(m *message.Message, reason string, now time.Time) *message.Message {
	c := &message.Message{
		Exchange:   q.cur().dlx,
		RoutingKey: m.RoutingKey,
		Props:      m.Props,
		Body:       m.Body,
		Published:  now.UnixNano(),
	}
	if q.cur().hasDLRK {
		c.RoutingKey = q.cur().dlrk
	}
	hdrs := make(map[string]any, len(m.Props.Headers)+4)
	for k, v := range m.Props.Headers {
		hdrs[k] = v
	}
	origExpiration := c.Props.Expiration
	c.Props.Expiration = ""

	var deaths []any
	if old, ok := hdrs["x-death"].([]any); ok {
		deaths = slices.Clone(old)
	}
	found := -1
	for i, d := range deaths {
		t, ok := d.(map[string]any)
		if !ok {
			continue
		}
		if t["queue"] == q.cfg.Name && t["reason"] == reason {
			found = i
			break
		}
	}
	if found >= 0 {
		t := cloneTable(deaths[found].(map[string]any))
		n, _ := argInt(t["count"])
		t["count"] = n + 1
		t["time"] = now.Truncate(time.Second)
		deaths = slices.Delete(deaths, found, found+1)
		deaths = slices.Insert(deaths, 0, any(t))
	} else {
		t := map[string]any{
			"count":        int64(1),
			"reason":       reason,
			"queue":        q.cfg.Name,
			"time":         now.Truncate(time.Second),
			"exchange":     m.Exchange,
			"routing-keys": []any{m.RoutingKey},
		}
		if origExpiration != "" {
			t["original-expiration"] = origExpiration
		}
		deaths = slices.Insert(deaths, 0, any(t))
	}
	hdrs["x-death"] = deaths
	if _, ok := hdrs["x-first-death-reason"]; !ok {
		hdrs["x-first-death-reason"] = reason
		hdrs["x-first-death-queue"] = q.cfg.Name
		hdrs["x-first-death-exchange"] = m.Exchange
	}
	hdrs["x-last-death-reason"] = reason
	hdrs["x-last-death-queue"] = q.cfg.Name
	hdrs["x-last-death-exchange"] = m.Exchange
	c.Props.Headers = hdrs
	return c
}

func cloneTable(t map[string]any) map[string]any {
	c := make(map[string]any, len(t))
	for k, v := range t {
		c[k] = v
	}
	return c
}

// isCycle reports whether delivering m to queue would close a dead-letter
// cycle with no rejection in it.
func isCycle(m *message.Message, queue string) bool {
	deaths, _ := m.Props.Headers["x-death"].([]any)
	seen := false
	for _, d := range deaths {
		t, ok := d.(map[string]any)
		if !ok {
			continue
		}
		if t["reason"] == "rejected" {
			return false
		}
		if t["queue"] == queue {
			seen = true
		}
	}
	return seen
}

package amqp

import (
	"sort"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

func (ch *channel) basicAck(m *amqp091.BasicAck) error {
	return ch.settle(m.DeliveryTag, m.Multiple, false, true, m)
}

// settle handles basic.ack, basic.nack and basic.reject, deferring them to
// commit inside a transaction. A basic.reject with requeue is a failed
// delivery (Queue.RequeueFailed: counted by quorum queues against
// x-delivery-limit); a basic.nack with requeue is not, as in RabbitMQ 4.3.
func (ch *channel) settle(tag uint64, multiple, requeue, ack bool, m amqp091.Method) error {
	_, failed := m.(*amqp091.BasicReject)
	failed = failed && requeue
	if ch.tx != nil {
		ch.tx.settles = append(ch.tx.settles, txSettle{tag: tag, multiple: multiple, requeue: requeue, ack: ack, failed: failed})
		return nil
	}
	return ch.settleNow(tag, multiple, requeue, ack, failed, m)
}

func (ch *channel) settleNow(tag uint64, multiple, requeue, ack, failed bool, m amqp091.Method) error {
	ch.mu.Lock()
	var ds []broker.Delivery
	switch {
	case multiple && tag == 0:
		// Spec: multiple with tag 0 means every outstanding message.
		ds = ch.takeUnackedLocked(func(*unacked) bool { return true })
	case multiple:
		i := ch.findLocked(tag)
		if i < 0 {
			ch.mu.Unlock()
			return newError(amqp091.PreconditionFailed, m, "unknown delivery tag %d", tag)
		}
		ds = ch.takeUnackedLocked(func(u *unacked) bool { return u.tag <= tag })
	default:
		i := ch.findLocked(tag)
		if i < 0 {
			ch.mu.Unlock()
			return newError(amqp091.PreconditionFailed, m, "unknown delivery tag %d", tag)
		}
		var one [1]broker.Delivery
		one[0] = ch.settleOneLocked(i)
		ds = one[:]
	}
	global := ch.prefetchCount > 0 || ch.prefetchSize > 0
	ch.mu.Unlock()

	for start := 0; start < len(ds); {
		end := start + 1
		for end < len(ds) && ds[end].Queue == ds[start].Queue {
			end++
		}
		q := ds[start].Queue
		switch {
		case ack:
			q.Ack(ds[start:end]...)
			ch.counters.ack.Add(uint64(end - start))
		case failed:
			q.RequeueFailed(ds[start:end])
		case requeue:
			q.Requeue(ds[start:end])
		default:
			q.Reject(ds[start:end])
		}
		start = end
	}
	if global || !ack {
		ch.redispatch()
	}
	return nil
}

// findLocked returns the index in unacked of the unsettled tag, or -1.
func (ch *channel) findLocked(tag uint64) int {
	s := ch.unacked[ch.head:]
	i := sort.Search(len(s), func(i int) bool { return s[i].tag >= tag })
	if i == len(s) || s[i].tag != tag || s[i].done {
		return -1
	}
	return ch.head + i
}

// settleOneLocked marks unacked[i] settled and returns its delivery.
func (ch *channel) settleOneLocked(i int) broker.Delivery {
	d := ch.markSettledLocked(&ch.unacked[i])
	ch.compactLocked()
	return d
}

// markSettledLocked settles u and releases the prefetch credit it held.
func (ch *channel) markSettledLocked(u *unacked) broker.Delivery {
	u.done = true
	ch.live--
	size := int64(len(u.d.Msg.Body))
	ch.liveBytes -= size
	if u.c != nil {
		u.c.unacked--
		u.c.unackedB -= size
	}
	return u.d
}

// takeUnackedLocked settles every unsettled entry that match selects (in tag
// order) and returns their deliveries.
func (ch *channel) takeUnackedLocked(match func(*unacked) bool) []broker.Delivery {
	var ds []broker.Delivery
	for i := ch.head; i < len(ch.unacked); i++ {
		u := &ch.unacked[i]
		if u.done {
			continue
		}
		if !match(u) {
			break
		}
		ds = append(ds, ch.markSettledLocked(u))
	}
	ch.compactLocked()
	return ds
}

// compactLocked advances head past settled entries and reclaims space.
func (ch *channel) compactLocked() {
	for ch.head < len(ch.unacked) && ch.unacked[ch.head].done {
		ch.unacked[ch.head] = unacked{}
		ch.head++
	}
	if ch.head == len(ch.unacked) {
		ch.unacked, ch.head = ch.unacked[:0], 0
		return
	}
	if ch.head > 1024 && ch.head > len(ch.unacked)/2 {
		n := copy(ch.unacked, ch.unacked[ch.head:])
		clear(ch.unacked[n:])
		ch.unacked, ch.head = ch.unacked[:n], 0
	}
}

// recover requeues every unacked message of the channel (basic.recover).
// RabbitMQ treats requeue=false the same way: redelivery may reach any
// consumer.
func (ch *channel) recover() {
	ch.mu.Lock()
	ds := ch.takeUnackedLocked(func(*unacked) bool { return true })
	ch.mu.Unlock()
	requeueByQueue(ds)
}

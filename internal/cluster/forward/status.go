package forward

import (
	"context"

	"github.com/tern-broker/tern/internal/broker"
)

// A forwarded consumer's single-active status (/api/consumers, RabbitMQ's
// activity_status). The queue's node decides which of a
// single-active-consumer queue's consumers is active — here, one of the
// proxies registered there — so the client node asks it: one request per
// consumer listed, with the owner's answer, waiting RequestTimeout at
// most; an owner that is unreachable (or lately found so), or of a version
// without KindStatus, answers nothing and the consumer shows up.

// ConsumerStatus implements broker.ConsumerStatusForwarder.
func (f *Forwarder) ConsumerStatus(q *broker.Queue, c broker.Consumer) broker.ConsumerStatus {
	f.mu.Lock()
	rc := f.byQC[qc{q, c}]
	f.mu.Unlock()
	if rc == nil {
		return broker.ConsumerUp
	}
	l := rc.l
	now := f.cfg.Clock.Now()
	l.mu.Lock()
	down := now.Before(l.downUntil)
	l.mu.Unlock()
	if down {
		return broker.ConsumerUp
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.RequestTimeout)
	defer cancel()
	reply, err := f.tr.Request(ctx, l.node, KindStatus, appendKeepalive(nil, f.epoch, []kaItem{{Consumer: rc.id}}))
	if err != nil {
		l.failed(err)
		return broker.ConsumerUp
	}
	vs, err := decodeUvarints(reply, 1)
	if err != nil || len(vs) != 1 {
		return broker.ConsumerUp
	}
	switch s := broker.ConsumerStatus(vs[0]); s {
	case broker.ConsumerSingleActive, broker.ConsumerWaiting:
		return s
	}
	return broker.ConsumerUp
}

// handleStatus answers, for each of the client node's consumers named
// (a keepalive's encoding: its epoch, then the ids), its proxy's status on
// its queue here; ConsumerUp for one this node does not have.
func (f *Forwarder) handleStatus(from uint64, body []byte) ([]byte, error) {
	epoch, items, err := decodeKeepalive(body)
	if err != nil {
		return nil, err
	}
	s := f.sessionFor(from, epoch, sessionFind)
	out := make([]byte, 0, len(items))
	for _, it := range items {
		st := broker.ConsumerUp
		if s != nil {
			s.mu.Lock()
			p := s.proxies[it.Consumer]
			s.mu.Unlock()
			if p != nil {
				st = p.q.ConsumerStatus(p) // takes the queue's lock: none of ours is held
			}
		}
		out = appendUvarint(out, uint64(st))
	}
	return out, nil
}

package amqp

import (
	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// txState buffers a transaction's publishes and acknowledgements until
// tx.commit (spec class tx).
type txState struct {
	publishes []txPublish
	settles   []txSettle
}

type txPublish struct {
	msg       *message.Message
	mandatory bool
}

type txSettle struct {
	tag               uint64
	multiple, requeue bool
	ack               bool
	failed            bool // basic.reject with requeue
}

func (ch *channel) txSelect(m *amqp091.TxSelect) error {
	if ch.confirm {
		return newError(amqp091.PreconditionFailed, m, "cannot switch from confirm to tx mode")
	}
	if ch.tx == nil {
		ch.tx = &txState{}
	}
	ch.send(&amqp091.TxSelectOk{})
	return nil
}

func (ch *channel) txCommit(m *amqp091.TxCommit) error {
	if ch.tx == nil {
		return newError(amqp091.PreconditionFailed, m, "channel is not transactional")
	}
	tx := *ch.tx
	ch.tx.publishes, ch.tx.settles = nil, nil
	w := &txCommitWaiter{ch: ch}
	w.pending.Store(txRouting)
	for _, p := range tx.publishes {
		res, err := ch.route(p.msg, p.mandatory, w)
		if err != nil {
			return err
		}
		w.pending.Add(int64(res.Pending))
	}
	for _, s := range tx.settles {
		if err := ch.settleNow(s.tag, s.multiple, s.requeue, s.ack, s.failed, m); err != nil {
			return err
		}
	}
	w.release(txRouting) // commit-ok now, or when the last durable append is on disk
	return nil
}

func (ch *channel) txRollback(m *amqp091.TxRollback) error {
	if ch.tx == nil {
		return newError(amqp091.PreconditionFailed, m, "channel is not transactional")
	}
	ch.tx.publishes, ch.tx.settles = nil, nil
	ch.send(&amqp091.TxRollbackOk{})
	return nil
}

package amqp

import (
	"errors"
	"sync"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

type publishState uint8

const (
	pubIdle       publishState = iota
	pubWantHeader              // basic.publish seen, content header next
	pubWantBody                // header seen, body frames next
)

// channel is one AMQP channel. Fields above mu are owned by the connection's
// reader goroutine; fields below it are shared with the queues that deliver
// to the channel's consumers and are guarded by mu.
type channel struct {
	id      uint16
	conn    *connection
	closing bool // we sent channel.close and await close-ok

	counters chanCounters // message_stats (channel_stats.go)

	// Publishing.
	pubState  publishState
	pub       amqp091.BasicPublish
	hdr       amqp091.ContentHeader
	msg       *message.Message
	scratch   broker.RouteScratch
	lastQueue string                 // the last queue declared, for methods naming queue ""
	pubCache  map[string]pubDecision // access.go: publish decisions by exchange
	pubGen    uint64                 // the permissions' generation pubCache holds
	pubLast   struct {               // the last exchange published to, an allowed one, and its decision
		name  string
		d     pubDecision
		key   string // a routing key its topic permission allowed, if keyOK
		keyOK bool
	}
	pubLastOK bool

	confirm       bool
	publishSeq    uint64   // sequence number of the last publish in confirm mode
	cf            confirms // shared with the store's commit goroutine
	confirmQueued bool     // in conn.confirmQ
	tx            *txState

	ackMethod amqp091.BasicAck // reused for the common basic.ack

	mu            sync.Mutex
	closed        bool
	nextTag       uint64
	unacked       []unacked // ordered by tag; entries before head are settled
	head          int
	live          int   // unsettled entries
	liveBytes     int64 // their body bytes
	consumers     map[string]*consumer
	prefetchCount uint16 // channel-wide (qos global=true)
	prefetchSize  uint32
	consumerCount uint16 // for consumers created later (qos global=false)
	consumerSize  uint32
	replyQueue    string // direct reply-to queue, if a reply consumer exists
}

// unacked is a delivery awaiting ack, nack or reject.
type unacked struct {
	tag  uint64
	d    broker.Delivery
	c    *consumer // nil for basic.get
	done bool
}

func newChannel(c *connection, id uint16) *channel {
	return &channel{id: id, conn: c, consumers: map[string]*consumer{}}
}

func (ch *channel) send(m amqp091.Method) { ch.conn.appendMethod(ch.id, m) }

// handleMethod dispatches one method frame; the hot methods skip the
// allocating generic decoder.
func (ch *channel) handleMethod(payload []byte) error {
	cls, mth := amqp091.MethodIDs(payload)
	if ch.closing {
		return ch.handleWhileClosing(cls, mth)
	}
	if ch.pubState != pubIdle {
		return newError(amqp091.UnexpectedFrame, nil, "expected content frame on channel %d, got method %d.%d", ch.id, cls, mth)
	}
	var err error
	switch {
	case cls == amqp091.ClassBasic && mth == amqp091.MethodBasicPublish:
		if _, derr := ch.conn.dec.DecodeMethodInto(payload, &ch.pub); derr != nil {
			return decodeError(derr)
		}
		err = ch.basicPublish()
	case cls == amqp091.ClassBasic && mth == amqp091.MethodBasicAck:
		if _, derr := ch.conn.dec.DecodeMethodInto(payload, &ch.ackMethod); derr != nil {
			return decodeError(derr)
		}
		err = ch.basicAck(&ch.ackMethod)
	default:
		m, derr := amqp091.DecodeMethod(payload)
		if derr != nil {
			return decodeError(derr)
		}
		err = ch.dispatch(m)
		if ae := asAMQPError(err); ae != nil && ae.classID == 0 {
			ae.classID, ae.methodID = m.IDs()
		}
	}
	if ae := asAMQPError(err); ae != nil {
		ae.ch = ch.id
		if ae.classID == 0 {
			ae.classID, ae.methodID = cls, mth
		}
	}
	return err
}

func asAMQPError(err error) *amqpError {
	if err == nil {
		return nil
	}
	var ae *amqpError
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}

// handleWhileClosing drops everything but the close handshake (spec 2.2.4).
// The channel stays until the client's close-ok for our close: a client that
// closed at the same moment answers our close after its own, and that
// close-ok must find the channel (as in RabbitMQ), not a free id whose
// frames would be a connection error.
func (ch *channel) handleWhileClosing(cls, mth uint16) error {
	switch {
	case cls == amqp091.ClassChannel && mth == amqp091.MethodChannelCloseOk:
		ch.conn.removeChannel(ch)
	case cls == amqp091.ClassChannel && mth == amqp091.MethodChannelClose: // crossing ours
		ch.send(&amqp091.ChannelCloseOk{})
	}
	return nil
}

func (ch *channel) dispatch(m amqp091.Method) error {
	switch m := m.(type) {
	case *amqp091.ChannelOpen:
		return newError(amqp091.ChannelError, m, "second 'channel.open' seen")
	case *amqp091.ChannelClose:
		ch.release()
		ch.send(&amqp091.ChannelCloseOk{})
		ch.conn.removeChannel(ch)
		return nil
	case *amqp091.ChannelCloseOk:
		return nil
	case *amqp091.ChannelFlow:
		return ch.channelFlow(m)
	case *amqp091.ChannelFlowOk:
		return nil
	case *amqp091.AccessRequest:
		ch.send(&amqp091.AccessRequestOk{Ticket: 1})
		return nil
	case *amqp091.ExchangeDeclare:
		return ch.exchangeDeclare(m)
	case *amqp091.ExchangeDelete:
		return ch.exchangeDelete(m)
	case *amqp091.ExchangeBind:
		return ch.exchangeBind(m)
	case *amqp091.ExchangeUnbind:
		return ch.exchangeUnbind(m)
	case *amqp091.QueueDeclare:
		return ch.queueDeclare(m)
	case *amqp091.QueueBind:
		return ch.queueBind(m)
	case *amqp091.QueueUnbind:
		return ch.queueUnbind(m)
	case *amqp091.QueuePurge:
		return ch.queuePurge(m)
	case *amqp091.QueueDelete:
		return ch.queueDelete(m)
	case *amqp091.BasicQos:
		return ch.basicQos(m)
	case *amqp091.BasicConsume:
		return ch.basicConsume(m)
	case *amqp091.BasicCancel:
		return ch.basicCancel(m)
	case *amqp091.BasicGet:
		return ch.basicGet(m)
	case *amqp091.BasicAck:
		return ch.basicAck(m)
	case *amqp091.BasicNack:
		return ch.settle(m.DeliveryTag, m.Multiple, m.Requeue, false, m)
	case *amqp091.BasicReject:
		return ch.settle(m.DeliveryTag, false, m.Requeue, false, m)
	case *amqp091.BasicRecover:
		ch.recover()
		ch.send(&amqp091.BasicRecoverOk{})
		return nil
	case *amqp091.BasicRecoverAsync:
		ch.recover()
		return nil
	case *amqp091.ConfirmSelect:
		return ch.confirmSelect(m)
	case *amqp091.TxSelect:
		return ch.txSelect(m)
	case *amqp091.TxCommit:
		return ch.txCommit(m)
	case *amqp091.TxRollback:
		return ch.txRollback(m)
	}
	return newError(amqp091.CommandInvalid, m, "method %s is not valid from a client", m.Name())
}

// closeWithError closes the channel on a soft error: resources are released
// at once, then the channel waits for close-ok.
func (ch *channel) closeWithError(e *amqpError) {
	ch.conn.log.Info("closing channel on error", "channel", ch.id, "code", e.code, "text", e.text)
	ch.release()
	ch.closing = true
	ch.pubState = pubIdle
	ch.msg = nil
	ch.send(&amqp091.ChannelClose{ReplyCode: e.code, ReplyText: e.text, ClassID: e.classID, MethodID: e.methodID})
}

// release cancels the channel's consumers and returns its unacked messages
// to their queues in order, marked redelivered. Safe to call twice.
func (ch *channel) release() {
	ch.cf.mu.Lock()
	ch.cf.closed = true
	ch.cf.mu.Unlock()
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return
	}
	ch.closed = true
	consumers := ch.consumers
	ch.consumers = map[string]*consumer{}
	pending := ch.takeUnackedLocked(func(*unacked) bool { return true })
	replyQueue := ch.replyQueue
	ch.mu.Unlock()

	for _, c := range consumers {
		c.queue.Cancel(c)
		ch.conn.srv.stats.consumersOpen.Add(-1)
	}
	requeueByQueue(pending)
	if replyQueue != "" {
		_, _ = ch.conn.vhost.DeleteQueue(replyQueue, false, false, ch.conn.id)
	}
	ch.tx = nil
}

// requeueByQueue returns deliveries to their queues, one call per queue.
func requeueByQueue(ds []broker.Delivery) {
	if len(ds) == 0 {
		return
	}
	byQueue := map[*broker.Queue][]broker.Delivery{}
	var order []*broker.Queue
	for _, d := range ds {
		if _, ok := byQueue[d.Queue]; !ok {
			order = append(order, d.Queue)
		}
		byQueue[d.Queue] = append(byQueue[d.Queue], d)
	}
	for _, q := range order {
		q.Requeue(byQueue[q])
	}
}

// redispatch asks the queues of the channel's consumers to deliver again.
func (ch *channel) redispatch() {
	ch.mu.Lock()
	queues := make([]*broker.Queue, 0, len(ch.consumers))
	for _, c := range ch.consumers {
		queues = append(queues, c.queue)
	}
	ch.mu.Unlock()
	for _, q := range queues {
		q.Dispatch()
	}
}

// channelFlow answers as RabbitMQ does: active=true is a no-op, and a client
// may not pause the server's deliveries with active=false (540, a connection
// error); prefetch is the way to limit them. See docs/design/amqp.md.
func (ch *channel) channelFlow(m *amqp091.ChannelFlow) error {
	if !m.Active {
		return newError(amqp091.NotImplemented, m, "active=false")
	}
	ch.send(&amqp091.ChannelFlowOk{Active: true})
	return nil
}

// queueName resolves "" to the channel's last declared queue (spec: the
// "current queue").
func (ch *channel) queueName(name string, m amqp091.Method) (string, error) {
	if name != "" {
		return name, nil
	}
	if ch.lastQueue == "" {
		return "", newError(amqp091.NotFound, m, "no previously declared queue")
	}
	return ch.lastQueue, nil
}

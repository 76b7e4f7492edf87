package broker

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Durable definitions: every change to a durable exchange, queue or binding
// marks its vhost dirty under v.mu; the public method then, without the
// lock, saves a fresh snapshot of the whole node through Storage. Saves are
// serialised by b.defsMu and each writes the state as of its start, so the
// last save always holds the latest state.

// DeclareExchange creates an exchange or checks that an existing one is
// equivalent. With passive it only checks existence.
func (v *VHost) DeclareExchange(cfg ExchangeConfig, passive bool) (*Exchange, error) {
	x, err := v.declareExchange(cfg, passive)
	if err != nil {
		return nil, err
	}
	return x, v.persist()
}

// DeleteExchange removes an exchange and its bindings. Deleting a missing
// exchange succeeds, as in RabbitMQ.
func (v *VHost) DeleteExchange(name string, ifUnused bool) error {
	if err := v.deleteExchange(name, ifUnused); err != nil {
		return err
	}
	return v.persist()
}

// DeclareQueue creates a queue or checks that an existing one is
// equivalent. An empty name gets a server-generated "amq.gen-…" name. conn
// identifies the declaring connection for exclusive queues. A durable,
// non-exclusive queue gets a log in storage and survives restarts.
func (v *VHost) DeclareQueue(cfg QueueConfig, passive bool, conn uint64) (*Queue, error) {
	q, err := v.declareQueue(cfg, passive, conn)
	if err != nil {
		return nil, err
	}
	return q, v.persist()
}

// DeleteQueue deletes a queue, its messages, its log and its bindings,
// cancelling its consumers, and returns how many messages it held.
// Deleting a missing queue succeeds with 0, as in RabbitMQ. conn 0 is the
// broker itself.
func (v *VHost) DeleteQueue(name string, ifUnused, ifEmpty bool, conn uint64) (int, error) {
	n, cancel, err := v.DeleteQueueThenCancel(name, ifUnused, ifEmpty, conn)
	cancel()
	return n, err
}

// DeleteQueueThenCancel is DeleteQueue leaving the consumers' cancellation to
// the caller: cancel (never nil) tells them. An AMQP channel answers
// delete-ok first, as RabbitMQ orders them, so a client that closes once its
// consumer is cancelled still gets the reply.
func (v *VHost) DeleteQueueThenCancel(name string, ifUnused, ifEmpty bool, conn uint64) (int, func(), error) {
	n, cancel, err := v.deleteQueue(name, ifUnused, ifEmpty, conn)
	if err != nil {
		return 0, cancel, err
	}
	return n, cancel, v.persist()
}

// BindQueue binds queue to exchange with key and args. Binding twice is a
// no-op.
func (v *VHost) BindQueue(queue, exchange, key string, args map[string]any, conn uint64) error {
	if err := v.bindQueue(queue, exchange, key, args, conn); err != nil {
		return err
	}
	return v.persist()
}

// UnbindQueue removes a queue binding; a missing binding is not an error.
func (v *VHost) UnbindQueue(queue, exchange, key string, args map[string]any, conn uint64) error {
	if err := v.unbindQueue(queue, exchange, key, args, conn); err != nil {
		return err
	}
	return v.persist()
}

// BindExchange binds destination to source (exchange-to-exchange binding,
// a RabbitMQ extension).
func (v *VHost) BindExchange(destination, source, key string, args map[string]any) error {
	if err := v.bindExchange(destination, source, key, args); err != nil {
		return err
	}
	return v.persist()
}

// UnbindExchange removes an exchange-to-exchange binding.
func (v *VHost) UnbindExchange(destination, source, key string, args map[string]any) error {
	if err := v.unbindExchange(destination, source, key, args); err != nil {
		return err
	}
	return v.persist()
}

// persist saves the definitions if a durable object changed.
func (v *VHost) persist() error {
	v.mu.Lock()
	dirty := v.defsDirty
	v.defsDirty = false
	v.mu.Unlock()
	if !dirty || v.broker.cfg.Storage == nil {
		return nil
	}
	return v.broker.saveDefinitions()
}

func (b *Broker) saveDefinitions() error {
	b.defsMu.Lock()
	defer b.defsMu.Unlock()
	if err := b.cfg.Storage.SaveDefinitions(b.Definitions()); err != nil {
		b.log.Error("saving definitions failed", "err", err)
		return errorf(KindResourceError, "could not store definitions: %v", err)
	}
	return nil
}

// isDurableQueue says whether a queue is kept across restarts: durable and
// owned by no connection.
func isDurableQueue(q *Queue) bool { return q.cfg.Durable && !q.cfg.Exclusive && !q.cfg.Internal }

func (b *Binding) durable() bool {
	if !b.Source.cfg.Durable {
		return false
	}
	if b.Queue != nil {
		return isDurableQueue(b.Queue)
	}
	return b.Exchange.cfg.Durable
}

// Definitions returns the node's durable objects.
func (b *Broker) Definitions() *Definitions {
	d := &Definitions{}
	for _, v := range b.VHosts() {
		d.VHosts = append(d.VHosts, v.name)
		v.mu.Lock()
		v.exchanges.Range(func(_, xv any) bool {
			x := xv.(*Exchange)
			if x.cfg.Durable && !x.isDefault && !reservedName(x.cfg.Name) {
				d.Exchanges = append(d.Exchanges, ExchangeDef{VHost: v.name, ExchangeConfig: x.cfg})
			}
			for _, bd := range x.bindings {
				if bd.durable() {
					def := BindingDef{VHost: v.name, Source: x.cfg.Name, Key: bd.Key, Args: bd.Args}
					if bd.Queue != nil {
						def.Destination = bd.Queue.cfg.Name
					} else {
						def.Destination, def.DestIsExchange = bd.Exchange.cfg.Name, true
					}
					d.Bindings = append(d.Bindings, def)
				}
			}
			return true
		})
		v.queues.Range(func(_, qv any) bool {
			if q := qv.(*Queue); isDurableQueue(q) {
				d.Queues = append(d.Queues, QueueDef{VHost: v.name, ID: q.id, QueueConfig: q.cfg})
			}
			return true
		})
		v.mu.Unlock()
	}
	return d
}

// attachLogLocked gives a new durable queue or stream its log. v.mu is held.
func (v *VHost) attachLogLocked(q *Queue, id string) error {
	st := v.broker.cfg.Storage
	if q.kind == Stream {
		if st == nil || !q.cfg.Durable || q.cfg.Exclusive || q.cfg.AutoDelete {
			return errorf(KindPreconditionFailed, "invalid arguments for stream '%s' in vhost '%s': a stream must be durable, not exclusive and not auto-delete", q.cfg.Name, v.name)
		}
	}
	if st == nil || !isDurableQueue(q) {
		return nil
	}
	if id == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	if q.kind == Stream {
		l, err := st.StreamLog(id, q.args.segmentSize)
		if err != nil {
			return errorf(KindResourceError, "could not open the log of stream '%s': %v", q.cfg.Name, err)
		}
		q.id, q.log = id, l
		q.backend = newStreamBackend(q, l)
		return nil
	}
	l, err := st.QueueLog(id)
	if err != nil {
		return errorf(KindResourceError, "could not open the log of queue '%s': %v", q.cfg.Name, err)
	}
	q.id, q.log = id, l
	return nil
}

// Restore recreates stored definitions and the messages of durable queues
// at start-up, before any client connects.
func (b *Broker) Restore(d *Definitions) error {
	for _, name := range d.VHosts {
		b.AddVHost(name)
	}
	for _, xd := range d.Exchanges {
		v := b.AddVHost(xd.VHost)
		kind, err := routingKind(xd.ExchangeConfig)
		if err != nil {
			return fmt.Errorf("broker: restoring exchange %s: %w", xd.Name, err)
		}
		v.mu.Lock()
		if v.exchange(xd.Name) == nil {
			v.exchanges.Store(xd.Name, newExchange(v, xd.ExchangeConfig, kind))
		}
		v.mu.Unlock()
	}
	recovered := 0
	for _, qd := range d.Queues {
		v := b.AddVHost(qd.VHost)
		args, err := parseQueueArgs(qd.Name, v.name, qd.Args)
		if err != nil {
			return fmt.Errorf("broker: restoring queue %s: %w", qd.Name, err)
		}
		q := newQueue(v, qd.QueueConfig, args)
		v.mu.Lock()
		err = v.attachLogLocked(q, qd.ID)
		if err == nil {
			recovered += q.backend.restore()
			v.queues.Store(qd.Name, q)
		}
		v.mu.Unlock()
		if err != nil {
			return fmt.Errorf("broker: restoring queue %s: %w", qd.Name, err)
		}
	}
	for _, bd := range d.Bindings {
		v := b.AddVHost(bd.VHost)
		v.mu.Lock()
		src := v.exchange(bd.Source)
		bind := &Binding{Source: src, Key: bd.Key, Args: bd.Args}
		if bd.DestIsExchange {
			bind.Exchange = v.exchange(bd.Destination)
		} else {
			bind.Queue = v.queue(bd.Destination)
		}
		if src != nil && (bind.Exchange != nil || bind.Queue != nil) {
			_ = v.addBindingLocked(bind)
		} else {
			b.log.Warn("dropping a stored binding whose ends are gone", "vhost", v.name, "source", bd.Source, "destination", bd.Destination)
		}
		v.defsDirty = false
		v.mu.Unlock()
	}
	b.log.Info("restored definitions", "vhosts", len(d.VHosts), "exchanges", len(d.Exchanges),
		"queues", len(d.Queues), "bindings", len(d.Bindings), "messages", recovered)
	return nil
}

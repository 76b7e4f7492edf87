package mqtt

import (
	"strings"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// Subscription options travel in the binding's arguments, so a persistent
// session's subscriptions come back with its queue after a restart. The
// filter is the binding key read back (filterOf), so the arguments hold
// only the options: equal options make equal tables, which the broker
// shares between bindings (a map costs about 300 bytes; an offline session
// should cost under 1 KiB all told). A filter the key cannot give back (a
// literal '*', which the key turns into a wildcard like '+') is kept in
// x-mqtt-filter, as every filter was before.
func subArgs(filter string, o subOpts) map[string]any {
	a := map[string]any{
		"x-mqtt-qos": int32(o.qos), "x-mqtt-no-local": o.noLocal,
		"x-mqtt-retain-as-published": o.retainAsPublished, "x-mqtt-subscription-id": int64(o.subID),
	}
	if !keyGivesFilter(filter) {
		a["x-mqtt-filter"] = filter
	}
	return a
}

// legacySubArgs are the arguments of a subscription bound before the
// filter was left out of them.
func legacySubArgs(filter string, o subOpts) map[string]any {
	a := subArgs(filter, o)
	a["x-mqtt-filter"] = filter
	return a
}

// keyGivesFilter says keyToFilter(topicToKey(filter)) is filter.
func keyGivesFilter(filter string) bool { return !strings.Contains(filter, "*") }

// filterOf is the MQTT filter of a session queue's binding: x-mqtt-filter,
// else, for a binding carrying subscription options, its key read back;
// "" for a binding that is no MQTT subscription.
func filterOf(key string, args map[string]any) string {
	if f, _ := args["x-mqtt-filter"].(string); f != "" {
		return f
	}
	if _, ok := args["x-mqtt-qos"]; ok {
		return keyToFilter(key)
	}
	return ""
}

// unbindSub removes the binding of a subscription, in either form.
func (c *conn) unbindSub(filter string, o subOpts) {
	name, key := c.queue.Name(), topicToKey(filter)
	_ = c.vhost.UnbindQueue(name, "amq.topic", key, subArgs(filter, o), 0)
	if keyGivesFilter(filter) {
		_ = c.vhost.UnbindQueue(name, "amq.topic", key, legacySubArgs(filter, o), 0)
	}
}

func subOptsFromArgs(a map[string]any) subOpts {
	var o subOpts
	if v, ok := message.TableInt(a["x-mqtt-qos"]); ok {
		o.qos = byte(v)
	}
	o.noLocal, _ = a["x-mqtt-no-local"].(bool)
	o.retainAsPublished, _ = a["x-mqtt-retain-as-published"].(bool)
	if v, ok := message.TableInt(a["x-mqtt-subscription-id"]); ok {
		o.subID = uint32(v)
	}
	return o
}

func (c *conn) subscribe(p *wire.Subscribe) error {
	var subID uint32
	if len(p.Props.SubscriptionIDs) > 0 {
		subID = p.Props.SubscriptionIDs[0]
	}
	codes := make([]byte, len(p.Subs))
	var retained []retainedMsg
	var retainedQoS []byte
	for i, s := range p.Subs {
		if err := wire.ValidFilter(s.Filter); err != nil {
			codes[i] = wire.TopicFilterInvalid
			continue
		}
		o := subOpts{qos: min(s.QoS, 2), noLocal: s.NoLocal, retainAsPublished: s.RetainAsPublished, subID: subID}
		group, filter, ok := shared(s.Filter)
		if !ok && strings.HasPrefix(s.Filter, "$share/") {
			// "$share/g", "$share//f", "$share/g/": a shared subscription
			// needs a group name and a filter [MQTT-4.8.2-1, -2].
			codes[i] = wire.TopicFilterInvalid
			continue
		}
		if !c.allowed(auth.Read, filter) {
			codes[i] = c.refusedSubscription()
			continue
		}
		if ok {
			if s.NoLocal && c.v == wire.V5 {
				return &wire.Error{Code: wire.ProtocolError, Msg: "no-local on a shared subscription"} // [MQTT-3.8.3-4]
			}
			if err := c.subscribeShared(group, filter, o); err != nil {
				// The client gets 0x80 (5.0: 0x97 at the vhost's
				// max-queues) and no detail; the log gets it.
				codes[i] = wire.UnspecifiedError
				if broker.IsQueueLimit(err) {
					c.logger().Info("MQTT shared subscription refused", "filter", s.Filter, "err", err)
					if c.v == wire.V5 {
						codes[i] = wire.QuotaExceeded
					}
					continue
				}
				c.logger().Error("MQTT shared subscription failed", "filter", s.Filter, "err", err)
				continue
			}
			codes[i] = o.qos
			continue // shared subscriptions get no retained messages [MQTT-3.8.4-…]
		}
		// Record the subscription before binding, so nothing the binding
		// routes finds no subscription and is dropped; replace a binding by
		// adding the new one before removing the old, so the session is
		// never unbound in between [MQTT-3.8.4-3] (routing gives a queue a
		// message once however many of its bindings match).
		if err := c.ensureQueue(); err != nil {
			codes[i] = wire.UnspecifiedError
			if broker.IsQueueLimit(err) {
				// The vhost's max-queues: the operator's limit, not a
				// failure (5.0: 0x97 Quota exceeded).
				c.logger().Info("MQTT subscription refused", "filter", s.Filter, "err", err)
				if c.v == wire.V5 {
					codes[i] = wire.QuotaExceeded
				}
				continue
			}
			c.logger().Error("MQTT subscription failed", "filter", s.Filter, "err", err)
			continue
		}
		c.mu.Lock()
		old, existed := c.subs[s.Filter]
		put(&c.subs, s.Filter, o)
		c.mu.Unlock()
		key := topicToKey(s.Filter)
		if !existed || old != o {
			if err := c.vhost.BindQueue(c.queue.Name(), "amq.topic", key, subArgs(s.Filter, o), 0); err != nil {
				c.logger().Error("MQTT subscription failed", "filter", s.Filter, "err", err)
				c.mu.Lock()
				if existed {
					put(&c.subs, s.Filter, old)
				} else {
					delete(c.subs, s.Filter)
				}
				c.mu.Unlock()
				codes[i] = wire.UnspecifiedError
				continue
			}
			if existed {
				c.unbindSub(s.Filter, old)
			}
		}
		codes[i] = o.qos
		// Retained messages: 0 always, 1 only for a new subscription, 2 never
		// [MQTT-3.3.1-9, -10, -11].
		if s.RetainHandling == 0 || (s.RetainHandling == 1 && !existed) {
			for _, r := range c.srv.retained.matching(c.srv.cfg.VHost, s.Filter, c.srv.clock) {
				retained = append(retained, r)
				retainedQoS = append(retainedQoS, min(o.qos, messageQoS(r.msg)))
			}
		}
	}
	// SUBACK before the retained messages it announces [MQTT-3.8.4-…].
	c.send(&wire.Suback{PacketID: p.PacketID, ReasonCodes: codes, Props: c.reasonProps(codes)})
	for i, r := range retained {
		c.sendRetained(r, retainedQoS[i])
	}
	return nil
}

// sendRetained delivers a retained message straight to this client, with
// the retain flag set [MQTT-3.3.1-8].
func (c *conn) sendRetained(r retainedMsg, qos byte) {
	p := &wire.Publish{QoS: qos, Retain: true, Topic: r.topic, Payload: r.msg.Body}
	if c.v == wire.V5 {
		fromProps(&p.Props, r.msg, c.srv.clock)
	}
	c.mu.Lock()
	if qos > 0 {
		p.PacketID = c.allocPIDLocked()
		put(&c.inflight, p.PacketID, &outflight{qos: qos})
	}
	c.mu.Unlock()
	c.send(p)
}

// subscribeShared joins the group queue of "$share/group/filter": one
// queue per group and filter, every member a competing consumer.
func (c *conn) subscribeShared(group, filter string, o subOpts) error {
	name := "mqtt-shared-" + group + "-" + topicToKey(filter)
	key := group + "\x00" + filter
	c.mu.Lock()
	_, already := c.shared[key]
	c.mu.Unlock()
	if already {
		return nil
	}
	q, err := c.vhost.DeclareQueue(broker.QueueConfig{Name: name, AutoDelete: true}, false, 0)
	if err != nil {
		return err
	}
	if err := c.vhost.BindQueue(name, "amq.topic", topicToKey(filter), nil, 0); err != nil {
		return err
	}
	s := &subscriber{c: c, q: q, filter: filter, opts: o}
	c.mu.Lock()
	put(&c.shared, key, s)
	c.mu.Unlock()
	return q.Consume(s, broker.ConsumeOptions{})
}

func (c *conn) unsubscribe(p *wire.Unsubscribe) error {
	codes := make([]byte, len(p.Filters))
	for i, f := range p.Filters {
		if group, filter, ok := shared(f); ok {
			key := group + "\x00" + filter
			c.mu.Lock()
			s := c.shared[key]
			delete(c.shared, key)
			c.mu.Unlock()
			if s == nil {
				codes[i] = wire.NoSubscriptionExisted
				continue
			}
			s.q.Cancel(s)
			continue
		}
		c.mu.Lock()
		o, ok := c.subs[f]
		delete(c.subs, f)
		c.mu.Unlock()
		if !ok {
			codes[i] = wire.NoSubscriptionExisted
			continue
		}
		c.unbindSub(f, o)
	}
	c.send(&wire.Unsuback{PacketID: p.PacketID, ReasonCodes: codes, Props: c.reasonProps(codes)})
	return nil
}

// reasonProps carries a reason string for the first error code.
func (c *conn) reasonProps(codes []byte) wire.Properties {
	var pr wire.Properties
	for _, rc := range codes {
		if rc >= 0x80 {
			c.explain(&pr, rc)
			break
		}
	}
	return pr
}

package amqp

import (
	"fmt"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// Permissions, RabbitMQ's table ("How Permissions Work" in its access
// control guide): every declare, delete, bind, unbind, publish, consume,
// get and purge checks the user's configure, write or read expression in
// the connection's vhost against the resource's name, and topic
// permissions against routing keys on topic exchanges. A refusal is a
// channel error 403 ACCESS_REFUSED worded as RabbitMQ words it.
//
// The user's compiled grant is kept on the connection and reloaded when
// the store's generation moves (a permission changed), so a change applies
// to open connections at their next operation. The publish path caches
// its decision per channel per exchange (pubAllowed) and so costs one
// atomic load and one map lookup per message.

// connAccess is a connection's view of its user's permissions.
type connAccess struct {
	gen    uint64
	grant  *auth.Grant
	topics *auth.TopicRules
	// maxMessage is the vhost's max-message-size, -1 for none.
	maxMessage int64
}

// access returns the connection's permissions, reloaded if they changed.
func (c *connection) access() *connAccess {
	users := c.srv.users
	if g := users.Generation(); g != c.acc.gen || !c.accLoaded {
		vhost := c.vhost.Name()
		c.acc = connAccess{gen: g, grant: users.Grant(c.user.Name, vhost), topics: users.TopicRules(c.user.Name, vhost, "", nil),
			maxMessage: users.VHostLimit(vhost, auth.LimitMaxMessageSize)}
		c.accLoaded = true
	}
	return &c.acc
}

// resourceName is the name a permission matches: the default exchange is
// "amq.default", as in RabbitMQ.
func resourceName(kind, name string) string {
	if kind == "exchange" && name == "" {
		return "amq.default"
	}
	return name
}

// check refuses an operation needing access a on the resource kind
// ("exchange", "queue") name.
func (c *connection) check(a auth.Access, kind, name string, m amqp091.Method) error {
	name = resourceName(kind, name)
	if c.access().grant.Allows(a, name) {
		return nil
	}
	return newError(amqp091.AccessRefused, m, "%s access to %s '%s' in vhost '%s' refused for user '%s'", a, kind, name, c.vhost.Name(), c.user.Name)
}

// checkTopic refuses a routing key the user's topic permission on a topic
// exchange does not allow (a = Write: publish; Read: bind).
func (c *connection) checkTopic(a auth.Access, exchange, key string, m amqp091.Method) error {
	acc := c.access()
	if !acc.topics.Restricts(exchange) || !c.isTopic(exchange) || acc.topics.Allows(a, exchange, key) {
		return nil
	}
	return newError(amqp091.AccessRefused, m, "%s access to topic '%s' in exchange '%s' in vhost '%s' refused for user '%s'", a, key, exchange, c.vhost.Name(), c.user.Name)
}

// isTopic says whether the exchange exists and is a topic exchange: topic
// permissions apply to those only, as in RabbitMQ.
func (c *connection) isTopic(exchange string) bool {
	x, err := c.vhost.Exchange(exchange)
	return err == nil && x.Config().Type == broker.TypeTopic
}

// pubDecision is a channel's cached publish decision for one exchange.
type pubDecision struct {
	allowed bool
	// topic: the user has a topic permission on the exchange's name.
	// Whether it is a topic exchange is looked up at each publish that
	// needs it, not cached: the exchange may be deleted and declared
	// again with another type while the channel stays open.
	topic bool
}

// maxPubCache bounds a channel's cached decisions: a client publishing to
// ever new exchange names checks each past it without caching.
const maxPubCache = 256

// mayPublish checks write access to exchange (and the routing key's topic
// permission) for a publish; with the decision cached it allocates
// nothing.
func (ch *channel) mayPublish(exchange, key string) error {
	c := ch.conn
	acc := c.access()
	if ch.pubGen == acc.gen && ch.pubLastOK && exchange == ch.pubLast.name {
		// The common case, a channel publishing to one exchange: no
		// hashing; and on a topic exchange with a topic permission, a
		// routing key allowed just before needs no regexp either.
		if d := ch.pubLast.d; !d.topic || (ch.pubLast.keyOK && key == ch.pubLast.key) || !c.isTopic(exchange) {
			return nil
		}
		if acc.topics.Allows(auth.Write, exchange, key) {
			ch.pubLast.key, ch.pubLast.keyOK = key, true
			return nil
		}
	}
	if ch.pubGen != acc.gen || ch.pubCache == nil {
		if ch.pubCache == nil {
			ch.pubCache = make(map[string]pubDecision, 4)
		} else {
			clear(ch.pubCache)
		}
		ch.pubGen = acc.gen
	}
	d, ok := ch.pubCache[exchange]
	if !ok {
		d = pubDecision{allowed: acc.grant.Allows(auth.Write, resourceName("exchange", exchange)),
			topic: acc.topics.Restricts(exchange)}
		if len(ch.pubCache) < maxPubCache {
			ch.pubCache[exchange] = d
		}
	}
	ch.pubLast.name, ch.pubLast.d, ch.pubLast.keyOK, ch.pubLastOK = exchange, d, false, d.allowed
	if !d.allowed {
		return ch.softError(amqp091.AccessRefused, &ch.pub, "write access to exchange '%s' in vhost '%s' refused for user '%s'",
			resourceName("exchange", exchange), c.vhost.Name(), c.user.Name)
	}
	if d.topic && c.isTopic(exchange) {
		if !acc.topics.Allows(auth.Write, exchange, key) {
			return ch.softError(amqp091.AccessRefused, &ch.pub, "write access to topic '%s' in exchange '%s' in vhost '%s' refused for user '%s'",
				key, exchange, c.vhost.Name(), c.user.Name)
		}
		// Only a key the expression allowed is remembered (a key let
		// through because the exchange was not a topic one is not).
		ch.pubLast.key, ch.pubLast.keyOK = key, true
	}
	return nil
}

// limitText words a refused connection or channel as RabbitMQ does.
func limitText(e *auth.LimitError, user, vhost string) string {
	switch {
	case e.Scope == "vhost":
		return fmt.Sprintf("access to vhost '%s' refused for user '%s': connection limit (%d) is reached", vhost, user, e.Value)
	case e.Limit == auth.LimitMaxChannels:
		return fmt.Sprintf("number of channels opened for user '%s' has reached the maximum allowed user limit of (%d)", user, e.Value)
	}
	return fmt.Sprintf("access to vhost '%s' refused for user '%s': user connection limit (%d) is reached", vhost, user, e.Value)
}

package mqtt

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/tern-broker/tern/internal/auth"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// Permissions for MQTT, as RabbitMQ's MQTT plugin applies them: MQTT
// topics are routing keys on the MQTT exchange (amq.topic, "/" → "."), so
// a PUBLISH needs write on that exchange and a SUBSCRIBE read on it, and
// the user's topic permission for amq.topic, with {username}, {vhost} and
// {client_id} expanded, acts as the device's ACL: its write expression
// must match the topic published to, its read expression the filter
// subscribed to ("+" → "*", "#" → "#"). A refused subscription gets SUBACK
// 0x80 (3.1.1) or 0x87 Not authorized (5.0); a refused PUBLISH is dropped
// (3.1.1, acknowledged as Mosquitto does so the client does not resend it
// forever) or answered 0x87 in its PUBACK/PUBREC (5.0).
//
// Unlike RabbitMQ, the session queue itself is not checked (configure,
// read and write on "mqtt-subscription-…"): the exchange and topic checks
// are the ACL.

// mqttExchange is the exchange MQTT topics are routing keys of.
const mqttExchange = "amq.topic"

// connAccess is a connection's view of its user's permissions, reloaded
// when the store's generation moves.
type connAccess struct {
	loaded bool
	gen    uint64
	grant  *auth.Grant
	topics *auth.TopicRules
	// maxMessage is the vhost's max-message-size, -1 for none.
	maxMessage int64
	// The exchange's write permission and the last topic published to
	// with its topic check, computed on first use: a device publishes to
	// the same topic again and again, and each check is a regexp match.
	// Reset with the rest when the store's generation moves.
	writeKnown, writeOK bool
	lastTopic           string
	lastTopicOK         bool
}

func (c *conn) access() *connAccess {
	users := c.srv.users
	if g := users.Generation(); !c.acc.loaded || g != c.acc.gen {
		vhost := c.vhost.Name()
		c.acc = connAccess{loaded: true, gen: g, grant: users.Grant(c.user.Name, vhost), topics: users.TopicRules(c.user.Name, vhost, c.clientID, topicVar),
			maxMessage: users.VHostLimit(vhost, auth.LimitMaxMessageSize)}
	}
	return &c.acc
}

// topicVar writes the value of a topic permission's variable (user name,
// vhost, client id) as the topics it is matched against are written: as a
// routing key, "/" and "." swapped, so client id "d1.temp" matches the
// topic level "d1.temp" and not the levels "d1" then "temp". A value
// holding a level separator or a wildcard ("/", "+", "#", or "*" which "+"
// becomes) matches nothing: client id "d1/x" would otherwise reach
// sensors/d1/x/…, inside device d1's subtree, and a quoted "+" would match
// the wildcard in a filter, so client id "+" could subscribe to cmd/+/#
// under a rule ^cmd\.{client_id}\. meant for one device's commands.
func topicVar(v string) string {
	if strings.ContainsAny(v, "/+#*") {
		return auth.NoMatch
	}
	return regexp.QuoteMeta(topicToKey(v))
}

// allowed says whether the user may use topic (a filter for Read) with
// access a.
func (c *conn) allowed(a auth.Access, topic string) bool {
	acc := c.access()
	if a != auth.Write {
		return acc.grant.Allows(a, mqttExchange) && acc.topics.Allows(a, mqttExchange, topicToKey(topic))
	}
	if !acc.writeKnown {
		acc.writeKnown, acc.writeOK = true, acc.grant.Allows(auth.Write, mqttExchange)
	}
	if !acc.writeOK {
		return false
	}
	if !acc.topics.Restricts(mqttExchange) {
		return true
	}
	if acc.lastTopic == "" || acc.lastTopic != topic {
		acc.lastTopic, acc.lastTopicOK = topic, acc.topics.Allows(auth.Write, mqttExchange, topicToKey(topic))
	}
	return acc.lastTopicOK
}

// tooLarge refuses a payload over the vhost's max-message-size as a
// packet over Maximum Packet Size is refused: DISCONNECT 0x95 Packet too
// large (5.0), the connection closed (3.1.1). nil when it fits.
func (c *conn) tooLarge(payload int) error {
	max := c.access().maxMessage
	if max < 0 || int64(payload) <= max {
		return nil
	}
	return &wire.Error{Code: wire.PacketTooLarge,
		Msg: fmt.Sprintf("message size %d is larger than configured max size %d (max-message-size of vhost '%s')", payload, max, c.vhost.Name())}
}

// refusedPublish answers a PUBLISH the user may not make, in turn with
// the other acknowledgements: 5.0 gets 0x87 in its PUBACK or PUBREC
// (nothing for QoS 0), 3.1.1 a plain acknowledgement of a message that went
// nowhere.
func (c *conn) refusedPublish(p *wire.Publish) {
	// Limited like the connection lines: a device flooding a denied topic
	// would otherwise cost a write to the log per packet (on the event
	// loop, for every connection it serves).
	if ok, unlogged := c.srv.refusedLog.allow(time.Now()); ok {
		c.logger().Info("MQTT publish refused", "user", c.user.Name, "topic", p.Topic, "unlogged", unlogged)
	}
	if p.QoS == 0 {
		return
	}
	kind := wire.PUBACK
	if p.QoS == 2 {
		kind = wire.PUBREC
	}
	c.acks.refuse(c.acks.begin(kind, p.PacketID), c.v == wire.V5)
}

// refuse completes a pending acknowledgement of a refused publish: with
// 0x87 when v5 (a failed PUBREC ends the QoS 2 flow), else as a success.
func (a *ackQueue) refuse(token uint64, v5 bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.find(token); p != nil {
		p.routed = true
		if v5 {
			p.reason, p.failed = wire.NotAuthorized, true
		}
	}
	a.sendReadyLocked()
}

// refusedSubscription is SUBACK's code for a filter the user may not
// subscribe to.
func (c *conn) refusedSubscription() byte {
	if c.v == wire.V5 {
		return wire.NotAuthorized
	}
	return wire.UnspecifiedError // 3.1.1's only failure code, 0x80
}

// admit counts the connection against the vhost's and the user's
// max-connections and registers it to be closed if its vhost or its user
// is deleted;
// the refusal is CONNACK 0x97 Quota exceeded (3.1.1: 0x03 Server
// unavailable).
func (c *conn) admit() (byte, error) {
	release, err := c.srv.users.OpenConnection(c.user.Name, c.vhost.Name())
	if err != nil {
		var le *auth.LimitError
		if errors.As(err, &le) {
			return wire.QuotaExceeded, err
		}
		return wire.ServerUnavailable, err
	}
	remove, ok := c.vhost.OnDelete(func() { c.kick(administrativeAction) })
	if !ok {
		release()
		return wire.NotAuthorized, errors.New("the MQTT vhost was deleted")
	}
	removeUser := c.srv.broker.OnUserDeleted(c.user.Name, func() { c.kick(administrativeAction) })
	c.release = func() { remove(); removeUser(); release() }
	return 0, nil
}

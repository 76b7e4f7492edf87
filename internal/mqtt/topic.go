package mqtt

import (
	"strings"
	"unicode/utf8"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// topicToKey maps an MQTT topic (or filter) to an AMQP routing (or binding)
// key: '/' and '.' swap, '+' becomes '*', '#' stays.
func topicToKey(topic string) string {
	b := []byte(topic)
	for i, c := range b {
		switch c {
		case '/':
			b[i] = '.'
		case '.':
			b[i] = '/'
		case '+':
			b[i] = '*'
		}
	}
	return string(b)
}

// keyToTopic is the inverse of topicToKey for routing keys.
func keyToTopic(key string) string {
	b := []byte(key)
	for i, c := range b {
		switch c {
		case '.':
			b[i] = '/'
		case '/':
			b[i] = '.'
		}
	}
	return string(b)
}

// sendableTopic reports whether t may go to a client as a topic name. An
// AMQP routing key maps to any string: "" (an empty key, as a publisher
// written for a fanout exchange sends), a key with '#' or '+' (AMQP has
// no rule against them in routing keys), or invalid UTF-8 or U+0000 from
// the HTTP API. None is a topic name [MQTT-4.7.3-1, MQTT-3.3.2-2,
// MQTT-1.5.4-1, -2], and a client that gets one may end its connection
// (libmosquitto does): a persistent session would then get the message
// again on every reconnect and never get past it.
func sendableTopic(t string) bool {
	return wire.ValidTopic(t) == nil && len(t) <= 65535 && strings.IndexByte(t, 0) < 0 && utf8.ValidString(t)
}

// keyToFilter is the inverse of topicToKey for binding keys of filters
// without a literal '*' (keyGivesFilter).
func keyToFilter(key string) string {
	return strings.ReplaceAll(keyToTopic(key), "*", "+")
}

// matches applies MQTT's matching rules, including that a filter starting
// with a wildcard does not match a topic starting with '$' [MQTT-4.7.2-1].
func matches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a" [MQTT-4.7.1-2].
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

// shared splits "$share/{group}/{filter}"; ok is false for a plain filter.
func shared(filter string) (group, f string, ok bool) {
	rest, found := strings.CutPrefix(filter, "$share/")
	if !found {
		return "", filter, false
	}
	group, f, ok = strings.Cut(rest, "/")
	return group, f, ok && group != "" && !strings.ContainsAny(group, "+#") && f != ""
}

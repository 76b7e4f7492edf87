package mqtt

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/message"
)

// RetainedLog keeps retained messages durably: the store's "retained"
// record log (CRC-checked records, group commit, recovery), which the
// server wires in. A key holds one message; Put replaces it.
type RetainedLog interface {
	// Put stores m under key; done learns when it is durable.
	Put(key string, m *message.Message, done message.Completion, token uint64) error
	// Remove deletes key's message.
	Remove(key string)
}

// RetainedRecord is a retained message recovered from the log.
type RetainedRecord struct {
	Key string
	Msg *message.Message
}

// retainedKey is a record's key: vhost and topic, which cannot hold U+0000
// [MQTT-1.5.4-2].
func retainedKey(vhost, topic string) string { return vhost + "\x00" + topic }

// retainedStore keeps the last retained message per vhost and topic in
// memory, and in the log (nil: in memory only) so retained messages
// survive restarts and kill -9.
type retainedStore struct {
	log RetainedLog

	mu   sync.Mutex
	msgs map[string]map[string]*message.Message // vhost → topic → message
}

func newRetainedStore(log RetainedLog, recovered []RetainedRecord) *retainedStore {
	r := &retainedStore{log: log, msgs: map[string]map[string]*message.Message{}}
	for _, rec := range recovered {
		vh, topic, ok := strings.Cut(rec.Key, "\x00")
		if !ok || len(rec.Msg.Body) == 0 {
			// A clear's record whose removal a crash cut off (see set).
			if log != nil {
				log.Remove(rec.Key)
			}
			continue
		}
		r.setLocked(vh, topic, rec.Msg)
	}
	return r
}

func (r *retainedStore) setLocked(vhost, topic string, m *message.Message) {
	t := r.msgs[vhost]
	if t == nil {
		t = map[string]*message.Message{}
		r.msgs[vhost] = t
	}
	if m == nil {
		delete(t, topic)
	} else {
		t[topic] = m
	}
}

// durableWait is a Completion a caller waits on.
type durableWait chan error

func (w durableWait) Durable(_ uint64, err error) { w <- err }

// set stores m as topic's retained message; an empty body clears it
// [MQTT-3.3.1-6]. It returns once the change is durable, so the PUBACK of a
// retained publish waits for the fsync as for a queue's message. A clear
// is stored as an empty message (durable like a set, and replacing the
// topic's message), then removed: a crash before the removal is written
// leaves the empty message, which recovery drops.
func (r *retainedStore) set(vhost, topic string, m *message.Message) error {
	r.mu.Lock()
	clearing := len(m.Body) == 0
	if clearing {
		if _, ok := r.msgs[vhost][topic]; !ok {
			r.mu.Unlock()
			return nil // nothing to clear
		}
	}
	var wait durableWait
	key := retainedKey(vhost, topic)
	if r.log != nil {
		// Appended under mu, so the log's order of a topic's changes is
		// the memory's; a refused append changes neither.
		wait = make(durableWait, 1)
		if err := r.log.Put(key, m, wait, 0); err != nil {
			r.mu.Unlock()
			return fmt.Errorf("mqtt: storing the retained message: %w", err)
		}
	}
	if clearing {
		r.setLocked(vhost, topic, nil)
	} else {
		r.setLocked(vhost, topic, m)
	}
	r.mu.Unlock()
	if r.log == nil {
		return nil
	}
	if err := <-wait; err != nil {
		return fmt.Errorf("mqtt: storing the retained message: %w", err)
	}
	if clearing {
		r.mu.Lock()
		if _, set := r.msgs[vhost][topic]; !set { // not set again meanwhile
			r.log.Remove(key)
		}
		r.mu.Unlock()
	}
	return nil
}

// matching returns the retained messages whose topics filter matches and
// that have not expired by clk.
func (r *retainedStore) matching(vhost, filter string, clk clock.Clock) []retainedMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []retainedMsg
	for t, m := range r.msgs[vhost] {
		if !matches(filter, t) {
			continue
		}
		if expired(m, clk) {
			// An expired retained message is not sent [MQTT-3.3.2-5];
			// it is dropped here.
			delete(r.msgs[vhost], t)
			if r.log != nil {
				r.log.Remove(retainedKey(vhost, t))
			}
			continue
		}
		out = append(out, retainedMsg{topic: t, msg: m})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].topic < out[j].topic })
	return out
}

type retainedMsg struct {
	topic string
	msg   *message.Message
}

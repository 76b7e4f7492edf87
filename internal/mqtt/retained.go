package mqtt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/vfs"
)

// retainedStore keeps the last retained message per vhost and topic, in
// memory and in one file rewritten atomically on every change, so retained
// messages survive restarts and kill -9.
type retainedStore struct {
	fs   vfs.FS
	path string // "" keeps them in memory only

	mu   sync.Mutex
	msgs map[string]map[string]*message.Message // vhost → topic → message
}

func newRetainedStore(fsys vfs.FS, path string) (*retainedStore, error) {
	r := &retainedStore{fs: fsys, path: path, msgs: map[string]map[string]*message.Message{}}
	if path == "" {
		return r, nil
	}
	raw, err := vfs.ReadFile(fsys, path)
	if errors.Is(err, vfs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mqtt: retained messages: %w", err)
	}
	// Format: repeated (vhost len u16, vhost, topic len u16, topic, message
	// len u32, message record: message.AppendMessage).
	for len(raw) > 0 {
		vh, rest, ok1 := cut16(raw)
		topic, rest, ok2 := cut16(rest)
		if !ok1 || !ok2 || len(rest) < 4 {
			return nil, fmt.Errorf("mqtt: retained messages file is corrupt")
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(len(rest)-4) < uint64(n) {
			return nil, fmt.Errorf("mqtt: retained messages file is corrupt")
		}
		m, err := message.DecodeMessage(rest[4 : 4+n])
		if err != nil {
			return nil, fmt.Errorf("mqtt: retained message: %w", err)
		}
		r.setLocked(string(vh), string(topic), m)
		raw = rest[4+n:]
	}
	return r, nil
}

func cut16(b []byte) ([]byte, []byte, bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b)-2 < n {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
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

// set stores m as topic's retained message; an empty body clears it
// [MQTT-3.3.1-6]. It returns once the change is durable.
func (r *retainedStore) set(vhost, topic string, m *message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(m.Body) == 0 {
		m = nil
	}
	r.setLocked(vhost, topic, m)
	if r.path == "" {
		return nil
	}
	var out []byte
	vhosts := make([]string, 0, len(r.msgs))
	for v := range r.msgs {
		vhosts = append(vhosts, v)
	}
	sort.Strings(vhosts)
	for _, v := range vhosts {
		for t, msg := range r.msgs[v] {
			if expired(msg) {
				delete(r.msgs[v], t)
				continue
			}
			out = binary.BigEndian.AppendUint16(out, uint16(len(v)))
			out = append(out, v...)
			out = binary.BigEndian.AppendUint16(out, uint16(len(t)))
			out = append(out, t...)
			enc := message.AppendMessage(nil, msg)
			out = binary.BigEndian.AppendUint32(out, uint32(len(enc)))
			out = append(out, enc...)
		}
	}
	return vfs.WriteFileAtomic(r.fs, r.path, out)
}

// matching returns the retained messages whose topics filter matches.
func (r *retainedStore) matching(vhost, filter string) []retainedMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []retainedMsg
	for t, m := range r.msgs[vhost] {
		// An expired retained message is not sent [MQTT-3.3.2-5]; it is
		// dropped from the file with the next change.
		if matches(filter, t) && !expired(m) {
			out = append(out, retainedMsg{topic: t, msg: m})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].topic < out[j].topic })
	return out
}

type retainedMsg struct {
	topic string
	msg   *message.Message
}

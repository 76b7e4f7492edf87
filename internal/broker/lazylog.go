package broker

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tern-broker/tern/internal/message"
)

// lazyLog is the log of a durable classic queue that has never held a
// message: the storage's log (half a KiB of buffers, indexes and paths in
// the store) is opened with the first persistent message, not at the
// declare. A fleet's persistent MQTT sessions are durable queues that
// mostly hold nothing while their devices are away (issue 16: an offline
// session under 1 KiB). Nothing is on disk until then either (the store
// makes a queue's directory with its first segment), so a queue that
// never opens its log has nothing to recover or remove.
//
// Append runs under the queue's lock, one at a time, and is the only call
// that opens; Ack, Delivered and Read follow an Append of theirs, so they
// find the log open; the others find nothing in an unopened log.
type lazyLog struct {
	q      *Queue
	mu     sync.Mutex // serialises opening against Close
	closed bool       // guarded by mu
	open   atomic.Pointer[logBox]
}

type logBox struct{ Log }

// logProbe is a Storage that can say whether a queue's log has anything
// on disk, so a restored queue that never held a message stays unopened.
type logProbe interface {
	QueueLogExists(id string) bool
}

func (l *lazyLog) log() Log {
	if b := l.open.Load(); b != nil {
		return b.Log
	}
	return nil
}

// get opens the storage's log if it is not yet.
func (l *lazyLog) get() (Log, error) {
	if lg := l.log(); lg != nil {
		return lg, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.open.Load(); b != nil {
		return b.Log, nil
	}
	if l.closed {
		return nil, fmt.Errorf("broker: the log of queue '%s' is closed", l.q.cfg.Name)
	}
	q := l.q
	lg, err := q.vhost.broker.cfg.Storage.QueueLog(q.id)
	if err != nil {
		return nil, err
	}
	if n, ok := lg.(refusalNotifier); ok {
		if c, ok := q.backend.(*classicBackend); ok {
			n.OnRefused(c.refused)
		}
	}
	l.open.Store(&logBox{lg})
	return lg, nil
}

func (l *lazyLog) Append(seq uint64, msg *message.Message, done message.Completion, token uint64) error {
	lg, err := l.get()
	if err != nil {
		return err
	}
	return lg.Append(seq, msg, done, token)
}

func (l *lazyLog) Ack(seq uint64) {
	if lg := l.log(); lg != nil {
		lg.Ack(seq)
	}
}

func (l *lazyLog) Delivered(seq uint64) {
	if lg := l.log(); lg != nil {
		lg.Delivered(seq)
	}
}

func (l *lazyLog) Read(seq uint64) (*message.Message, error) {
	if lg := l.log(); lg != nil {
		return lg.Read(seq)
	}
	return nil, fmt.Errorf("broker: message %d is not in the log of queue '%s' (never opened)", seq, l.q.cfg.Name)
}

func (l *lazyLog) Recovered() []message.StoredMessage {
	if lg := l.log(); lg != nil {
		return lg.Recovered()
	}
	return nil
}

func (l *lazyLog) NextSeq() uint64 {
	if lg := l.log(); lg != nil {
		return lg.NextSeq()
	}
	return 0
}

func (l *lazyLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if lg := l.log(); lg != nil {
		return lg.Close()
	}
	return nil
}

// closeUnopened closes a log never opened, which leaves nothing to remove,
// and says so; an open one is left to the storage's DeleteQueueLog.
func (l *lazyLog) closeUnopened() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open.Load() != nil {
		return false
	}
	l.closed = true
	return true
}

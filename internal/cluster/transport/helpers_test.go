package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// logBuf collects a transport's log lines for assertions.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lineWith returns the first log line containing every part, or "".
func (l *logBuf) lineWith(parts ...string) string {
	for _, line := range strings.Split(l.String(), "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return line
		}
	}
	return ""
}

// recorder is a Handler that records everything and answers requests:
// kindEcho echoes the body, kindFail fails, kindBlock waits for its ctx.
type recorder struct {
	self   NodeID
	mu     sync.Mutex
	raft   map[[2]uint64][]*raftpb.Message // by (from, group)
	notify []string
	signal chan struct{} // poked after every delivery
}

const (
	kindEcho  = 1
	kindFail  = 2
	kindBlock = 3
	// kindDeadline answers how long its ctx has left, in whole seconds
	// ("none" without a deadline).
	kindDeadline = 4
)

func newRecorder(self NodeID) *recorder {
	return &recorder{self: self, raft: map[[2]uint64][]*raftpb.Message{}, signal: make(chan struct{}, 1)}
}

func (r *recorder) poke() {
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

func (r *recorder) HandleRaft(from NodeID, group Group, msgs []*raftpb.Message) {
	r.mu.Lock()
	k := [2]uint64{from, group}
	r.raft[k] = append(r.raft[k], msgs...)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) HandleRequest(ctx context.Context, from NodeID, kind uint8, body []byte) ([]byte, error) {
	switch kind {
	case kindEcho:
		return fmt.Appendf(nil, "%d->%d:%s", from, r.self, body), nil
	case kindFail:
		return nil, fmt.Errorf("node %d says no to %s", r.self, body)
	case kindBlock:
		<-ctx.Done()
		return nil, ctx.Err()
	case kindDeadline:
		dl, ok := ctx.Deadline()
		if !ok {
			return []byte("none"), nil
		}
		return fmt.Appendf(nil, "%.0f", time.Until(dl).Seconds()), nil
	}
	return nil, errors.New("unknown kind")
}

func (r *recorder) HandleNotify(from NodeID, kind uint8, body []byte) {
	r.mu.Lock()
	r.notify = append(r.notify, fmt.Sprintf("%d:%d:%s", from, kind, body))
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) count(from NodeID, group Group) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.raft[[2]uint64{from, group}])
}

// waitFor polls cond until it holds or 10 s pass, waking on the
// recorder's signal when given one.
func waitFor(t *testing.T, what string, signal <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-signal:
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// node is a transport under test with its handler and log.
type node struct {
	*TCP
	rec *recorder
	log *logBuf
}

var testSecret = []byte("test cluster secret")

// startNode starts a transport on addr (127.0.0.1:0 when empty); mod
// adjusts the config first.
func startNode(t *testing.T, id NodeID, addr string, mod func(*TCPConfig)) *node {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	n := &node{rec: newRecorder(id), log: &logBuf{}}
	cfg := TCPConfig{
		Self:       id,
		ListenAddr: addr,
		Secret:     testSecret,
		Handler:    n.rec,
		Logger:     slog.New(slog.NewTextHandler(n.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := NewTCP(cfg)
	if err != nil {
		t.Fatalf("NewTCP(%d): %v", id, err)
	}
	n.TCP = tr
	t.Cleanup(func() { tr.Close() })
	return n
}

// meshed tells every node about every other.
func meshed(nodes ...*node) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.SetPeer(b.cfg.Self, b.Addr().String())
			}
		}
	}
}

func connected(n *node, peer NodeID) bool { return n.Stats().Peers[peer].Connected }

func waitConnected(t *testing.T, nodes ...*node) {
	t.Helper()
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				waitFor(t, fmt.Sprintf("node %d connected to %d", a.cfg.Self, b.cfg.Self), nil, func() bool { return connected(a, b.cfg.Self) })
			}
		}
	}
}

// msg is a MsgApp from → to carrying index and a payload.
func msg(from, to, index uint64, payload []byte) *raftpb.Message {
	return &raftpb.Message{
		Type:    raftpb.MsgApp.Enum(),
		From:    proto.Uint64(from),
		To:      proto.Uint64(to),
		Term:    proto.Uint64(1),
		Index:   proto.Uint64(index),
		Entries: []*raftpb.Entry{{Term: proto.Uint64(1), Index: proto.Uint64(index + 1), Data: payload}},
	}
}

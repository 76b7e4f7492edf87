package transport

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// countHandler counts Raft messages and pokes a channel per batch.
type countHandler struct {
	n    atomic.Int64
	poke chan struct{}
}

func (h *countHandler) HandleRaft(_ NodeID, _ Group, msgs []*raftpb.Message) {
	h.n.Add(int64(len(msgs)))
	select {
	case h.poke <- struct{}{}:
	default:
	}
}
func (h *countHandler) HandleRequest(context.Context, NodeID, uint8, []byte) ([]byte, error) {
	return nil, nil
}
func (h *countHandler) HandleNotify(NodeID, uint8, []byte) {}

// BenchmarkRaftLoopback measures Raft messages per second from one
// transport to another over loopback TCP, each message a MsgApp with one
// 1 KiB entry, sent one per SendRaft call or in batches of 16. The sender
// keeps at most 4096 messages unacknowledged by the receiver's handler,
// so the queue never overflows and nothing is dropped.
func BenchmarkRaftLoopback(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			recv := &countHandler{poke: make(chan struct{}, 1)}
			t1, err := NewTCP(TCPConfig{Self: 1, ListenAddr: "127.0.0.1:0", Secret: testSecret, Handler: &countHandler{poke: make(chan struct{}, 1)}, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer t1.Close()
			t2, err := NewTCP(TCPConfig{Self: 2, ListenAddr: "127.0.0.1:0", Secret: testSecret, Handler: recv, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer t2.Close()
			t1.SetPeer(2, t2.Addr().String())
			t2.SetPeer(1, t1.Addr().String())
			for deadline := time.Now().Add(10 * time.Second); t1.peer(2).conn.Load() == nil; {
				if time.Now().After(deadline) {
					b.Fatal("not connected")
				}
				time.Sleep(time.Millisecond)
			}
			payload := make([]byte, 1024)
			msgs := make([]*raftpb.Message, batch)
			for i := range msgs {
				msgs[i] = msg(1, 2, uint64(i), payload)
			}
			const window = 4096
			b.SetBytes(int64(1024))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			sent := 0
			for sent < b.N {
				for int64(sent)-recv.n.Load() > window {
					<-recv.poke
				}
				n := min(batch, b.N-sent)
				t1.SendRaft(2, 1, msgs[:n])
				sent += n
			}
			for recv.n.Load() < int64(b.N) {
				<-recv.poke
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			if d := t1.Stats().Peers[2].Dropped; d != 0 {
				b.Fatalf("%d messages dropped", d)
			}
		})
	}
}

package memstore

import (
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/message"
)

// batchRecorder is a BatchCompletion that records the order of calls.
type batchRecorder struct {
	mu     sync.Mutex
	tokens []uint64
	ends   int
	all    chan struct{}
	want   int
}

func (b *batchRecorder) Durable(token uint64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = append(b.tokens, token)
}

func (b *batchRecorder) DurableBatchEnd() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ends++
	if len(b.tokens) == b.want {
		close(b.all)
	}
}

func msg(body string) *message.Message {
	return &message.Message{Body: []byte(body), Props: message.Properties{DeliveryMode: 2}, Published: time.Now().UnixNano()}
}

func TestCompletionsInAppendOrderWithBatchEnds(t *testing.T) {
	st := New()
	l, _ := st.QueueLog("q")
	done := &batchRecorder{all: make(chan struct{}), want: 100}
	for i := range uint64(100) {
		if err := l.Append(i, msg("m"), done, i); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done.all:
	case <-time.After(5 * time.Second):
		t.Fatal("completions missing")
	}
	done.mu.Lock()
	defer done.mu.Unlock()
	for i, tok := range done.tokens {
		if tok != uint64(i) {
			t.Fatalf("completion %d has token %d: out of order", i, tok)
		}
	}
	if done.ends == 0 {
		t.Fatal("DurableBatchEnd never called")
	}
}

func TestReopenRecoversUnackedInOrderAndDetachesTheOldHandle(t *testing.T) {
	st := New()
	old, _ := st.QueueLog("q")
	for i, b := range []string{"a", "b", "c"} {
		_ = old.Append(uint64(10+i), msg(b), nil, 0)
	}
	old.Ack(10)
	old.Delivered(11)
	l, _ := st.QueueLog("q")
	rec := l.Recovered()
	if len(rec) != 2 || rec[0].Seq != 11 || !rec[0].Delivered || rec[1].Seq != 12 || rec[1].Delivered {
		t.Fatalf("recovered %+v", rec)
	}
	if l.NextSeq() != 13 {
		t.Fatalf("next seq %d", l.NextSeq())
	}
	if err := old.Append(13, msg("late"), nil, 0); err == nil {
		t.Fatal("the detached handle still appends")
	}
	old.Ack(11) // ignored: that broker is gone
	if m, err := l.Read(11); err != nil || string(m.Body) != "b" {
		t.Fatalf("read %v %v", m, err)
	}
}

func TestStreamRetentionKeepsTheActiveSegment(t *testing.T) {
	st := New()
	l, _ := st.StreamLog("s", 10) // 10 body bytes per segment
	fired := make(chan struct{}, 16)
	l.OnDurable(func() { fired <- struct{}{} })
	for i := range uint64(6) {
		_ = l.Append(i, msg("12345"), nil, 0) // two per segment
	}
	deadline := time.After(5 * time.Second)
	for l.DurableSeq() != 6 {
		select {
		case <-fired:
		case <-deadline:
			t.Fatalf("durable seq %d", l.DurableSeq())
		}
	}
	if n := l.ApplyRetention(1, -1, 0); n != 2 || l.FirstSeq() != 4 {
		t.Fatalf("dropped %d segments, first %d; want 2 and 4", n, l.FirstSeq())
	}
	if n := l.ApplyRetention(0, -1, 0); n != 0 {
		t.Fatalf("dropped the active segment")
	}
	l.StoreOffset("c", 5)
	l.StoreOffset("c", 3) // never goes back
	if o, ok := l.StoredOffset("c"); !ok || o != 5 {
		t.Fatalf("offset %d %v", o, ok)
	}
}

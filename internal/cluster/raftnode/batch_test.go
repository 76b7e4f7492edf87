package raftnode

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
)

func TestBatchRoundTrip(t *testing.T) {
	items := [][]byte{encodeHeader(1, 2, []byte("a")), encodeHeader(3, 4, nil), encodeHeader(5, 6, bytes.Repeat([]byte{7}, 300))}
	b := appendBatch(nil, items)
	if len(b) > batchSize(items) {
		t.Fatalf("batch of %d bytes, batchSize said %d", len(b), batchSize(items))
	}
	var got [][]byte
	if err := splitBatch(b, func(it []byte) { got = append(got, it) }); err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, items, bytes.Equal) {
		t.Fatalf("split %x, want %x", got, items)
	}
}

func TestBatchRejectsGarbage(t *testing.T) {
	good := appendBatch(nil, [][]byte{{1, 2}, {3}})
	for _, b := range [][]byte{nil, {batchVersion}, {batchVersion, 0}, {headerVersion, 1, 1},
		good[:len(good)-1], append(slices.Clone(good), 0), {batchVersion, 2, 1, 9}, {batchVersion, 1, 0xff, 0xff, 0xff}} {
		calls := 0
		if err := splitBatch(b, func([]byte) { calls++ }); err == nil || calls != 0 {
			t.Errorf("splitBatch(%x) = %v after %d items, want an error before any", b, err, calls)
		}
	}
}

func FuzzSplitBatch(f *testing.F) {
	f.Add(appendBatch(nil, [][]byte{encodeHeader(1, 2, []byte("payload")), encodeHeader(2, 3, nil)}))
	f.Add([]byte{batchVersion, 1, 0})
	f.Add([]byte{batchVersion, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var items [][]byte
		if err := splitBatch(b, func(it []byte) { items = append(items, slices.Clone(it)) }); err != nil {
			return
		}
		// What splits re-encodes into a batch that splits the same.
		var again [][]byte
		if err := splitBatch(appendBatch(nil, items), func(it []byte) { again = append(again, it) }); err != nil ||
			!slices.EqualFunc(items, again, bytes.Equal) {
			t.Fatalf("re-split of %x: %x, %v", items, again, err)
		}
	})
}

// indexSM records each applied proposal's Raft index and data.
type indexSM struct {
	countSM
	idx  []uint64
	data []string
}

func (s *indexSM) Apply(i uint64, d []byte) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idx = append(s.idx, i)
	s.data = append(s.data, string(d))
	return len(s.data)
}

// TestQueuedProposalsShareEntries: proposals queued while the group's
// goroutine is busy go as batch entries (bounded in bytes), apply in the
// order they were made, and each completes with its own result.
func TestQueuedProposalsShareEntries(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	h := newTestHost(t, fc, &syncBuffer{})
	sm := &indexSM{}
	g, err := h.Start(7, []NodeID{1}, nil, sm)
	if err != nil {
		t.Fatal(err)
	}
	tickUntil(t, fc, g.IsLeader)

	// Hold the goroutine in a control function while the proposals queue.
	started, release := make(chan struct{}), make(chan struct{})
	if !g.submit(func() { close(started); <-release }) {
		t.Fatal("group closed")
	}
	<-started
	const small = 500
	big := bytes.Repeat([]byte{'b'}, 150<<10) // two of them do not fit one batch
	var want []string
	for i := range small {
		want = append(want, fmt.Sprintf("m%d", i))
	}
	for i := range 3 {
		want = append(want, string(big[:len(big)-i]))
	}
	var mu sync.Mutex
	results := map[int]any{}
	var wg sync.WaitGroup
	for i, d := range want {
		wg.Add(1)
		g.ProposeAsync([]byte(d), func(v any, err error) {
			mu.Lock()
			results[i] = v
			if err != nil {
				results[i] = err
			}
			mu.Unlock()
			wg.Done()
		})
	}
	close(release)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("proposals not applied")
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if !slices.Equal(sm.data, want) {
		t.Fatalf("applied %d proposals, not the %d proposed in order", len(sm.data), len(want))
	}
	for i := range want {
		if results[i] != i+1 {
			t.Fatalf("proposal %d completed with %v, want %d", i, results[i], i+1)
		}
	}
	// The 500 small ones and the first big one share an entry; the second
	// and third big ones each start a batch the next would overflow.
	if sm.idx[0] != sm.idx[small] || sm.idx[small] == sm.idx[small+1] || sm.idx[small+1] == sm.idx[small+2] {
		t.Fatalf("entries of the proposals: first %d, big ones %v", sm.idx[0], sm.idx[small:])
	}
	if s := h.Stats(); s.Batched != small+1 || s.Applied != uint64(len(want)) {
		t.Fatalf("batched %d, applied %d; want %d, %d", s.Batched, s.Applied, small+1, len(want))
	}
}

// TestAppendProposalsIsABatchOfHeaderedItems: a batch written from the
// proposals' payloads is byte for byte the batch of their single-proposal
// entries (header and payload each), and splits back into them.
func TestAppendProposalsIsABatchOfHeaderedItems(t *testing.T) {
	run := []*pending{
		{proposal: proposal{seq: 1, data: []byte("first")}},
		{proposal: proposal{seq: 1 << 62, data: nil}},
		{proposal: proposal{seq: 300, data: make([]byte, 70<<10)}},
	}
	const me = NodeID(1<<64 - 3)
	var items [][]byte
	for _, p := range run {
		items = append(items, encodeHeader(me, p.seq, p.data))
	}
	want := appendBatch(nil, items)
	got := appendProposals(nil, me, run)
	if !bytes.Equal(got, want) {
		t.Fatalf("appendProposals: %d bytes, want the %d of appendBatch, equal", len(got), len(want))
	}
	i := 0
	if err := splitBatch(got, func(it []byte) {
		node, seq, payload, err := decodeHeader(it)
		if err != nil || node != me || seq != run[i].seq || !bytes.Equal(payload, run[i].data) {
			t.Fatalf("item %d: node %d seq %d, %d bytes, %v", i, node, seq, len(payload), err)
		}
		i++
	}); err != nil || i != len(run) {
		t.Fatalf("split: %d items, %v", i, err)
	}
}

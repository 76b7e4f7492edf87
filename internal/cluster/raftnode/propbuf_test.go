package raftnode

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
)

// TestPooledEntryBuffersKeepEveryPayload: entries are written into pooled
// buffers that go back to the pool once the Ready after their proposal is
// sent. Bursts of proposals on a follower (forwarded to the leader in a
// MsgProp) and on the leader (copied by Raft into its log), large enough
// to fill several batch entries per turn, must arrive intact: every
// replica applies exactly the payloads proposed, each proposer's in its
// order. A buffer reused too early would show as a payload overwritten by
// a later one.
func TestPooledEntryBuffersKeepEveryPayload(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	_, groups, sms := failFastHosts(t, fc)
	const rounds, burst = 6, 300
	payload := func(node NodeID, i int) string {
		// Distinct, and long enough (3 KiB) that a burst spans batches.
		return fmt.Sprintf("%d:%05d:", node, i) + string(bytes.Repeat([]byte{byte('a' + i%26)}, 3<<10))
	}
	var want []string
	done := make(chan error, 2*rounds*burst)
	for r := range rounds {
		for _, node := range []NodeID{2, 1} { // a follower, then the leader
			for i := range burst {
				p := payload(node, r*burst+i)
				want = append(want, p)
				groups[node].ProposeAsync([]byte(p), func(_ any, err error) { done <- err })
			}
		}
		for range 2 * burst {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("proposal failed: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("proposals not applied within 20 s")
			}
		}
	}
	for id, sm := range sms {
		if !waitUntil(10*time.Second, func() bool { sm.mu.Lock(); defer sm.mu.Unlock(); return len(sm.applied) >= len(want) }) {
			t.Fatalf("node %d applied %d of %d", id, len(sm.applied), len(want))
		}
		sm.mu.Lock()
		got := slices.Clone(sm.applied)
		sm.mu.Unlock()
		if len(got) != len(want) {
			t.Fatalf("node %d applied %d entries, want %d", id, len(got), len(want))
		}
		for _, node := range []NodeID{1, 2} {
			prefix := fmt.Sprintf("%d:", node)
			var g, w []string
			for _, s := range got {
				if len(s) > len(prefix) && s[:len(prefix)] == prefix {
					g = append(g, s)
				}
			}
			for _, s := range want {
				if s[:len(prefix)] == prefix {
					w = append(w, s)
				}
			}
			if !slices.Equal(g, w) {
				for i := range min(len(g), len(w)) {
					if g[i] != w[i] {
						t.Fatalf("node %d: node %d's proposal %d applied as %.12q, want %.12q", id, node, i, g[i], w[i])
					}
				}
				t.Fatalf("node %d: node %d's proposals: %d applied, want %d", id, node, len(g), len(w))
			}
		}
	}
}

// TestEntryBufClasses: a buffer holds the size asked for, small entries
// are not pooled, and a buffer given back goes to the class it fills.
func TestEntryBufClasses(t *testing.T) {
	for _, n := range []int{0, 100, minEntryBuf/2 - 1, minEntryBuf / 2, minEntryBuf, minEntryBuf + 1, 300 << 10, 512 << 10, 512<<10 + 1, 4 << 20} {
		b, pooled := entryBuf(n)
		if cap(b) < n || len(b) != 0 {
			t.Fatalf("entryBuf(%d): len %d cap %d", n, len(b), cap(b))
		}
		if want := n >= minEntryBuf/2 && n <= minEntryBuf<<(entryClasses-1); pooled != want {
			t.Fatalf("entryBuf(%d): pooled %v, want %v", n, pooled, want)
		}
		if pooled && cap(b) > 2*max(n, minEntryBuf) {
			t.Fatalf("entryBuf(%d): a buffer of %d, over twice the size", n, cap(b))
		}
		if pooled {
			putEntryBuf(b)
		}
	}
}

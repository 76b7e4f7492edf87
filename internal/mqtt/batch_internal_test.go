package mqtt

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/outbox"
)

// An open batch defers a delivery's write to its flush, which writes it
// with the outbox's inline write; a closed batch leaves it to the writer.
func TestWriteBatchDefersUntilFlush(t *testing.T) {
	a, peer := net.Pipe()
	defer a.Close()
	defer peer.Close()
	o := outbox.NewOnDemand(1<<20, a, func() {}, func(error) {})
	inline := make(chan string, 4)
	o.TryWrite(func(p []byte) int { inline <- string(p); return len(p) })
	add := func(s string) func([]byte) []byte { return func(b []byte) []byte { return append(b, s...) } }

	var b writeBatch
	b.begin()
	p := b.period()
	if !p.appendTo(o, add("one,")) || !p.appendTo(o, add("two")) {
		t.Fatal("deliveries refused")
	}
	if len(b.outs) != 1 {
		t.Fatalf("the batch lists %d outboxes, want 1", len(b.outs))
	}
	select {
	case s := <-inline:
		t.Fatalf("%q written before the flush", s)
	default:
	}
	b.flush(false)
	if s := <-inline; s != "one,two" {
		t.Fatalf("flush wrote %q, want one write of both", s)
	}
	if len(b.outs) != 0 || b.open {
		t.Fatalf("after flush: %d outboxes listed, open %v", len(b.outs), b.open)
	}
	// Closed: the writer goroutine writes it, through the same inline write.
	if !p.appendTo(o, add("three")) {
		t.Fatal("delivery refused")
	}
	select {
	case s := <-inline:
		if s != "three" {
			t.Fatalf("writer wrote %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a delivery through a closed batch was never written")
	}
	// Open again (review10 F5): a message of the earlier period (queued,
	// delivered later by another goroutine) is not deferred to this one.
	b.begin()
	if b.period() == p {
		t.Fatal("a batch opened again kept the period a message took")
	}
	if !p.appendTo(o, add("four")) {
		t.Fatal("delivery refused")
	}
	select {
	case s := <-inline:
		if s != "four" {
			t.Fatalf("writer wrote %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a delivery of an earlier period waited for the batch's flush")
	}
	b.flush(false)
}

// Past maxBatchOutboxes outboxes, a delivery goes to its writer at once.
func TestWriteBatchBounded(t *testing.T) {
	var b writeBatch
	b.begin()
	p := b.period()
	for i := range maxBatchOutboxes + 1 {
		a, peer := net.Pipe()
		defer a.Close()
		defer peer.Close()
		go func() { _, _ = io.Copy(io.Discard, peer) }()
		o := outbox.NewOnDemand(1<<20, a, func() {}, func(error) {})
		if !p.appendTo(o, func(buf []byte) []byte { return append(buf, 'x') }) {
			t.Fatalf("delivery %d refused", i)
		}
	}
	if len(b.outs) != maxBatchOutboxes {
		t.Fatalf("the batch lists %d outboxes, want %d", len(b.outs), maxBatchOutboxes)
	}
	b.flush(false)
}

package outbox

import (
	"io"
	"net"
	"testing"
	"time"
)

func appendString(s string) func([]byte) []byte {
	return func(b []byte) []byte { return append(b, s...) }
}

// A held outbox writes nothing until Release; Release writes inline what
// the socket takes and hands the rest, in order and ahead of anything
// appended meanwhile, to the writer goroutine.
func TestHoldReleaseWritesInOrder(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	o := NewOnDemand(1<<20, a, func() {}, func(error) {})
	o.Hold()
	o.Append(appendString("one,"))
	o.Append(appendString("two,"))
	o.mu.Lock()
	started := o.demand.writing
	o.mu.Unlock()
	if started {
		t.Fatal("a writer started while the outbox was held")
	}
	var inline []byte
	o.Release(func(p []byte) int {
		if string(p) != "one,two," {
			t.Errorf("inline write got %q, want the whole batch", p)
		}
		inline = append(inline, p[:4]...) // the socket takes "one,"
		o.Append(appendString("three"))   // another goroutine's delivery meanwhile
		return 4
	})
	if string(inline) != "one," {
		t.Fatalf("inline wrote %q", inline)
	}
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len("two,three"))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "two,three" {
		t.Fatalf("the writer wrote %q, want the unwritten tail then what came meanwhile", got)
	}
}

// A batch the socket takes whole starts no writer and leaves no buffer held.
func TestReleaseWrittenWholeLeavesNothing(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	o := NewOnDemand(1<<20, a, func() {}, func(error) {})
	o.Hold()
	o.Append(appendString("ack"))
	o.Release(func(p []byte) int { return len(p) })
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.demand.writing || o.buf != nil || o.spare != nil {
		t.Fatalf("after a whole inline write: writing %v, buf %q, spare %v", o.demand.writing, o.buf, o.spare != nil)
	}
}

// A close asked for while held happens at Release.
func TestCloseWhileHeldHappensAtRelease(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	closed := make(chan error, 1)
	o := NewOnDemand(1<<20, a, func() {}, func(err error) { closed <- err })
	o.Hold()
	o.Append(appendString("bye"))
	o.CloseAfterFlush()
	o.Release(func(p []byte) int { t.Error("inline write while closing"); return 0 })
	go func() { _, _ = io.ReadAll(b) }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the close asked for while held never happened")
	}
}

// A deferred delivery starts no writer; Flush writes it inline, and a
// Flush while the reader holds the outbox leaves it to Release.
func TestDeferredDeliveryWaitsForFlush(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	o := NewOnDemand(1<<20, a, func() {}, func(error) {})
	var inline []byte
	o.TryWrite(func(p []byte) int { inline = append(inline, p...); return len(p) })
	if !o.AppendDeliveryDeferred(appendString("one")) {
		t.Fatal("deferred delivery refused")
	}
	o.mu.Lock()
	started := o.demand.writing
	o.mu.Unlock()
	if started {
		t.Fatal("a deferred delivery started the writer")
	}
	o.Flush()
	if string(inline) != "one" {
		t.Fatalf("Flush wrote %q inline, want \"one\"", inline)
	}
	o.Hold()
	o.AppendDeliveryDeferred(appendString("two"))
	o.Flush()
	if string(inline) != "one" {
		t.Fatalf("Flush wrote %q while the outbox was held", inline)
	}
	o.Release(func(p []byte) int { inline = append(inline, p...); return len(p) })
	if string(inline) != "onetwo" {
		t.Fatalf("after Release: %q, want \"onetwo\"", inline)
	}
}

// Past its limit a deferred delivery is refused like any other, and the
// writer that Flush starts then asks for a redispatch once it drained.
func TestDeferredDeliveryRefusedPastTheLimit(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	drained := make(chan struct{}, 1)
	o := NewOnDemand(2, a, func() { drained <- struct{}{} }, func(error) {})
	o.TryWrite(func(p []byte) int { return 0 }) // the socket takes nothing inline
	o.AppendDeliveryDeferred(appendString("abc"))
	if o.AppendDeliveryDeferred(appendString("d")) {
		t.Fatal("a delivery past the limit was taken")
	}
	go func() { _, _ = io.ReadAll(b) }()
	o.Flush()
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("no redispatch after the writer drained the refused delivery's outbox")
	}
}

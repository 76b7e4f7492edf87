package outbox

import (
	"io"
	"net"
	"testing"
	"time"
)

// CloseAndWait on an on-demand outbox with nothing to write ends it on the
// caller's goroutine: no writer starts, and the close callback has run
// when it returns. With bytes waiting, the writer writes them first.
func TestCloseAndWaitEndsAnIdleOutboxInline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	closed := 0
	o := NewOnDemand(1<<20, a, func() {}, func(err error) {
		if err != nil {
			t.Errorf("close callback got %v, want nil", err)
		}
		closed++ // no lock: the race detector catches a call from another goroutine
	})
	if !o.CloseAndWait(time.Second) {
		t.Fatal("CloseAndWait reported the writer still running")
	}
	if closed != 1 {
		t.Fatalf("close callback ran %d times before CloseAndWait returned, want 1", closed)
	}
	o.mu.Lock()
	writing := o.demand.writing
	o.mu.Unlock()
	if writing {
		t.Fatal("a writer started to close an idle outbox")
	}
	if !o.CloseAndWait(time.Second) || closed != 1 {
		t.Fatalf("a second CloseAndWait: callback ran %d times, want once", closed)
	}

	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	ended := make(chan error, 1)
	o2 := NewOnDemand(1<<20, c, func() {}, func(err error) { ended <- err })
	o2.Hold() // keep the bytes from an inline write
	o2.Append(appendString("last words"))
	o2.Release(func([]byte) int { return 0 })
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 10)
		n, _ := io.ReadFull(d, buf)
		got <- string(buf[:n])
	}()
	if !o2.CloseAndWait(5 * time.Second) {
		t.Fatal("the writer did not finish within 5 s")
	}
	if s := <-got; s != "last words" {
		t.Fatalf("peer read %q before the close", s)
	}
	if err := <-ended; err != nil {
		t.Fatalf("close callback got %v", err)
	}
}

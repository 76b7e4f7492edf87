package server

import (
	"errors"
	"net"
	"testing"
)

func TestMergedListenerAcceptsFromEveryListenerAndCloses(t *testing.T) {
	t.Parallel()
	var lns []net.Listener
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	if mergeListeners(nil, nil) != nil || mergeListeners(nil, lns[0]) != lns[0] {
		t.Fatal("mergeListeners of none or one listener must not wrap")
	}
	m := mergeListeners(lns[0], lns[1])
	if m.Addr().String() != lns[0].Addr().String() {
		t.Errorf("Addr %v, want the first listener's", m.Addr())
	}
	seen := map[string]bool{}
	for _, ln := range lns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		nc, err := m.Accept()
		if err != nil {
			t.Fatal(err)
		}
		seen[nc.LocalAddr().String()] = true
		nc.Close()
	}
	if len(seen) != 2 {
		t.Fatalf("accepted on %v, want both listeners", seen)
	}
	// A connection accepted but not yet taken when Close runs is closed.
	c, err := net.Dial("tcp", lns[1].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if _, err := net.Dial("tcp", lns[0].Addr().String()); err == nil {
		t.Error("the first listener still accepts after Close")
	}
	_ = m.Close() // idempotent
}

package chaos

import (
	"errors"
	"net"
	"testing"
)

func TestOnlyLoopbackPasses(t *testing.T) {
	if err := onlyLoopback([]net.Interface{{Name: "lo"}}); err != nil {
		t.Fatal(err)
	}
	err := onlyLoopback([]net.Interface{{Name: "lo"}, {Name: "eth0"}, {Name: "veth1"}})
	if !errors.Is(err, ErrNotSandboxed) || err.Error() == ErrNotSandboxed.Error() {
		t.Fatalf("got %v, want ErrNotSandboxed naming eth0 and veth1", err)
	}
}

// TestRefusesOutsideTheSandbox runs in the test's own namespace: on any
// machine with a real network interface, starting a node or injecting a
// fault must refuse before doing anything.
func TestRefusesOutsideTheSandbox(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if onlyLoopback(ifs) == nil {
		t.Skip("this namespace has only lo: nothing to refuse (the test runs where a real interface exists)")
	}
	if err := RequireSandbox(); !errors.Is(err, ErrNotSandboxed) {
		t.Fatalf("RequireSandbox: %v", err)
	}
	n := &Node{ID: 1, Bin: "/bin/false", Dir: t.TempDir()}
	if err := n.Start(t.Context()); !errors.Is(err, ErrNotSandboxed) {
		t.Fatalf("Node.Start: %v, want ErrNotSandboxed", err)
	}
	if err := n.Kill(); !errors.Is(err, ErrNotSandboxed) {
		t.Fatalf("Node.Kill: %v", err)
	}
	if err := applyNFT("table ip x {}"); !errors.Is(err, ErrNotSandboxed) {
		t.Fatalf("applyNFT: %v", err)
	}
	if _, err := tearTail(t.TempDir(), Fault{Kind: FaultTornTail, TornBytes: 1}); !errors.Is(err, ErrNotSandboxed) {
		t.Fatalf("tearTail: %v", err)
	}
}

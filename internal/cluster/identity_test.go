package cluster

import (
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/vfs"
)

func TestClaimDirRefusesAnotherNodesData(t *testing.T) {
	fsys := vfs.NewMem()
	if err := ClaimDir(fsys, "/data/cluster", "n1"); err != nil {
		t.Fatal(err)
	}
	if err := ClaimDir(fsys, "/data/cluster", "n1"); err != nil {
		t.Fatalf("the owner's second start: %v", err)
	}
	err := ClaimDir(fsys, "/data/cluster", "n2")
	if err == nil || !strings.Contains(err.Error(), `belongs to node "n1", not "n2"`) {
		t.Fatalf("n2 on n1's data: %v", err)
	}
	if owner, err := Owner(fsys, "/data/cluster"); owner != "n1" || err != nil {
		t.Fatalf("Owner: %q %v", owner, err)
	}
	if owner, err := Owner(fsys, "/other"); owner != "" || err != nil {
		t.Fatalf("Owner of an unclaimed directory: %q %v", owner, err)
	}
}

package bench

import (
	"context"
	"testing"
)

// TestTakeSlotLeavesNoSlotWhenTheRunIsOver: with room in the window and
// the run over, select may take the slot; it must be given back, or the
// drain waits for a confirm of a message never published.
func TestTakeSlotLeavesNoSlotWhenTheRunIsOver(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	window := make(chan struct{}, 4)
	for i := range 200 {
		if takeSlot(ctx, window) {
			t.Fatalf("try %d: a slot taken after the run ended", i)
		}
		if len(window) != 0 {
			t.Fatalf("try %d: %d slots left taken", i, len(window))
		}
	}
	if !takeSlot(context.Background(), window) || len(window) != 1 {
		t.Fatalf("a running publisher got no slot (%d taken)", len(window))
	}
}

package flow

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
)

func TestTriggerHysteresisHoldAndLog(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(100, 0))
	var level atomic.Int64
	a := NewAlarm("test")
	var logged []bool
	tr := NewTrigger(a, level.Load, clk, time.Second, func(on bool, _, _, _ int64) { logged = append(logged, on) })
	tr.SetThresholds(100, 80)
	step := func(v int64) { level.Store(v); tr.Check() }

	step(100)
	if a.Active() {
		t.Fatal("on at the threshold")
	}
	step(101)
	if !a.Active() {
		t.Fatal("not on above the threshold")
	}
	for i := 0; i < 100; i++ { // hovering between the marks
		step(90 + int64(i%20))
	}
	step(80) // below the low mark, within the hold
	if !a.Active() {
		t.Fatal("off within the hold")
	}
	clk.Advance(time.Second) // the hold ends: the timer re-checks
	if a.Active() {
		t.Fatal("still on after the hold with the level below the low mark")
	}
	if len(logged) != 2 || !logged[0] || logged[1] || tr.Changes() != 2 {
		t.Fatalf("logged %v, %d changes; want one on and one off", logged, tr.Changes())
	}
	// A negative low mark (the disk alarm's: "free space a margin above
	// the limit").
	tr.SetThresholds(0, -50)
	step(1)
	clk.Advance(2 * time.Second)
	step(-10)
	if !a.Active() {
		t.Fatal("off above the low mark")
	}
	step(-50)
	if a.Active() {
		t.Fatal("on at the low mark after the hold")
	}
	tr.Disable()
	step(1000)
	if a.Active() {
		t.Fatal("a disabled trigger set its alarm")
	}
}

// TestTriggerNeverSticksOnAStaleLevel replays the interleaving of issue 10
// item 26 deterministically: while one caller is turning the alarm on,
// another lowers the level and checks — it still sees the alarm off and
// returns. The alarm must not stay on for a level that has fallen: the
// re-check at the end of the hold clears it.
func TestTriggerNeverSticksOnAStaleLevel(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(100, 0))
	var level atomic.Int64
	a := NewAlarm("test")
	var tr *Trigger
	tr = NewTrigger(a, level.Load, clk, time.Second, func(on bool, _, _, _ int64) {
		if on {
			// The other caller, between the decision and the alarm's
			// change: the level falls to 0 and its Check sees "off".
			level.Store(0)
			tr.Check()
		}
	})
	tr.SetThresholds(100, 80)
	level.Store(150)
	tr.Check()
	if !a.Active() {
		t.Fatal("alarm not on")
	}
	clk.Advance(time.Second)
	if a.Active() {
		t.Fatal("alarm stuck on with the level at 0")
	}
}

package clock

import (
	"slices"
	"testing"
	"time"
)

func TestFakeRunsDueCallbacksInOrderDuringAdvance(t *testing.T) {
	start := time.Unix(1000, 0)
	c := NewFake(start)
	var got []string
	var at []time.Duration
	c.AfterFunc(3*time.Second, func() { got = append(got, "c"); at = append(at, c.Now().Sub(start)) })
	c.AfterFunc(time.Second, func() {
		got = append(got, "a")
		at = append(at, c.Now().Sub(start))
		// Armed from a callback, due inside the window: runs in this Advance.
		c.AfterFunc(time.Second, func() { got = append(got, "b"); at = append(at, c.Now().Sub(start)) })
	})
	stopped := c.AfterFunc(2*time.Second, func() { got = append(got, "stopped") })
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report true once, then false")
	}
	late := c.AfterFunc(10*time.Second, func() { got = append(got, "late") })

	c.Advance(5 * time.Second)
	if want := []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("ran %v, want %v", got, want)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}; !slices.Equal(at, want) {
		t.Fatalf("Now in callbacks %v, want %v", at, want)
	}
	if now := c.Now().Sub(start); now != 5*time.Second {
		t.Fatalf("Now after Advance = +%v, want +5s", now)
	}
	if c.Pending() != 1 {
		t.Fatalf("Pending = %d, want 1 (the late timer)", c.Pending())
	}
	if late.Reset(time.Second) != true {
		t.Fatal("Reset of a pending timer should report true")
	}
	c.Advance(time.Second)
	if got[len(got)-1] != "late" || late.Stop() {
		t.Fatalf("late timer reset to 1s: ran %v, Stop after run should be false", got)
	}
	if late.Reset(time.Second) {
		t.Fatal("Reset of a timer that ran should report false")
	}
	c.Advance(time.Second)
	if n := len(got); n != 5 || got[4] != "late" {
		t.Fatalf("a timer reset after it ran should run again: ran %v", got)
	}
}

func TestFakeSleepReturnsWhenAdvancedPast(t *testing.T) {
	c := NewFake(time.Unix(0, 0))
	done := make(chan struct{})
	go func() { c.Sleep(time.Minute); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for c.Pending() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Sleep never armed its timer")
		}
		time.Sleep(time.Millisecond)
	}
	c.Advance(59 * time.Second)
	select {
	case <-done:
		t.Fatal("Sleep returned before its time")
	default:
	}
	c.Advance(time.Second)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Sleep did not return after the clock passed it")
	}
}

func TestOrDefaultsToSystem(t *testing.T) {
	// Under -tags chaos it is the skewable clock instead
	// (TestChaosSkewMovesTheDefaultClock).
	if _, ok := Or(nil).(System); !ok && !ChaosHooks {
		t.Fatal("Or(nil) is not the system clock")
	}
	f := NewFake(time.Unix(0, 0))
	if Or(f) != Clock(f) {
		t.Fatal("Or(c) is not c")
	}
}

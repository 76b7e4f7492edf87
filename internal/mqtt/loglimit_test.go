package mqtt

import (
	"testing"
	"time"
)

func TestLineLimitCountsWhatItLeavesOut(t *testing.T) {
	var l lineLimit
	t0 := time.Unix(1000, 0)
	for i := range connLogPerSecond {
		ok, n := l.allow(t0.Add(time.Duration(i) * time.Millisecond))
		if !ok || n != 0 {
			t.Fatalf("line %d: allowed %v, unlogged %d; want every line of the first %d", i, ok, n, connLogPerSecond)
		}
	}
	for i := range 7 {
		if ok, _ := l.allow(t0.Add(500 * time.Millisecond)); ok {
			t.Fatalf("line %d past the limit was allowed", connLogPerSecond+i)
		}
	}
	ok, n := l.allow(t0.Add(time.Second))
	if !ok || n != 7 {
		t.Fatalf("first line of the next second: allowed %v, unlogged %d; want true, 7", ok, n)
	}
	if ok, n := l.allow(t0.Add(time.Second + time.Millisecond)); !ok || n != 0 {
		t.Fatalf("second line of the next second: allowed %v, unlogged %d; want true, 0", ok, n)
	}
}

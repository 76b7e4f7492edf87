package flow

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
)

func TestLimiterPacesToTheRate(t *testing.T) {
	t.Parallel()
	c := clock.NewFake(time.Unix(1_000_000, 0))
	lm := NewLimiter(c)
	if err := lm.Set([]Limit{{VHost: "/", User: "*", PublishRate: 1000, PublishBurst: 10}}); err != nil {
		t.Fatal(err)
	}
	// 1,010 messages take the burst plus 1 s of tokens: with the clock
	// standing still, the 1010th waits exactly 1 s.
	var total time.Duration
	for i := 0; i < 1010; i++ {
		total = lm.Reserve("/", "alice", 1, 100)
	}
	if total != time.Second {
		t.Fatalf("the 1010th message waits %v, want 1s", total)
	}
	// Once that second has passed (and 10 ms more refill the burst's
	// tokens), the bucket is full again.
	c.Advance(time.Second + 10*time.Millisecond)
	if d := lm.Reserve("/", "alice", 1, 100); d != 0 {
		t.Fatalf("after the clock moved past the debt, alice waits %v", d)
	}
	if d := lm.Reserve("/", "bob", 2, 100); d != 0 {
		t.Fatalf("user * must give bob his own bucket; he waits %v", d)
	}
	if d := lm.Reserve("other", "alice", 1, 100); d != 0 {
		t.Fatalf("another vhost is not limited; waited %v", d)
	}
}

func TestLimitValidation(t *testing.T) {
	t.Parallel()
	for _, l := range []Limit{{}, {VHost: "/", PublishRate: -1}, {VHost: "/"}, {VHost: "/", PublishRate: 1, PublishBurst: -2}} {
		if NewLimiter(nil).Set([]Limit{l}) == nil {
			t.Errorf("%+v accepted", l)
		}
	}
}

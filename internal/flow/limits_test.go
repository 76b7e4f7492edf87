package flow

import (
	"testing"
	"time"
)

func TestLimiterPacesToTheRate(t *testing.T) {
	t.Parallel()
	lm := NewLimiter()
	if err := lm.Set([]Limit{{VHost: "/", User: "*", PublishRate: 1000, PublishBurst: 10}}); err != nil {
		t.Fatal(err)
	}
	// 1,010 messages take the burst plus 1 s of tokens.
	var total time.Duration
	for i := 0; i < 1010; i++ {
		total = lm.Reserve("/", "alice", 1, 100)
	}
	if total < 900*time.Millisecond || total > 1100*time.Millisecond {
		t.Fatalf("the 1010th message waits %v, want about 1s", total)
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
		if NewLimiter().Set([]Limit{l}) == nil {
			t.Errorf("%+v accepted", l)
		}
	}
}

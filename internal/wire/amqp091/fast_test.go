package amqp091

import (
	"bytes"
	"testing"
)

// The hand-written encoders must produce what the generated codec does.
func TestFastEncodersMatchGenerated(t *testing.T) {
	t.Parallel()
	cases := []struct {
		fast []byte
		gen  Method
	}{
		{AppendDeliver(nil, 3, "ctag", 42, true, "ex", "rk"), &BasicDeliver{ConsumerTag: "ctag", DeliveryTag: 42, Redelivered: true, Exchange: "ex", RoutingKey: "rk"}},
		{AppendGetOk(nil, 3, 7, false, "", "q", 9), &BasicGetOk{DeliveryTag: 7, RoutingKey: "q", MessageCount: 9}},
		{AppendReturn(nil, 1, 312, "NO_ROUTE", "x", "k"), &BasicReturn{ReplyCode: 312, ReplyText: "NO_ROUTE", Exchange: "x", RoutingKey: "k"}},
		{AppendConfirm(nil, 1, false, 5, true), &BasicAck{DeliveryTag: 5, Multiple: true}},
		{AppendConfirm(nil, 1, true, 6, false), &BasicNack{DeliveryTag: 6}},
	}
	for _, c := range cases {
		ch := uint16(c.fast[1])<<8 | uint16(c.fast[2])
		want := AppendMethodFrame(nil, ch, c.gen)
		if !bytes.Equal(c.fast, want) {
			t.Errorf("%s: fast %x, generated %x", c.gen.Name(), c.fast, want)
		}
	}
}

func TestFastEncodersAllocateNothing(t *testing.T) {
	buf := make([]byte, 0, 1024)
	n := testing.AllocsPerRun(100, func() {
		b := AppendDeliver(buf[:0], 1, "ctag", 1, false, "amq.direct", "key")
		_ = AppendConfirm(b, 1, false, 1, false)
	})
	if n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}

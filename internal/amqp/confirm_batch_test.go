package amqp_test

import (
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// confirmFrame is one basic.ack or basic.nack as it came off the wire.
type confirmFrame struct {
	nack     bool
	tag      uint64
	multiple bool
}

// readConfirms reads confirms until every tag 1..n is settled, checking
// that no tag is settled twice and that a multiple ack covers only tags
// not yet settled. It returns the frames and each tag's verdict.
func readConfirms(t *testing.T, r *testkit.RawConn, n uint64) ([]confirmFrame, map[uint64]bool) {
	t.Helper()
	nacked := map[uint64]bool{} // tag → nacked; present once settled
	var frames []confirmFrame
	var low uint64 = 1 // every tag below low is settled
	for uint64(len(nacked)) < n {
		var cf confirmFrame
		switch m := r.Expect().(type) {
		case *amqp091.BasicAck:
			cf = confirmFrame{tag: m.DeliveryTag, multiple: m.Multiple}
		case *amqp091.BasicNack:
			cf = confirmFrame{nack: true, tag: m.DeliveryTag, multiple: m.Multiple}
		default:
			t.Fatalf("unexpected %s", m.Name())
		}
		frames = append(frames, cf)
		if cf.tag == 0 || cf.tag > n {
			t.Fatalf("confirm of tag %d, published 1..%d", cf.tag, n)
		}
		if !cf.multiple {
			if _, dup := nacked[cf.tag]; dup {
				t.Fatalf("tag %d confirmed twice", cf.tag)
			}
			nacked[cf.tag] = cf.nack
		} else {
			if _, dup := nacked[cf.tag]; dup {
				t.Fatalf("multiple confirm up to an already settled tag %d", cf.tag)
			}
			for tag := low; tag <= cf.tag; tag++ {
				if _, ok := nacked[tag]; !ok {
					nacked[tag] = cf.nack
				}
			}
		}
		for {
			if _, ok := nacked[low]; !ok {
				break
			}
			low++
		}
	}
	return frames, nacked
}

func confirmChannel(t *testing.T, s *testkit.Server) *testkit.RawConn {
	t.Helper()
	r := s.DialRaw(t)
	rawHandshake(t, r, 0)
	r.Send(1, &amqp091.ConfirmSelect{})
	if _, ok := r.Expect().(*amqp091.ConfirmSelectOk); !ok {
		t.Fatal("no confirm.select-ok")
	}
	return r
}

// A burst of persistent publishes is confirmed per group commit with
// multiple acks, not one basic.ack per message (RabbitMQ: 58 acks for
// 1,000 publishes).
func TestPersistentConfirmsAreBatched(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r := confirmChannel(t, s)
	r.Send(1, &amqp091.QueueDeclare{Queue: "batched", Durable: true})
	if _, ok := r.Expect().(*amqp091.QueueDeclareOk); !ok {
		t.Fatal("no declare-ok")
	}
	const n = 1000
	var buf []byte
	for range n {
		buf = appendPublish(buf, 1, "", "batched", []byte("persistent"), true)
	}
	r.Write(buf)
	frames, nacked := readConfirms(t, r, n)
	multiples := 0
	for _, f := range frames {
		if f.nack {
			t.Fatalf("nack of tag %d", f.tag)
		}
		if f.multiple {
			multiples++
		}
	}
	t.Logf("%d publishes confirmed by %d frames, %d of them multiple", n, len(frames), multiples)
	if len(frames) > n/10 || multiples == 0 {
		t.Fatalf("%d publishes confirmed by %d frames (%d multiple): not batched", n, len(frames), multiples)
	}
	if len(nacked) != n {
		t.Fatalf("%d tags settled", len(nacked))
	}
}

// Transient, unroutable and persistent publishes mixed with nacked ones
// (a full reject-publish queue): a multiple ack never covers a tag that is
// not confirmed, and every nacked tag gets its nack.
func TestMixedConfirmsNeverAckANackedTag(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r := confirmChannel(t, s)
	r.Send(1, &amqp091.QueueDeclare{Queue: "mixed-durable", Durable: true})
	r.Expect()
	r.Send(1, &amqp091.QueueDeclare{Queue: "mixed-full", Durable: true,
		Arguments: amqp091.Table{"x-max-length": int32(100), "x-overflow": "reject-publish"}})
	r.Expect()
	r.Send(1, &amqp091.QueueDeclare{Queue: "mixed-transient"})
	r.Expect()
	const n = 1200
	want := map[uint64]bool{}
	var buf []byte
	full := 0
	for i := uint64(1); i <= n; i++ {
		switch i % 4 {
		case 0:
			buf = appendPublish(buf, 1, "", "nowhere", []byte("unroutable"), false)
			want[i] = false
		case 1:
			buf = appendPublish(buf, 1, "", "mixed-full", []byte("maybe"), true)
			full++
			want[i] = full > 100
		case 2:
			buf = appendPublish(buf, 1, "", "mixed-durable", []byte("persistent"), true)
			want[i] = false
		case 3:
			buf = appendPublish(buf, 1, "", "mixed-transient", []byte("transient"), false)
			want[i] = false
		}
	}
	r.Write(buf)
	_, got := readConfirms(t, r, n)
	for tag := uint64(1); tag <= n; tag++ {
		if got[tag] != want[tag] {
			t.Fatalf("tag %d: nacked=%v, want %v", tag, got[tag], want[tag])
		}
	}
}

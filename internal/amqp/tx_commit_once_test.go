package amqp_test

import (
	"fmt"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

// A transaction's commit-ok goes out once, after every append is durable.
// A message could become durable before its queue's count was added to the
// commit's pending count, which then reached 0 early and again at the end:
// two commit-oks, the second taken by the client as the answer to its next
// call ("503 unexpected command received"). With fsync=interval appends
// are decided at once, which hits the window on the first commits.
func TestTxCommitOkGoesOutOnceAfterEveryAppend(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"interval", "always"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := testkit.Start(t, func(c *config.Config) { c.Fsync = mode })
			_, ch := s.Channel(t)
			if err := ch.ExchangeDeclare("fan", "fanout", true, false, false, false, nil); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 8; i++ {
				q := fmt.Sprintf("txq%d", i)
				if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
					t.Fatal(err)
				}
				if err := ch.QueueBind(q, "", "fan", false, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := ch.Tx(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 300; i++ {
				if err := ch.Publish("fan", "", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("x")}); err != nil {
					t.Fatal(err)
				}
				if err := ch.TxCommit(); err != nil {
					t.Fatalf("commit %d: %v", i, err)
				}
				// The next synchronous call must get its own answer, not a
				// stray commit-ok.
				q, err := ch.QueueDeclarePassive("txq0", true, false, false, false, nil)
				if err != nil {
					t.Fatalf("after commit %d: %v", i, err)
				}
				if q.Messages != i+1 {
					t.Fatalf("after commit %d: %d messages in txq0, want %d", i, q.Messages, i+1)
				}
			}
		})
	}
}

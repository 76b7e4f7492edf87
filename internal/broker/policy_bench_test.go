package broker_test

import (
	"testing"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// BenchmarkClassicPublishGet publishes to and gets from a classic queue
// with a length limit declared as an argument: the path a policy's
// effective arguments are read on.
func BenchmarkClassicPublishGet(b *testing.B) {
	v := broker.New(broker.Config{}).VHost("/")
	q, err := v.DeclareQueue(broker.QueueConfig{Name: "q", Args: map[string]any{"x-max-length": int64(1000), "x-message-ttl": int64(60000)}}, false, 1)
	if err != nil {
		b.Fatal(err)
	}
	var s broker.RouteScratch
	body := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Publish(&s, &message.Message{RoutingKey: "q", Body: body}, nil, 0); err != nil {
			b.Fatal(err)
		}
		if _, ok := q.Get(true); !ok {
			b.Fatal("empty")
		}
	}
}

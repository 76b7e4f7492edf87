package amqp

import (
	"testing"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
)

// BenchmarkPublishCheck measures the publish path's permission check
// alone (a channel's cached decision, then the generation's atomic load):
// it must not allocate.
func BenchmarkPublishCheck(b *testing.B) {
	users := auth.NewStore()
	users.Put(auth.User{Name: "u"})
	users.SetPermission("u", "/", auth.Permission{Configure: ".*", Write: `^(orders|amq\.default|amq\.topic)$`, Read: ".*"})
	users.SetTopicPermission("u", "/", auth.TopicPermission{Exchange: "amq.topic", Write: `^sensors\.{username}\.`, Read: ".*"})
	br := broker.New(broker.Config{Users: users})
	c := &connection{srv: &Server{users: users, broker: br}, vhost: br.VHost("/"), user: auth.User{Name: "u"}}
	ch := newChannel(c, 1)
	for _, tc := range []struct {
		name, exchange string
		keys           []string
	}{
		{"direct", "", []string{"q"}},
		{"topic-same-key", "amq.topic", []string{"sensors.u.temp"}},
		{"topic-new-key", "amq.topic", []string{"sensors.u.temp", "sensors.u.hum"}}, // the expression runs every time
	} {
		b.Run(tc.name, func(b *testing.B) {
			if err := ch.mayPublish(tc.exchange, tc.keys[0]); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if err := ch.mayPublish(tc.exchange, tc.keys[i%len(tc.keys)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPublishCheckAllocatesNothing holds the benchmark's claim as a test.
func TestPublishCheckAllocatesNothing(t *testing.T) {
	users := auth.NewStore()
	users.SetPermission("u", "/", auth.Permission{Write: `^amq\.topic$`})
	users.SetTopicPermission("u", "/", auth.TopicPermission{Exchange: "amq.topic", Write: `^a\.`})
	br := broker.New(broker.Config{Users: users})
	c := &connection{srv: &Server{users: users, broker: br}, vhost: br.VHost("/"), user: auth.User{Name: "u"}}
	ch := newChannel(c, 1)
	_ = ch.mayPublish("amq.topic", "a.b")
	if n := testing.AllocsPerRun(100, func() { _ = ch.mayPublish("amq.topic", "a.b") }); n != 0 {
		t.Errorf("%v allocations per allowed publish check", n)
	}
}

// TestPublishCheckCache: the channel's cached decisions never let through
// what the permissions refuse — another key on the same topic exchange,
// an empty key, another exchange — and follow a permission change.
func TestPublishCheckCache(t *testing.T) {
	users := auth.NewStore()
	users.SetPermission("u", "/", auth.Permission{Write: `^(amq\.topic|amq\.direct)$`})
	users.SetTopicPermission("u", "/", auth.TopicPermission{Exchange: "amq.topic", Write: `^a\.`})
	br := broker.New(broker.Config{Users: users})
	c := &connection{srv: &Server{users: users, broker: br}, vhost: br.VHost("/"), user: auth.User{Name: "u"}}
	ch := newChannel(c, 1)
	for i, step := range []struct {
		exchange, key string
		ok            bool
	}{
		{"amq.topic", "a.1", true},
		{"amq.topic", "a.1", true},
		{"amq.topic", "b.1", false},
		{"amq.topic", "", false},
		{"amq.topic", "a.2", true},
		{"amq.direct", "anything", true},
		{"amq.fanout", "", false},
		{"amq.topic", "a.2", true},
	} {
		if err := ch.mayPublish(step.exchange, step.key); (err == nil) != step.ok {
			t.Errorf("step %d: %s %q: %v, want ok=%v", i, step.exchange, step.key, err, step.ok)
		}
	}
	users.SetPermission("u", "/", auth.Permission{Write: `^amq\.direct$`})
	if err := ch.mayPublish("amq.topic", "a.2"); err == nil {
		t.Error("a revoked write permission still allows the cached exchange")
	}
}

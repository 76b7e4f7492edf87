package broker_test

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/flow"
	"github.com/tern-broker/tern/internal/message"
)

// fuzzArgs holds a value of every type a field table carries, so the seeds
// exercise each of the argument codec's branches.
var fuzzArgs = map[string]any{
	"s": "str", "i": int32(-1), "I": uint32(7), "l": int64(1 << 40), "b": true, "d": 2.5, "f": float32(1.5),
	"D": message.Decimal{Scale: 2, Value: 314}, "x": []byte{1}, "A": []any{"a", int16(2), map[string]any{"n": nil}},
	"T": time.Unix(1700000000, 0).UTC(), "F": map[string]any{"k": uint8(1)}, "V": nil, "bb": int8(-3), "u": uint16(4),
}

// FuzzDecodeCommand: a definitions log record never panics the decoder,
// and a decoded command is a fixed point of encode and decode: encoding it
// and decoding that gives a command that encodes to the same bytes. (The
// first decode may normalise — an empty argument table becomes none — so
// the property is on the second round, compared as bytes because a NaN
// argument is not equal to itself.)
func FuzzDecodeCommand(f *testing.F) {
	seeds := []broker.Command{
		broker.AddVHost{Name: "v2"},
		broker.DeclareExchange{ExchangeDef: broker.ExchangeDef{VHost: "/", ExchangeConfig: broker.ExchangeConfig{
			Name: "x", Type: "topic", Durable: true, Internal: true, AutoDelete: true, Args: fuzzArgs}}},
		broker.DeleteExchange{VHost: "/", Name: "x"},
		broker.DeclareQueue{QueueDef: broker.QueueDef{VHost: "/", ID: "id1", QueueConfig: broker.QueueConfig{
			Name: "q", Durable: true, AutoDelete: true, Args: map[string]any{"x-message-ttl": int32(5)}}}},
		broker.DeleteQueue{VHost: "/", Name: "q"},
		broker.Bind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "q", Key: "a.*", Args: map[string]any{"n": int64(1)}}},
		broker.Unbind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "y", DestIsExchange: true, Key: "#"}},
		// What only a cluster replicates.
		broker.DeclareQueue{QueueDef: broker.QueueDef{VHost: "/", ID: "id2", Node: 3, QueueConfig: broker.QueueConfig{
			Name: "e", Exclusive: true, Owner: 9, AutoDelete: true}}},
		broker.DeclareExchange{ExchangeDef: broker.ExchangeDef{VHost: "/", ExchangeConfig: broker.ExchangeConfig{Name: "t", Type: "fanout"}}},
		broker.DeleteQueue{VHost: "/", Name: "e", ID: "id2"},
		broker.Bind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "e", DestID: "id2", Key: "k"}},
		broker.SetLimits{Limits: []flow.Limit{{VHost: "/", User: "*", PerConnection: true, PublishRate: 2.5, PublishBurst: 3, ByteRate: math.Inf(1), ByteBurst: 4},
			{VHost: "v", PublishRate: math.NaN()}}},
		// Users, permissions and limits (security.go).
		broker.PutUser{Name: "u", PasswordHash: "$argon2id$v=19$m=16384,t=1,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", Tags: []string{"administrator", "monitoring"}, LoopbackOnly: true},
		broker.PutUser{Name: "nopw"},
		broker.DeleteUser{Name: "u"},
		broker.SetPermission{VHost: "/", User: "u", Permission: auth.Permission{Configure: "^u\\.", Write: ".*", Read: ""}},
		broker.ClearPermission{VHost: "/", User: "u"},
		broker.SetTopicPermission{VHost: "/", User: "u", TopicPermission: auth.TopicPermission{Exchange: "amq.topic", Write: "^{username}\\.", Read: "^{client_id}"}},
		broker.ClearTopicPermission{VHost: "/", User: "u", Exchange: "amq.topic"},
		broker.ClearTopicPermission{VHost: "/", User: "u"},
		broker.SetVHostLimit{VHost: "/", Name: "max-connections", Value: 10},
		broker.SetVHostLimit{VHost: "/", Name: "max-queues", Value: -1},
		broker.SetUserLimit{User: "u", Name: "max-channels", Value: 0},
		broker.DeleteVHost{Name: "v2"},
		broker.Proposed{ID: 1 << 60, Command: broker.DeleteQueue{VHost: "/", Name: "e", ID: "id2"}},
	}
	for _, c := range seeds {
		f.Add(broker.EncodeCommand(c))
	}
	f.Add([]byte(`{"op":"declare_queue","name":"q","arguments":"AAAAAA=="}`))
	f.Add([]byte(`{"op":"bind","arguments":"AAAABQFrWgAA"}`))
	f.Add([]byte(`{"op":"nope"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := broker.DecodeCommand(payload)
		if err != nil {
			return
		}
		enc := broker.EncodeCommand(c)
		c2, err := broker.DecodeCommand(enc)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", enc, err)
		}
		enc2 := broker.EncodeCommand(c2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("command does not round-trip:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzDecodeDefinitions: the definitions snapshot never panics the
// decoder, and a decoded document round-trips as FuzzDecodeCommand does.
func FuzzDecodeDefinitions(f *testing.F) {
	d := &broker.Definitions{
		VHosts: []string{"/", "v2"},
		Exchanges: []broker.ExchangeDef{{VHost: "/", ExchangeConfig: broker.ExchangeConfig{
			Name: "x", Type: "headers", Durable: true, Internal: true, Args: fuzzArgs}}},
		Queues: []broker.QueueDef{{VHost: "v2", ID: "id", QueueConfig: broker.QueueConfig{
			Name: "q", Durable: true, AutoDelete: true, Args: map[string]any{"x-max-length": int64(7)}}}},
		Bindings: []broker.BindingDef{{VHost: "/", Source: "x", Destination: "q", Key: "k", Args: map[string]any{"x-match": "all"}},
			{VHost: "/", Source: "x", Destination: "x2", DestIsExchange: true}},
	}
	cluster := &broker.Definitions{
		VHosts:    []string{"/"},
		Exchanges: []broker.ExchangeDef{{VHost: "/", ExchangeConfig: broker.ExchangeConfig{Name: "t", Type: "direct", AutoDelete: true}}},
		Queues: []broker.QueueDef{{VHost: "/", ID: "i", Node: 2, QueueConfig: broker.QueueConfig{
			Name: "e", Exclusive: true, Owner: 4}}},
		Bindings: []broker.BindingDef{{VHost: "/", Source: "t", Destination: "e", DestID: "i"}},
	}
	security := &broker.Definitions{
		VHosts:           []string{"/"},
		Users:            []broker.PutUser{{Name: "u", PasswordHash: "h", Tags: []string{"monitoring"}}, {Name: "g", LoopbackOnly: true}},
		Permissions:      []auth.PermissionEntry{{User: "u", VHost: "/", Permission: auth.Permission{Configure: ".*", Write: "^a", Read: ""}}},
		TopicPermissions: []auth.TopicPermissionEntry{{User: "u", VHost: "/", TopicPermission: auth.TopicPermission{Exchange: "amq.topic", Write: "x", Read: "y"}}},
		VHostLimits:      []auth.LimitEntry{{VHost: "/", Value: map[string]int64{"max-connections": 3, "max-queues": 0}}},
		UserLimits:       []auth.LimitEntry{{User: "u", Value: map[string]int64{"max-channels": 9}}},
	}
	for _, seed := range []*broker.Definitions{d, cluster, security, {}} {
		b, err := broker.EncodeDefinitions(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"queues":[{"name":"q","arguments":"AAAAAA=="}]}`))
	f.Add([]byte(`{"version":1,"bindings":[{"arguments":"AAAAEQ=="}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := broker.DecodeDefinitions(raw)
		if err != nil {
			return
		}
		enc, err := broker.EncodeDefinitions(d)
		if err != nil {
			t.Fatalf("decoded definitions do not encode: %v", err)
		}
		d2, err := broker.DecodeDefinitions(enc)
		if err != nil {
			t.Fatalf("re-encoded definitions do not decode: %v\n%s", err, enc)
		}
		enc2, err := broker.EncodeDefinitions(d2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("definitions do not round-trip:\n%s\n%s", enc, enc2)
		}
	})
}

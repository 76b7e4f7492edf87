package broker_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/flow"
)

// A single node's commands encode to exactly the records it always wrote:
// the fields a cluster added are absent.
func TestEncodeCommandSingleNodeBytesUnchanged(t *testing.T) {
	t.Parallel()
	args := map[string]any{"x-message-ttl": int32(5)}
	const argsB64 = "AAAAEw14LW1lc3NhZ2UtdHRsSQAAAAU="
	cases := []struct {
		c    broker.Command
		want string
	}{
		{broker.AddVHost{Name: "v2"}, `{"op":"add_vhost","name":"v2"}`},
		{broker.DeclareExchange{ExchangeDef: broker.ExchangeDef{VHost: "/", ExchangeConfig: broker.ExchangeConfig{
			Name: "x", Type: "topic", Durable: true, AutoDelete: true, Internal: true}}},
			`{"op":"declare_exchange","vhost":"/","name":"x","type":"topic","auto_delete":true,"internal":true}`},
		{broker.DeleteExchange{VHost: "/", Name: "x"}, `{"op":"delete_exchange","vhost":"/","name":"x"}`},
		{broker.DeclareQueue{QueueDef: broker.QueueDef{VHost: "/", ID: "id1", QueueConfig: broker.QueueConfig{
			Name: "q", Durable: true, Args: args}}},
			`{"op":"declare_queue","vhost":"/","name":"q","id":"id1","arguments":"` + argsB64 + `"}`},
		{broker.DeleteQueue{VHost: "/", Name: "q"}, `{"op":"delete_queue","vhost":"/","name":"q"}`},
		{broker.Bind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "y", DestIsExchange: true, Key: "k"}},
			`{"op":"bind","vhost":"/","source":"x","destination":"y","destination_is_exchange":true,"routing_key":"k"}`},
		{broker.Unbind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "q", Key: "k", Args: args}},
			`{"op":"unbind","vhost":"/","source":"x","destination":"q","routing_key":"k","arguments":"` + argsB64 + `"}`},
	}
	for _, tc := range cases {
		if got := string(broker.EncodeCommand(tc.c)); got != tc.want {
			t.Errorf("%T:\n got %s\nwant %s", tc.c, got, tc.want)
		}
	}
}

// What a cluster replicates decodes to the command that was encoded,
// transient and exclusive objects, nodes, owners and ids included.
func TestClusterCommandsRoundTrip(t *testing.T) {
	t.Parallel()
	cmds := []broker.Command{
		broker.DeclareQueue{QueueDef: broker.QueueDef{VHost: "/", ID: "a", Node: 2, QueueConfig: broker.QueueConfig{
			Name: "e", Exclusive: true, Owner: 17, AutoDelete: true, Args: map[string]any{"x-expires": int64(9)}}}},
		broker.DeclareQueue{QueueDef: broker.QueueDef{VHost: "/", ID: "b", QueueConfig: broker.QueueConfig{Name: "quorum", Durable: true}}},
		broker.DeclareExchange{ExchangeDef: broker.ExchangeDef{VHost: "v", ExchangeConfig: broker.ExchangeConfig{Name: "t", Type: "fanout"}}},
		broker.DeleteQueue{VHost: "/", Name: "e", ID: "a"},
		broker.Bind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "e", DestID: "a", Key: "k"}},
		broker.Unbind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "e", DestID: "a", Key: "k"}},
		broker.SetLimits{Limits: []flow.Limit{{VHost: "/", User: "*", PerConnection: true, PublishRate: 2.5, PublishBurst: 3,
			ByteRate: math.Inf(1), ByteBurst: 4}, {VHost: "w", ByteRate: 1e9}}},
	}
	for _, c := range cmds {
		got, err := broker.DecodeCommand(broker.EncodeCommand(c))
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", c) {
			t.Errorf("round trip:\n got %#v\nwant %#v", got, c)
		}
	}
	if _, err := broker.DecodeCommand([]byte(`{"op":"set_limits","limits":[{"vhost":"/","publish_rate":"fast"}]}`)); err == nil {
		t.Error("an unreadable rate must not decode")
	}
}

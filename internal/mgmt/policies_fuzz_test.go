package mgmt

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
)

// FuzzDecodePolicyBody: any PUT body either is refused or gives a policy
// that, once validated, encodes as RabbitMQ's JSON and decodes back to the
// same policy.
func FuzzDecodePolicyBody(f *testing.F) {
	for _, s := range []string{
		`{"pattern":"^amq\\.","definition":{"max-length":10},"priority":0,"apply-to":"queues"}`,
		`{"pattern":".*","definition":{"message-ttl":60000,"dead-letter-exchange":"dlx","overflow":"reject-publish"},"priority":"3"}`,
		`{"vhost":"/","name":"p","pattern":"q","definition":{"max-age":"7D","stream-max-segment-size-bytes":1000000},"apply-to":"streams"}`,
		`{"pattern":"x","definition":{"deliver-rate":2.5,"publish-rate":100}}`,
		`{"pattern":"x","definition":{"max-length":1e3}}`,
		`{"pattern":"x","definition":{}}`,
		`{"pattern":"x"}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePolicyBody(bytes.NewReader(body), "/", "p")
		if err != nil {
			return
		}
		v, err := broker.ValidatePolicy(p, false)
		if err != nil {
			return
		}
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("a valid policy does not encode: %v", err)
		}
		again, err := decodePolicyBody(bytes.NewReader(raw), "/", "p")
		if err != nil {
			t.Fatalf("%s does not decode: %v", raw, err)
		}
		v2, err := broker.ValidatePolicy(again, false)
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("policy does not round-trip:\n%#v\n%#v (%v)", v, v2, err)
		}
	})
}

// The queue object's policy fields, as RabbitMQ names them.
func TestQueuePolicyFields(t *testing.T) {
	t.Parallel()
	b := broker.New(broker.Config{})
	q, err := b.VHost("/").DeclareQueue(broker.QueueConfig{Name: "q"}, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(queuePolicyFields(q)); string(got) != `{"effective_policy_definition":{},"operator_policy":null,"policy":null}` {
		t.Fatalf("without policies: %s", got)
	}
	if err := b.SetPolicy(broker.Policy{VHost: "/", Name: "p", Pattern: "q", Definition: map[string]any{"max-length": 5}}, false); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPolicy(broker.Policy{VHost: "/", Name: "o", Pattern: "q", Definition: map[string]any{"max-length": 2}}, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(queuePolicyFields(q)); string(got) != `{"effective_policy_definition":{"max-length":2},"operator_policy":"o","policy":"p"}` {
		t.Fatalf("with policies: %s", got)
	}
}

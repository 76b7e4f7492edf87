package amqp_test

import (
	"errors"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// A consistent-hash exchange refuses what would make it route nothing, as
// rabbitmq_consistent_hash_exchange does, with 406 and the plugin's text:
// a binding key that is no positive integer weight (the mistake of binding
// with a routing key, as on a direct exchange), and hash arguments that
// name no usable source. Weights beyond Tern's bound are refused too.
func TestConsistentHashRefusesBadWeightsAndArguments(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	conn, ch := s.Channel(t)
	if err := ch.ExchangeDeclare("chash", "x-consistent-hash", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q := declare(t, ch, nil)
	refused := func(what, want string, op func(ch *amqp.Channel) error) {
		t.Helper()
		c, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		err = op(c)
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed || !strings.Contains(ae.Reason, want) {
			t.Errorf("%s: got %v, want 406 %q", what, err, want)
		}
	}
	for key, want := range map[string]string{
		"orders":                  `The binding key must be an integer: <<"orders">>`,
		"":                        `The binding key must be an integer: <<"">>`,
		"1.5":                     "must be an integer",
		"0":                       "The binding key must be greater than 0",
		"-1":                      "The binding key must be greater than 0",
		"1001":                    "must be at most 1000",
		"99999999999999999999999": "must be at most 1000",
	} {
		refused("bind weight "+key, want, func(c *amqp.Channel) error { return c.QueueBind(q, key, "chash", false, nil) })
		refused("exchange bind weight "+key, want, func(c *amqp.Channel) error { return c.ExchangeBind("amq.fanout", key, "chash", false, nil) })
	}
	for what, c := range map[string]struct {
		args amqp.Table
		want string
	}{
		"both":         {amqp.Table{"hash-header": "h", "hash-property": "message_id"}, "hash-header and hash-property are mutually exclusive"},
		"app_id":       {amqp.Table{"hash-property": "app_id"}, "Unsupported property: app_id"},
		"header int":   {amqp.Table{"hash-header": int32(5)}, "hash-header must be a string"},
		"property int": {amqp.Table{"hash-property": int32(5)}, "hash-property must be a string"},
	} {
		refused("declare "+what, c.want, func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare("chash-"+strings.ReplaceAll(what, " ", "-"), "x-consistent-hash", false, true, false, false, c.args)
		})
	}
	// What is valid still is: weights 1..1000 (with a sign, as the plugin
	// reads them), each supported property, a header.
	for _, key := range []string{"1", "+2", "1000"} {
		if err := ch.QueueBind(q, key, "chash", false, nil); err != nil {
			t.Fatalf("bind weight %q: %v", key, err)
		}
	}
	for _, p := range []string{"correlation_id", "message_id", "timestamp"} {
		if err := ch.ExchangeDeclare("chash-"+p, "x-consistent-hash", false, true, false, false, amqp.Table{"hash-property": p}); err != nil {
			t.Fatalf("hash-property %s: %v", p, err)
		}
	}
	if err := ch.ExchangeDeclare("chash-h", "x-consistent-hash", false, true, false, false, amqp.Table{"hash-header": "h"}); err != nil {
		t.Fatal(err)
	}
	// Other exchange types take any binding key.
	if err := ch.QueueBind(q, "orders", "amq.direct", false, nil); err != nil {
		t.Fatal(err)
	}
}

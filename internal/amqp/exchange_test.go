package amqp_test

import (
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// routes publishes one message per key through exchange and reports which
// of the queues got which.
func bindAndRoute(t *testing.T, ch *amqp.Channel, exchange string, bindings map[string][]string, keys []string) map[string][]string {
	t.Helper()
	queues := map[string]string{}
	for name, bkeys := range bindings {
		q := declare(t, ch, nil)
		queues[name] = q
		for _, k := range bkeys {
			if err := ch.QueueBind(q, k, exchange, false, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, k := range keys {
		publish(t, ch, exchange, k, body(k))
	}
	got := map[string][]string{}
	for name, q := range queues {
		testkit.Eventually(t, wait, "routing settles", func() bool { return true })
		for {
			m, ok, err := ch.Get(q, true)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got[name] = append(got[name], string(m.Body))
		}
	}
	return got
}

func TestDefaultExchangeRoutesByQueueName(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	publish(t, ch, "", q, body("hello"))
	testkit.Eventually(t, wait, "delivery", func() bool { return queueLen(t, ch, q) == 1 })
	if got := getBody(t, ch, q); got != "hello" {
		t.Fatal(got)
	}
	err := ch.QueueBind(q, "k", "", false, nil)
	expectCode(t, err, amqp.AccessRefused)
}

func TestAmqExchangesArePredeclared(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	for name, kind := range map[string]string{"amq.direct": "direct", "amq.fanout": "fanout", "amq.topic": "topic", "amq.headers": "headers", "amq.match": "headers"} {
		if err := ch.ExchangeDeclarePassive(name, kind, true, false, false, false, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	err := ch.ExchangeDeclare("amq.mine", "direct", false, false, false, false, nil)
	expectCode(t, err, amqp.AccessRefused)
}

func TestDirectExchange(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if err := ch.ExchangeDeclare("logs_direct", "direct", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	got := bindAndRoute(t, ch, "logs_direct", map[string][]string{"errors": {"error"}, "all": {"info", "error"}}, []string{"info", "error", "debug"})
	if !slices.Equal(got["errors"], []string{"error"}) || !slices.Equal(got["all"], []string{"info", "error"}) {
		t.Fatalf("%v", got)
	}
}

func TestFanoutExchange(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	got := bindAndRoute(t, ch, "amq.fanout", map[string][]string{"a": {""}, "b": {"ignored"}}, []string{"x", "y"})
	if !slices.Equal(got["a"], []string{"x", "y"}) || !slices.Equal(got["b"], []string{"x", "y"}) {
		t.Fatalf("%v", got)
	}
}

func TestTopicExchange(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	got := bindAndRoute(t, ch, "amq.topic", map[string][]string{
		"orange": {"*.orange.*"},
		"lazy":   {"*.*.rabbit", "lazy.#"},
	}, []string{"quick.orange.rabbit", "lazy.orange.elephant", "quick.orange.fox", "lazy.brown.fox", "lazy.pink.rabbit", "quick.brown.fox", "orange", "lazy.orange.male.rabbit"})
	if want := []string{"quick.orange.rabbit", "lazy.orange.elephant", "quick.orange.fox"}; !slices.Equal(got["orange"], want) {
		t.Errorf("orange got %v want %v", got["orange"], want)
	}
	// lazy.pink.rabbit matches both of lazy's bindings but arrives once.
	if want := []string{"quick.orange.rabbit", "lazy.orange.elephant", "lazy.brown.fox", "lazy.pink.rabbit", "lazy.orange.male.rabbit"}; !slices.Equal(got["lazy"], want) {
		t.Errorf("lazy got %v want %v", got["lazy"], want)
	}
}

func TestHeadersExchange(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	qAll, qAny := declare(t, ch, nil), declare(t, ch, nil)
	if err := ch.QueueBind(qAll, "", "amq.headers", false, amqp.Table{"x-match": "all", "format": "pdf", "type": "report"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(qAny, "", "amq.headers", false, amqp.Table{"x-match": "any", "format": "pdf", "type": "log"}); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "amq.headers", "", amqp.Publishing{Headers: amqp.Table{"format": "pdf", "type": "report"}, Body: []byte("both")})
	publish(t, ch, "amq.headers", "", amqp.Publishing{Headers: amqp.Table{"format": "pdf"}, Body: []byte("any-only")})
	publish(t, ch, "amq.headers", "", amqp.Publishing{Headers: amqp.Table{"format": "zip"}, Body: []byte("none")})
	testkit.Eventually(t, wait, "routing", func() bool { return queueLen(t, ch, qAny) == 2 })
	if queueLen(t, ch, qAll) != 1 || getBody(t, ch, qAll) != "both" {
		t.Fatal("x-match all")
	}
	err := ch.QueueBind(qAll, "", "amq.headers", false, amqp.Table{"x-match": "some"})
	expectCode(t, err, amqp.PreconditionFailed)
}

func TestExchangeToExchangeBinding(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if err := ch.ExchangeDeclare("upstream", "topic", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("downstream", "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeBind("downstream", "sensors.#", "upstream", false, nil); err != nil {
		t.Fatal(err)
	}
	q := declare(t, ch, nil)
	if err := ch.QueueBind(q, "", "downstream", false, nil); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "upstream", "sensors.kitchen.temp", body("21.5"))
	publish(t, ch, "upstream", "doors.front", body("open"))
	testkit.Eventually(t, wait, "routing", func() bool { return queueLen(t, ch, q) == 1 })
	if getBody(t, ch, q) != "21.5" {
		t.Fatal("wrong message through e2e binding")
	}
	if err := ch.ExchangeUnbind("downstream", "sensors.#", "upstream", false, nil); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "upstream", "sensors.kitchen.temp", body("22"))
	// queueLen's passive declare on the same channel is handled after the
	// publish was routed: a round trip, no sleep.
	if queueLen(t, ch, q) != 0 {
		t.Fatal("unbind did not stop routing")
	}
}

func TestAlternateExchange(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if err := ch.ExchangeDeclare("unrouted", "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("main", "direct", false, true, false, false, amqp.Table{"alternate-exchange": "unrouted"}); err != nil {
		t.Fatal(err)
	}
	qMain, qAE := declare(t, ch, nil), declare(t, ch, nil)
	_ = ch.QueueBind(qMain, "known", "main", false, nil)
	_ = ch.QueueBind(qAE, "", "unrouted", false, nil)
	publish(t, ch, "main", "known", body("routed"))
	publish(t, ch, "main", "unknown", body("fallback"))
	testkit.Eventually(t, wait, "routing", func() bool { return queueLen(t, ch, qAE) == 1 })
	if getBody(t, ch, qMain) != "routed" || getBody(t, ch, qAE) != "fallback" {
		t.Fatal("alternate exchange misrouted")
	}
}

func TestInternalExchangeRefusesPublish(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if err := ch.ExchangeDeclare("inner", "fanout", false, true, true, false, nil); err != nil {
		t.Fatal(err)
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	publish(t, ch, "inner", "", body("x"))
	select {
	case err := <-closed:
		expectCode(t, err, amqp.AccessRefused)
	case <-time.After(wait):
		t.Fatal("publishing to an internal exchange was accepted")
	}
}

func TestMandatoryUnroutableIsReturned(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	if err := ch.Publish("amq.direct", "nobody", true, false, body("lost?")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-returns:
		if r.ReplyCode != amqp.NoRoute || string(r.Body) != "lost?" || r.RoutingKey != "nobody" {
			t.Fatalf("%+v", r)
		}
	case <-time.After(wait):
		t.Fatal("no basic.return")
	}
}

func TestExchangeRedeclareAndDelete(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	if err := ch.ExchangeDeclare("ex", "direct", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("ex", "direct", false, false, false, false, nil); err != nil {
		t.Fatal("equivalent redeclare failed:", err)
	}
	err := ch.ExchangeDeclare("ex", "fanout", false, false, false, false, nil)
	ae := expectCode(t, err, amqp.PreconditionFailed)
	if ae.Reason != "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'ex' in vhost '/': received 'fanout' but current is 'direct'" {
		t.Errorf("reason %q", ae.Reason)
	}
	ch, _ = c.Channel()
	q := declare(t, ch, nil)
	_ = ch.QueueBind(q, "k", "ex", false, nil)
	expectCode(t, ch.ExchangeDelete("ex", true, false), amqp.PreconditionFailed)
	ch, _ = c.Channel()
	if err := ch.ExchangeDelete("ex", false, false); err != nil {
		t.Fatal(err)
	}
	expectCode(t, ch.ExchangeDeclarePassive("ex", "direct", false, false, false, false, nil), amqp.NotFound)
}

func TestAutoDeleteExchangeGoesWithLastBinding(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if err := ch.ExchangeDeclare("ephemeral", "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q := declare(t, ch, nil)
	_ = ch.QueueBind(q, "", "ephemeral", false, nil)
	if err := ch.QueueUnbind(q, "", "ephemeral", nil); err != nil {
		t.Fatal(err)
	}
	expectCode(t, ch.ExchangeDeclarePassive("ephemeral", "fanout", false, true, false, false, nil), amqp.NotFound)
}

func TestDelayedMessageExchange(t *testing.T) {
	t.Parallel()
	s, clk := startFake(t)
	_, ch := s.Channel(t)
	if err := ch.ExchangeDeclare("later", "x-delayed-message", false, true, false, false, amqp.Table{"x-delayed-type": "direct"}); err != nil {
		t.Fatal(err)
	}
	q := declare(t, ch, nil)
	_ = ch.QueueBind(q, "k", "later", false, nil)
	d := consume(t, ch, q, true)
	publish(t, ch, "later", "k", amqp.Publishing{Headers: amqp.Table{"x-delay": int32(400)}, Body: []byte("slow")})
	publish(t, ch, "later", "k", amqp.Publishing{Headers: amqp.Table{"x-delay": int32(100)}, Body: []byte("fast")})
	publish(t, ch, "later", "k", body("now"))
	// "now" arriving means the channel handled the two before it: both
	// wait on the fake clock.
	got := bodies(t, d, 1)
	// A due message is routed inside Advance, so a marker published on
	// the same channel afterwards arrives after it: one that arrives first
	// shows nothing was due.
	step := func(by time.Duration, marker string) {
		t.Helper()
		clk.Advance(by)
		publish(t, ch, "", q, body(marker))
		got = append(got, bodies(t, d, 1)[0])
		for got[len(got)-1] != marker && len(got) < 10 {
			got = append(got, bodies(t, d, 1)[0])
		}
	}
	step(99*time.Millisecond, "m1")  // nothing due yet
	step(time.Millisecond, "m2")     // fast, at 100 ms
	step(299*time.Millisecond, "m3") // nothing more
	step(time.Millisecond, "m4")     // slow, at 400 ms
	if want := []string{"now", "m1", "fast", "m2", "m3", "slow", "m4"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v: a delayed message came before its delay or not at it", got, want)
	}
	err := ch.ExchangeDeclare("bad", "x-delayed-message", false, true, false, false, nil)
	expectCode(t, err, amqp.PreconditionFailed)
}

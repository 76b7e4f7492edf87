package mgmt_test

import (
	"net/http"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// The read endpoints answer with RabbitMQ's field names for a node with a
// queue, a binding, a publisher and a consumer.
func TestReadEndpointsHaveRabbitMQFields(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	conn, err := amqp.DialConfig(s.URL, amqp.Config{Properties: amqp.Table{"connection_name": "reader-test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(7, 0, false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("orders", true, false, false, false, amqp.Table{"x-max-length": int32(1000)}); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("shop", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("orders", "order.*", "shop", false, nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := ch.Publish("shop", "order.new", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	deliveries, err := ch.Consume("orders", "tag-1", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := testkit.Receive(t, deliveries, 5*time.Second)
	testkit.Eventually(t, 5*time.Second, "the queue shows its 3 messages unacked (prefetch 7)", func() bool {
		q := getObject(t, s, "/api/queues/%2F/orders")
		return q["messages_unacknowledged"] == 3.0 && q["messages_ready"] == 0.0
	})

	ov := getObject(t, s, "/api/overview")
	hasFields(t, "overview", ov, "management_version", "rabbitmq_version", "product_name", "cluster_name", "node",
		"exchange_types", "message_stats.publish", "message_stats.publish_details.rate", "message_stats.ack",
		"message_stats.deliver_get", "message_stats.redeliver", "queue_totals.messages", "queue_totals.messages_ready",
		"queue_totals.messages_unacknowledged", "queue_totals.messages_details.rate", "object_totals.connections",
		"object_totals.channels", "object_totals.queues", "object_totals.exchanges", "object_totals.consumers", "listeners")
	if ot := ov["object_totals"].(map[string]any); ot["connections"] != 1.0 || ot["channels"] != 1.0 || ot["queues"] != 1.0 || ot["consumers"] != 1.0 {
		t.Errorf("object_totals %v", ot)
	}
	if ms := ov["message_stats"].(map[string]any); ms["publish"] != 3.0 {
		t.Errorf("overview message_stats %v, want publish 3", ms)
	}

	nodes := getList(t, s, "/api/nodes")
	if len(nodes) != 1 {
		t.Fatalf("%d nodes", len(nodes))
	}
	hasFields(t, "node", nodes[0], "name", "type", "running", "uptime", "mem_used", "mem_alarm", "disk_free_alarm", "partitions")
	getObject(t, s, "/api/nodes/"+nodes[0]["name"].(string))
	guest(t, s, "GET", "/api/nodes/nobody@nowhere", nil, http.StatusNotFound)

	q := getObject(t, s, "/api/queues/%2F/orders")
	hasFields(t, "queue", q, "name", "vhost", "durable", "auto_delete", "exclusive", "arguments", "node", "state", "type",
		"consumers", "messages", "messages_details.rate", "messages_ready", "messages_ready_details.rate",
		"messages_unacknowledged", "messages_unacknowledged_details.rate", "message_stats.publish",
		"message_stats.publish_details.rate", "message_stats.deliver_get", "message_stats.deliver_get_details.rate",
		"message_stats.ack", "message_stats.ack_details.rate", "message_stats.redeliver", "message_stats.redeliver_details.rate",
		"consumer_details")
	if q["messages"] != 3.0 || q["consumers"] != 1.0 || q["durable"] != true || q["type"] != "classic" {
		t.Errorf("queue %v", q)
	}
	if args := q["arguments"].(map[string]any); args["x-max-length"] != 1000.0 {
		t.Errorf("arguments %v", args)
	}
	if ms := q["message_stats"].(map[string]any); ms["publish"] != 3.0 || ms["deliver_get"] != 3.0 {
		t.Errorf("queue message_stats %v", ms)
	}
	if len(getList(t, s, "/api/queues")) != 1 || len(getList(t, s, "/api/queues/%2F")) != 1 {
		t.Error("queue listings")
	}

	xs := getList(t, s, "/api/exchanges/%2F")
	x := find(xs, "name", "shop")
	if x == nil || find(xs, "name", "") == nil || find(xs, "name", "amq.topic") == nil {
		t.Fatalf("exchanges %v", xs)
	}
	hasFields(t, "exchange", x, "name", "vhost", "type", "durable", "auto_delete", "internal", "arguments")
	if got := getObject(t, s, "/api/exchanges/%2F/amq.default"); got["name"] != "" || got["type"] != "direct" {
		t.Errorf("the default exchange: %v", got)
	}

	bs := getList(t, s, "/api/bindings/%2F")
	b := find(bs, "source", "shop")
	if b == nil || find(bs, "source", "") == nil {
		t.Fatalf("bindings %v", bs)
	}
	hasFields(t, "binding", b, "source", "vhost", "destination", "destination_type", "routing_key", "arguments", "properties_key")
	if b["routing_key"] != "order.*" || b["destination"] != "orders" || b["destination_type"] != "queue" {
		t.Errorf("binding %v", b)
	}
	if got := getList(t, s, "/api/bindings/%2F/e/shop/q/orders"); len(got) != 1 {
		t.Errorf("bindings between shop and orders: %v", got)
	}
	if got := getList(t, s, "/api/queues/%2F/orders/bindings"); len(got) != 2 {
		t.Errorf("the queue's bindings (default and shop): %v", got)
	}
	if got := getList(t, s, "/api/exchanges/%2F/shop/bindings/source"); len(got) != 1 {
		t.Errorf("the exchange's bindings: %v", got)
	}

	conns := getList(t, s, "/api/connections")
	if len(conns) != 1 {
		t.Fatalf("connections %v", conns)
	}
	c := conns[0]
	hasFields(t, "connection", c, "name", "node", "type", "state", "protocol", "user", "vhost", "host", "port",
		"peer_host", "peer_port", "ssl", "channels", "frame_max", "timeout", "client_properties", "recv_oct",
		"send_oct", "recv_oct_details.rate", "send_oct_details.rate", "connected_at", "auth_mechanism")
	name := c["name"].(string)
	if c["user"] != "guest" || c["vhost"] != "/" || c["channels"] != 1.0 || c["protocol"] != "AMQP 0-9-1" ||
		c["user_provided_name"] != "reader-test" || c["recv_oct"].(float64) == 0 || c["send_oct"].(float64) == 0 {
		t.Errorf("connection %v", c)
	}
	if want := c["peer_host"].(string) + ":" + itoa(c["peer_port"]) + " -> " + c["host"].(string) + ":" + itoa(c["port"]); name != want {
		t.Errorf("connection name %q, want %q", name, want)
	}
	if got := getObject(t, s, "/api/connections/"+pathEscape(name)); got["name"] != name {
		t.Errorf("GET the connection: %v", got)
	}
	if got := getList(t, s, "/api/connections/"+pathEscape(name)+"/channels"); len(got) != 1 {
		t.Errorf("the connection's channels: %v", got)
	}

	chans := getList(t, s, "/api/channels")
	if len(chans) != 1 {
		t.Fatalf("channels %v", chans)
	}
	hasFields(t, "channel", chans[0], "name", "number", "node", "user", "vhost", "state", "connection_details.name",
		"connection_details.peer_host", "connection_details.peer_port", "prefetch_count", "global_prefetch_count",
		"consumer_count", "messages_unacknowledged")
	if chans[0]["prefetch_count"] != 7.0 || chans[0]["consumer_count"] != 1.0 || chans[0]["messages_unacknowledged"] != 3.0 ||
		chans[0]["name"] != name+" (1)" {
		t.Errorf("channel %v", chans[0])
	}

	if got := getObject(t, s, "/api/channels/"+pathEscape(name+" (1)")); got["number"] != 1.0 {
		t.Errorf("GET the channel: %v", got)
	}
	guest(t, s, "GET", "/api/channels/"+pathEscape(name+" (2)"), nil, http.StatusNotFound)
	if len(getList(t, s, "/api/bindings")) != 2 || len(getList(t, s, "/api/exchanges")) != 7 {
		t.Error("the bindings and exchanges of every vhost")
	}
	cons := getList(t, s, "/api/consumers")
	if len(cons) != 1 {
		t.Fatalf("consumers %v", cons)
	}
	hasFields(t, "consumer", cons[0], "consumer_tag", "queue.name", "queue.vhost", "channel_details.name",
		"channel_details.number", "channel_details.connection_name", "channel_details.peer_host", "channel_details.peer_port",
		"ack_required", "prefetch_count", "active")
	if cons[0]["consumer_tag"] != "tag-1" || cons[0]["ack_required"] != true || cons[0]["prefetch_count"] != 7.0 {
		t.Errorf("consumer %v", cons[0])
	}
	if len(getList(t, s, "/api/vhosts/%2F/connections")) != 1 || len(getList(t, s, "/api/vhosts/%2F/channels")) != 1 {
		t.Error("the vhost's connections and channels")
	}
	guest(t, s, "GET", "/api/vhosts/nosuchvhost/connections", nil, http.StatusNotFound)
	if v := getObject(t, s, "/api/vhosts/%2F"); v["name"] != "/" { // still the security routes'
		t.Errorf("GET /api/vhosts/%%2F: %v", v)
	}
	if len(getList(t, s, "/api/consumers/%2F")) != 1 {
		t.Error("consumers of /")
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the queue counts the ack", func() bool {
		ms := getObject(t, s, "/api/queues/%2F/orders")["message_stats"].(map[string]any)
		return ms["ack"] == 1.0
	})

	who := getObject(t, s, "/api/whoami")
	if who["name"] != "guest" {
		t.Errorf("whoami %v", who)
	}
}

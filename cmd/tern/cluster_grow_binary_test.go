package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestClusterGrowAndShrink: `tern cluster grow NODE` makes a node that
// holds a quorum queue as a learner one of its voters (RabbitMQ's
// rabbitmq-queues grow), and `tern cluster shrink NODE` makes it a learner
// again; the queue keeps serving throughout.
func TestClusterGrowAndShrink(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real tern processes")
	}
	nodes := startTestCluster(t, 3, 0)
	conn, err := amqp.Dial(nodes[0].url())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"pairs", "kept"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "quorum", "x-quorum-initial-group-size": int32(2)}); err != nil {
			t.Fatal(err)
		}
	}
	queueLeader(t, nodes[0], "pairs", 20*time.Second)
	voters := func(q string) (v, l []string) {
		st, err := nodes[0].clusterStatus(t)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range st.Groups {
			if g.Kind == "quorum" && g.Queue == q {
				return g.Voters, g.Learners
			}
		}
		t.Fatalf("no group for %s: %+v", q, st.Groups)
		return nil, nil
	}
	var learner string
	if !nodes[0].waitFor(20*time.Second, func() bool {
		v, l := voters("pairs")
		if len(v) == 2 && len(l) == 1 {
			learner = l[0]
			return true
		}
		return false
	}) {
		t.Fatal("pairs never had 2 voters and a learner")
	}
	api := "http://" + nodes[1].httpAddr
	code, out := runTern(t, "", "cluster", "grow", "--http", api, learner, "all", "--queue-pattern", "^pairs$")
	if code != 0 || !strings.Contains(out, `"queue":"pairs","result":"grown","voters":3`) {
		t.Fatalf("grow: exit %d: %s", code, out)
	}
	// n2 answered once it applied the change; n1 applies it a moment later.
	if !nodes[0].waitFor(10*time.Second, func() bool { v, _ := voters("pairs"); return slices.Contains(v, learner) && len(v) == 3 }) {
		v, _ := voters("pairs")
		t.Fatalf("after grow, pairs has voters %v", v)
	}
	if v, _ := voters("kept"); len(v) != 2 {
		t.Fatalf("grow changed a queue the pattern leaves out: voters %v", v)
	}
	if err := ch.Publish("", "pairs", false, false, amqp.Publishing{Body: []byte("after grow")}); err != nil {
		t.Fatal(err)
	}
	code, out = runTern(t, "", "cluster", "shrink", "--http", api, learner, "--vhost-pattern", "^/$")
	if code != 0 || !strings.Contains(out, `"queue":"pairs","result":"shrunk","voters":2`) {
		t.Fatalf("shrink: exit %d: %s", code, out)
	}
	if !nodes[0].waitFor(10*time.Second, func() bool {
		v, l := voters("pairs")
		return !slices.Contains(v, learner) && slices.Contains(l, learner)
	}) {
		v, l := voters("pairs")
		t.Fatalf("after shrink, pairs has voters %v, learners %v", v, l)
	}
	if code, out := runTern(t, "", "cluster", "grow", "--http", api, "nosuchnode"); code == 0 || !strings.Contains(out, "no such node") {
		t.Fatalf("grow onto an unknown node: exit %d: %s", code, out)
	}
	msg, ok, err := ch.Get("pairs", true)
	if err != nil || !ok || string(msg.Body) != "after grow" {
		t.Fatalf("get after shrink: %v %v %q", ok, err, msg.Body)
	}
}

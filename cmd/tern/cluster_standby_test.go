package main

import (
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Active-passive: standby nodes, their promotion, and a standby replacing a dead node.

// TestStandbyReplicatesAndServesNoClients: a standby (a learner in every
// group) applies every definition and every quorum queue entry but opens
// no client port.
func TestStandbyReplicatesAndServesNoClients(t *testing.T) {
	nodes := newTestCluster(t, 4, 1)
	for _, nd := range nodes {
		nd.start(t)
	}
	for _, nd := range nodes[:3] {
		nd.waitServing(t, 60*time.Second)
	}
	standby := nodes[3]
	standby.waitLog(t, regexp.MustCompile(`msg="standby node: serving no AMQP or MQTT clients`), 60*time.Second)
	standby.waitFor(60*time.Second, func() bool {
		standby.mu.Lock()
		defer standby.mu.Unlock()
		return standby.httpAddr != ""
	})

	c, ch := dialChannel(t, nodes[0].url())
	defer c.Close()
	if _, err := ch.QueueDeclare("replicated", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := range uint32(100) {
		conf, err := ch.PublishWithDeferredConfirm("", "replicated", false, false, amqp.Publishing{Body: crashBody(i)})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := conf.WaitContext(t.Context()); !ok || err != nil {
			t.Fatalf("publish %d: %v %v", i, ok, err)
		}
	}
	leaderSt, err := nodes[0].clusterStatus(t)
	if err != nil {
		t.Fatal(err)
	}
	var commit uint64
	for _, g := range leaderSt.Groups {
		if g.Queue == "replicated" {
			commit = g.Commit
		}
	}
	var last clusterJSON
	if !standby.waitFor(20*time.Second, func() bool {
		st, err := standby.clusterStatus(t)
		if err != nil {
			return false
		}
		last = st
		for _, g := range st.Groups {
			if g.Kind == "quorum" && g.Queue == "replicated" {
				return g.Applied >= commit && slices.Contains(g.Learners, standby.name)
			}
		}
		return false
	}) {
		t.Fatalf("the standby did not apply the queue's %d entries: %+v", commit, last)
	}
	for _, n := range last.Nodes {
		if n.Name == standby.name && n.Role != "standby" {
			t.Fatalf("the standby says its role is %q", n.Role)
		}
	}
	standby.mu.Lock()
	serving := standby.amqpAddr != ""
	standby.mu.Unlock()
	if serving {
		t.Fatal("the standby opened its AMQP port")
	}
	// A load balancer probing /healthz must not send clients to it.
	if code, body := getGuest(t, standby, "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"serving_clients":false`) {
		t.Fatalf("the standby's /healthz: %d %s", code, body)
	}

	// Promotion, asked of another node: the standby becomes a voter in
	// every group and serves clients, from its own replica.
	if code, body := postJSON(t, nodes[1], "/api/cluster/promote", `{"node":"n9"}`); code != http.StatusBadRequest {
		t.Fatalf("promoting an unknown node: %d %s", code, body)
	}
	nodes[1].mu.Lock()
	api := "http://" + nodes[1].httpAddr
	nodes[1].mu.Unlock()
	if code, out := runTern(t, "", "cluster", "promote", "--http", api, standby.name); code != 0 || !strings.Contains(out, "Promoted "+standby.name+": a voter in") {
		t.Fatalf("tern cluster promote: exit %d: %s", code, out)
	}
	if code, out := runTern(t, "", "cluster", "status", "--http", api, "--json"); code != 0 || !strings.Contains(out, `"kind":"metadata"`) {
		t.Fatalf("tern cluster status --json: exit %d: %s", code, out)
	}
	if code, out := runTern(t, "", "cluster", "status", "--http", api); code != 0 || !strings.Contains(out, "metadata") || !strings.Contains(out, standby.name) {
		t.Fatalf("tern cluster status: exit %d: %s", code, out)
	}
	if code, out := runTern(t, "", "cluster", "promote", "--http", api); code != 2 {
		t.Fatalf("tern cluster promote without a node: exit %d: %s", code, out)
	}
	standby.waitServing(t, 20*time.Second)
	var health string
	if !standby.waitFor(10*time.Second, func() bool {
		var code int
		code, health = getGuest(t, standby, "/healthz")
		return code == http.StatusOK
	}) {
		t.Fatalf("the promoted node's /healthz: %s", health)
	}
	// The port check sees the listener bound at the promotion.
	amqpAddr, _ := standby.addrs()
	if code, body := getGuest(t, standby, "/api/health/checks/port-listener/"+amqpAddr[strings.LastIndex(amqpAddr, ":")+1:]); code != http.StatusOK {
		t.Fatalf("the promoted node's AMQP port check: %d %s", code, body)
	}
	st, err := standby.clusterStatus(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range st.Groups {
		if !slices.Contains(g.Voters, standby.name) {
			t.Fatalf("after the promotion %s is not a voter of group %s (%s): %+v", standby.name, g.ID, g.Queue, g)
		}
	}
	pc, pch := dialChannel(t, standby.url())
	defer pc.Close()
	d, err := pch.Consume("replicated", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint32(100) {
		select {
		case m := <-d:
			if v := checkBody(t, m.Body); v != i {
				t.Fatalf("the promoted node delivered %d at position %d", v, i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the promoted node delivered %d of 100 messages", i)
		}
	}
	_ = pc.Close()

	// Restarted with its same flags (--role standby), a promoted node
	// stays a voter: its role is the groups' configuration in its log.
	standby.kill9(t)
	standby.start(t)
	standby.waitServing(t, 60*time.Second)
}

// getGuest GETs path from nd's HTTP API as guest and returns the status
// and response body.
func getGuest(t *testing.T, nd *ternNode, path string) (int, string) {
	t.Helper()
	_, addr := nd.addrs()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// postJSON POSTs body to nd's HTTP API as guest (an administrator) and
// returns the status and response body.
func postJSON(t *testing.T, nd *ternNode, path, body string) (int, string) {
	t.Helper()
	nd.mu.Lock()
	addr := nd.httpAddr
	nd.mu.Unlock()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 40 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStandbyReplacesADeadNode is active-passive end to end: a voter dies,
// the standby is promoted and the dead node removed, and the cluster then
// survives losing a second of its original voters.
func TestStandbyReplacesADeadNode(t *testing.T) {
	nodes := newTestCluster(t, 4, 1)
	for _, nd := range nodes {
		nd.start(t)
	}
	for _, nd := range nodes[:3] {
		nd.waitServing(t, 60*time.Second)
	}
	n1, n2, n3, n4 := nodes[0], nodes[1], nodes[2], nodes[3]
	c, ch := dialChannel(t, n2.url())
	if _, err := ch.QueueDeclare("kept", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	// publish sends each message until it is confirmed, as a client
	// does: a nack (the queue's leader changed under it) means "maybe",
	// so a message may arrive twice, never out of order.
	publish := func(ch *amqp.Channel, from, to uint32) {
		t.Helper()
		for i := from; i < to; i++ {
			for attempt := 0; ; attempt++ {
				conf, err := ch.PublishWithDeferredConfirm("", "kept", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: crashBody(i)})
				if err != nil {
					t.Fatal(err)
				}
				ok, err := conf.WaitContext(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					break
				}
				if attempt == 20 {
					t.Fatalf("publish %d: nacked 20 times", i)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	publish(ch, 0, 100)
	_ = c.Close()

	n1.kill9(t)
	n2.mu.Lock()
	api := "http://" + n2.httpAddr
	n2.mu.Unlock()
	if code, out := runTern(t, "", "cluster", "promote", "--http", api, n4.name); code != 0 {
		t.Fatalf("tern cluster promote: exit %d: %s", code, out)
	}
	if code, out := runTern(t, "", "cluster", "remove", "--http", api, n1.name); code != 0 {
		t.Fatalf("tern cluster remove: exit %d: %s", code, out)
	}
	if code, out := runTern(t, "", "cluster", "remove", "--http", api, n2.name); code == 0 || !strings.Contains(out, "cannot remove itself") {
		t.Fatalf("a node removing itself: exit %d: %s", code, out)
	}
	n4.waitServing(t, 20*time.Second)
	st, err := n2.clusterStatus(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if n.Name == n1.name && n.Role != "removed" {
			t.Fatalf("n1's role after its removal: %q", n.Role)
		}
	}
	for _, g := range st.Groups {
		if slices.Contains(g.Voters, n1.name) || slices.Contains(g.Learners, n1.name) || !slices.Contains(g.Voters, n4.name) {
			t.Fatalf("group %s (%s) after the replacement: voters %v, learners %v", g.ID, g.Queue, g.Voters, g.Learners)
		}
	}
	// A queue declared now is not placed on the removed node.
	c, ch = dialChannel(t, n3.url())
	defer c.Close()
	if _, err := ch.QueueDeclare("placed-after", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if st, err = n3.clusterStatus(t); err != nil {
		t.Fatal(err)
	}
	for _, g := range st.Groups {
		if g.Queue == "placed-after" && (slices.Contains(g.Voters, n1.name) || slices.Contains(g.Learners, n1.name) || len(g.Voters) != 3) {
			t.Fatalf("a queue declared after the removal: voters %v, learners %v", g.Voters, g.Learners)
		}
	}

	// Losing n2 as well leaves n3 and n4: a quorum of every group.
	n2.kill9(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish(ch, 100, 150)
	cc, cch := dialChannel(t, n4.url())
	defer cc.Close()
	d, err := cch.Consume("kept", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := uint32(0) // the next message not yet seen
	for next < 150 {
		select {
		case m := <-d:
			switch v := checkBody(t, m.Body); {
			case v == next:
				next++
			case v+1 == next: // a nacked publish that committed, sent again
			default:
				t.Fatalf("message %d where %d was due", v, next)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("n4 delivered %d of 150 messages", next)
		}
	}
}

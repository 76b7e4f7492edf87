package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// httpAs calls a node's HTTP API with basic credentials and returns the
// status.
func httpAs(t *testing.T, addr, user, pass, method, path string, body any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (nd *ternNode) addrs() (amqpAddr, httpAddr string) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.amqpAddr, nd.httpAddr
}

// checkAlice connects as alice and checks her permission: queues named
// "alice.…" she may declare, others not, with RabbitMQ's refusal.
func checkAlice(amqpAddr string) error {
	conn, err := amqp.Dial("amqp://alice:alice-pw@" + amqpAddr + "/")
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare("alice.q", false, true, false, false, nil); err != nil {
		return err
	}
	_, err = ch.QueueDeclare("bob.q", false, true, false, false, nil)
	if want := "ACCESS_REFUSED - configure access to queue 'bob.q' in vhost '/' refused for user 'alice'"; err == nil || !strings.Contains(err.Error(), want) {
		return &unexpected{err}
	}
	return nil
}

type unexpected struct{ err error }

func (u *unexpected) Error() string {
	if u.err == nil {
		return "declaring bob.q was allowed"
	}
	return "declaring bob.q: " + u.err.Error()
}

// TestUsersAndPermissionsSurviveABinaryRestart: a user, its permission
// and a vhost made through the HTTP API of a `tern server` process are
// there after the process is stopped and started again.
func TestUsersAndPermissionsSurviveABinaryRestart(t *testing.T) {
	t.Parallel()
	nd := &ternNode{name: "single", dataDir: t.TempDir()}
	nd.args = []string{"server", "--data-dir", nd.dataDir, "--amqp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--mqtt-addr", "", "--mqtt-ws-addr", ""}
	nd.start(t)
	nd.waitServing(t, 60*time.Second)
	amqpAddr, httpAddr := nd.addrs()
	for _, c := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"PUT", "/api/users/alice", map[string]string{"password": "alice-pw", "tags": "monitoring"}, http.StatusCreated},
		{"PUT", "/api/permissions/%2F/alice", map[string]string{"configure": `^alice\.`, "write": `^alice\.`, "read": `^alice\.`}, http.StatusCreated},
		{"PUT", "/api/vhosts/kept", nil, http.StatusCreated},
		{"PUT", "/api/user-limits/alice/max-channels", map[string]int{"value": 5}, http.StatusNoContent},
	} {
		if got := httpAs(t, httpAddr, "guest", "guest", c.method, c.path, c.body); got != c.want {
			t.Fatalf("%s %s: %d, want %d", c.method, c.path, got, c.want)
		}
	}
	if err := checkAlice(amqpAddr); err != nil {
		t.Fatalf("before the restart: %v", err)
	}
	_ = nd.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-nd.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("tern did not stop on SIGTERM")
	}
	nd.start(t)
	nd.waitServing(t, 60*time.Second)
	amqpAddr, httpAddr = nd.addrs()
	if err := checkAlice(amqpAddr); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if got := httpAs(t, httpAddr, "alice", "alice-pw", "GET", "/api/vhosts/kept", nil); got != http.StatusOK {
		t.Errorf("GET /api/vhosts/kept as alice after the restart: %d", got)
	}
	if got := httpAs(t, httpAddr, "guest", "guest", "GET", "/api/user-limits/alice", nil); got != http.StatusOK {
		t.Errorf("GET /api/user-limits/alice: %d", got)
	}
}

// TestUsersReplicateAcrossTheCluster: a user and its permission made
// through one node's HTTP API hold on every node, through the metadata
// Raft group — users no longer come from each node's own configuration.
func TestUsersReplicateAcrossTheCluster(t *testing.T) {
	t.Parallel()
	nodes := startTestCluster(t, 3, 0)
	_, httpAddr := nodes[0].addrs()
	if got := httpAs(t, httpAddr, "guest", "guest", "PUT", "/api/users/alice", map[string]string{"password": "alice-pw"}); got != http.StatusCreated {
		t.Fatalf("PUT user: %d", got)
	}
	if got := httpAs(t, httpAddr, "guest", "guest", "PUT", "/api/permissions/%2F/alice", map[string]string{"configure": `^alice\.`, "write": `^alice\.`, "read": `^alice\.`}); got != http.StatusCreated {
		t.Fatalf("PUT permission: %d", got)
	}
	for _, nd := range nodes {
		amqpAddr, _ := nd.addrs()
		var last error
		if !nd.waitFor(30*time.Second, func() bool { last = checkAlice(amqpAddr); return last == nil }) {
			t.Errorf("%s: alice's permission does not hold: %v", nd.name, last)
		}
	}
	maxQueuesAcrossNodes(t, nodes)
	// A deletion replicates too.
	if got := httpAs(t, httpAddr, "guest", "guest", "DELETE", "/api/users/alice", nil); got != http.StatusNoContent {
		t.Fatalf("DELETE user: %d", got)
	}
	for _, nd := range nodes {
		_, h := nd.addrs()
		if !nd.waitFor(30*time.Second, func() bool {
			return httpAs(t, h, "guest", "guest", "GET", "/api/users/alice", nil) == http.StatusNotFound
		}) {
			t.Errorf("%s still has alice", nd.name)
		}
	}
}

// maxQueuesAcrossNodes declares, at once through every node, three times
// as many queues as a vhost's max-queues allows: exactly the limit's
// number succeed, the others get RabbitMQ's 406, and every node holds the
// same queues (the limit is checked when the metadata group applies a
// declare, not only on the node that took it).
func maxQueuesAcrossNodes(t *testing.T, nodes []*ternNode) {
	t.Helper()
	const limit = 4
	_, httpAddr := nodes[0].addrs()
	if got := httpAs(t, httpAddr, "guest", "guest", "PUT", "/api/vhosts/lim", nil); got != http.StatusCreated {
		t.Fatalf("PUT vhost: %d", got)
	}
	if got := httpAs(t, httpAddr, "guest", "guest", "PUT", "/api/vhost-limits/lim/max-queues", map[string]int{"value": limit}); got != http.StatusNoContent {
		t.Fatalf("PUT max-queues: %d", got)
	}
	type result struct {
		ok  bool
		err error
	}
	results := make(chan result, limit*len(nodes))
	var chans []*amqp.Channel
	for _, nd := range nodes {
		amqpAddr, _ := nd.addrs()
		var conn *amqp.Connection
		if !nd.waitFor(30*time.Second, func() bool {
			var err error
			conn, err = amqp.Dial("amqp://guest:guest@" + amqpAddr + "/lim") // the vhost may not have reached this node yet
			return err == nil
		}) {
			t.Fatalf("%s: cannot open vhost lim", nd.name)
		}
		defer conn.Close()
		for range limit {
			ch, err := conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			chans = append(chans, ch)
		}
	}
	start := make(chan struct{})
	for i, ch := range chans {
		go func() {
			<-start
			_, err := ch.QueueDeclare(fmt.Sprintf("q%d", i), true, false, false, false, nil)
			results <- result{ok: err == nil, err: err}
		}()
	}
	close(start)
	ok := 0
	for range chans {
		select {
		case r := <-results:
			if r.ok {
				ok++
			} else if want := "PRECONDITION_FAILED - cannot declare queue"; !strings.Contains(r.err.Error(), want) ||
				!strings.Contains(r.err.Error(), fmt.Sprintf("vhost queue limit (%d) is reached", limit)) {
				t.Errorf("a declare past max-queues: %v", r.err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("a declare did not return")
		}
	}
	if ok != limit {
		t.Errorf("%d of %d concurrent declares through %d nodes succeeded, want max-queues %d", ok, len(chans), len(nodes), limit)
	}
	for _, nd := range nodes {
		_, h := nd.addrs()
		var n int
		if !nd.waitFor(30*time.Second, func() bool { n = queueCount(t, h, "lim"); return n == ok }) {
			t.Errorf("%s holds %d queues in vhost lim, want %d", nd.name, n, ok)
		}
	}
}

// queueCount lists a vhost's queues through a node's HTTP API.
func queueCount(t *testing.T, httpAddr, vhost string) int {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+httpAddr+"/api/queues/"+vhost, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var qs []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&qs); err != nil {
		return -1
	}
	return len(qs)
}

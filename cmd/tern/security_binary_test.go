package main

import (
	"bytes"
	"encoding/json"
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

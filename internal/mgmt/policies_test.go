package mgmt_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// api sends an HTTP request as the default guest (an administrator from
// loopback) and returns the status and body.
func api(t *testing.T, s *testkit.Server, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.HTTPURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func mustAPI(t *testing.T, s *testkit.Server, method, path, body string, want int) string {
	t.Helper()
	code, got := api(t, s, method, path, body)
	if code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, got, want)
	}
	return got
}

// publishConfirmed publishes n messages to queue through the default
// exchange and waits for their confirms.
func publishConfirmed(t *testing.T, ch *amqp.Channel, queue string, n int, persistent bool) {
	t.Helper()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	mode := amqp.Transient
	if persistent {
		mode = amqp.Persistent
	}
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirm("", queue, false, false, amqp.Publishing{Body: []byte(fmt.Sprint(i)), DeliveryMode: mode})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(t.Context()); err != nil || !ok {
			t.Fatalf("confirm %d: %v %v", i, ok, err)
		}
	}
}

func depth(t *testing.T, ch *amqp.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

// A max-length policy set over HTTP on a queue holding 100 messages
// leaves the 10 newest, at once.
func TestPolicyMaxLengthOverHTTP(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("pol.q", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publishConfirmed(t, ch, "pol.q", 100, false)
	mustAPI(t, s, "PUT", "/api/policies/%2F/cap", `{"pattern":"^pol\\.","definition":{"max-length":10},"priority":0,"apply-to":"queues"}`, http.StatusCreated)
	if n := depth(t, ch, "pol.q"); n != 10 {
		t.Fatalf("depth %d after the max-length policy, want 10", n)
	}
	d, ok, err := ch.Get("pol.q", true)
	if err != nil || !ok || string(d.Body) != "90" {
		t.Fatalf("head after the policy: %q %v %v, want 90", d.Body, ok, err)
	}
	body := mustAPI(t, s, "GET", "/api/policies/%2F/cap", "", http.StatusOK)
	var p map[string]any
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"vhost": "/", "name": "cap", "pattern": `^pol\.`, "apply-to": "queues", "priority": 0.0,
		"definition": map[string]any{"max-length": 10.0}}
	if fmt.Sprint(p) != fmt.Sprint(want) {
		t.Fatalf("GET policy %v, want %v", p, want)
	}
	mustAPI(t, s, "PUT", "/api/policies/%2F/cap", `{"pattern":"^pol\\.","definition":{"max-length":5}}`, http.StatusNoContent)
	if n := depth(t, ch, "pol.q"); n != 5 {
		t.Fatalf("depth %d after lowering to 5", n)
	}
	list := mustAPI(t, s, "GET", "/api/policies/%2F", "", http.StatusOK)
	if !strings.Contains(list, `"max-length":5`) || !strings.HasPrefix(list, "[") {
		t.Fatalf("GET /api/policies/%%2F: %s", list)
	}
	mustAPI(t, s, "DELETE", "/api/policies/%2F/cap", "", http.StatusNoContent)
	mustAPI(t, s, "DELETE", "/api/policies/%2F/cap", "", http.StatusNotFound)
	if all := mustAPI(t, s, "GET", "/api/policies", "", http.StatusOK); strings.TrimSpace(all) != "[]" {
		t.Fatalf("policies after delete: %s", all)
	}
}

// A message-ttl policy expires messages enqueued after it; a
// dead-letter-exchange policy takes what a consumer rejects.
func TestPolicyTTLAndDeadLetterOverHTTP(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	for _, q := range []string{"ttl.q", "dlx.src", "dlx.dead"} {
		if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	mustAPI(t, s, "PUT", "/api/policies/%2F/ttl", `{"pattern":"^ttl\\.","definition":{"message-ttl":30}}`, http.StatusCreated)
	mustAPI(t, s, "PUT", "/api/policies/%2F/dlx", `{"pattern":"^dlx\\.src$","definition":{"dead-letter-exchange":"","dead-letter-routing-key":"dlx.dead"},"apply-to":"queues"}`, http.StatusCreated)
	publishConfirmed(t, ch, "ttl.q", 3, false)
	testkit.Eventually(t, 5*time.Second, "the TTL policy expiring ttl.q", func() bool { return depth(t, ch, "ttl.q") == 0 })

	publishConfirmed(t, ch, "dlx.src", 1, false)
	msgs, err := ch.Consume("dlx.src", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := testkit.Receive(t, msgs, 5*time.Second)
	if err := d.Reject(false); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the rejected message in dlx.dead", func() bool { return depth(t, ch, "dlx.dead") == 1 })
	got, ok, err := ch.Get("dlx.dead", true)
	if err != nil || !ok || got.Headers["x-first-death-reason"] != "rejected" || got.Headers["x-first-death-queue"] != "dlx.src" {
		t.Fatalf("dead letter %v %v %v", got.Headers, ok, err)
	}
}

// An operator policy caps a policy's max-length; both survive a restart
// and still apply to the recovered durable queue.
func TestOperatorPolicyCapsAndPoliciesSurviveRestart(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("dur.q", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	mustAPI(t, s, "PUT", "/api/policies/%2F/big", `{"pattern":"^dur","definition":{"max-length":100}}`, http.StatusCreated)
	mustAPI(t, s, "PUT", "/api/operator-policies/%2F/cap", `{"pattern":".*","definition":{"max-length":3},"apply-to":"queues"}`, http.StatusCreated)
	publishConfirmed(t, ch, "dur.q", 10, true)
	if n := depth(t, ch, "dur.q"); n != 3 {
		t.Fatalf("depth %d, want the operator policy's 3", n)
	}

	s = s.Restart(t)
	_, ch = s.Channel(t)
	if n := depth(t, ch, "dur.q"); n != 3 {
		t.Fatalf("depth %d after restart", n)
	}
	mustAPI(t, s, "GET", "/api/policies/%2F/big", "", http.StatusOK)
	op := mustAPI(t, s, "GET", "/api/operator-policies", "", http.StatusOK)
	if !strings.Contains(op, `"name":"cap"`) {
		t.Fatalf("operator policies after restart: %s", op)
	}
	mustAPI(t, s, "DELETE", "/api/operator-policies/%2F/cap", "", http.StatusNoContent)
	publishConfirmed(t, ch, "dur.q", 10, true)
	if n := depth(t, ch, "dur.q"); n != 13 {
		t.Fatalf("depth %d after clearing the cap, want 13", n)
	}
}

// Bad input: 400 with the reason, 404 with RabbitMQ's body.
func TestPolicyBadInputOverHTTP(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	for _, tc := range []struct {
		method, path, body string
		want               int
		reason             string
	}{
		{"PUT", "/api/policies/%2F/p", `{"pattern":".*","definition":{"max-lenght":10}}`, 400, "max-lenght"},
		{"PUT", "/api/policies/%2F/p", `{"pattern":".*","definition":{"max-length":"ten"}}`, 400, "maximum length"},
		{"PUT", "/api/policies/%2F/p", `{"pattern":".*","definition":{"max-length":2.5}}`, 400, "maximum length"},
		{"PUT", "/api/policies/%2F/p", `{"pattern":".*","definition":{"overflow":"sideways"}}`, 400, "overflow"},
		{"PUT", "/api/policies/%2F/p", `{"pattern":"(","definition":{"max-length":1}}`, 400, "regular expression"},
		{"PUT", "/api/policies/%2F/p", `{"pattern":".*","definition":{"max-length":1},"apply-to":"topics"}`, 400, "apply-to"},
		{"PUT", "/api/policies/%2F/p", `{"definition":{"max-length":1}}`, 400, "pattern is required"},
		{"PUT", "/api/policies/%2F/p", `{"pattern":".*","definition":{"max-length":1},"priority":"high"}`, 400, "priority"},
		{"PUT", "/api/policies/%2F/p", `{"pattern":".*",`, 400, "JSON"},
		{"PUT", "/api/policies/%2F/p", `{"pattern":".*","definition":{"ha-mode":"exactly","ha-params":2}}`, 400, "'ha-mode' is classic queue mirroring"},
		{"PUT", "/api/operator-policies/%2F/p", `{"pattern":".*","definition":{"dead-letter-exchange":"x"}}`, 400, "operator policy"},
		{"PUT", "/api/policies/nope/p", `{"pattern":".*","definition":{"max-length":1}}`, 404, "Not Found"},
		{"GET", "/api/policies/nope", "", 404, "Not Found"},
		{"GET", "/api/policies/%2F/missing", "", 404, "Object Not Found"},
		{"DELETE", "/api/operator-policies/%2F/missing", "", 404, "Not Found"},
	} {
		code, body := api(t, s, tc.method, tc.path, tc.body)
		if code != tc.want || !strings.Contains(body, tc.reason) {
			t.Errorf("%s %s %s: %d %s, want %d naming %q", tc.method, tc.path, tc.body, code, body, tc.want, tc.reason)
		}
	}
	if all := mustAPI(t, s, "GET", "/api/policies", "", http.StatusOK); strings.TrimSpace(all) != "[]" {
		t.Fatalf("a refused policy was stored: %s", all)
	}
}

// A publish-rate policy slows an AMQP publisher to the queue's rate: 30
// confirmed messages at 20/s (burst 2) take at least 1.35 s (27 holds of
// 50 ms; the last hold follows the last confirm), and none is lost.
func TestPolicyPublishRateOverAMQP(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("rate.q", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	mustAPI(t, s, "PUT", "/api/policies/%2F/rate", `{"pattern":"^rate\\.","definition":{"publish-rate":20}}`, http.StatusCreated)
	start := time.Now()
	publishConfirmed(t, ch, "rate.q", 30, false)
	if took := time.Since(start); took < 1300*time.Millisecond {
		t.Fatalf("30 messages at 20/s took %v", took)
	}
	if n := depth(t, ch, "rate.q"); n != 30 {
		t.Fatalf("depth %d, want 30", n)
	}
}

package amqp_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/flow"
	"github.com/tern-broker/tern/internal/testkit"
)

func TestPublishRateLimitSlowsNeverDrops(t *testing.T) {
	t.Parallel()
	s, clk := startFake(t, func(c *config.Config) {
		c.Limits = []flow.Limit{{VHost: "/", User: "*", PublishRate: 1000, PublishBurst: 10}}
	})
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	_, cch := s.Channel(t)
	d := consume(t, cch, q, true)
	// The publisher writes as fast as it can; the connection's reader
	// holds each message the buckets make wait on the fake clock, so what
	// the broker takes in follows the clock, not the machine's speed.
	const total = 2000
	go func() {
		for range total {
			if ch.Publish("", q, false, false, body("x")) != nil {
				return
			}
		}
	}()
	published := func() uint64 { return s.Broker.Stats().Published }
	// holding: the reader sleeps on the clock (its only timer here).
	holding := func() bool { return clk.Pending() == 1 }
	testkit.Eventually(t, wait, "the burst taken in, the next message held", holding)
	if n := published(); n != 10 {
		t.Fatalf("with the clock standing still, %d messages got in; want the burst of 10", n)
	}
	// One second of the clock, in 10 ms steps, each taken once the reader
	// holds again: 1,000 more messages, never faster.
	for range 100 {
		clk.Advance(10 * time.Millisecond)
		testkit.Eventually(t, wait, "the reader holding again", holding)
	}
	// Burst + 1 s of tokens is 1,010, never more; a reader that woke while
	// an Advance was still running arms its next hold a step late, which
	// may leave the last message or so for the next step.
	if n := published(); n > 1010 || n < 1000 {
		t.Fatalf("after 1 s at 1,000 msg/s, %d messages got in; want 1,010 (burst + 1 s), at least 1,000", n)
	}
	// Nothing is dropped: every message the publisher wrote reaches the
	// broker (at the limited rate) and is delivered.
	testkit.Eventually(t, 10*time.Second, "every message published and delivered", func() bool {
		st := s.Broker.Stats()
		if st.Published == total && st.Delivered == total {
			return true
		}
		if holding() {
			clk.Advance(time.Second)
		}
		return false
	})
	for range total {
		testkit.Receive(t, d, wait)
	}
}

func TestPacedDeliveryRate(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, amqp.Table{"x-deliver-rate": int32(200)})
	for i := 0; i < 600; i++ {
		publish(t, ch, "", q, body(fmt.Sprint(i)))
	}
	testkit.Eventually(t, wait, "backlog queued", func() bool { return queueLen(t, ch, q) == 600 })
	d := consume(t, ch, q, true)
	testkit.Receive(t, d, wait)
	start := time.Now()
	for i := 1; i < 401; i++ {
		testkit.Receive(t, d, wait)
	}
	rate := 400 / time.Since(start).Seconds()
	t.Logf("paced at 200 msg/s: measured %.1f msg/s", rate)
	if !withinRate(rate, 200) {
		t.Fatalf("paced delivery at %.1f msg/s, want 200 ± 10%%", rate)
	}
}

// withinRate reports whether a measured rate is the target ± 10%. Under the
// race detector the broker may be too slow to reach the target, so only the
// limit itself — never faster than the target — is checked there.
func withinRate(rate, target float64) bool {
	if raceEnabled {
		return rate <= target*1.1
	}
	return math.Abs(rate-target) <= target*0.1
}

func TestConsistentHashExchange(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if err := ch.ExchangeDeclare("shards", "x-consistent-hash", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	var queues []string
	for i := 0; i < 4; i++ {
		q := declare(t, ch, nil)
		if err := ch.QueueBind(q, "1", "shards", false, nil); err != nil {
			t.Fatal(err)
		}
		queues = append(queues, q)
	}
	const n = 20000
	for i := 0; i < n; i++ {
		publish(t, ch, "shards", fmt.Sprintf("user-%d", rand.Uint64()), body("x"))
	}
	testkit.Eventually(t, 10*time.Second, "all routed", func() bool {
		total := 0
		for _, q := range queues {
			total += queueLen(t, ch, q)
		}
		return total == n
	})
	for _, q := range queues {
		share := float64(queueLen(t, ch, q)) / n
		if math.Abs(share-0.25) > 0.03 {
			t.Errorf("queue got %.1f%% of the keys, want 25%% ± 3%%", 100*share)
		}
	}
	// The same key always lands in the same queue.
	for i := 0; i < 20; i++ {
		publish(t, ch, "shards", "sticky-key", body("s"))
	}
	testkit.Eventually(t, wait, "sticky", func() bool {
		hits := 0
		for _, q := range queues {
			if queueLen(t, ch, q) > 0 {
				for {
					m, ok, _ := ch.Get(q, true)
					if !ok {
						break
					}
					if string(m.Body) == "s" {
						hits++
					}
				}
			}
		}
		return hits == 20
	})
}

func TestRandomExchangeIsUniform(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if err := ch.ExchangeDeclare("dice", "x-random", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	var queues []string
	for i := 0; i < 5; i++ {
		q := declare(t, ch, nil)
		_ = ch.QueueBind(q, "", "dice", false, nil)
		queues = append(queues, q)
	}
	const n = 10000
	for i := 0; i < n; i++ {
		publish(t, ch, "dice", "", body("x"))
	}
	counts := make([]int, 5)
	testkit.Eventually(t, 10*time.Second, "all routed", func() bool {
		total := 0
		for i, q := range queues {
			counts[i] = queueLen(t, ch, q)
			total += counts[i]
		}
		return total == n
	})
	chi := 0.0
	for _, c := range counts {
		e := float64(n) / 5
		chi += (float64(c) - e) * (float64(c) - e) / e
	}
	t.Logf("random exchange: %v, chi-square %.2f", counts, chi)
	if chi > 18.47 { // p = 0.001, 4 degrees of freedom
		t.Fatalf("not uniform: %v (chi-square %.2f)", counts, chi)
	}
}

func TestLimitsHTTPEndpoint(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	put := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, s.HTTPURL+"/api/limits", strings.NewReader(body))
		req.SetBasicAuth("guest", "guest") // the default guest is an administrator
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if code, msg := put(`[{"vhost": "/", "user": "*", "publish_rate": 500, "publish_burst": 50}]`); code != 200 {
		t.Fatalf("valid limits: %d %s", code, msg)
	}
	req, _ := http.NewRequest(http.MethodGet, s.HTTPURL+"/api/limits", nil)
	req.SetBasicAuth("guest", "guest") // reads need a user too
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got []flow.Limit
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if len(got) != 1 || got[0].PublishRate != 500 || s.Broker.Limits().Limits()[0].PublishBurst != 50 {
		t.Fatalf("limits now %+v", got)
	}
	for body, want := range map[string]string{
		`[{"vhost": "/", "publish_rate": -5}]`:        "must not be negative",
		`[{"vhost": "nowhere", "publish_rate": 10}]`:  `unknown vhost`,
		`[{"publish_rate": 10}]`:                      "vhost is required",
		`{"not": "an array"}`:                         "JSON array",
		`[{"vhost": "/", "publish_rate": 1, "x": 1}]`: "unknown field",
	} {
		code, msg := put(body)
		if code != 400 || !strings.Contains(msg, want) {
			t.Errorf("%s: %d %s, want 400 mentioning %q", body, code, msg, want)
		}
	}
	if l := s.Broker.Limits().Limits(); len(l) != 1 || l[0].PublishRate != 500 {
		t.Fatal("a refused update changed the limits")
	}
	_ = bytes.MinRead
}

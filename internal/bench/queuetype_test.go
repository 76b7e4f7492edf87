package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/testkit"
)

func TestQueueTypeResolves(t *testing.T) {
	for _, tc := range []struct {
		in         Config
		want       string
		persistent bool
		err        string
	}{
		{in: Config{}, want: "classic"},
		{in: Config{Stream: true}, want: "stream", persistent: true},
		{in: Config{QueueType: "stream"}, want: "stream", persistent: true},
		{in: Config{QueueType: "quorum"}, want: "quorum", persistent: true},
		{in: Config{QueueType: "quorum", Stream: true}, err: "disagree"},
		{in: Config{QueueType: "lazy"}, err: `"lazy" is not classic, quorum or stream`},
		{in: Config{QueueType: "quorum", Protocol: "mqtt"}, err: "AMQP only"},
		{in: Config{Protocol: "mqtt", URL: "tcp://a:1883,tcp://b:1883"}, err: "one --url"},
	} {
		got, err := Resolve(tc.in, map[string]bool{})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.QueueType != tc.want || got.Persistent != tc.persistent || got.Stream != (tc.want == "stream") {
			t.Errorf("%+v: %q persistent %v stream %v, %v; want %q persistent %v", tc.in, got.QueueType, got.Persistent, got.Stream, err, tc.want, tc.persistent)
		}
	}
}

func TestURLListSpreadsConnections(t *testing.T) {
	c := Config{URL: "amqp://a/, amqp://b/,amqp://c/,"}
	if us := c.URLs(); len(us) != 3 || us[1] != "amqp://b/" {
		t.Fatalf("URLs %q", us)
	}
	if c.producerURL(0) != "amqp://a/" || c.producerURL(4) != "amqp://b/" || c.consumerURL(0) != "amqp://b/" || c.consumerURL(2) != "amqp://a/" {
		t.Fatalf("placement: p0 %s p4 %s c0 %s c2 %s", c.producerURL(0), c.producerURL(4), c.consumerURL(0), c.consumerURL(2))
	}
	if got := Redacted("amqp://u:secret@a/,amqp://u:secret@b/"); strings.Contains(got, "secret") || strings.Count(got, "xxxxx") != 2 {
		t.Fatalf("Redacted %q", got)
	}
}

// TestQuorumOnASingleNode: a node without a cluster hosts quorum queues
// (one-member groups, as RabbitMQ allows), so the bench measures one and
// every confirmed message comes back.
func TestQuorumOnASingleNode(t *testing.T) {
	s := testkit.Start(t)
	cfg, err := Resolve(Config{URL: s.URL + "," + s.URL, Scenario: "persistent", QueueType: "quorum", Duration: time.Second}, map[string]bool{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("quorum on a single node: %v", err)
	}
	if res.Confirmed == 0 || res.Lost != 0 || res.Received < res.Confirmed {
		t.Fatalf("quorum on a single node: sent %d, confirmed %d, received %d, lost %d", res.Sent, res.Confirmed, res.Received, res.Lost)
	}
}

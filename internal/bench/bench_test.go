package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/testkit"
)

// TestEveryScenarioAddsUp runs each named scenario for a second against an
// in-process Tern and checks the books balance: everything sent is
// confirmed (where confirms are on) and received, nothing lost or doubled.
func TestEveryScenarioAddsUp(t *testing.T) {
	s := testkit.Start(t)
	for _, name := range ScenarioNames {
		t.Run(name, func(t *testing.T) {
			set := map[string]bool{}
			c := Config{URL: s.URL, Scenario: name, Duration: time.Second}
			if name == "idle-connections" {
				c.IdleConns, set["idle-connections"] = 100, true
				c.ServerPID = os.Getpid()
			}
			if name == "transient" || name == "many" || name == "fanout" {
				// Unthrottled autoack runs queue up faster than amqp091-go
				// consumers drain; a rate keeps the test about counting.
				c.Rate, set["rate"] = 2000, true
			}
			if name == "fan-in" { // an MQTT scenario
				c.Protocol, c.URL, c.QoS = "mqtt", s.MQTTURL, 1
				c.Rate, set["rate"] = 50, true
			}
			cfg, err := Resolve(c, set)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if name == "idle-connections" {
				if res.IdleConnections != 100 || res.ServerRSSAfter == 0 {
					t.Fatalf("%+v", res)
				}
				return
			}
			if res.Sent == 0 {
				t.Fatal("nothing sent")
			}
			if cfg.Confirm > 0 && res.Confirmed != res.Sent {
				t.Errorf("sent %d, confirmed %d", res.Sent, res.Confirmed)
			}
			if res.Expected != res.Received || (cfg.Protocol == "amqp" && res.Received != res.Sent*int64(cfg.copies())) {
				t.Errorf("sent %d, expected %d, received %d", res.Sent, res.Expected, res.Received)
			}
			if !res.OK() || res.Reordered != 0 {
				t.Errorf("lost %d dup %d reordered %d nacked %d", res.Lost, res.Duplicates, res.Reordered, res.Nacked)
			}
			if res.Latency.Count != res.Received || len(res.Timeline) == 0 {
				t.Errorf("latency samples %d for %d received; timeline %d", res.Latency.Count, res.Received, len(res.Timeline))
			}
			var sum bytes.Buffer
			WriteSummary(&sum, res)
			if !strings.Contains(sum.String(), "lost 0") {
				t.Errorf("summary:\n%s", sum.String())
			}
		})
	}
}

// TestMQTTRunAddsUp drives MQTT at QoS 0 and 1 through the same books.
func TestMQTTRunAddsUp(t *testing.T) {
	s := testkit.Start(t)
	for _, qos := range []int{0, 1} {
		cfg, err := Resolve(Config{Protocol: "mqtt", URL: s.MQTTURL, QoS: qos, Producers: 2, Consumers: 2, Rate: 1000,
			Duration: time.Second}, map[string]bool{"rate": true})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Sent == 0 || res.Received != res.Expected || !res.OK() || (qos == 1 && res.Confirmed != res.Sent) {
			t.Fatalf("qos %d: sent %d confirmed %d expected %d received %d lost %d", qos, res.Sent, res.Confirmed, res.Expected, res.Received, res.Lost)
		}
	}
}

func TestLossIsReportedLoudly(t *testing.T) {
	r := &Result{Config: Config{Consumers: 1, Producers: 1, Queues: 1, Exchange: "direct"}, Sent: 10, Expected: 10, Received: 8, Lost: 2}
	var out bytes.Buffer
	WriteSummary(&out, r)
	if r.OK() || !strings.Contains(out.String(), "LOST") {
		t.Fatalf("a lossy run must say so:\n%s", out.String())
	}
}

func TestTrackerCountsDuplicatesAndReordering(t *testing.T) {
	tr := newTracker()
	for _, seq := range []uint64{0, 1, 3, 2, 3, 4} {
		tr.observe(0, 7, seq, true)
	}
	if tr.unique != 5 || tr.dups != 1 || tr.reordered != 1 {
		t.Fatalf("unique %d dups %d reordered %d", tr.unique, tr.dups, tr.reordered)
	}
}

func TestPlotsInEveryFormat(t *testing.T) {
	r := &Result{Config: Config{Confirm: 10}, Timeline: []Sample{
		{At: time.Second, SentRate: 100, ConfirmedRate: 90, RecvRate: 95, P50: time.Millisecond, P99: 3 * time.Millisecond},
		{At: 2 * time.Second, SentRate: 120, ConfirmedRate: 120, RecvRate: 118, P50: 2 * time.Millisecond, P99: 5 * time.Millisecond},
	}}
	dir := t.TempDir()
	for _, ext := range []string{".svg", ".html", ".png"} {
		path := filepath.Join(dir, "run"+ext)
		if err := WritePlot(path, r); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(path)
		if len(raw) < 200 {
			t.Fatalf("%s: %d bytes", ext, len(raw))
		}
	}
	if err := WritePlot(filepath.Join(dir, "x.pdf"), r); err == nil {
		t.Fatal("unknown format accepted")
	}
}

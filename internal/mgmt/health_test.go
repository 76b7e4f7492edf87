package mgmt_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

type healthBody struct {
	Status      string   `json:"status"`
	Reason      string   `json:"reason"`
	Alarms      []string `json:"alarms"`
	MemoryAlarm bool     `json:"memory_alarm"`
	DiskAlarm   bool     `json:"disk_alarm"`
}

func getHealth(t *testing.T, s *testkit.Server) (int, healthBody) {
	t.Helper()
	resp, err := http.Get(s.HTTPURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h healthBody
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("healthz body: %v", err)
	}
	return resp.StatusCode, h
}

func TestHealthzFailsWhileTheDiskAlarmBlocksPublishers(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	if code, h := getHealth(t, s); code != http.StatusOK || h.Status != "ok" || len(h.Alarms) != 0 {
		t.Fatalf("healthy node: %d %+v", code, h)
	}
	// Ask for more free space than any disk has: the real disk monitor
	// raises the alarm within a second.
	s.SetDiskFreeLimit(1 << 62)
	var code int
	var h healthBody
	testkit.Eventually(t, 5*time.Second, "healthz to report the disk alarm", func() bool {
		code, h = getHealth(t, s)
		return code == http.StatusServiceUnavailable
	})
	if h.Status != "failed" || !slices.Equal(h.Alarms, []string{"disk"}) || !h.DiskAlarm || h.MemoryAlarm || h.Reason == "" {
		t.Fatalf("disk alarm: %+v", h)
	}
	s.SetDiskFreeLimit(0)
	testkit.Eventually(t, 5*time.Second, "healthz to recover", func() bool {
		code, h = getHealth(t, s)
		return code == http.StatusOK && h.Status == "ok"
	})
}

func TestHealthzFailsWhileTheMemoryAlarmBlocksPublishers(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, func(c *config.Config) { c.MemoryHighWatermark = 1000 })
	_, ch := s.Channel(t)
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", q.Name, false, false, amqp.Publishing{Body: make([]byte, 4000)}); err != nil {
		t.Fatal(err)
	}
	var code int
	var h healthBody
	testkit.Eventually(t, 5*time.Second, "healthz to report the memory alarm", func() bool {
		code, h = getHealth(t, s)
		return code == http.StatusServiceUnavailable
	})
	if h.Status != "failed" || !slices.Equal(h.Alarms, []string{"memory"}) || !h.MemoryAlarm {
		t.Fatalf("memory alarm: %+v", h)
	}
}

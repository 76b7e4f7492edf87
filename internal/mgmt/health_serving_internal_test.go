package mgmt

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
)

// /healthz fails on a node that serves no clients (a standby), whatever
// its alarms, saying why; it passes again once the node serves them.
func TestHealthzFailsWhileTheNodeServesNoClients(t *testing.T) {
	reason := "standby node: serves no AMQP or MQTT clients until promoted"
	src := Sources{Broker: func() broker.Stats { return broker.Stats{} }, NotServing: func() string { return reason }}
	get := func() (int, health) {
		w := httptest.NewRecorder()
		healthz(w, src)
		var h health
		if err := json.Unmarshal(w.Body.Bytes(), &h); err != nil {
			t.Fatal(err)
		}
		return w.Code, h
	}
	if code, h := get(); code != http.StatusServiceUnavailable || h.Status != "failed" || h.ServingClients || !strings.Contains(h.Reason, reason) {
		t.Fatalf("standby: %d %+v", code, h)
	}
	reason = ""
	if code, h := get(); code != http.StatusOK || h.Status != "ok" || !h.ServingClients || h.Reason != "" {
		t.Fatalf("serving: %d %+v", code, h)
	}
}

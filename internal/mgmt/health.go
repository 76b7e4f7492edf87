package mgmt

import (
	"net/http"
	"strings"
)

// health is the body of GET /healthz.
type health struct {
	// Status is "ok", or "failed" while a resource alarm blocks publishers
	// or the node serves no clients (a standby).
	Status string `json:"status"`
	// Reason says why the check failed; empty when ok.
	Reason string `json:"reason,omitempty"`
	// Alarms names the active alarms ("memory", "disk"); [] when none.
	Alarms      []string `json:"alarms"`
	MemoryAlarm bool     `json:"memory_alarm"`
	DiskAlarm   bool     `json:"disk_alarm"`
	Queues      int      `json:"queues"`
	// ServingClients is false on a node whose AMQP and MQTT listeners
	// are not open (a cluster's standby, until promoted).
	ServingClients bool `json:"serving_clients"`
}

// healthz answers 200 while publishers can publish and 503 while any
// resource alarm blocks them, naming the alarms, as RabbitMQ's
// /api/health/checks/alarms does, or while the node serves no clients at
// all (a standby): a load balancer or orchestrator probing the node then
// sees what every publisher sees. It is a readiness check, not a liveness
// one (docs/http-api.md).
func healthz(w http.ResponseWriter, src Sources) {
	b := src.Broker()
	h := health{Status: "ok", Alarms: []string{}, MemoryAlarm: b.MemoryAlarm, DiskAlarm: b.DiskAlarm, Queues: b.Queues,
		ServingClients: true}
	notServing := ""
	if src.NotServing != nil {
		notServing = src.NotServing()
	}
	if src.Alarms != nil {
		for _, a := range src.Alarms() {
			if a.Active() {
				h.Alarms = append(h.Alarms, a.Name())
			}
		}
	} else {
		if b.MemoryAlarm {
			h.Alarms = append(h.Alarms, "memory")
		}
		if b.DiskAlarm {
			h.Alarms = append(h.Alarms, "disk")
		}
	}
	status := http.StatusOK
	var reasons []string
	if notServing != "" {
		h.ServingClients = false
		reasons = append(reasons, notServing)
	}
	if len(h.Alarms) > 0 {
		reasons = append(reasons, "resource alarms in effect, publishers are blocked: "+strings.Join(h.Alarms, ", "))
	}
	if len(reasons) > 0 {
		status = http.StatusServiceUnavailable
		h.Status = "failed"
		h.Reason = strings.Join(reasons, "; ")
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, h)
}

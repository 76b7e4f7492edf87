package mgmt

import (
	"net/http"
	"strconv"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// RabbitMQ's health checks answer 200 {"status":"ok"} or 503
// {"status":"failed","reason":…}.
func (s *apiServer) routeHealth(rt *router) {
	rt.handle(http.MethodGet, "/api/health/checks/alarms", s.alarmsCheck)
	rt.handle(http.MethodGet, "/api/health/checks/local-alarms", s.alarmsCheck)
	rt.handle(http.MethodGet, "/api/health/checks/virtual-hosts", func(w http.ResponseWriter, _ *http.Request, _ params) {
		// Every vhost of a Tern node runs while the node does.
		apiJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	rt.handle(http.MethodGet, "/api/health/checks/port-listener/{port}", s.portCheck)
}

type alarmJSON struct {
	Node     string `json:"node"`
	Resource string `json:"resource"`
}

// alarmsCheck: one node, so the cluster's alarms are this node's.
func (s *apiServer) alarmsCheck(w http.ResponseWriter, _ *http.Request, _ params) {
	var active []alarmJSON
	if s.src.Alarms != nil {
		for _, a := range s.src.Alarms() {
			if a.Active() {
				active = append(active, alarmJSON{s.api.Node.Name, a.Name()})
			}
		}
	} else {
		b := s.src.Broker()
		if b.MemoryAlarm {
			active = append(active, alarmJSON{s.api.Node.Name, "memory"})
		}
		if b.DiskAlarm {
			active = append(active, alarmJSON{s.api.Node.Name, "disk"})
		}
	}
	if len(active) == 0 {
		apiJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	apiJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "failed",
		"reason": "resource alarm(s) in effect in the cluster", "alarms": active})
}

func (s *apiServer) portCheck(w http.ResponseWriter, _ *http.Request, p params) {
	port, err := strconv.Atoi(p["port"])
	if err != nil || port < 1 || port > 65535 {
		badRequest(w, "port must be a number from 1 to 65535, not '"+p["port"]+"'")
		return
	}
	ports := []int{}
	for _, l := range s.listeners() {
		if l.Port == port {
			apiJSON(w, http.StatusOK, map[string]any{"status": "ok", "port": port})
			return
		}
		ports = append(ports, l.Port)
	}
	apiJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "failed", "reason": "No active listener",
		"missing": port, "ports": ports})
}

// alivenessQueue is the queue RabbitMQ's aliveness test uses.
const alivenessQueue = "aliveness-test"

// aliveness declares the aliveness-test queue in the vhost, publishes a
// message to it and gets it back, as RabbitMQ's
// /api/aliveness-test/{vhost} does.
func (s *apiServer) aliveness(w http.ResponseWriter, r *http.Request, p params) {
	v := s.vhost(w, r, p["vhost"])
	if v == nil {
		return
	}
	q, err := v.DeclareQueue(broker.QueueConfig{Name: alivenessQueue}, false, 0)
	if err != nil {
		brokerError(w, err)
		return
	}
	var scratch broker.RouteScratch
	m := &message.Message{Exchange: "", RoutingKey: alivenessQueue, Body: []byte("test_message")}
	if _, err := v.Publish(&scratch, m, nil, 0); err != nil {
		brokerError(w, err)
		return
	}
	for range 100 { // older test messages first, bounded
		d, ok := q.Get(true)
		if !ok {
			break
		}
		if d.Msg == m {
			apiJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return
		}
	}
	apiJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "failed", "reason": "the test message did not come back"})
}

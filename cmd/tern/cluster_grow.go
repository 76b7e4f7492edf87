package main

import (
	"encoding/json"
	"errors"
	"net/http"
)

// growRequest is the API call of `tern cluster grow NODE [all|even]
// [--all|--even] [--vhost-pattern RE] [--queue-pattern RE]` and `tern
// cluster shrink NODE [--vhost-pattern RE] [--queue-pattern RE]` (RabbitMQ's
// `rabbitmq-queues grow NODE all|even` and `shrink NODE`).
func growRequest(cmd string, args []string, vhostPattern, queuePattern string, all, even bool) (method, path, body string, err error) {
	strategy := ""
	switch {
	case all && even:
		return "", "", "", errors.New("--all and --even exclude each other")
	case even:
		strategy = "even"
	case all:
		strategy = "all"
	}
	if len(args) == 2 {
		if cmd != "grow" || (args[1] != "all" && args[1] != "even") || (strategy != "" && strategy != args[1]) {
			return "", "", "", errors.New("the second argument of grow is all or even")
		}
		strategy = args[1]
	}
	if cmd == "shrink" && strategy != "" {
		return "", "", "", errors.New("shrink takes no strategy")
	}
	b, _ := json.Marshal(map[string]string{"node": args[0], "vhost_pattern": vhostPattern, "queue_pattern": queuePattern, "strategy": strategy})
	return http.MethodPost, "/api/cluster/" + cmd, string(b), nil
}

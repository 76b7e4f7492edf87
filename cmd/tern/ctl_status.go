package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"
)

// status: GET /api/overview, /api/nodes/{node} and
// /api/health/checks/alarms.

func init() {
	ctlCommands = append(ctlCommands, &ctlCommand{name: "status", args: "", min: 0, max: 0,
		summary: "the node: version, listeners, totals, message rates and resource alarms (exit 5 while an alarm is in effect)",
		def:     func(*flag.FlagSet) func(*ctlRun, []string) error { return runStatus }})
}

func runStatus(r *ctlRun, _ []string) error {
	cl, err := r.client()
	if err != nil {
		return err
	}
	var ov map[string]any
	if err := cl.getJSON("/api/overview", &ov); err != nil {
		return err
	}
	// This node's process: uptime, memory, pid (/api/nodes/{name}).
	var node map[string]any
	if name, ok := ov["node"].(string); ok {
		if err := cl.getJSON(apiPath("nodes", name), &node); err != nil && !isNotFound(err) {
			return err
		}
	}
	// The alarms check answers 503 with the alarms while there are some.
	body, status, herr := cl.do(http.MethodGet, "/api/health/checks/alarms", nil, nil)
	var health map[string]any
	if status == http.StatusOK || status == http.StatusServiceUnavailable {
		if err := decodeJSON(body, &health); err != nil {
			return err
		}
		herr = nil
	}
	if herr != nil {
		return herr
	}
	if r.g.json {
		if err := writeJSONOut(r.stdout, map[string]any{"overview": ov, "node": node, "alarms": health}); err != nil {
			return err
		}
	} else {
		printStatus(r, ov, node, health)
	}
	if health["status"] != "ok" {
		return &ctlError{code: exitServer, msg: fmt.Sprintf("resource alarm in effect: %v", cell(health["alarms"]))}
	}
	return nil
}

func printStatus(r *ctlRun, ov, node, health map[string]any) {
	tw := tabwriter.NewWriter(r.stdout, 0, 4, 2, ' ', 0)
	get := func(path string) string { v, _ := field(ov, path); return cell(v) }
	rate := func(path string) string {
		v, _ := field(ov, path)
		if n, ok := v.(json.Number); ok {
			if f, err := n.Float64(); err == nil {
				return fmt.Sprintf("%.1f/s", f)
			}
		}
		return "0.0/s"
	}
	fmt.Fprintf(tw, "node\t%s\n", get("node"))
	fmt.Fprintf(tw, "cluster\t%s\n", get("cluster_name"))
	fmt.Fprintf(tw, "version\t%s %s (RabbitMQ API %s)\n", get("product_name"), get("product_version"), get("management_version"))
	if node != nil {
		num := func(k string) int64 { n, _ := node[k].(json.Number); v, _ := n.Int64(); return v }
		fmt.Fprintf(tw, "process\tpid %s, up %s, %.1f MiB in use, %d processors\n", cell(node["os_pid"]),
			(time.Duration(num("uptime")) * time.Millisecond).Round(time.Second), float64(num("mem_used"))/(1<<20), num("processors"))
	}
	if ls, ok := ov["listeners"].([]any); ok {
		for _, l := range ls {
			if m, ok := l.(map[string]any); ok {
				fmt.Fprintf(tw, "listener\t%s on %s:%s\n", cell(m["protocol"]), cell(m["ip_address"]), cell(m["port"]))
			}
		}
	}
	fmt.Fprintf(tw, "objects\t%s connections, %s channels, %s consumers, %s queues, %s exchanges\n",
		get("object_totals.connections"), get("object_totals.channels"), get("object_totals.consumers"),
		get("object_totals.queues"), get("object_totals.exchanges"))
	fmt.Fprintf(tw, "messages\t%s (%s ready, %s unacknowledged)\n",
		get("queue_totals.messages"), get("queue_totals.messages_ready"), get("queue_totals.messages_unacknowledged"))
	fmt.Fprintf(tw, "rates\tpublish %s, deliver/get %s, ack %s, redeliver %s\n",
		rate("message_stats.publish_details.rate"), rate("message_stats.deliver_get_details.rate"),
		rate("message_stats.ack_details.rate"), rate("message_stats.redeliver_details.rate"))
	alarms := "none"
	if health["status"] != "ok" {
		alarms = cell(health["alarms"])
	}
	fmt.Fprintf(tw, "alarms\t%s\n", alarms)
	_ = tw.Flush()
}

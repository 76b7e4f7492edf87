package main

import (
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// publish and get: POST /api/exchanges/V/X/publish and
// POST /api/queues/V/Q/get. Both are for looking and testing, as in
// RabbitMQ: no publisher confirms, no streaming.

// headerFlags collects repeated --header k=v.
type headerFlags map[string]any

func (h headerFlags) String() string { return "" }
func (h headerFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want NAME=VALUE, not %q", s)
	}
	h[k] = v
	return nil
}

func init() {
	ctlCommands = append(ctlCommands,
		&ctlCommand{name: "publish", args: "[PAYLOAD|-] [--exchange X] [--routing-key K] [properties]", min: 0, max: 1,
			summary: "publish one message (payload from the argument, or standard input without one or with -)",
			def:     defPublish},
		&ctlCommand{name: "get", args: "QUEUE [--count N] [--ackmode MODE | --requeue=false]", min: 1, max: 1,
			summary: "take up to N messages from a queue; by default they are put back (peek)",
			def:     defGet},
	)
}

func defPublish(fs *flag.FlagSet) func(*ctlRun, []string) error {
	exchange := fs.String("exchange", "", "the exchange (default: the default exchange, which routes to the queue named by the routing key)")
	key := fs.String("routing-key", "", "the routing key")
	propsJSON := fs.String("properties", "", "AMQP properties as the API takes them, a JSON object: {\"content_type\":\"text/plain\",\"headers\":{…}}")
	contentType := fs.String("content-type", "", "the content_type property")
	persistent := fs.Bool("persistent", false, "delivery_mode 2 (kept across a restart in a durable queue)")
	messageID := fs.String("message-id", "", "the message_id property")
	expiration := fs.String("expiration", "", "the per-message TTL in milliseconds")
	headers := headerFlags{}
	fs.Var(headers, "header", "a header NAME=VALUE (a string); repeat for more")
	return func(r *ctlRun, args []string) error {
		props, err := jsonObject("properties", *propsJSON)
		if err != nil {
			return err
		}
		for k, v := range map[string]string{"content_type": *contentType, "message_id": *messageID, "expiration": *expiration} {
			if v != "" {
				props[k] = v
			}
		}
		if *persistent {
			props["delivery_mode"] = 2
		}
		if len(headers) > 0 {
			h, _ := props["headers"].(map[string]any)
			if h == nil {
				h = map[string]any{}
			}
			for k, v := range headers {
				h[k] = v
			}
			props["headers"] = h
		}
		var payload []byte
		if len(args) == 1 && args[0] != "-" {
			payload = []byte(args[0])
		} else if payload, err = io.ReadAll(io.LimitReader(r.stdin, 1<<27)); err != nil {
			return usageErr("reading the payload from standard input: %v", err)
		}
		body := map[string]any{"routing_key": *key, "properties": props, "payload": string(payload), "payload_encoding": "string"}
		if !utf8.Valid(payload) {
			body["payload"], body["payload_encoding"] = base64.StdEncoding.EncodeToString(payload), "base64"
		}
		x := *exchange
		if x == "" {
			x = "amq.default"
		}
		cl, err := r.client()
		if err != nil {
			return err
		}
		out, _, err := cl.do(http.MethodPost, apiPath("exchanges", r.g.vhost, x, "publish"), body, nil)
		if err != nil {
			return err
		}
		var res struct {
			Routed bool `json:"routed"`
		}
		if err := decodeJSON(out, &res); err != nil {
			return err
		}
		if r.g.json {
			return writeJSONOut(r.stdout, res)
		}
		if res.Routed {
			fmt.Fprintln(r.stdout, "Message published and routed.")
		} else {
			fmt.Fprintln(r.stdout, "Message published but NOT routed: no queue is bound for this routing key.")
		}
		return nil
	}
}

func defGet(fs *flag.FlagSet) func(*ctlRun, []string) error {
	count := fs.Int("count", 1, "take up to this many messages")
	ackMode := fs.String("ackmode", "", "ack_requeue_true (default: look, put back), ack_requeue_false (take), reject_requeue_true, reject_requeue_false (dead-letter)")
	requeue := fs.Bool("requeue", true, "false takes the messages for good (ackmode ack_requeue_false)")
	encoding := fs.String("encoding", "auto", "auto (text as text, binary as base64) or base64")
	truncate := fs.Int("truncate", -1, "show at most this many bytes of each payload (-1: all)")
	return func(r *ctlRun, args []string) error {
		mode := *ackMode
		requeueSet := false
		fs.Visit(func(f *flag.Flag) { requeueSet = requeueSet || f.Name == "requeue" })
		switch {
		case mode != "" && requeueSet:
			return usageErr("give --ackmode or --requeue, not both")
		case mode == "" && *requeue:
			mode = "ack_requeue_true"
		case mode == "":
			mode = "ack_requeue_false"
		}
		body := map[string]any{"count": *count, "ackmode": mode, "encoding": *encoding}
		if *truncate >= 0 {
			body["truncate"] = *truncate
		}
		cl, err := r.client()
		if err != nil {
			return err
		}
		out, _, err := cl.do(http.MethodPost, apiPath("queues", r.g.vhost, args[0], "get"), body, nil)
		if err != nil {
			return err
		}
		var msgs []map[string]any
		if err := decodeJSON(out, &msgs); err != nil {
			return err
		}
		if msgs == nil {
			msgs = []map[string]any{}
		}
		return r.emitRows([]string{"routing_key", "exchange", "message_count", "redelivered", "payload_bytes", "payload_encoding", "payload"}, msgs)
	}
}

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The objects commands: declare, delete, purge, close-connection.

func init() {
	ctlCommands = append(ctlCommands,
		&ctlCommand{name: "declare", args: "queue|exchange NAME [flags] | binding --source X --destination Y [flags]", min: 1, max: 2,
			summary: "declare a queue, an exchange or a binding (an existing equal one is fine; a different one is refused, exit 4)",
			def:     defDeclare},
		&ctlCommand{name: "delete", args: "queue|exchange|user|vhost|policy NAME | binding --source X --destination Y [flags]", min: 1, max: 2,
			summary: "delete an object (exit 2 when it does not exist)",
			def:     defDelete},
		&ctlCommand{name: "purge", args: "queue NAME", min: 2, max: 2,
			summary: "remove every ready message of a queue",
			def: func(*flag.FlagSet) func(*ctlRun, []string) error {
				return func(r *ctlRun, args []string) error {
					if args[0] != "queue" {
						return usageErr("purge: only queues can be purged (tern ctl purge queue NAME)")
					}
					return r.change(http.MethodDelete, apiPath("queues", r.g.vhost, args[1], "contents"), nil, nil,
						fmt.Sprintf("Purged queue %q in vhost %q.", args[1], r.g.vhost))
				}
			}},
		&ctlCommand{name: "close-connection", args: "NAME [--reason TEXT]", min: 1, max: 1,
			summary: "close a client connection (AMQP: 320 CONNECTION_FORCED with the reason); NAME as list connections shows it",
			def: func(fs *flag.FlagSet) func(*ctlRun, []string) error {
				reason := fs.String("reason", "Closed via tern ctl", "the reason the client is told")
				return func(r *ctlRun, args []string) error {
					return r.change(http.MethodDelete, apiPath("connections", args[0]), nil, http.Header{"X-Reason": {*reason}},
						fmt.Sprintf("Closed connection %q.", args[0]))
				}
			}},
	)
}

// change sends a request that changes something and says so (or prints
// nothing with --json, whose scripts read the exit code).
func (r *ctlRun) change(method, path string, body any, header http.Header, done string) error {
	cl, err := r.client()
	if err != nil {
		return err
	}
	if _, _, err := cl.do(method, path, body, header); err != nil {
		return err
	}
	if !r.g.json {
		fmt.Fprintln(r.stdout, done)
	}
	return nil
}

// jsonObject parses a flag's JSON object ("" is none).
func jsonObject(name, s string) (map[string]any, error) {
	if s == "" {
		return map[string]any{}, nil
	}
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&m); err != nil || m == nil {
		return nil, usageErr("--%s must be a JSON object, like '{\"x-max-length\": 10}': %v", name, err)
	}
	return m, nil
}

// bindingFlags are the flags naming a binding.
type bindingFlags struct {
	source, dest, destType, key, args *string
}

func newBindingFlags(fs *flag.FlagSet) bindingFlags {
	return bindingFlags{
		source:   fs.String("source", "", "binding: the source exchange"),
		dest:     fs.String("destination", "", "binding: the destination queue or exchange"),
		destType: fs.String("destination-type", "queue", "binding: queue or exchange"),
		key:      fs.String("routing-key", "", "binding: the routing key (binding key)"),
		args:     fs.String("arguments", "", "the arguments, a JSON object"),
	}
}

// path is the binding's collection path, /api/bindings/V/e/SRC/q/DEST.
func (b bindingFlags) path(vhost string) (string, error) {
	if *b.source == "" || *b.dest == "" {
		return "", usageErr("a binding needs --source and --destination (the default exchange takes no bindings)")
	}
	kind := map[string]string{"queue": "q", "exchange": "e"}[*b.destType]
	if kind == "" {
		return "", usageErr("--destination-type must be queue or exchange, not %q", *b.destType)
	}
	return apiPath("bindings", vhost, "e", *b.source, kind, *b.dest), nil
}

func defDeclare(fs *flag.FlagSet) func(*ctlRun, []string) error {
	durable := fs.Bool("durable", true, "queue, exchange: survive a restart")
	autoDelete := fs.Bool("auto-delete", false, "queue, exchange: deleted when its last consumer or binding goes")
	typ := fs.String("type", "", "queue: classic, quorum or stream (x-queue-type); exchange: direct (default), fanout, topic, headers, …")
	internal := fs.Bool("internal", false, "exchange: clients may not publish to it")
	b := newBindingFlags(fs)
	return func(r *ctlRun, args []string) error {
		args2, err := jsonObject("arguments", *b.args)
		if err != nil {
			return err
		}
		what := args[0]
		if what == "binding" {
			if len(args) != 1 {
				return usageErr("declare binding takes flags only: --source X --destination Y [--destination-type queue|exchange] [--routing-key K]")
			}
			p, err := b.path(r.g.vhost)
			if err != nil {
				return err
			}
			return r.change(http.MethodPost, p, map[string]any{"routing_key": *b.key, "arguments": args2}, nil,
				fmt.Sprintf("Bound %s %q to exchange %q with routing key %q.", *b.destType, *b.dest, *b.source, *b.key))
		}
		if len(args) != 2 {
			return usageErr("declare %s NAME", what)
		}
		name := args[1]
		switch what {
		case "queue":
			if *typ != "" {
				args2["x-queue-type"] = *typ
			}
			return r.change(http.MethodPut, apiPath("queues", r.g.vhost, name),
				map[string]any{"durable": *durable, "auto_delete": *autoDelete, "arguments": args2}, nil,
				fmt.Sprintf("Declared queue %q in vhost %q.", name, r.g.vhost))
		case "exchange":
			t := *typ
			if t == "" {
				t = "direct"
			}
			return r.change(http.MethodPut, apiPath("exchanges", r.g.vhost, name),
				map[string]any{"type": t, "durable": *durable, "auto_delete": *autoDelete, "internal": *internal, "arguments": args2}, nil,
				fmt.Sprintf("Declared %s exchange %q in vhost %q.", t, name, r.g.vhost))
		}
		return usageErr("declare: unknown kind %q (queue, exchange or binding)", what)
	}
}

func defDelete(fs *flag.FlagSet) func(*ctlRun, []string) error {
	ifEmpty := fs.Bool("if-empty", false, "queue: only if it has no messages")
	ifUnused := fs.Bool("if-unused", false, "queue: only if it has no consumers; exchange: only if it has no bindings")
	b := newBindingFlags(fs)
	return func(r *ctlRun, args []string) error {
		what := args[0]
		if what == "binding" {
			if len(args) != 1 {
				return usageErr("delete binding takes flags only: --source X --destination Y [--destination-type queue|exchange] [--routing-key K]")
			}
			return deleteBinding(r, b)
		}
		if len(args) != 2 {
			return usageErr("delete %s NAME", what)
		}
		name, v := args[1], r.g.vhost
		q := url.Values{}
		if *ifEmpty {
			q.Set("if-empty", "true")
		}
		if *ifUnused {
			q.Set("if-unused", "true")
		}
		query := ""
		if len(q) > 0 {
			query = "?" + q.Encode()
		}
		switch what {
		case "queue":
			return r.change(http.MethodDelete, apiPath("queues", v, name)+query, nil, nil, fmt.Sprintf("Deleted queue %q in vhost %q.", name, v))
		case "exchange":
			return r.change(http.MethodDelete, apiPath("exchanges", v, name)+query, nil, nil, fmt.Sprintf("Deleted exchange %q in vhost %q.", name, v))
		case "user":
			return r.change(http.MethodDelete, apiPath("users", name), nil, nil, fmt.Sprintf("Deleted user %q.", name))
		case "vhost":
			return r.change(http.MethodDelete, apiPath("vhosts", name), nil, nil, fmt.Sprintf("Deleted vhost %q and everything in it.", name))
		case "policy":
			return r.change(http.MethodDelete, apiPath("policies", v, name), nil, nil, fmt.Sprintf("Cleared policy %q in vhost %q.", name, v))
		}
		return usageErr("delete: unknown kind %q (queue, exchange, binding, user, vhost or policy)", what)
	}
}

// deleteBinding finds the binding's properties key (the API names a
// binding by it) among the bindings between source and destination, and
// deletes that one.
func deleteBinding(r *ctlRun, b bindingFlags) error {
	p, err := b.path(r.g.vhost)
	if err != nil {
		return err
	}
	want, err := jsonObject("arguments", *b.args)
	if err != nil {
		return err
	}
	cl, err := r.client()
	if err != nil {
		return err
	}
	var list []map[string]any
	if err := cl.getJSON(p, &list); err != nil {
		return err
	}
	for _, bd := range list {
		if bd["routing_key"] != *b.key {
			continue
		}
		if *b.args != "" && compactJSON(bd["arguments"]) != compactJSON(want) {
			continue
		}
		pk, _ := bd["properties_key"].(string)
		return r.change(http.MethodDelete, p+"/"+esc(pk), nil, nil,
			fmt.Sprintf("Deleted the binding of %s %q to exchange %q with routing key %q.", *b.destType, *b.dest, *b.source, *b.key))
	}
	return &ctlError{code: exitNotFound, msg: fmt.Sprintf("no binding of %s %q to exchange %q with routing key %q", *b.destType, *b.dest, *b.source, *b.key)}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/tern-broker/tern/internal/bench"
)

const benchUsage = `tern bench — load-test an AMQP 0-9-1 broker (Tern, RabbitMQ, …) with real client connections.

Usage:
  tern bench [flags]

Each message carries its producer, a sequence number and its intended send time,
so the run reports end-to-end latency (p50/p90/p99/p99.9/max) and counts lost,
duplicated and reordered messages; a run that loses messages says so and exits 3.
With --rate, publishing is open-loop: latency counts from the intended send time.

Scenarios (presets; explicit flags override them):
  transient         1 producer → 1 queue → 1 consumer, transient, autoack
  persistent        1 → 1, persistent, durable queue, confirms (1000 in flight), manual ack
  fanout            1 producer → fanout exchange → 10 queues → 10 consumers
  many              50 producers, 50 queues, 50 consumers
  fixed-rate        1 → 1 persistent with confirms at 5,000 msg/s (latency under load)
  idle-connections  open 1,000 connections and hold them; with --server-pid, the
                    broker's memory per connection (--server-gc: after a GC, Tern only)
                    and CPU while idle. MQTT: spread over worker processes (10,000
                    connections each) and 127.0.0.x source addresses, capped by the
                    broker's open-file limit (said so); --idle-retained checks every
                    connection still receives a retained message; --connect-rate N
                    opens them at N/s and reports CONNACK latency
  fan-in            (MQTT) 100 publishers → one wildcard subscriber

With --protocol mqtt, producer i publishes to topic tern-bench/<run>/<i mod queues>
and consumer j subscribes to topic <j mod queues> (or to all, with --wildcard).

Examples:
  tern bench --scenario transient --duration 30s
  tern bench --scenario persistent --url amqp://guest:guest@localhost:5672/ --json > run.json
  tern bench --producers 4 --consumers 4 --size 256 --rate 10000 --plot run.svg
  tern bench --protocol mqtt --url tcp://localhost:1883 --qos 1 --size 256
  tern bench --scenario persistent --queue-type quorum \
    --url amqp://guest:guest@127.0.0.1:5672/,amqp://guest:guest@127.0.0.1:5673/,amqp://guest:guest@127.0.0.1:5674/

Flags:
`

func runBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tern bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	var c bench.Config
	fs.StringVar(&c.Protocol, "protocol", "amqp", "amqp or mqtt (MQTT 3.1.1 with Eclipse Paho)")
	fs.StringVar(&c.URL, "url", "", "broker URL (default amqp://guest:guest@localhost:5672/, or tcp://localhost:1883 for MQTT);\n"+
		"AMQP: a comma-separated list (a cluster's nodes) spreads producer i over URL i mod n and consumer j over URL j+1 mod n")
	fs.IntVar(&c.QoS, "qos", 0, "MQTT QoS of publishes and subscriptions")
	fs.BoolVar(&c.Stream, "stream", false, "AMQP: declare streams (x-queue-type stream, read from first) instead of classic queues")
	fs.StringVar(&c.QueueType, "queue-type", "", "AMQP: classic (default), quorum (x-queue-type quorum: replicated, durable) or stream (= --stream)")
	fs.BoolVar(&c.Wildcard, "wildcard", false, "MQTT: each consumer subscribes to all producers' topics with one wildcard filter")
	fs.StringVar(&c.Scenario, "scenario", "", "preset: "+strings.Join(bench.ScenarioNames, ", "))
	fs.IntVar(&c.Producers, "producers", 1, "publishing connections (one channel each)")
	fs.IntVar(&c.Consumers, "consumers", 1, "consuming connections, spread round-robin over the queues")
	fs.IntVar(&c.Queues, "queues", 0, "queues to declare (default: min(producers, consumers), at least 1)")
	fs.StringVar(&c.Exchange, "exchange", "direct", "exchange type: direct (default exchange, one routing key per queue), fanout or topic")
	fs.IntVar(&c.Size, "size", 1024, "message body size in bytes (at least 24)")
	fs.DurationVar(&c.Duration, "duration", 10e9, "how long producers publish (or idle connections are held)")
	fs.IntVar(&c.Count, "count", 0, "messages per producer; 0 = until --duration")
	fs.Float64Var(&c.Rate, "rate", 0, "messages per second per producer, open-loop; 0 = as fast as possible")
	fs.BoolVar(&c.Persistent, "persistent", false, "persistent messages (delivery-mode 2) and durable queues")
	fs.IntVar(&c.Confirm, "confirm", 0, "publisher confirms with this many unconfirmed messages in flight; 0 = off")
	fs.IntVar(&c.Prefetch, "prefetch", 1000, "consumer prefetch (basic.qos) for manual acks")
	fs.BoolVar(&c.AutoAck, "autoack", false, "consume without acknowledgements")
	fs.IntVar(&c.MultiAckEvery, "multi-ack-every", 1, "manual acks: ack with multiple every N messages (1 = each message)")
	fs.IntVar(&c.IdleConns, "idle-connections", 0, "open this many idle connections instead of moving messages")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "the broker's pid (same host): its memory per idle connection, or its CPU per delivered message")
	fs.BoolVar(&c.ServerGC, "server-gc", false, "the --server-pid broker is Tern: signal it (SIGUSR1) to collect garbage before each memory reading")
	fs.IntVar(&c.IdleSources, "idle-sources", 0, "MQTT idle connections: loopback source addresses (127.0.0.2…) to connect from (default 4, more past 20,000 connections each)")
	fs.IntVar(&c.IdleKeepAlive, "idle-keepalive", 600, "MQTT idle connections: keep-alive in CONNECT, seconds")
	fs.BoolVar(&c.IdleRetained, "idle-retained", false, "MQTT idle connections: then publish a retained message and check every connection receives it")
	fs.Float64Var(&c.ConnectRate, "connect-rate", 0, "MQTT: open the --idle-connections at this many per second (open-loop) and report CONNACK latency")
	fs.BoolVar(&c.Persistent311, "idle-persistent", false, "MQTT idle connections and connect storms: persistent sessions (Clean Session 0)")
	worker := fs.Bool("idle-worker", false, "internal: run as one client process of an MQTT idle fleet (stdin/stdout protocol)")
	workerID := fs.String("idle-id", "", "internal: --idle-worker client-id prefix")
	workerSources := fs.String("idle-sources-list", "", "internal: --idle-worker source addresses, comma-separated")
	fs.DurationVar(&c.Drain, "drain", 5e9, "after publishing stops, how long to wait for consumers to receive the rest")
	jsonOut := fs.Bool("json", false, "print the result as JSON on stdout (no live progress)")
	plot := fs.String("plot", "", "draw rates and latency over time to this .svg, .html or .png file")
	quiet := fs.Bool("quiet", false, "no live progress")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tern bench: unexpected argument %q (tern bench takes only flags)\n", fs.Arg(0))
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *worker {
		w := bench.IdleWorker{Addr: strings.TrimPrefix(c.URL, "tcp://"), Conns: c.IdleConns, KeepAlive: uint16(c.IdleKeepAlive), ID: *workerID, Clean: !c.Persistent311}
		if *workerSources != "" {
			w.Sources = strings.Split(*workerSources, ",")
		}
		if err := w.Run(context.Background(), os.Stdin, stdout); err != nil {
			return 1
		}
		return 0
	}
	cfg, err := bench.Resolve(c, set)
	if err != nil {
		fmt.Fprintln(stderr, "tern bench:", err)
		return 2
	}
	if *plot != "" {
		if err := bench.CheckPlotPath(*plot); err != nil {
			fmt.Fprintln(stderr, "tern bench:", err)
			return 2
		}
	}
	var progress io.Writer
	if !*quiet && !*jsonOut {
		progress = stderr
		if f, ok := stderr.(*os.File); ok && !term.IsTerminal(int(f.Fd())) {
			progress = stderr // still useful in logs; one line a second
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, cfg, progress)
	if err != nil {
		fmt.Fprintln(stderr, "tern bench:", err)
		if res == nil {
			return 1
		}
	}
	if *plot != "" {
		if err := bench.WritePlot(*plot, res); err != nil {
			fmt.Fprintln(stderr, "tern bench:", err)
			return 1
		}
	}
	if *jsonOut {
		if err := bench.WriteJSON(stdout, res); err != nil {
			return 1
		}
	} else {
		bench.WriteSummary(stdout, res)
	}
	if !res.OK() {
		if *jsonOut {
			fmt.Fprintf(stderr, "tern bench: MESSAGES LOST OR REFUSED: lost %d, duplicated %d, nacked %d, returned %d\n",
				res.Lost, res.Duplicates, res.Nacked, res.Returned)
		}
		return 3
	}
	if err != nil {
		return 1
	}
	return 0
}

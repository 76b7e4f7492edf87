package bench

import (
	"fmt"
	"strings"
	"time"
)

// Config describes a run. The zero value of a field takes the default noted.
type Config struct {
	Protocol      string        // amqp (default) or mqtt
	URL           string        // broker: amqp://user:pass@host:port/vhost, or tcp://host:1883 for MQTT; AMQP: several, comma-separated (the nodes of a cluster)
	QoS           int           // MQTT: 0, 1 or 2
	Wildcard      bool          // MQTT: consumers subscribe to every producer's topic with one wildcard filter
	Stream        bool          // AMQP: declare streams (x-queue-type stream) instead of classic queues
	QueueType     string        // AMQP: classic (default), quorum or stream (the same as Stream)
	Scenario      string        // a named preset applied before the explicit flags (see Scenarios)
	Producers     int           // publishing connections
	Consumers     int           // consuming connections (spread over the queues)
	Queues        int           // queues to declare; default max(1, …)
	Exchange      string        // exchange type: direct (default), fanout or topic
	Size          int           // message body bytes, at least 24; default 1024
	Duration      time.Duration // how long producers publish; default 10s
	Count         int           // messages per producer; 0 = until Duration
	Rate          float64       // messages/s per producer; 0 = as fast as possible
	Persistent    bool          // delivery-mode 2, durable queues
	Confirm       int           // publisher confirms with this many in flight; 0 = none
	Prefetch      int           // consumer prefetch; default 1000 (manual ack)
	AutoAck       bool          // consume with no-ack
	MultiAckEvery int           // manual acks with multiple every N messages; default 1
	IdleConns     int           // idle-connections scenario: connections to open
	ServerPID     int           // broker pid, to report its memory per idle connection
	ServerGC      bool          // the broker is Tern: SIGUSR1 it to collect garbage before each memory reading
	IdleSources   int           // MQTT idle connections: loopback source addresses to spread them over; default 4
	IdleKeepAlive int           // MQTT idle connections: keep-alive in CONNECT, seconds; default 600
	IdleRetained  bool          // MQTT idle connections: after holding them, check each still gets a retained message
	ConnectRate   float64       // MQTT: open the idle connections at this rate (open-loop) and report CONNACK latency
	Persistent311 bool          // MQTT idle connections and connect storms: persistent sessions (Clean Session 0)
	Drain         time.Duration // how long consumers wait for stragglers after publishing stops; default 5s
}

// Scenarios are presets named after the runs RabbitMQ's PerfTest users know.
var Scenarios = map[string]Config{
	"transient":        {Producers: 1, Consumers: 1, Queues: 1, AutoAck: true},
	"persistent":       {Producers: 1, Consumers: 1, Queues: 1, Persistent: true, Confirm: 1000, Prefetch: 1000},
	"fanout":           {Producers: 1, Consumers: 10, Queues: 10, Exchange: "fanout", AutoAck: true},
	"many":             {Producers: 50, Consumers: 50, Queues: 50, AutoAck: true},
	"fixed-rate":       {Producers: 1, Consumers: 1, Queues: 1, Rate: 5000, Persistent: true, Confirm: 1000, Prefetch: 1000},
	"idle-connections": {IdleConns: 1000},
	// MQTT: 100 devices publishing to one wildcard subscriber.
	"fan-in": {Producers: 100, Consumers: 1, Queues: 100, Wildcard: true},
}

// ScenarioNames lists the presets in a stable order for help texts.
var ScenarioNames = []string{"transient", "persistent", "fanout", "many", "fixed-rate", "idle-connections", "fan-in"}

// Resolve applies the scenario under the explicit settings and fills
// defaults. set names the fields the user gave explicitly (flag names).
func Resolve(c Config, set map[string]bool) (Config, error) {
	if c.Scenario != "" {
		p, ok := Scenarios[c.Scenario]
		if !ok {
			return c, fmt.Errorf("bench: unknown scenario %q", c.Scenario)
		}
		apply := func(flag string, dst *int, v int) {
			if !set[flag] {
				*dst = v
			}
		}
		apply("producers", &c.Producers, p.Producers)
		apply("consumers", &c.Consumers, p.Consumers)
		apply("queues", &c.Queues, p.Queues)
		apply("confirm", &c.Confirm, p.Confirm)
		apply("prefetch", &c.Prefetch, p.Prefetch)
		apply("idle-connections", &c.IdleConns, p.IdleConns)
		if !set["exchange"] && p.Exchange != "" {
			c.Exchange = p.Exchange
		}
		if !set["rate"] && p.Rate != 0 {
			c.Rate = p.Rate
		}
		if !set["persistent"] && p.Persistent {
			c.Persistent = true
		}
		if !set["autoack"] && p.AutoAck {
			c.AutoAck = true
		}
		if !set["wildcard"] && p.Wildcard {
			c.Wildcard = true
		}
	}
	if c.Protocol == "" {
		c.Protocol = "amqp"
	}
	if c.Protocol != "amqp" && c.Protocol != "mqtt" {
		return c, fmt.Errorf("bench: protocol %q is not amqp or mqtt", c.Protocol)
	}
	if c.URL == "" {
		c.URL = "amqp://guest:guest@localhost:5672/"
		if c.Protocol == "mqtt" {
			c.URL = "tcp://localhost:1883"
		}
	}
	if c.Protocol == "mqtt" {
		if c.QoS < 0 || c.QoS > 2 {
			return c, fmt.Errorf("bench: MQTT QoS %d", c.QoS)
		}
		if c.QoS > 0 && c.Confirm == 0 {
			c.Confirm = 1000 // in-flight QoS 1/2 publishes per producer
		}
		if !set["persistent"] {
			c.Persistent = c.QoS > 0
		}
	}
	if c.Exchange == "" {
		c.Exchange = "direct"
	}
	switch c.Exchange {
	case "direct", "fanout", "topic":
	default:
		return c, fmt.Errorf("bench: exchange type %q is not direct, fanout or topic", c.Exchange)
	}
	if c.Size == 0 {
		c.Size = 1024
	}
	if c.Size < headerSize {
		return c, fmt.Errorf("bench: size %d is below the %d-byte header", c.Size, headerSize)
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Prefetch == 0 {
		c.Prefetch = 1000
	}
	if c.MultiAckEvery <= 0 {
		c.MultiAckEvery = 1
	}
	if c.Drain == 0 {
		c.Drain = 5 * time.Second
	}
	if c.IdleKeepAlive == 0 {
		c.IdleKeepAlive = 600
	}
	if c.IdleConns > 0 {
		return c, nil
	}
	if err := c.resolveQueueType(); err != nil {
		return c, err
	}
	if c.Protocol == "mqtt" && len(c.URLs()) > 1 {
		return c, fmt.Errorf("bench: MQTT takes one --url")
	}
	if c.QueueType == "quorum" {
		c.Persistent = true // quorum queues are durable; RabbitMQ refuses a transient one
	}
	if c.Stream {
		c.Persistent = true // streams are durable
		if c.AutoAck {
			return c, fmt.Errorf("bench: stream consumers need manual acks (drop --autoack)")
		}
	}
	if c.Queues <= 0 {
		c.Queues = max(1, min(c.Producers, c.Consumers))
	}
	if c.Producers < 0 || c.Consumers < 0 {
		return c, fmt.Errorf("bench: negative producers or consumers")
	}
	if c.Consumers > 0 && c.Consumers < c.Queues && !c.Wildcard {
		return c, fmt.Errorf("bench: %d consumers cannot cover %d queues", c.Consumers, c.Queues)
	}
	return c, nil
}

// copies is how many deliveries each message makes (AMQP): one per queue
// it reaches, and with streams one per consumer of each of those queues,
// since every stream consumer reads everything.
func (c Config) copies() int {
	queues := 1
	if c.Exchange == "fanout" {
		queues = c.Queues
	}
	if c.Stream && c.Queues > 0 {
		return queues * max(1, c.Consumers/c.Queues)
	}
	return queues
}

// resolveQueueType reconciles --stream with --queue-type: Stream is
// QueueType "stream", and the two must not disagree.
func (c *Config) resolveQueueType() error {
	switch c.QueueType {
	case "":
		c.QueueType = "classic"
		if c.Stream {
			c.QueueType = "stream"
		}
	case "classic", "quorum":
		if c.Stream {
			return fmt.Errorf("bench: --stream and --queue-type %s disagree", c.QueueType)
		}
	case "stream":
		c.Stream = true
	default:
		return fmt.Errorf("bench: queue type %q is not classic, quorum or stream", c.QueueType)
	}
	if c.QueueType != "classic" && c.Protocol == "mqtt" {
		return fmt.Errorf("bench: --queue-type %s is AMQP only", c.QueueType)
	}
	return nil
}

// URLs splits URL at commas: the brokers (a cluster's nodes) the
// connections spread over. Producer i connects to URLs()[i mod n] and
// consumer j to URLs()[(j+1) mod n], so with several nodes a consumer is
// not on its producer's node; queues are declared and deleted through the
// first.
func (c Config) URLs() []string {
	var out []string
	for _, u := range strings.Split(c.URL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// producerURL and consumerURL place connection i on a node.
func (c Config) producerURL(i int) string { us := c.URLs(); return us[i%len(us)] }
func (c Config) consumerURL(i int) string { us := c.URLs(); return us[(i+1)%len(us)] }

// queueArgs are the declare arguments of the configured queue type.
func (c Config) queueArgs() map[string]any {
	if c.QueueType == "classic" || c.QueueType == "" {
		return nil
	}
	return map[string]any{"x-queue-type": c.QueueType}
}

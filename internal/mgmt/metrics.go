package mgmt

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tern-broker/tern/internal/amqp"
	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/flow"
	"github.com/tern-broker/tern/internal/mqtt"
	"github.com/tern-broker/tern/internal/store"
)

// Sources are the components whose Stats the collector reads.
type Sources struct {
	Broker func() broker.Stats
	AMQP   func() amqp.Stats  // nil when the AMQP listener is off
	Store  func() store.Stats // nil without storage
	MQTT   func() mqtt.Stats  // nil when MQTT is off
	// Alarms are the resource alarms /healthz reports; nil falls back to
	// the alarm flags in the broker's Stats.
	Alarms func() []*flow.Alarm
	// NotServing, if set, says why the node serves no AMQP or MQTT
	// clients now ("" while it does): a cluster's standby node until it
	// is promoted. /healthz then fails, as a client's connect would.
	NotServing func() string

	// Limits and VHostExists serve the /api/limits endpoint; SetLimits,
	// if set, applies a change (the broker's SetLimits command, so every
	// change to the node's settings takes one path), else Limits.Set does.
	Limits      *flow.Limiter
	VHostExists func(string) bool
	SetLimits   func([]flow.Limit) error
	// Policies serves /api/policies and /api/operator-policies (policies.go).
	Policies PolicyStore
	// Users authenticate every request outside Access.OpenPaths; nil
	// refuses them.
	Users *auth.Store
	// Security is the broker whose users, vhosts, permissions and limits
	// the RabbitMQ-style endpoints change (users.go); nil: no endpoints.
	Security *broker.Broker
	// Access: the open paths and the log of failed logins (access.go).
	Access Access

	// Cluster is GET /api/cluster's document and Raft the tern_raft_*
	// metrics; both nil on a single node (no endpoint, no metrics).
	Cluster func() any
	Raft    func() RaftStats
	// Promote serves POST /api/cluster/promote: it makes a standby node a
	// voter; an error wrapped in BadRequest is the client's.
	Promote func(ctx context.Context, node string) error
	// AddNode and RemoveNode serve POST /api/cluster/nodes and DELETE
	// /api/cluster/nodes/{name} (cluster_nodes.go).
	AddNode    func(ctx context.Context, name, addr string, standby bool) error
	RemoveNode func(ctx context.Context, name string) error
	// Grow and Shrink serve POST /api/cluster/grow and /shrink (cluster_grow.go).
	Grow, Shrink func(ctx context.Context, req GrowRequest) (any, error)

	// API serves the RabbitMQ-compatible management API under /api/
	// (api.go); nil serves none of it.
	API *API
}

type collector struct {
	src   Sources
	descs map[string]*prometheus.Desc
}

type metricDef struct {
	name, help string
	kind       prometheus.ValueType
	labels     []string
}

var metricDefs = []metricDef{
	{"tern_connections", "Open client connections.", prometheus.GaugeValue, nil},
	{"tern_channels", "Open AMQP channels.", prometheus.GaugeValue, nil},
	{"tern_consumers", "Consumers across all queues.", prometheus.GaugeValue, nil},
	{"tern_connections_blocked", "Connections blocked by a resource alarm.", prometheus.GaugeValue, nil},
	{"tern_connections_opened_total", "Connections accepted since start.", prometheus.CounterValue, nil},
	{"tern_channels_opened_total", "Channels opened since start.", prometheus.CounterValue, nil},
	{"tern_vhosts", "Virtual hosts.", prometheus.GaugeValue, nil},
	{"tern_exchanges", "Exchanges.", prometheus.GaugeValue, nil},
	{"tern_queues", "Queues.", prometheus.GaugeValue, nil},
	{"tern_messages_ready", "Messages ready for delivery, all queues.", prometheus.GaugeValue, nil},
	{"tern_messages_unacked", "Messages delivered and not yet acknowledged, all queues.", prometheus.GaugeValue, nil},
	{"tern_queued_bytes", "Memory held by queued messages: bodies plus the measured per-message cost (what the memory alarm counts).", prometheus.GaugeValue, nil},
	{"tern_memory_alarm", "1 while the memory alarm blocks publishers.", prometheus.GaugeValue, nil},
	{"tern_disk_alarm", "1 while the free-disk alarm blocks publishers.", prometheus.GaugeValue, nil},
	{"tern_messages_published_total", "Messages published.", prometheus.CounterValue, nil},
	{"tern_messages_unroutable_total", "Published messages that reached no queue.", prometheus.CounterValue, nil},
	{"tern_messages_delivered_total", "Deliveries to consumers and basic.get.", prometheus.CounterValue, nil},
	{"tern_messages_redelivered_total", "Deliveries with the redelivered flag.", prometheus.CounterValue, nil},
	{"tern_messages_acked_total", "Messages acknowledged by consumers.", prometheus.CounterValue, nil},
	{"tern_messages_dead_lettered_total", "Messages republished to a dead-letter exchange.", prometheus.CounterValue, nil},
	{"tern_messages_confirmed_total", "Publisher confirms (basic.ack frames) sent.", prometheus.CounterValue, nil},
	{"tern_messages_nacked_total", "Publisher nacks sent.", prometheus.CounterValue, nil},
	{"tern_messages_returned_total", "Mandatory messages returned unroutable.", prometheus.CounterValue, nil},
	{"tern_amqp_received_bytes_total", "Bytes read from AMQP clients.", prometheus.CounterValue, nil},
	{"tern_store_commits_total", "Group commits that fsynced data.", prometheus.CounterValue, nil},
	{"tern_store_fsyncs_total", "fsync calls (one per queue log written in a commit).", prometheus.CounterValue, nil},
	{"tern_store_committed_messages_total", "Persistent messages confirmed durable.", prometheus.CounterValue, nil},
	{"tern_store_fsync_seconds_total", "Time spent waiting for commit fsyncs.", prometheus.CounterValue, nil},
	{"tern_store_segments_deleted_total", "Log segments deleted once fully consumed.", prometheus.CounterValue, nil},
	{"tern_mqtt_connections", "Open MQTT connections.", prometheus.GaugeValue, nil},
	{"tern_mqtt_connections_opened_total", "MQTT connections accepted since start.", prometheus.CounterValue, nil},
	{"tern_mqtt_publishes_received_total", "PUBLISH packets received from MQTT clients.", prometheus.CounterValue, nil},
	{"tern_mqtt_publishes_delivered_total", "PUBLISH packets sent to MQTT subscribers.", prometheus.CounterValue, nil},
	{"tern_mqtt_qos0_dropped_total", "QoS 0 messages dropped for subscribers too slow to take them.", prometheus.CounterValue, nil},
	{"tern_mqtt_unsendable_topic_dropped_total", "Messages not delivered to an MQTT subscriber because their AMQP routing key is no valid MQTT topic name.", prometheus.CounterValue, nil},
	{"tern_mqtt_connections_parked", "MQTT connections idle on the event loop, holding no goroutine and no buffer.", prometheus.GaugeValue, nil},
	{"tern_mqtt_connections_rate_limited_total", "MQTT connections closed unread for coming too fast from one address (mqtt_connect_rate_per_address).", prometheus.CounterValue, nil},
	{"tern_mqtt_handshakes_waiting", "Accepted MQTT connections waiting for one of the 128 handshakes that run at once (a connection storm).", prometheus.GaugeValue, nil},
	{"tern_mqtt_accept_throttled_total", "MQTT accepts that waited for the overall connect rate (mqtt_connect_rate): a connection storm.", prometheus.CounterValue, nil},
	{"tern_mqtt_retained_messages", "Retained messages held.", prometheus.GaugeValue, nil},
	{"tern_mqtt_publish_copies_unreachable_total", "Copies of QoS 1/2 MQTT publishes that could not reach a queue whose node was down or unreachable (the publish was acknowledged for its other destinations).", prometheus.CounterValue, nil},
	{"tern_listener_fd_exhausted_total", "Times a listener could not accept for lack of file descriptors (EMFILE/ENFILE) and retried with backoff.", prometheus.CounterValue, []string{"protocol"}},
	{"tern_queue_messages_ready", "Ready messages per queue.", prometheus.GaugeValue, []string{"vhost", "queue"}},
	{"tern_queue_messages_unacked", "Unacknowledged messages per queue.", prometheus.GaugeValue, []string{"vhost", "queue"}},
	{"tern_queue_consumers", "Consumers per queue.", prometheus.GaugeValue, []string{"vhost", "queue"}},
}

func newCollector(src Sources) *collector {
	c := &collector{src: src, descs: map[string]*prometheus.Desc{}}
	for _, d := range metricDefs {
		c.descs[d.name] = prometheus.NewDesc(d.name, d.help, d.labels, nil)
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	kinds := map[string]prometheus.ValueType{}
	for _, d := range metricDefs {
		kinds[d.name] = d.kind
	}
	emit := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], kinds[name], v, labels...)
	}
	b := c.src.Broker()
	boolf := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	emit("tern_vhosts", float64(b.VHosts))
	emit("tern_exchanges", float64(b.Exchanges))
	emit("tern_queues", float64(b.Queues))
	emit("tern_consumers", float64(b.Consumers))
	emit("tern_messages_ready", float64(b.MessagesReady))
	emit("tern_messages_unacked", float64(b.MessagesUnacked))
	emit("tern_queued_bytes", float64(b.QueuedBytes))
	emit("tern_memory_alarm", boolf(b.MemoryAlarm))
	emit("tern_disk_alarm", boolf(b.DiskAlarm))
	emit("tern_messages_published_total", float64(b.Published))
	emit("tern_messages_unroutable_total", float64(b.Unroutable))
	emit("tern_messages_delivered_total", float64(b.Delivered))
	emit("tern_messages_redelivered_total", float64(b.Redelivered))
	emit("tern_messages_acked_total", float64(b.Acked))
	emit("tern_messages_dead_lettered_total", float64(b.DeadLettered))
	for _, q := range b.PerQueue {
		emit("tern_queue_messages_ready", float64(q.Ready), q.VHost, q.Name)
		emit("tern_queue_messages_unacked", float64(q.Unacked), q.VHost, q.Name)
		emit("tern_queue_consumers", float64(q.Consumers), q.VHost, q.Name)
	}
	if c.src.Store != nil {
		st := c.src.Store()
		emit("tern_store_commits_total", float64(st.Batches))
		emit("tern_store_fsyncs_total", float64(st.Fsyncs))
		emit("tern_store_committed_messages_total", float64(st.Committed))
		emit("tern_store_fsync_seconds_total", st.FsyncTime.Seconds())
		emit("tern_store_segments_deleted_total", float64(st.SegmentsDeleted))
	}
	if c.src.MQTT != nil {
		m := c.src.MQTT()
		emit("tern_mqtt_connections", float64(m.ConnectionsOpen))
		emit("tern_mqtt_connections_opened_total", float64(m.ConnectionsTotal))
		emit("tern_mqtt_publishes_received_total", float64(m.PublishesIn))
		emit("tern_mqtt_publishes_delivered_total", float64(m.DeliveriesOut))
		emit("tern_mqtt_qos0_dropped_total", float64(m.QoS0Dropped))
		emit("tern_mqtt_unsendable_topic_dropped_total", float64(m.UnsendableTopics))
		emit("tern_mqtt_connections_parked", float64(m.ConnectionsParked))
		emit("tern_mqtt_connections_rate_limited_total", float64(m.RateLimited))
		emit("tern_mqtt_accept_throttled_total", float64(m.AcceptThrottled))
		emit("tern_mqtt_handshakes_waiting", float64(m.HandshakesWaiting))
		emit("tern_mqtt_retained_messages", float64(m.RetainedMessages))
		emit("tern_mqtt_publish_copies_unreachable_total", float64(m.CopiesUnreachable))
		emit("tern_listener_fd_exhausted_total", float64(m.AcceptFDExhausted), "mqtt")
	}
	var a amqp.Stats
	if c.src.AMQP != nil {
		a = c.src.AMQP()
	}
	emit("tern_connections", float64(a.ConnectionsOpen))
	emit("tern_channels", float64(a.ChannelsOpen))
	emit("tern_connections_blocked", float64(a.Blocked))
	emit("tern_connections_opened_total", float64(a.ConnectionsTotal))
	emit("tern_channels_opened_total", float64(a.ChannelsTotal))
	emit("tern_messages_confirmed_total", float64(a.Confirmed))
	emit("tern_messages_nacked_total", float64(a.Nacked))
	emit("tern_messages_returned_total", float64(a.Returned))
	emit("tern_amqp_received_bytes_total", float64(a.BytesIn))
	emit("tern_listener_fd_exhausted_total", float64(a.AcceptFDExhausted), "amqp")
}

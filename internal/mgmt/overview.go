package mgmt

import (
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/tern-broker/tern/internal/broker"
)

// rateDetail is RabbitMQ's *_details object.
type rateDetail struct {
	Rate float64 `json:"rate"`
}

// messageStats are RabbitMQ's message_stats for the node and for a queue.
// deliver_get counts deliveries to consumers and basic.get together (Tern
// does not count them apart).
type messageStats struct {
	Publish               uint64      `json:"publish"`
	PublishDetails        rateDetail  `json:"publish_details"`
	DeliverGet            uint64      `json:"deliver_get"`
	DeliverGetDetails     rateDetail  `json:"deliver_get_details"`
	Ack                   uint64      `json:"ack"`
	AckDetails            rateDetail  `json:"ack_details"`
	Redeliver             uint64      `json:"redeliver"`
	RedeliverDetails      rateDetail  `json:"redeliver_details"`
	Confirm               *uint64     `json:"confirm,omitempty"`
	ConfirmDetails        *rateDetail `json:"confirm_details,omitempty"`
	ReturnUnroutable      *uint64     `json:"return_unroutable,omitempty"`
	ReturnUnroutableDetls *rateDetail `json:"return_unroutable_details,omitempty"`
	DropUnroutable        *uint64     `json:"drop_unroutable,omitempty"`
	DropUnroutableDetails *rateDetail `json:"drop_unroutable_details,omitempty"`
}

type queueTotals struct {
	Messages                      int        `json:"messages"`
	MessagesDetails               rateDetail `json:"messages_details"`
	MessagesReady                 int        `json:"messages_ready"`
	MessagesReadyDetails          rateDetail `json:"messages_ready_details"`
	MessagesUnacknowledged        int        `json:"messages_unacknowledged"`
	MessagesUnacknowledgedDetails rateDetail `json:"messages_unacknowledged_details"`
}

type objectTotals struct {
	Channels    int `json:"channels"`
	Connections int `json:"connections"`
	Consumers   int `json:"consumers"`
	Exchanges   int `json:"exchanges"`
	Queues      int `json:"queues"`
}

type exchangeType struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
}

type listenerJSON struct {
	Node string `json:"node"`
	Listener
}

type overview struct {
	ManagementVersion string         `json:"management_version"`
	RatesMode         string         `json:"rates_mode"`
	ExchangeTypes     []exchangeType `json:"exchange_types"`
	ProductName       string         `json:"product_name"`
	ProductVersion    string         `json:"product_version"`
	RabbitMQVersion   string         `json:"rabbitmq_version"`
	ClusterName       string         `json:"cluster_name"`
	ErlangVersion     string         `json:"erlang_version"`
	ErlangFullVersion string         `json:"erlang_full_version"`
	DisableStats      bool           `json:"disable_stats"`
	EnableQueueTotals bool           `json:"enable_queue_totals"`
	MessageStats      messageStats   `json:"message_stats"`
	QueueTotals       queueTotals    `json:"queue_totals"`
	ObjectTotals      objectTotals   `json:"object_totals"`
	StatisticsDBEvQ   int            `json:"statistics_db_event_queue"`
	Node              string         `json:"node"`
	Listeners         []listenerJSON `json:"listeners"`
	Contexts          []any          `json:"contexts"`
}

var exchangeTypes = []exchangeType{
	{broker.TypeDirect, "AMQP direct exchange, as per the AMQP specification", true},
	{broker.TypeFanout, "AMQP fanout exchange, as per the AMQP specification", true},
	{broker.TypeHeaders, "AMQP headers exchange, as per the AMQP specification", true},
	{broker.TypeTopic, "AMQP topic exchange, as per the AMQP specification", true},
	{broker.TypeDelayed, "Delayed message exchange (x-delayed-type names the routing)", true},
	{broker.TypeConsistentHash, "Consistent hashing exchange", true},
	{broker.TypeRandom, "Picks one bound destination at random", true},
}

func (s *apiServer) routeOverview(rt *router) {
	rt.handle(http.MethodGet, "/api/overview", s.overview)
	// Node-level data is for monitoring users (and administrators), as
	// RabbitMQ's is_authorized_monitor has it.
	rt.handle(http.MethodGet, "/api/nodes", func(w http.ResponseWriter, r *http.Request, _ params) {
		if !requireMonitor(w, r) {
			return
		}
		respondList(w, r, s.allNodes())
	})
	rt.handle(http.MethodGet, "/api/nodes/{name}", func(w http.ResponseWriter, r *http.Request, p params) {
		if !requireMonitor(w, r) {
			return
		}
		for _, n := range s.allNodes() {
			if n.Name == p["name"] {
				apiJSON(w, http.StatusOK, n)
				return
			}
		}
		notFound(w)
	})
	rt.handle(http.MethodGet, "/api/whoami", s.whoami)
	rt.handle(http.MethodGet, "/api/aliveness-test/{vhost}", s.aliveness)
}

func u64p(v uint64) *uint64       { return &v }
func ratep(v float64) *rateDetail { return &rateDetail{v} }

// clusterName is the cluster's name (API.ClusterName).
func (a *API) clusterName() string {
	if a.ClusterName != nil {
		if name := a.ClusterName(); name != "" {
			return name
		}
	}
	return a.Node.ClusterName
}

func (s *apiServer) overview(w http.ResponseWriter, r *http.Request, _ params) {
	s.rates.fresh(s.ticking)
	b := s.src.Broker()
	g := s.rates.globalView()
	ov := overview{ManagementVersion: s.api.Node.Version, RatesMode: "basic", ExchangeTypes: exchangeTypes,
		ProductName: "Tern", ProductVersion: s.api.Node.Version, RabbitMQVersion: rabbitVersion,
		ClusterName: s.api.clusterName(), ErlangVersion: runtime.Version(), ErlangFullVersion: runtime.Version(),
		EnableQueueTotals: true, Node: s.api.Node.Name, Contexts: []any{}}
	ms := messageStats{Publish: b.Published, PublishDetails: rateDetail{g.publish.rate}, DeliverGet: b.Delivered,
		DeliverGetDetails: rateDetail{g.deliver.rate}, Ack: b.Acked, AckDetails: rateDetail{g.ack.rate},
		Redeliver: b.Redelivered, RedeliverDetails: rateDetail{g.redeliver.rate}}
	var conns, chans int
	if s.src.AMQP != nil {
		a := s.src.AMQP()
		ms.Confirm, ms.ConfirmDetails = u64p(a.Confirmed), ratep(g.confirm.rate)
		ms.ReturnUnroutable, ms.ReturnUnroutableDetls = u64p(a.Returned), ratep(g.returned.rate)
		drop := uint64(0)
		if b.Unroutable > a.Returned {
			drop = b.Unroutable - a.Returned
		}
		ms.DropUnroutable, ms.DropUnroutableDetails = u64p(drop), ratep(max(0, g.unroutable.rate-g.returned.rate))
		conns, chans = int(a.ConnectionsOpen), int(a.ChannelsOpen)
	}
	if s.src.MQTT != nil {
		conns += int(s.src.MQTT().ConnectionsOpen)
	}
	ov.MessageStats = ms
	ov.QueueTotals = queueTotals{Messages: b.MessagesReady + b.MessagesUnacked, MessagesDetails: rateDetail{g.messages.rate},
		MessagesReady: b.MessagesReady, MessagesReadyDetails: rateDetail{g.ready.rate},
		MessagesUnacknowledged: b.MessagesUnacked, MessagesUnacknowledgedDetails: rateDetail{g.unacked.rate}}
	ov.ObjectTotals = objectTotals{Channels: chans, Connections: conns, Consumers: b.Consumers, Exchanges: b.Exchanges, Queues: b.Queues}
	ov.Listeners = []listenerJSON{}
	for _, l := range s.listeners() {
		ov.Listeners = append(ov.Listeners, listenerJSON{Node: s.api.Node.Name, Listener: l})
	}
	if !seesAllVHosts(r) {
		// A management user's totals are its vhosts' (RabbitMQ's rule).
		ov.QueueTotals, ov.ObjectTotals = s.visibleTotals(r)
	}
	apiJSON(w, http.StatusOK, ov)
}

// visibleTotals are the queue and object totals of the vhosts the
// request's user may see.
func (s *apiServer) visibleTotals(r *http.Request) (queueTotals, objectTotals) {
	var qt queueTotals
	var ot objectTotals
	for _, v := range s.api.Broker.VHosts() {
		if !vhostVisible(r, v.Name()) {
			continue
		}
		ot.Exchanges += len(v.Exchanges())
		for _, q := range v.Queues() {
			ready, unacked, consumers := q.Counts()
			ot.Queues++
			ot.Consumers += consumers
			qt.MessagesReady += ready
			qt.MessagesUnacknowledged += unacked
		}
	}
	qt.Messages = qt.MessagesReady + qt.MessagesUnacknowledged
	u, _ := requestUser(r)
	for _, c := range s.connections() {
		if c.User == u.Name {
			ot.Connections++
			ot.Channels += c.Channels
		}
	}
	return qt, ot
}

// rabbitVersion is the RabbitMQ version whose API this one follows;
// clients that check rabbitmq_version see the version the API matches.
const rabbitVersion = "3.13.0"

type nodeJSON struct {
	Name          string         `json:"name"`
	Type          string         `json:"type"`
	Running       bool           `json:"running"`
	Uptime        int64          `json:"uptime"`
	MemUsed       uint64         `json:"mem_used"`
	MemAlarm      bool           `json:"mem_alarm"`
	DiskFreeAlarm bool           `json:"disk_free_alarm"`
	Processors    int            `json:"processors"`
	OSPid         string         `json:"os_pid"`
	Partitions    []string       `json:"partitions"`
	RatesMode     string         `json:"rates_mode"`
	BeingDrained  bool           `json:"being_drained"`
	Goroutines    int            `json:"proc_used"`
	ExchangeTypes []exchangeType `json:"exchange_types"`
}

func (s *apiServer) node() nodeJSON {
	b := s.src.Broker()
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(sample)
	var mem uint64
	if sample[0].Value.Kind() == metrics.KindUint64 {
		mem = sample[0].Value.Uint64()
	}
	var up int64
	if !s.api.Node.Started.IsZero() {
		up = time.Since(s.api.Node.Started).Milliseconds()
	}
	return nodeJSON{Name: s.api.Node.Name, Type: "disc", Running: true, Uptime: up, MemUsed: mem,
		MemAlarm: b.MemoryAlarm, DiskFreeAlarm: b.DiskAlarm, Processors: runtime.NumCPU(), OSPid: itoa(os.Getpid()),
		Partitions: []string{}, RatesMode: "basic", Goroutines: runtime.NumGoroutine(), ExchangeTypes: exchangeTypes}
}

// allNodes is this node and, on a cluster node, every other member: its
// name and whether it runs (this node reaches it); what only the member
// itself knows (memory, alarms, uptime) is zero, as RabbitMQ shows a
// member that is not running.
func (s *apiServer) allNodes() []nodeJSON {
	out := []nodeJSON{s.node()}
	if s.api.OtherNodes == nil {
		return out
	}
	for _, o := range s.api.OtherNodes() {
		out = append(out, nodeJSON{Name: s.nodeName(o.Name), Type: "disc", Running: o.Running, Partitions: []string{},
			RatesMode: "basic", ExchangeTypes: exchangeTypes})
	}
	return out
}

func (s *apiServer) whoami(w http.ResponseWriter, r *http.Request, _ params) {
	u, ok := requestUser(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "not_authorised", "Login failed")
		return
	}
	tags := u.Tags
	if tags == nil {
		tags = []string{}
	}
	apiJSON(w, http.StatusOK, map[string]any{"name": u.Name, "tags": tags})
}

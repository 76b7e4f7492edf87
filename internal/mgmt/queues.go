package mgmt

import (
	"fmt"
	"net/http"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
)

// queueStats are a queue's message_stats, for every queue type
// (broker/queue_stats.go).
type queueStats struct {
	Publish           uint64     `json:"publish"`
	PublishDetails    rateDetail `json:"publish_details"`
	DeliverGet        uint64     `json:"deliver_get"`
	DeliverGetDetails rateDetail `json:"deliver_get_details"`
	Ack               uint64     `json:"ack"`
	AckDetails        rateDetail `json:"ack_details"`
	Redeliver         uint64     `json:"redeliver"`
	RedeliverDetails  rateDetail `json:"redeliver_details"`
}

// queueJSON is a queue as RabbitMQ's /api/queues shows it.
type queueJSON struct {
	Name                          string         `json:"name"`
	VHost                         string         `json:"vhost"`
	Type                          string         `json:"type"`
	Durable                       bool           `json:"durable"`
	AutoDelete                    bool           `json:"auto_delete"`
	Exclusive                     bool           `json:"exclusive"`
	Arguments                     map[string]any `json:"arguments"`
	Node                          string         `json:"node"`
	State                         string         `json:"state"`
	Consumers                     int            `json:"consumers"`
	Messages                      int            `json:"messages"`
	MessagesDetails               rateDetail     `json:"messages_details"`
	MessagesReady                 int            `json:"messages_ready"`
	MessagesReadyDetails          rateDetail     `json:"messages_ready_details"`
	MessagesUnacknowledged        int            `json:"messages_unacknowledged"`
	MessagesUnacknowledgedDetails rateDetail     `json:"messages_unacknowledged_details"`
	MessageBytesReady             int64          `json:"message_bytes_ready"`
	MessageStats                  queueStats     `json:"message_stats"`
	Policy                        *string        `json:"policy"`
	OperatorPolicy                *string        `json:"operator_policy"`
	EffectivePolicyDefinition     map[string]any `json:"effective_policy_definition"`
	ConsumerDetails               []consumerJSON `json:"consumer_details,omitempty"`
	// Leader, Members and Online: a quorum queue's in a cluster
	// (queue_placement.go), as RabbitMQ lists them.
	Leader  string   `json:"leader,omitempty"`
	Members []string `json:"members,omitempty"`
	Online  []string `json:"online,omitempty"`
}

func (s *apiServer) routeQueues(rt *router) {
	rt.handle(http.MethodGet, "/api/queues", func(w http.ResponseWriter, r *http.Request, _ params) {
		s.listQueues(w, r, "") // queues_page.go
	})
	rt.handle(http.MethodGet, "/api/queues/{vhost}", func(w http.ResponseWriter, r *http.Request, p params) {
		if !s.vhostOr404(w, r, p["vhost"]) {
			return
		}
		s.listQueues(w, r, p["vhost"])
	})
	rt.handle(http.MethodGet, "/api/queues/{vhost}/{name}", s.getQueue)
	rt.handle(http.MethodPut, "/api/queues/{vhost}/{name}", s.putQueue)
	rt.handle(http.MethodDelete, "/api/queues/{vhost}/{name}", s.deleteQueue)
	rt.handle(http.MethodDelete, "/api/queues/{vhost}/{name}/contents", s.purgeQueue)
	rt.handle(http.MethodPost, "/api/queues/{vhost}/{name}/get", s.getMessages)       // queue_get.go
	rt.handle(http.MethodGet, "/api/queues/{vhost}/{name}/bindings", s.queueBindings) // bindings.go
}

// vhost returns the named vhost if it exists and the request's user may
// see it, else answers 404 (or 403 not_authorised for a vhost the user
// may not access) and returns nil.
func (s *apiServer) vhost(w http.ResponseWriter, r *http.Request, name string) *broker.VHost {
	v := s.api.Broker.VHost(name)
	if v == nil {
		notFound(w)
		return nil
	}
	if !vhostVisible(r, name) {
		notAuthorised(w, "Access refused.")
		return nil
	}
	return v
}

func (s *apiServer) vhostOr404(w http.ResponseWriter, r *http.Request, name string) bool {
	return s.vhost(w, r, name) != nil
}

// queues lists the queues of vhost ("" for every vhost the user sees),
// sorted by vhost and name (the index of queue_index.go), its JSON structs
// built into a slice sized once.
func (s *apiServer) queues(r *http.Request, vhost string) []queueJSON {
	s.rates.fresh(s.ticking)
	refs := s.queueRefs(r, vhost)
	out := make([]queueJSON, 0, len(refs))
	where := s.placement()
	s.rates.withQueueRates(func(rate func(qkey) queueRateView) {
		for _, x := range refs {
			out = append(out, s.queueJSON(x.vhost, x.q, rate(qkey{x.vhost, x.q.Name()}), where))
		}
	})
	return out
}

func (s *apiServer) queueJSON(vhost string, q *broker.Queue, rt queueRateView, where PlaceFunc) queueJSON {
	j := s.queueLight(vhost, q, rt)
	j.Arguments = jsonArgs(q.Config().Args)
	j.EffectivePolicyDefinition = jsonArgs(q.Policy().EffectiveDefinition)
	s.placeQueue(&j, where, q) // queue_placement.go
	return j
}

// queueLight is queueJSON without its maps (arguments,
// effective_policy_definition): what sorting by another field needs.
func (s *apiServer) queueLight(vhost string, q *broker.Queue, rt queueRateView) queueJSON {
	ready, unacked, consumers, bytes, st := q.Status()
	cfg := q.Config()
	pol := q.Policy()
	return queueJSON{Policy: nameOrNull(pol.Policy), OperatorPolicy: nameOrNull(pol.OperatorPolicy),
		Name: cfg.Name, VHost: vhost, Type: q.Type().String(), Durable: cfg.Durable, AutoDelete: cfg.AutoDelete,
		Exclusive: cfg.Exclusive, Node: s.api.Node.Name, State: "running",
		Consumers: consumers, Messages: ready + unacked, MessagesDetails: rateDetail{rt.Messages},
		MessagesReady: ready, MessagesReadyDetails: rateDetail{rt.Ready},
		MessagesUnacknowledged: unacked, MessagesUnacknowledgedDetails: rateDetail{rt.Unacked}, MessageBytesReady: bytes,
		MessageStats: queueStats{Publish: st.Published, PublishDetails: rateDetail{rt.Publish},
			DeliverGet: st.Delivered, DeliverGetDetails: rateDetail{rt.Deliver}, Ack: st.Acked, AckDetails: rateDetail{rt.Ack},
			Redeliver: st.Redelivered, RedeliverDetails: rateDetail{rt.Redeliver}}}
}

// nameOrNull is a policy's name, null for none (RabbitMQ writes null).
func nameOrNull(n string) *string {
	if n == "" {
		return nil
	}
	p := new(string) // not &n: that moves n to the heap on every call, empty or not
	*p = n
	return p
}

// queue returns the named queue or answers 404.
func (s *apiServer) queue(w http.ResponseWriter, r *http.Request, p params) (*broker.VHost, *broker.Queue) {
	v := s.vhost(w, r, p["vhost"])
	if v == nil {
		return nil, nil
	}
	q := v.LookupQueue(p["name"])
	if q == nil {
		notFound(w)
		return nil, nil
	}
	return v, q
}

func (s *apiServer) getQueue(w http.ResponseWriter, r *http.Request, p params) {
	v, q := s.queue(w, r, p)
	if q == nil {
		return
	}
	s.rates.fresh(s.ticking)
	out := s.queueJSON(v.Name(), q, s.rates.queueRate(qkey{v.Name(), q.Name()}), s.placement())
	out.ConsumerDetails = []consumerJSON{}
	for _, c := range s.consumers() {
		if c.Queue.VHost == v.Name() && c.Queue.Name == q.Name() {
			out.ConsumerDetails = append(out.ConsumerDetails, c)
		}
	}
	apiJSON(w, http.StatusOK, out)
}

// queueBody is PUT /api/queues/{vhost}/{name}'s body. RabbitMQ's default
// for an absent durable is true.
type queueBody struct {
	Durable    *flexBool      `json:"durable"`
	AutoDelete flexBool       `json:"auto_delete"`
	Arguments  map[string]any `json:"arguments"`
	Node       string         `json:"node"`
}

func (s *apiServer) putQueue(w http.ResponseWriter, r *http.Request, p params) {
	v := s.vhost(w, r, p["vhost"])
	if v == nil || !permitted(w, r, v.Name(), auth.Configure, "queue", p["name"]) {
		return
	}
	var body queueBody
	if !decodeBody(w, r, &body) {
		return
	}
	if p["name"] == "" {
		badRequest(w, "a queue needs a name")
		return
	}
	durable := body.Durable == nil || bool(*body.Durable)
	existed := v.LookupQueue(p["name"]) != nil
	// The vhost's max-queues holds for HTTP declares as for AMQP ones
	// (RabbitMQ's management plugin declares on a channel), and in the
	// same words (amqp/access.go).
	if max := s.api.Broker.Users().VHostLimit(v.Name(), auth.LimitMaxQueues); !existed && max >= 0 && int64(len(v.Queues())) >= max {
		badRequest(w, fmt.Sprintf("cannot declare queue '%s' in vhost '%s': vhost queue limit (%d) is reached", p["name"], v.Name(), max))
		return
	}
	_, err := v.DeclareQueue(broker.QueueConfig{Name: p["name"], Durable: durable, AutoDelete: bool(body.AutoDelete),
		Args: amqpArgs(body.Arguments)}, false, 0)
	if err != nil {
		brokerError(w, err)
		return
	}
	if existed { // RabbitMQ answers 204 for an existing queue, 201 for a new one
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *apiServer) deleteQueue(w http.ResponseWriter, r *http.Request, p params) {
	v, q := s.queue(w, r, p)
	if q == nil || !permitted(w, r, v.Name(), auth.Configure, "queue", q.Name()) {
		return
	}
	qs := r.URL.Query()
	if _, err := v.DeleteQueue(q.Name(), qs.Get("if-unused") == "true", qs.Get("if-empty") == "true", 0); err != nil {
		brokerError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *apiServer) purgeQueue(w http.ResponseWriter, r *http.Request, p params) {
	v, q := s.queue(w, r, p)
	if q == nil || !permitted(w, r, v.Name(), auth.Read, "queue", q.Name()) {
		return
	}
	q.Purge()
	w.WriteHeader(http.StatusNoContent)
}

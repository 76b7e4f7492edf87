package mgmt

import (
	"encoding/base64"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// exchangeJSON is an exchange as RabbitMQ's /api/exchanges shows it. The
// default exchange is named "" in listings and "amq.default" in paths.
type exchangeJSON struct {
	Name                   string         `json:"name"`
	VHost                  string         `json:"vhost"`
	Type                   string         `json:"type"`
	Durable                bool           `json:"durable"`
	AutoDelete             bool           `json:"auto_delete"`
	Internal               bool           `json:"internal"`
	Arguments              map[string]any `json:"arguments"`
	UserWhoPerformedAction string         `json:"user_who_performed_action"`
	Policy                 *string        `json:"policy"`
	MessageStats           exchangeStats  `json:"message_stats"`
}

// exchangeStats are an exchange's message_stats, RabbitMQ's publish_in
// (messages published to it) and publish_out (copies it routed to
// queues) with their rates (broker/exchange_stats.go).
type exchangeStats struct {
	PublishIn         uint64     `json:"publish_in"`
	PublishInDetails  rateDetail `json:"publish_in_details"`
	PublishOut        uint64     `json:"publish_out"`
	PublishOutDetails rateDetail `json:"publish_out_details"`
}

func (s *apiServer) routeExchanges(rt *router) {
	rt.handle(http.MethodGet, "/api/exchanges", func(w http.ResponseWriter, r *http.Request, _ params) {
		respondList(w, r, s.exchanges(r, ""))
	})
	rt.handle(http.MethodGet, "/api/exchanges/{vhost}", func(w http.ResponseWriter, r *http.Request, p params) {
		if !s.vhostOr404(w, r, p["vhost"]) {
			return
		}
		respondList(w, r, s.exchanges(r, p["vhost"]))
	})
	rt.handle(http.MethodGet, "/api/exchanges/{vhost}/{name}", func(w http.ResponseWriter, r *http.Request, p params) {
		v, x := s.exchange(w, r, p)
		if x == nil {
			return
		}
		s.rates.fresh(s.ticking)
		apiJSON(w, http.StatusOK, s.exchangeOf(v.Name(), x))
	})
	rt.handle(http.MethodPut, "/api/exchanges/{vhost}/{name}", s.putExchange)
	rt.handle(http.MethodDelete, "/api/exchanges/{vhost}/{name}", s.deleteExchange)
	rt.handle(http.MethodPost, "/api/exchanges/{vhost}/{name}/publish", s.publish)
	rt.handle(http.MethodGet, "/api/exchanges/{vhost}/{name}/bindings/source", func(w http.ResponseWriter, r *http.Request, p params) {
		s.exchangeBindings(w, r, p, true) // bindings.go
	})
	rt.handle(http.MethodGet, "/api/exchanges/{vhost}/{name}/bindings/destination", func(w http.ResponseWriter, r *http.Request, p params) {
		s.exchangeBindings(w, r, p, false)
	})
}

// exchangeName maps a path's exchange name to the broker's: the default
// exchange is amq.default in RabbitMQ's paths.
func exchangeName(n string) string {
	if n == "amq.default" {
		return ""
	}
	return n
}

func (s *apiServer) exchangeOf(vhost string, x *broker.Exchange) exchangeJSON {
	c := x.Config()
	st := x.Stats()
	in, out := s.rates.exchangeRate(qkey{vhost, c.Name})
	return exchangeJSON{Name: c.Name, VHost: vhost, Type: c.Type, Durable: c.Durable, AutoDelete: c.AutoDelete,
		Internal: c.Internal, Arguments: jsonArgs(c.Args), Policy: nameOrNull(x.Policy()),
		MessageStats: exchangeStats{PublishIn: st.PublishIn, PublishInDetails: rateDetail{in},
			PublishOut: st.PublishOut, PublishOutDetails: rateDetail{out}}}
}

func (s *apiServer) exchanges(r *http.Request, vhost string) []exchangeJSON {
	s.rates.fresh(s.ticking)
	var out []exchangeJSON
	for _, v := range s.api.Broker.VHosts() {
		if (vhost != "" && v.Name() != vhost) || !vhostVisible(r, v.Name()) {
			continue
		}
		for _, x := range v.Exchanges() {
			out = append(out, s.exchangeOf(v.Name(), x))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].VHost != out[j].VHost {
			return out[i].VHost < out[j].VHost
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (s *apiServer) exchange(w http.ResponseWriter, r *http.Request, p params) (*broker.VHost, *broker.Exchange) {
	v := s.vhost(w, r, p["vhost"])
	if v == nil {
		return nil, nil
	}
	x, err := v.Exchange(exchangeName(p["name"]))
	if err != nil {
		notFound(w)
		return nil, nil
	}
	return v, x
}

type exchangeBody struct {
	Type       *string        `json:"type"`
	Durable    *flexBool      `json:"durable"`
	AutoDelete flexBool       `json:"auto_delete"`
	Internal   flexBool       `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

func (s *apiServer) putExchange(w http.ResponseWriter, r *http.Request, p params) {
	v := s.vhost(w, r, p["vhost"])
	if v == nil || !permitted(w, r, v.Name(), auth.Configure, "exchange", exchangeName(p["name"])) {
		return
	}
	var body exchangeBody
	if !decodeBody(w, r, &body) {
		return
	}
	if body.Type == nil || *body.Type == "" {
		badRequest(w, "an exchange needs a type")
		return
	}
	name := exchangeName(p["name"])
	_, err := v.Exchange(name)
	existed := err == nil
	_, err = v.DeclareExchange(broker.ExchangeConfig{Name: name, Type: *body.Type, Durable: body.Durable == nil || bool(*body.Durable),
		AutoDelete: bool(body.AutoDelete), Internal: bool(body.Internal), Args: amqpArgs(body.Arguments)}, false)
	if err != nil {
		brokerError(w, err)
		return
	}
	if existed {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *apiServer) deleteExchange(w http.ResponseWriter, r *http.Request, p params) {
	v, x := s.exchange(w, r, p)
	if x == nil || !permitted(w, r, v.Name(), auth.Configure, "exchange", x.Name()) {
		return
	}
	if err := v.DeleteExchange(x.Name(), r.URL.Query().Get("if-unused") == "true"); err != nil {
		brokerError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type publishBody struct {
	Properties      map[string]any `json:"properties"`
	RoutingKey      *string        `json:"routing_key"`
	Payload         *string        `json:"payload"`
	PayloadEncoding *string        `json:"payload_encoding"`
}

func unixSeconds(s int64) time.Time { return time.Unix(s, 0).UTC() }

// publish is POST /api/exchanges/{vhost}/{name}/publish: the message is
// routed as an AMQP publish would be (without publisher confirms) and the
// answer says whether any queue took it.
func (s *apiServer) publish(w http.ResponseWriter, r *http.Request, p params) {
	v, x := s.exchange(w, r, p)
	if x == nil || !permitted(w, r, v.Name(), auth.Write, "exchange", x.Name()) {
		return
	}
	var body publishBody
	if !decodeBody(w, r, &body) {
		return
	}
	if body.RoutingKey == nil || body.Payload == nil || body.PayloadEncoding == nil {
		badRequest(w, "routing_key, payload and payload_encoding are required")
		return
	}
	if !topicPermitted(w, r, v.Name(), x, auth.Write, *body.RoutingKey) {
		return
	}
	var payload []byte
	switch *body.PayloadEncoding {
	case "string":
		payload = []byte(*body.Payload)
	case "base64":
		b, err := base64.StdEncoding.DecodeString(*body.Payload)
		if err != nil {
			badRequest(w, "payload is not valid base64: "+err.Error())
			return
		}
		payload = b
	default:
		badRequest(w, "payload_encoding must be string or base64, not '"+*body.PayloadEncoding+"'")
		return
	}
	if s.src.Users != nil {
		// The vhost's max-message-size holds for every way in, as the
		// AMQP path refuses with 406 and MQTT with its reason code.
		if max := s.src.Users.VHostLimit(v.Name(), auth.LimitMaxMessageSize); max >= 0 && int64(len(payload)) > max {
			badRequest(w, "message size "+strconv.Itoa(len(payload))+" is larger than configured max size "+
				strconv.FormatInt(max, 10)+" (max-message-size of vhost '"+v.Name()+"')")
			return
		}
	}
	props, perr := propsFromJSON(body.Properties)
	if perr != "" {
		badRequest(w, perr)
		return
	}
	m := &message.Message{Exchange: x.Name(), RoutingKey: *body.RoutingKey, Props: props, Body: payload}
	var scratch broker.RouteScratch
	res, err := v.Publish(&scratch, m, nil, 0)
	if err != nil {
		brokerError(w, err)
		return
	}
	apiJSON(w, http.StatusOK, map[string]bool{"routed": res.Routed > 0})
}

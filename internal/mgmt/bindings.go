package mgmt

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
)

// bindingJSON is a binding as RabbitMQ's /api/bindings shows it.
// properties_key names it in DELETE /api/bindings/…/{props}: the routing
// key (url-escaped; "~" for an empty one) when it has no arguments, else
// the key, "~" and a hash of the arguments.
type bindingJSON struct {
	Source          string         `json:"source"`
	VHost           string         `json:"vhost"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"`
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments"`
	PropertiesKey   string         `json:"properties_key"`
}

func propertiesKey(key string, args map[string]any) string {
	if len(args) == 0 {
		if key == "" {
			return "~"
		}
		return url.PathEscape(key)
	}
	raw, _ := json.Marshal(jsonValue(args)) // map keys are sorted: the same arguments hash the same
	sum := sha256.Sum256(raw)
	return url.PathEscape(key) + "~" + base64.RawURLEncoding.EncodeToString(sum[:12])
}

func (s *apiServer) routeBindings(rt *router) {
	rt.handle(http.MethodGet, "/api/bindings", func(w http.ResponseWriter, r *http.Request, _ params) {
		respondList(w, r, s.bindings(r, "", nil))
	})
	rt.handle(http.MethodGet, "/api/bindings/{vhost}", func(w http.ResponseWriter, r *http.Request, p params) {
		if !s.vhostOr404(w, r, p["vhost"]) {
			return
		}
		respondList(w, r, s.bindings(r, p["vhost"], nil))
	})
	for _, kind := range []string{"q", "e"} {
		base := "/api/bindings/{vhost}/e/{source}/" + kind + "/{dest}"
		rt.handle(http.MethodGet, base, func(w http.ResponseWriter, r *http.Request, p params) {
			if s.bindingEnds(w, r, p, kind) == nil {
				return
			}
			respondList(w, r, s.bindings(r, p["vhost"], func(b bindingJSON) bool {
				return b.Source == exchangeName(p["source"]) && b.Destination == p["dest"] && b.DestinationType == destType(kind)
			}))
		})
		rt.handle(http.MethodPost, base, func(w http.ResponseWriter, r *http.Request, p params) { s.postBinding(w, r, p, kind) })
		rt.handle(http.MethodGet, base+"/{props}", func(w http.ResponseWriter, r *http.Request, p params) {
			if b, ok := s.findBinding(w, r, p, kind); ok {
				apiJSON(w, http.StatusOK, b)
			}
		})
		rt.handle(http.MethodDelete, base+"/{props}", func(w http.ResponseWriter, r *http.Request, p params) { s.deleteBinding(w, r, p, kind) })
	}
}

func destType(kind string) string {
	if kind == "q" {
		return "queue"
	}
	return "exchange"
}

// bindings lists the bindings of vhost ("" for all the user sees) that
// keep passes (nil: all), with RabbitMQ's implicit default-exchange
// binding of every queue first.
func (s *apiServer) bindings(r *http.Request, vhost string, keep func(bindingJSON) bool) []bindingJSON {
	var out []bindingJSON
	add := func(b bindingJSON) {
		if keep == nil || keep(b) {
			out = append(out, b)
		}
	}
	for _, v := range s.api.Broker.VHosts() {
		if (vhost != "" && v.Name() != vhost) || !vhostVisible(r, v.Name()) {
			continue
		}
		var qs []string
		for _, q := range v.Queues() {
			qs = append(qs, q.Name())
		}
		sort.Strings(qs)
		for _, q := range qs {
			add(bindingJSON{Source: "", VHost: v.Name(), Destination: q, DestinationType: "queue", RoutingKey: q,
				Arguments: map[string]any{}, PropertiesKey: propertiesKey(q, nil)})
		}
		bs := v.Bindings()
		var list []bindingJSON
		for _, b := range bs {
			list = append(list, bindingOf(v.Name(), b))
		}
		sort.SliceStable(list, func(i, j int) bool {
			a, c := list[i], list[j]
			if a.Source != c.Source {
				return a.Source < c.Source
			}
			if a.Destination != c.Destination {
				return a.Destination < c.Destination
			}
			return a.PropertiesKey < c.PropertiesKey
		})
		for _, b := range list {
			add(b)
		}
	}
	return out
}

func bindingOf(vhost string, b broker.Binding) bindingJSON {
	out := bindingJSON{Source: b.Source.Name(), VHost: vhost, RoutingKey: b.Key, Arguments: jsonArgs(b.Args),
		PropertiesKey: propertiesKey(b.Key, b.Args)}
	if b.Queue != nil {
		out.Destination, out.DestinationType = b.Queue.Name(), "queue"
	} else {
		out.Destination, out.DestinationType = b.Exchange.Name(), "exchange"
	}
	return out
}

// bindingEnds checks that the vhost, the source exchange and the
// destination exist, answering 404 when not; it returns the vhost.
func (s *apiServer) bindingEnds(w http.ResponseWriter, r *http.Request, p params, kind string) *broker.VHost {
	v := s.vhost(w, r, p["vhost"])
	if v == nil {
		return nil
	}
	if _, err := v.Exchange(exchangeName(p["source"])); err != nil {
		notFound(w)
		return nil
	}
	if kind == "q" && v.LookupQueue(p["dest"]) == nil {
		notFound(w)
		return nil
	}
	if kind == "e" {
		if _, err := v.Exchange(exchangeName(p["dest"])); err != nil {
			notFound(w)
			return nil
		}
	}
	return v
}

type bindingBody struct {
	RoutingKey string         `json:"routing_key"`
	Arguments  map[string]any `json:"arguments"`
}

// postBinding creates a binding and answers 201 with its location, as
// RabbitMQ does.
func (s *apiServer) postBinding(w http.ResponseWriter, r *http.Request, p params, kind string) {
	v := s.bindingEnds(w, r, p, kind)
	if v == nil {
		return
	}
	var body bindingBody
	if !decodeBody(w, r, &body) {
		return
	}
	src := exchangeName(p["source"])
	if src == "" {
		writeError(w, http.StatusForbidden, "access_refused", "operation not permitted on the default exchange")
		return
	}
	if !bindPermitted(w, r, v, kind, src, p["dest"], body.RoutingKey) {
		return
	}
	args := amqpArgs(body.Arguments)
	var err error
	if kind == "q" {
		err = v.BindQueue(p["dest"], src, body.RoutingKey, args, 0)
	} else {
		err = v.BindExchange(exchangeName(p["dest"]), src, body.RoutingKey, args)
	}
	if err != nil {
		brokerError(w, err)
		return
	}
	w.Header().Set("Location", propertiesKey(body.RoutingKey, args))
	w.WriteHeader(http.StatusCreated)
}

func (s *apiServer) findBinding(w http.ResponseWriter, r *http.Request, p params, kind string) (bindingJSON, bool) {
	if s.bindingEnds(w, r, p, kind) == nil {
		return bindingJSON{}, false
	}
	src := exchangeName(p["source"])
	for _, b := range s.bindings(r, p["vhost"], nil) {
		if b.Source == src && b.Destination == p["dest"] && b.DestinationType == destType(kind) &&
			(b.PropertiesKey == p["props"] || b.PropertiesKey == url.PathEscape(p["props"])) {
			return b, true
		}
	}
	notFound(w)
	return bindingJSON{}, false
}

func (s *apiServer) deleteBinding(w http.ResponseWriter, r *http.Request, p params, kind string) {
	b, ok := s.findBinding(w, r, p, kind)
	if !ok {
		return
	}
	if b.Source == "" {
		writeError(w, http.StatusForbidden, "access_refused", "operation not permitted on the default exchange")
		return
	}
	v := s.api.Broker.VHost(p["vhost"])
	if v == nil {
		notFound(w)
		return
	}
	if !bindPermitted(w, r, v, kind, b.Source, b.Destination, b.RoutingKey) {
		return
	}
	args := amqpArgs(b.Arguments)
	var err error
	if kind == "q" {
		err = v.UnbindQueue(b.Destination, b.Source, b.RoutingKey, s.originalArgs(v, b, args), 0)
	} else {
		err = v.UnbindExchange(b.Destination, b.Source, b.RoutingKey, s.originalArgs(v, b, args))
	}
	if err != nil {
		brokerError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// bindPermitted checks a bind or unbind as RabbitMQ checks queue.bind and
// exchange.bind: write access to the destination, read access to the
// source exchange and, on a topic exchange, the topic permission to read
// the routing key.
func bindPermitted(w http.ResponseWriter, r *http.Request, v *broker.VHost, kind, src, dest, key string) bool {
	destKind := "queue"
	if kind == "e" {
		destKind, dest = "exchange", exchangeName(dest)
	}
	if !permitted(w, r, v.Name(), auth.Write, destKind, dest) || !permitted(w, r, v.Name(), auth.Read, "exchange", src) {
		return false
	}
	x, err := v.Exchange(src)
	if err != nil {
		return true // the broker answers the missing exchange
	}
	return topicPermitted(w, r, v.Name(), x, auth.Read, key)
}

// originalArgs finds the broker's own argument table of binding b (the
// JSON round trip may change value types, and unbinding compares them).
func (s *apiServer) originalArgs(v *broker.VHost, b bindingJSON, fallback map[string]any) map[string]any {
	for _, x := range v.Bindings() {
		if bindingOf(v.Name(), x).PropertiesKey == b.PropertiesKey && x.Source.Name() == b.Source && x.Key == b.RoutingKey {
			if (x.Queue != nil && b.DestinationType == "queue" && x.Queue.Name() == b.Destination) ||
				(x.Exchange != nil && b.DestinationType == "exchange" && x.Exchange.Name() == b.Destination) {
				return x.Args
			}
		}
	}
	return fallback
}

// queueBindings is GET /api/queues/{vhost}/{name}/bindings.
func (s *apiServer) queueBindings(w http.ResponseWriter, r *http.Request, p params) {
	if _, q := s.queue(w, r, p); q == nil {
		return
	}
	respondList(w, r, s.bindings(r, p["vhost"], func(b bindingJSON) bool {
		return b.DestinationType == "queue" && b.Destination == p["name"]
	}))
}

// exchangeBindings is GET /api/exchanges/{vhost}/{name}/bindings/source
// (bindings from it) and …/destination (exchange bindings to it).
func (s *apiServer) exchangeBindings(w http.ResponseWriter, r *http.Request, p params, source bool) {
	if _, x := s.exchange(w, r, p); x == nil {
		return
	}
	name := exchangeName(p["name"])
	respondList(w, r, s.bindings(r, p["vhost"], func(b bindingJSON) bool {
		if source {
			return b.Source == name
		}
		return b.DestinationType == "exchange" && b.Destination == name
	}))
}

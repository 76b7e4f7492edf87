package mgmt

import (
	"net/http"
	"strconv"
)

type connectionDetails struct {
	Name     string `json:"name"`
	PeerHost string `json:"peer_host"`
	PeerPort int    `json:"peer_port"`
}

// channelJSON is a channel as RabbitMQ's /api/channels shows it.
type channelJSON struct {
	Name                   string            `json:"name"`
	Number                 int               `json:"number"`
	Node                   string            `json:"node"`
	User                   string            `json:"user"`
	VHost                  string            `json:"vhost"`
	State                  string            `json:"state"`
	ConnectionDetails      connectionDetails `json:"connection_details"`
	PrefetchCount          int               `json:"prefetch_count"`
	GlobalPrefetchCount    int               `json:"global_prefetch_count"`
	ConsumerCount          int               `json:"consumer_count"`
	MessagesUnacknowledged int               `json:"messages_unacknowledged"`
	MessageStats           channelStats      `json:"message_stats"`
}

// channelStats are a channel's message_stats with RabbitMQ's names:
// deliver counts deliveries to consumers (with and without acks), get
// basic.get answers, deliver_get both (amqp/channel_stats.go).
type channelStats struct {
	Publish                 uint64     `json:"publish"`
	PublishDetails          rateDetail `json:"publish_details"`
	Confirm                 uint64     `json:"confirm"`
	ConfirmDetails          rateDetail `json:"confirm_details"`
	ReturnUnroutable        uint64     `json:"return_unroutable"`
	ReturnUnroutableDetails rateDetail `json:"return_unroutable_details"`
	Deliver                 uint64     `json:"deliver"`
	DeliverDetails          rateDetail `json:"deliver_details"`
	Get                     uint64     `json:"get"`
	GetDetails              rateDetail `json:"get_details"`
	DeliverGet              uint64     `json:"deliver_get"`
	DeliverGetDetails       rateDetail `json:"deliver_get_details"`
	Ack                     uint64     `json:"ack"`
	AckDetails              rateDetail `json:"ack_details"`
	Redeliver               uint64     `json:"redeliver"`
	RedeliverDetails        rateDetail `json:"redeliver_details"`
}

type queueRef struct {
	Name  string `json:"name"`
	VHost string `json:"vhost"`
}

type channelDetails struct {
	Name           string `json:"name"`
	Number         int    `json:"number"`
	ConnectionName string `json:"connection_name"`
	PeerHost       string `json:"peer_host"`
	PeerPort       int    `json:"peer_port"`
	Node           string `json:"node"`
	User           string `json:"user"`
}

// consumerJSON is a consumer as RabbitMQ's /api/consumers shows it.
type consumerJSON struct {
	ConsumerTag    string         `json:"consumer_tag"`
	Queue          queueRef       `json:"queue"`
	ChannelDetails channelDetails `json:"channel_details"`
	AckRequired    bool           `json:"ack_required"`
	PrefetchCount  int            `json:"prefetch_count"`
	Active         bool           `json:"active"`
	ActivityStatus string         `json:"activity_status"`
}

func channelName(conn string, n uint16) string { return conn + " (" + strconv.Itoa(int(n)) + ")" }

func (s *apiServer) routeChannels(rt *router) {
	rt.handle(http.MethodGet, "/api/channels", func(w http.ResponseWriter, r *http.Request, _ params) {
		respondList(w, r, s.visibleChannels(r, ""))
	})
	rt.handle(http.MethodGet, "/api/vhosts/{vhost}/channels", func(w http.ResponseWriter, r *http.Request, p params) {
		if !s.vhostOr404(w, r, p["vhost"]) {
			return
		}
		respondList(w, r, s.visibleChannels(r, p["vhost"]))
	})
	rt.handle(http.MethodGet, "/api/channels/{name}", func(w http.ResponseWriter, r *http.Request, p params) {
		for _, ch := range s.visibleChannels(r, "") {
			if ch.Name == p["name"] {
				apiJSON(w, http.StatusOK, ch)
				return
			}
		}
		notFound(w)
	})
	rt.handle(http.MethodGet, "/api/consumers", func(w http.ResponseWriter, r *http.Request, _ params) {
		respondList(w, r, s.visibleConsumers(r, ""))
	})
	rt.handle(http.MethodGet, "/api/consumers/{vhost}", func(w http.ResponseWriter, r *http.Request, p params) {
		if !s.vhostOr404(w, r, p["vhost"]) {
			return
		}
		respondList(w, r, s.visibleConsumers(r, p["vhost"]))
	})
}

// peers maps connection names to their peer address.
func (s *apiServer) peers() map[string]connectionDetails {
	m := map[string]connectionDetails{}
	if s.api.Connections != nil {
		for _, c := range s.api.Connections() {
			m[c.Name] = connectionDetails{Name: c.Name, PeerHost: c.PeerHost, PeerPort: c.PeerPort}
		}
	}
	return m
}

func (s *apiServer) channels() []channelJSON {
	if s.api.Channels == nil {
		return nil
	}
	s.rates.fresh(s.ticking)
	peers := s.peers()
	var out []channelJSON
	for _, ch := range s.api.Channels() {
		name := channelName(ch.Connection, ch.Number)
		st, rt := ch.Stats, s.rates.chanRate(name)
		cd, ok := peers[ch.Connection]
		if !ok {
			cd = connectionDetails{Name: ch.Connection}
		}
		out = append(out, channelJSON{Name: name, Number: int(ch.Number),
			Node: s.api.Node.Name, User: ch.User, VHost: ch.VHost, State: "running", ConnectionDetails: cd,
			PrefetchCount: int(ch.PrefetchCount), GlobalPrefetchCount: int(ch.GlobalPrefetchCount),
			ConsumerCount: ch.Consumers, MessagesUnacknowledged: ch.Unacked,
			MessageStats: channelStats{Publish: st.Publish, PublishDetails: rateDetail{rt.publish.rate},
				Confirm: st.Confirm, ConfirmDetails: rateDetail{rt.confirm.rate},
				ReturnUnroutable: st.ReturnUnroutable, ReturnUnroutableDetails: rateDetail{rt.returned.rate},
				Deliver: st.Deliver, DeliverDetails: rateDetail{rt.deliver.rate}, Get: st.Get, GetDetails: rateDetail{rt.get.rate},
				DeliverGet: st.Deliver + st.Get, DeliverGetDetails: rateDetail{rt.deliver.rate + rt.get.rate},
				Ack: st.Ack, AckDetails: rateDetail{rt.ack.rate}, Redeliver: st.Redeliver, RedeliverDetails: rateDetail{rt.redeliver.rate}}})
	}
	return out
}

// visibleChannels: monitoring and administrator users see every channel,
// others their own connections' (RabbitMQ's rule).
func (s *apiServer) visibleChannels(r *http.Request, vhost string) []channelJSON {
	u, _ := requestUser(r)
	seeAll := seesAllVHosts(r)
	var out []channelJSON
	for _, ch := range s.channels() {
		if (vhost == "" || ch.VHost == vhost) && (seeAll || ch.User == u.Name) {
			out = append(out, ch)
		}
	}
	return out
}

func (s *apiServer) consumers() []consumerJSON {
	if s.api.Consumers == nil {
		return nil
	}
	peers := s.peers()
	var out []consumerJSON
	for _, c := range s.api.Consumers() {
		cd := peers[c.Connection]
		out = append(out, consumerJSON{ConsumerTag: c.Tag, Queue: queueRef{Name: c.Queue, VHost: c.VHost},
			ChannelDetails: channelDetails{Name: channelName(c.Connection, c.Channel), Number: int(c.Channel),
				ConnectionName: c.Connection, PeerHost: cd.PeerHost, PeerPort: cd.PeerPort, Node: s.api.Node.Name, User: c.User},
			AckRequired: c.AckRequired, PrefetchCount: int(c.PrefetchCount), Active: c.Status.Active(), ActivityStatus: c.Status.String()})
	}
	return out
}

// visibleConsumers: consumers of the vhosts the user may see.
func (s *apiServer) visibleConsumers(r *http.Request, vhost string) []consumerJSON {
	var out []consumerJSON
	for _, c := range s.consumers() {
		if (vhost == "" || c.Queue.VHost == vhost) && vhostVisible(r, c.Queue.VHost) {
			out = append(out, c)
		}
	}
	return out
}

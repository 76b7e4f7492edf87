package mgmt

import (
	"net/http"
	"strconv"

	"github.com/tern-broker/tern/internal/mqtt"
)

// connJSON is a connection as RabbitMQ's /api/connections shows it. AMQP
// and MQTT connections are listed together, as RabbitMQ lists its MQTT
// plugin's; an MQTT connection has no channels and its protocol says
// "MQTT 3.1.1" or "MQTT 5-0".
type connJSON struct {
	Name             string         `json:"name"`
	Node             string         `json:"node"`
	Type             string         `json:"type"`
	State            string         `json:"state"`
	Protocol         string         `json:"protocol"`
	User             string         `json:"user"`
	VHost            string         `json:"vhost"`
	Host             string         `json:"host"`
	Port             int            `json:"port"`
	PeerHost         string         `json:"peer_host"`
	PeerPort         int            `json:"peer_port"`
	SSL              bool           `json:"ssl"`
	AuthMechanism    string         `json:"auth_mechanism"`
	Channels         int            `json:"channels"`
	ChannelMax       int            `json:"channel_max"`
	FrameMax         int            `json:"frame_max"`
	Timeout          int            `json:"timeout"`
	ConnectedAt      int64          `json:"connected_at"`
	ClientProperties map[string]any `json:"client_properties"`
	UserProvidedName string         `json:"user_provided_name,omitempty"`
	RecvOct          uint64         `json:"recv_oct"`
	RecvOctDetails   rateDetail     `json:"recv_oct_details"`
	SendOct          uint64         `json:"send_oct"`
	SendOctDetails   rateDetail     `json:"send_oct_details"`

	mqtt bool // closed through the MQTT listener
}

func itoa(n int) string { return strconv.Itoa(n) }

func (s *apiServer) routeConnections(rt *router) {
	rt.handle(http.MethodGet, "/api/connections", func(w http.ResponseWriter, r *http.Request, _ params) {
		respondList(w, r, s.visibleConnections(r, ""))
	})
	rt.handle(http.MethodGet, "/api/vhosts/{vhost}/connections", func(w http.ResponseWriter, r *http.Request, p params) {
		if !s.vhostOr404(w, r, p["vhost"]) {
			return
		}
		respondList(w, r, s.visibleConnections(r, p["vhost"]))
	})
	rt.handle(http.MethodGet, "/api/connections/{name}", func(w http.ResponseWriter, r *http.Request, p params) {
		c, ok := s.findConnection(r, p["name"])
		if !ok {
			notFound(w)
			return
		}
		apiJSON(w, http.StatusOK, c)
	})
	rt.handle(http.MethodDelete, "/api/connections/{name}", s.closeConnection)
	rt.handle(http.MethodGet, "/api/connections/{name}/channels", func(w http.ResponseWriter, r *http.Request, p params) {
		if _, ok := s.findConnection(r, p["name"]); !ok {
			notFound(w)
			return
		}
		var out []channelJSON
		for _, ch := range s.channels() {
			if ch.ConnectionDetails.Name == p["name"] {
				out = append(out, ch)
			}
		}
		respondList(w, r, out)
	})
}

// connections lists every AMQP and MQTT connection.
func (s *apiServer) connections() []connJSON {
	var out []connJSON
	node := s.api.Node.Name
	if s.api.Connections != nil {
		for _, c := range s.api.Connections() {
			state := "running"
			switch {
			case c.Closing:
				state = "closing"
			case c.Blocked:
				state = "blocked"
			}
			props := jsonArgs(c.ClientProperties)
			upn, _ := props["connection_name"].(string)
			recv, send := s.rates.connRate(c.Name)
			out = append(out, connJSON{Name: c.Name, Node: node, Type: "network", State: state, Protocol: "AMQP 0-9-1",
				User: c.User, VHost: c.VHost, Host: c.Host, Port: c.Port, PeerHost: c.PeerHost, PeerPort: c.PeerPort,
				SSL: c.TLS, AuthMechanism: c.AuthMechanism, Channels: c.Channels, ChannelMax: int(c.ChannelMax),
				FrameMax: int(c.FrameMax), Timeout: int(c.Heartbeat.Seconds()), ConnectedAt: c.ConnectedAt.UnixMilli(),
				ClientProperties: props, UserProvidedName: upn,
				RecvOct: c.RecvOct, RecvOctDetails: rateDetail{recv}, SendOct: c.SendOct, SendOctDetails: rateDetail{send}})
		}
	}
	if s.api.MQTTConnections != nil {
		for _, c := range s.api.MQTTConnections() {
			out = append(out, mqttConnJSON(node, c))
		}
	}
	return out
}

func mqttConnJSON(node string, c mqtt.ConnectionInfo) connJSON {
	proto := "MQTT 3.1.1"
	if c.ProtocolVersion == 5 {
		proto = "MQTT 5-0"
	}
	return connJSON{Name: c.Name, Node: node, Type: "network", State: "running", Protocol: proto, User: c.User,
		VHost: c.VHost, Host: c.Host, Port: c.Port, PeerHost: c.PeerHost, PeerPort: c.PeerPort, SSL: c.TLS,
		Timeout: c.KeepAliveSeconds, ClientProperties: map[string]any{"client_id": c.ClientID}, UserProvidedName: c.ClientID, mqtt: true}
}

// visibleConnections are the connections the request's user may see
// (RabbitMQ: monitoring and administrator users see all, others their
// own), of vhost when it is not "".
func (s *apiServer) visibleConnections(r *http.Request, vhost string) []connJSON {
	all := s.connections()
	u, _ := requestUser(r)
	seeAll := seesAllVHosts(r)
	out := all[:0]
	for _, c := range all {
		if (vhost == "" || c.VHost == vhost) && (seeAll || c.User == u.Name) {
			out = append(out, c)
		}
	}
	return out
}

func (s *apiServer) findConnection(r *http.Request, name string) (connJSON, bool) {
	for _, c := range s.visibleConnections(r, "") {
		if c.Name == name {
			return c, true
		}
	}
	return connJSON{}, false
}

// closeConnection is DELETE /api/connections/{name}: AMQP connections get
// connection.close 320 CONNECTION_FORCED with the X-Reason header's text
// (RabbitMQ's default "Closed via management plugin" without one), MQTT 5
// clients DISCONNECT 0x98, 3.1.1 clients a closed socket.
func (s *apiServer) closeConnection(w http.ResponseWriter, r *http.Request, p params) {
	c, ok := s.findConnection(r, p["name"])
	if !ok {
		notFound(w)
		return
	}
	// Only administrators close other users' connections (a monitoring
	// user sees them, but may close its own only), as in RabbitMQ.
	if u, _ := requestUser(r); c.User != u.Name && !isAdmin(r) {
		notAuthorised(w, "User not authorised to access object")
		return
	}
	reason := r.Header.Get("X-Reason")
	if reason == "" {
		reason = "Closed via management plugin"
	}
	closed := false
	if c.mqtt {
		closed = s.api.CloseMQTT != nil && s.api.CloseMQTT(c.Name)
	} else {
		closed = s.api.CloseConnection != nil && s.api.CloseConnection(c.Name, reason)
	}
	if !closed {
		notFound(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

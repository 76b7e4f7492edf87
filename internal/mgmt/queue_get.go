package mgmt

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// getBody is POST /api/queues/{vhost}/{name}/get's body; count, ackmode
// and encoding are required, as in RabbitMQ.
type getBody struct {
	Count    *flexInt  `json:"count"`
	AckMode  *string   `json:"ackmode"`
	Encoding *string   `json:"encoding"`
	Truncate *flexInt  `json:"truncate"`
	Requeue  *flexBool `json:"requeue"` // RabbitMQ 3.6's form, still accepted by RabbitMQ
}

// gotMessage is one message of the get's answer.
type gotMessage struct {
	PayloadBytes    int            `json:"payload_bytes"`
	Redelivered     bool           `json:"redelivered"`
	Exchange        string         `json:"exchange"`
	RoutingKey      string         `json:"routing_key"`
	MessageCount    int            `json:"message_count"`
	Properties      map[string]any `json:"properties"`
	Payload         string         `json:"payload"`
	PayloadEncoding string         `json:"payload_encoding"`
}

// getMessages takes up to count messages from the queue and then, by
// ackmode, acknowledges them (ack_requeue_false), returns them
// (ack_requeue_true, reject_requeue_true: they come back marked
// redelivered) or rejects them (reject_requeue_false: dead-lettered or
// dropped). The messages are all taken before any is returned, so one get
// never shows a message twice.
func (s *apiServer) getMessages(w http.ResponseWriter, r *http.Request, p params) {
	v, q := s.queue(w, r, p)
	if q == nil || !permitted(w, r, v.Name(), auth.Read, "queue", q.Name()) {
		return
	}
	var body getBody
	if !decodeBody(w, r, &body) {
		return
	}
	if body.Count == nil || body.Encoding == nil || (body.AckMode == nil && body.Requeue == nil) {
		badRequest(w, "count, ackmode and encoding are required")
		return
	}
	ackMode := ""
	if body.AckMode != nil {
		ackMode = *body.AckMode
	} else if *body.Requeue {
		ackMode = "ack_requeue_true"
	} else {
		ackMode = "ack_requeue_false"
	}
	switch ackMode {
	case "ack_requeue_true", "ack_requeue_false", "reject_requeue_true", "reject_requeue_false":
	default:
		badRequest(w, "ackmode must be ack_requeue_true, ack_requeue_false, reject_requeue_true or reject_requeue_false, not '"+ackMode+"'")
		return
	}
	enc := *body.Encoding
	if enc != "auto" && enc != "base64" {
		badRequest(w, "encoding must be auto or base64, not '"+enc+"'")
		return
	}
	count := int(*body.Count)
	if count < 0 {
		badRequest(w, "count must not be negative")
		return
	}
	truncate := -1
	if body.Truncate != nil {
		truncate = int(*body.Truncate)
	}
	var got []broker.Delivery
	out := []gotMessage{}
	for range count {
		d, ok := q.Get(false)
		if !ok {
			break
		}
		got = append(got, d)
		out = append(out, encodeGot(d, enc, truncate))
	}
	switch ackMode {
	case "ack_requeue_false":
		q.Ack(got...)
	case "ack_requeue_true", "reject_requeue_true":
		q.Requeue(got)
	case "reject_requeue_false":
		q.Reject(got)
	}
	apiJSON(w, http.StatusOK, out)
}

func encodeGot(d broker.Delivery, enc string, truncate int) gotMessage {
	m := d.Msg
	body := m.Body
	if truncate >= 0 && len(body) > truncate {
		body = body[:truncate]
	}
	g := gotMessage{PayloadBytes: len(m.Body), Redelivered: d.Redelivered, Exchange: m.Exchange, RoutingKey: m.RoutingKey,
		MessageCount: d.Remaining, Properties: propsJSON(m.Props)}
	if enc == "auto" && utf8.Valid(body) {
		g.Payload, g.PayloadEncoding = string(body), "string"
	} else {
		g.Payload, g.PayloadEncoding = base64.StdEncoding.EncodeToString(body), "base64"
	}
	return g
}

// propsJSON shows the properties that are set, under RabbitMQ's names.
func propsJSON(p message.Properties) map[string]any {
	out := map[string]any{}
	set := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	set("content_type", p.ContentType)
	set("content_encoding", p.ContentEncoding)
	set("correlation_id", p.CorrelationID)
	set("reply_to", p.ReplyTo)
	set("expiration", p.Expiration)
	set("message_id", p.MessageID)
	set("type", p.Type)
	set("user_id", p.UserID)
	set("app_id", p.AppID)
	set("cluster_id", p.ClusterID)
	if len(p.Headers) > 0 {
		out["headers"] = jsonValue(p.Headers)
	}
	if p.DeliveryMode != 0 {
		out["delivery_mode"] = int(p.DeliveryMode)
	}
	if p.Priority != 0 {
		out["priority"] = int(p.Priority)
	}
	if !p.Timestamp.IsZero() {
		out["timestamp"] = p.Timestamp.Unix()
	}
	return out
}

// propsFromJSON reads the properties of a publish body; a property of the
// wrong type is an error naming it.
func propsFromJSON(in map[string]any) (message.Properties, string) {
	var p message.Properties
	str := func(k string, dst *string) string {
		v, ok := in[k]
		if !ok {
			return ""
		}
		s, ok := v.(string)
		if !ok {
			return "property '" + k + "' must be a string"
		}
		*dst = s
		return ""
	}
	for k, dst := range map[string]*string{"content_type": &p.ContentType, "content_encoding": &p.ContentEncoding,
		"correlation_id": &p.CorrelationID, "reply_to": &p.ReplyTo, "expiration": &p.Expiration, "message_id": &p.MessageID,
		"type": &p.Type, "user_id": &p.UserID, "app_id": &p.AppID, "cluster_id": &p.ClusterID} {
		if e := str(k, dst); e != "" {
			return p, e
		}
	}
	num := func(k string, maxV float64) (uint8, string) {
		v, ok := in[k]
		if !ok {
			return 0, ""
		}
		f, ok := v.(float64)
		if !ok || f < 0 || f > maxV || f != float64(int(f)) {
			return 0, "property '" + k + "' must be an integer from 0 to " + strconv.Itoa(int(maxV))
		}
		return uint8(f), ""
	}
	var e string
	if p.DeliveryMode, e = num("delivery_mode", 2); e != "" {
		return p, e
	}
	if p.Priority, e = num("priority", 255); e != "" {
		return p, e
	}
	if h, ok := in["headers"]; ok {
		m, ok := h.(map[string]any)
		if !ok {
			return p, "property 'headers' must be an object"
		}
		p.Headers = amqpArgs(m)
	}
	if ts, ok := in["timestamp"]; ok {
		f, ok := ts.(float64)
		if !ok {
			return p, "property 'timestamp' must be a number (seconds since 1970)"
		}
		p.Timestamp = unixSeconds(int64(f))
	}
	return p, ""
}

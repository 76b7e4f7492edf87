package mgmt

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/tern-broker/tern/internal/broker"
)

// RabbitMQ's management API answers errors with a JSON body of this shape:
// {"error": "Object Not Found", "reason": "Not Found"} for a missing vhost,
// queue or exchange, {"error": "bad_request", "reason": …} for a body it
// cannot use. Clients (rabbitmqadmin, rabbit-hole) read both fields.
type apiError struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// maxBody bounds a request body (RabbitMQ's default
// management.max_http_body_size is 20 MiB — definitions files are the
// big ones); more is answered 413.
const maxBody = 20 << 20

func writeError(w http.ResponseWriter, status int, kind, reason string) {
	apiJSON(w, status, apiError{Error: kind, Reason: reason})
}

func notFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "Object Not Found", "Not Found")
}

func badRequest(w http.ResponseWriter, reason string) {
	writeError(w, http.StatusBadRequest, "bad_request", reason)
}

// brokerError answers a broker error with RabbitMQ's status for it:
// precondition failures and refusals are 400 with the AMQP text as
// reason (RabbitMQ's inequivalent-arg and in-use replies), a missing
// object 404, a locked (exclusive) queue 405… everything else 500.
func brokerError(w http.ResponseWriter, err error) {
	var be *broker.Error
	if errors.As(err, &be) {
		switch be.Kind {
		case broker.KindNotFound:
			notFound(w)
		case broker.KindResourceLocked:
			writeError(w, http.StatusMethodNotAllowed, "resource_locked", be.Error())
		case broker.KindAccessRefused:
			writeError(w, http.StatusForbidden, "access_refused", be.Error())
		default:
			badRequest(w, be.Error())
		}
		return
	}
	writeError(w, http.StatusInternalServerError, "internal_error", err.Error())
}

// tooLarge answers 413 when err is http.MaxBytesReader's (the body went
// past its bound), reporting whether it did: endpoints with a small bound
// of their own answer a huge body as the others do.
func tooLarge(w http.ResponseWriter, err error) bool {
	var mb *http.MaxBytesError
	if !errors.As(err, &mb) {
		return false
	}
	writeError(w, http.StatusRequestEntityTooLarge, "bad_request", "request body larger than the maximum of "+strconv.FormatInt(mb.Limit, 10)+" bytes")
	return true
}

// decodeBody reads a JSON object body into v, answering 413 for more than
// maxBody bytes and 400 for malformed JSON or wrong types. An empty body
// leaves v as it is. It reports whether the handler may go on.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "bad_request", "request body larger than the maximum of 20 MiB")
			return false
		}
		badRequest(w, "reading the body: "+err.Error())
		return false
	}
	if len(raw) == 0 {
		return true
	}
	if err := json.Unmarshal(raw, v); err != nil {
		badRequest(w, describeJSONError(err))
		return false
	}
	return true
}

// describeJSONError names what was wrong, as the reason of a 400.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return "field '" + te.Field + "' must be " + jsonKind(te.Type.Kind().String()) + ", not " + te.Value
		}
		return "the body must be " + jsonKind(te.Type.Kind().String()) + ", not " + te.Value
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "malformed JSON: " + se.Error()
	}
	return "malformed JSON: " + err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "int", "int64", "int32", "uint", "uint64", "uint32", "uint16", "uint8", "float64", "float32":
		return "a number"
	}
	return goKind
}

// apiJSON writes v as the API's JSON answer. Unlike writeJSON it leaves
// "<", ">" and "&" as they are, as RabbitMQ does: a connection's name
// reads "127.0.0.1:54321 -> 127.0.0.1:5672" in the raw body too.
func apiJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	_ = bw.Flush()
}

// apiJSONList writes items as a JSON array one item at a time, so a list
// of 10,000 queues is never one 5 MB buffer.
func apiJSONList[T any](w http.ResponseWriter, items []T) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	_ = bw.WriteByte('[')
	for i := range items {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		_ = enc.Encode(&items[i]) // Encode ends each item with a newline, which JSON allows
	}
	_, _ = bw.WriteString("]\n")
	_ = bw.Flush()
}

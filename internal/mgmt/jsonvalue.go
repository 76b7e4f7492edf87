package mgmt

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"
)

// jsonValue turns an AMQP field value (client properties, arguments,
// headers) into what encodes as RabbitMQ shows it: tables as objects,
// byte arrays as strings when they are text, timestamps as seconds.
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return x // base64, as encoding/json writes it
	case time.Time:
		return x.Unix()
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil
		}
	}
	return v
}

// noArgs is every empty argument table's JSON: shared, never written to.
var noArgs = map[string]any{}

// jsonArgs is jsonValue for an argument table, never nil (RabbitMQ writes
// "arguments": {}).
func jsonArgs(m map[string]any) map[string]any {
	if len(m) == 0 {
		return noArgs
	}
	return jsonValue(m).(map[string]any)
}

// amqpArgs turns a decoded JSON arguments object (json.Number numbers)
// into AMQP field values: whole numbers become int64 (what x-max-length
// and friends need), others float64; nested objects and arrays follow.
func amqpArgs(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = amqpValue(v)
	}
	return out
}

func amqpValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = amqpValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = amqpValue(e)
		}
		return out
	}
	return v
}

// flexBool is a boolean field of a request body. RabbitMQ accepts "true"
// and "false" as strings too, and rabbitmqadmin sends them so
// ({"durable":"true"}); anything else is a 400 naming the field.
type flexBool bool

func (b *flexBool) UnmarshalJSON(raw []byte) error {
	switch string(raw) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`:
		*b = false
	default:
		return &json.UnmarshalTypeError{Value: jsonTypeName(raw), Type: reflect.TypeFor[bool]()}
	}
	return nil
}

// flexInt is an integer field of a request body, a number or a string of
// digits (rabbitmqadmin sends {"count":"1"}).
type flexInt int

func (n *flexInt) UnmarshalJSON(raw []byte) error {
	s := string(raw)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: jsonTypeName(raw), Type: reflect.TypeFor[int]()}
	}
	*n = flexInt(v)
	return nil
}

// jsonTypeName names a raw JSON value's type for an error.
func jsonTypeName(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

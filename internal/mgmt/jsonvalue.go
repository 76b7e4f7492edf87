package mgmt

import (
	"encoding/json"
	"math"
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

// jsonArgs is jsonValue for an argument table, never nil (RabbitMQ writes
// "arguments": {}).
func jsonArgs(m map[string]any) map[string]any {
	if len(m) == 0 {
		return map[string]any{}
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

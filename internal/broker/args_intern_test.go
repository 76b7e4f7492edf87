package broker

import (
	"reflect"
	"testing"
)

// Equal argument tables of queues and bindings are one map; tables that
// differ in a value or its type are not, and the index stays bounded.
func TestArgumentTablesShared(t *testing.T) {
	b := New(Config{})
	v := b.VHost("/")
	for _, n := range []string{"a", "b"} {
		if _, err := v.DeclareQueue(QueueConfig{Name: n, Args: map[string]any{"x-mqtt-user": "guest"}}, false, 0); err != nil {
			t.Fatal(err)
		}
		if err := v.BindQueue(n, "amq.topic", n+".x", map[string]any{"x-mqtt-qos": int32(1), "x-mqtt-no-local": false}, 0); err != nil {
			t.Fatal(err)
		}
	}
	qa, qb := v.queue("a"), v.queue("b")
	if reflect.ValueOf(qa.cfg.Args).UnsafePointer() != reflect.ValueOf(qb.cfg.Args).UnsafePointer() {
		t.Error("two queues declared with equal arguments hold two maps")
	}
	ba, bb := v.QueueBindings(qa), v.QueueBindings(qb)
	if len(ba) != 1 || len(bb) != 1 || reflect.ValueOf(ba[0].Args).UnsafePointer() != reflect.ValueOf(bb[0].Args).UnsafePointer() {
		t.Error("two bindings with equal arguments hold two maps")
	}
	if qa.args != qb.args || qa.args != &plainClassicArgs {
		t.Error("queues declared without arguments that change them do not share their parsed arguments")
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	m := map[string]any{"n": int32(1)}
	for _, other := range []map[string]any{{"n": int64(1)}, {"n": int32(2)}, {"n": "1"}, {"m": int32(1)}} {
		if k1, _ := argsKey(m); func() bool { k2, _ := argsKey(other); return k1 == k2 }() {
			t.Errorf("%v and %v share a key", m, other)
		}
	}
	if _, ok := argsKey(map[string]any{"t": map[string]any{}}); ok {
		t.Error("a nested table was interned")
	}
	for i := range 3 * maxInterned {
		v.internArgs(map[string]any{"i": int64(i)})
	}
	if n := len(v.interned); n > maxInterned {
		t.Errorf("%d tables indexed, more than %d", n, maxInterned)
	}
}

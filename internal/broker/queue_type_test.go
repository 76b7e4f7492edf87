package broker

import (
	"errors"
	"strings"
	"testing"
)

func TestQueueTypeChoosesTheBackend(t *testing.T) {
	t.Parallel()
	b := New(Config{})
	v := b.VHost("/")
	q, err := v.DeclareQueue(QueueConfig{Name: "c", Args: map[string]any{"x-queue-type": "classic"}}, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := q.backend.(*classicBackend); !ok || q.Type() != Classic || q.IsStream() {
		t.Fatalf("x-queue-type classic: type %v, backend %T", q.Type(), q.backend)
	}
	q, err = v.DeclareQueue(QueueConfig{Name: "d"}, false, 1)
	if err != nil || q.Type() != Classic {
		t.Fatalf("no x-queue-type: %v %v", q, err)
	}
	for _, typ := range []string{"quorum", "lazy", ""} {
		_, err := v.DeclareQueue(QueueConfig{Name: "x" + typ, Args: map[string]any{"x-queue-type": typ}}, false, 1)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindPreconditionFailed || !strings.Contains(err.Error(), "unsupported_queue_type") {
			t.Fatalf("x-queue-type %q: %v", typ, err)
		}
	}
	for typ, want := range map[QueueType]string{Classic: "classic", Stream: "stream", Quorum: "quorum"} {
		if got, ok := parseQueueType(want); !ok || got != typ || typ.String() != want {
			t.Fatalf("%v: parse %q = %v %v", typ, want, got, ok)
		}
	}
}

// The vhost indexes bindings by destination queue; deleting the queue
// removes them from its exchanges and from the index.
func TestDeletingAQueueRemovesItsBindings(t *testing.T) {
	t.Parallel()
	b := New(Config{})
	v := b.VHost("/")
	for _, name := range []string{"q1", "q2"} {
		if _, err := v.DeclareQueue(QueueConfig{Name: name}, false, 1); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"a", "b"} {
			if err := v.BindQueue(name, "amq.direct", key, nil, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	q1 := v.queue("q1")
	if _, err := v.DeleteQueue("q1", false, false, 1); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, bd := range v.Bindings() {
		if bd.Source.Name() == "amq.direct" {
			left = append(left, bd.Queue.Name()+":"+bd.Key)
		}
	}
	v.mu.Lock()
	indexed := len(q1.binds)
	v.mu.Unlock()
	if strings.Join(left, ",") != "q2:a,q2:b" || indexed != 0 {
		t.Fatalf("bindings after deleting q1: %v, %d still indexed by q1", left, indexed)
	}
}

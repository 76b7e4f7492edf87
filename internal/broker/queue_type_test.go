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

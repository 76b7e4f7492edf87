package server

import (
	"fmt"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/store"
	"github.com/tern-broker/tern/internal/vfs"
)

// Definitions saved through the broker's Storage come back from the store
// with their arguments' types intact.
func TestDefinitionsRoundTrip(t *testing.T) {
	t.Parallel()
	st, err := store.Open(vfs.NewMem(), "/d", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := &broker.Definitions{
		VHosts:    []string{"/", "v2"},
		Exchanges: []broker.ExchangeDef{{VHost: "/", ExchangeConfig: broker.ExchangeConfig{Name: "x", Type: "topic", Durable: true, Args: map[string]any{"alternate-exchange": "ae"}}}},
		Queues:    []broker.QueueDef{{VHost: "/", ID: "abc", QueueConfig: broker.QueueConfig{Name: "q", Durable: true, Args: map[string]any{"x-message-ttl": int32(5)}}}},
		Bindings:  []broker.BindingDef{{VHost: "/", Source: "x", Destination: "q", Key: "a.*", Args: map[string]any{"n": int64(1)}}},
	}
	if err := (storage{st}).SaveDefinitions(d); err != nil {
		t.Fatal(err)
	}
	got, err := loadDefinitions(st)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", d) {
		t.Fatalf("got %+v\nwant %+v", got, d)
	}
}

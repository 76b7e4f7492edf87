package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/store"
	"github.com/tern-broker/tern/internal/vfs"
)

// Every logged command kind, appended through the broker's Storage and
// read back after a crash, decodes to the same command, its arguments'
// types intact.
func TestCommandsRoundTripThroughTheLog(t *testing.T) {
	t.Parallel()
	cmds := []broker.Command{
		broker.AddVHost{Name: "v2"},
		broker.DeclareExchange{ExchangeDef: broker.ExchangeDef{VHost: "/", ExchangeConfig: broker.ExchangeConfig{
			Name: "x", Type: "topic", Durable: true, Internal: true, Args: map[string]any{"alternate-exchange": "ae"}}}},
		broker.DeclareQueue{QueueDef: broker.QueueDef{VHost: "/", ID: "id1", QueueConfig: broker.QueueConfig{
			Name: "q", Durable: true, AutoDelete: true, Args: map[string]any{"x-message-ttl": int32(5), "x-max-length": int64(7)}}}},
		broker.Bind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "q", Key: "a.*", Args: map[string]any{"n": int64(1)}}},
		broker.Unbind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "q", Key: "a.*", Args: map[string]any{"n": int64(1)}}},
		broker.Bind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "y", DestIsExchange: true, Key: "#"}},
		broker.DeleteQueue{VHost: "/", Name: "q"},
		broker.DeleteExchange{VHost: "/", Name: "x"},
	}
	m := vfs.NewCrashable()
	st, err := store.Open(m, "/d", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	for _, c := range cmds {
		if seq, err = (storage{st}).AppendCommand(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := (storage{st}).SyncCommands(seq); err != nil {
		t.Fatal(err)
	}
	if _, err := (storage{st}).AppendCommand(broker.SetLimits{}); err == nil {
		t.Error("SetLimits is applied, not logged: appending it must fail")
	}
	st2, err := store.Open(m.Crash(nil), "/d", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	got, err := loadCommands(st2)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", cmds) {
		t.Fatalf("got  %+v\nwant %+v", got, cmds)
	}
}

// A record whose checksum is good but which is no command (written by
// something else, or a newer version) refuses the start, naming where it
// is, rather than guess at the definitions.
func TestUndecodableCommandRefusesTheStart(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	st, err := store.Open(m, "/d", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendCommand([]byte(`{"op":"add_vhost","name":"v2"}`)); err != nil {
		t.Fatal(err)
	}
	seq, err := st.AppendCommand([]byte(`{"op":"set_global_parameter","name":"p"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SyncCommands(seq); err != nil {
		t.Fatal(err)
	}
	st2, err := store.Open(m.Crash(nil), "/d", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	_, err = loadCommands(st2)
	if err == nil || !strings.Contains(err.Error(), "log-0000000000000001: record at offset 39") || !strings.Contains(err.Error(), `unknown command "set_global_parameter"`) {
		t.Fatalf("got %v", err)
	}
}

package broker_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/broker/memstore"
)

// TestCoreDefinitionsSurviveSnapshotsAndReplay: enough definition changes
// that the store asks for snapshots part-way, then a restart (snapshot
// plus the commands since) gives back exactly the broker's durable
// definitions, and a second restart (after replay's own snapshot) too.
func TestCoreDefinitionsSurviveSnapshotsAndReplay(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	b := broker.New(broker.Config{Storage: st})
	v := b.VHost("/")
	for i := range 3 * memstore.SnapshotEvery {
		x, q := fmt.Sprintf("x%d", i), fmt.Sprintf("q%d", i)
		if _, err := v.DeclareExchange(broker.ExchangeConfig{Name: x, Type: broker.TypeTopic, Durable: true,
			Args: map[string]any{"alternate-exchange": "ae"}}, false); err != nil {
			t.Fatal(err)
		}
		declare(t, v, broker.QueueConfig{Name: q, Durable: true, Args: map[string]any{"x-message-ttl": int32(i + 1)}})
		declare(t, v, broker.QueueConfig{Name: "t" + q}) // transient: never logged
		if err := v.BindQueue(q, x, "k.*", map[string]any{"n": int64(i)}, 1); err != nil {
			t.Fatal(err)
		}
		switch i % 4 {
		case 1:
			if _, err := v.DeleteQueue(q, false, false, 1); err != nil {
				t.Fatal(err)
			}
		case 2:
			if err := v.DeleteExchange(x, false); err != nil {
				t.Fatal(err)
			}
		case 3:
			if err := v.UnbindQueue(q, x, "k.*", map[string]any{"n": int64(i)}, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st.Saves() == 0 {
		t.Fatal("no snapshot was asked for")
	}
	want := canonicalDefs(b.Definitions())
	for round := range 2 {
		b = broker.New(broker.Config{Storage: st})
		if err := b.Restore(st.Definitions()); err != nil {
			t.Fatal(err)
		}
		if err := b.Replay(st.Commands()); err != nil {
			t.Fatal(err)
		}
		if got := canonicalDefs(b.Definitions()); got != want {
			t.Fatalf("restart %d:\n%s\nwant\n%s", round, got, want)
		}
	}
}

// canonicalDefs prints definitions in a fixed order, arguments included.
func canonicalDefs(d *broker.Definitions) string {
	var lines []string
	for _, vh := range d.VHosts {
		lines = append(lines, "vhost "+vh)
	}
	for _, x := range d.Exchanges {
		lines = append(lines, fmt.Sprintf("exchange %s %s %s %v", x.VHost, x.Name, x.Type, x.Args))
	}
	for _, q := range d.Queues {
		lines = append(lines, fmt.Sprintf("queue %s %s %s %v", q.VHost, q.Name, q.ID, q.Args))
	}
	for _, bd := range d.Bindings {
		lines = append(lines, fmt.Sprintf("binding %s %s %s %s %v", bd.VHost, bd.Source, bd.Destination, bd.Key, bd.Args))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

package server

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/store"
	"github.com/tern-broker/tern/internal/vfs"
)

// TestDefinitionsSnapshotsUnderConcurrentChanges runs the broker on the
// store (through the storage adapter, which encodes commands and snapshots) with a snapshot every 25 commands while goroutines declare, bind
// and delete in two vhosts: after a crash, snapshot plus log give exactly
// the broker's definitions at the end.
func TestDefinitionsSnapshotsUnderConcurrentChanges(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	st, err := store.Open(m, "/d", store.Options{SnapshotEvery: 25})
	if err != nil {
		t.Fatal(err)
	}
	b := broker.New(broker.Config{Storage: storage{st}})
	b.AddVHost("v2")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := b.VHost([]string{"/", "v2"}[w%2])
			for i := range 60 {
				x, q := fmt.Sprintf("x%d-%d", w, i), fmt.Sprintf("q%d-%d", w, i)
				if _, err := v.DeclareExchange(broker.ExchangeConfig{Name: x, Type: "fanout", Durable: true}, false); err != nil {
					errs <- err
					return
				}
				if _, err := v.DeclareQueue(broker.QueueConfig{Name: q, Durable: true}, false, 0); err != nil {
					errs <- err
					return
				}
				if err := v.BindQueue(q, x, "", nil, 0); err != nil {
					errs <- err
					return
				}
				if i%4 == 1 {
					if _, err := v.DeleteQueue(q, false, false, 0); err != nil {
						errs <- err
						return
					}
				}
				if i%4 == 2 {
					if err := v.DeleteExchange(x, false); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := b.Definitions()

	st2, err := store.Open(m.Crash(nil), "/d", store.Options{SnapshotEvery: 25})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	d, err := loadDefinitions(st2)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Queues) == 0 {
		t.Fatal("no snapshot was written")
	}
	b2 := broker.New(broker.Config{Storage: storage{st2}})
	if err := b2.Restore(d); err != nil {
		t.Fatal(err)
	}
	cmds, err := loadCommands(st2)
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Replay(cmds); err != nil {
		t.Fatal(err)
	}
	if got := b2.Definitions(); canonical(got) != canonical(want) {
		t.Fatalf("after the crash:\n%s\nwant\n%s", canonical(got), canonical(want))
	}
}

// canonical prints definitions in a fixed order.
func canonical(d *broker.Definitions) string {
	set := map[string]bool{}
	for _, v := range d.VHosts {
		set["vhost "+v] = true
	}
	for _, x := range d.Exchanges {
		set[fmt.Sprintf("exchange %s %s %s", x.VHost, x.Name, x.Type)] = true
	}
	for _, q := range d.Queues {
		set[fmt.Sprintf("queue %s %s %s", q.VHost, q.Name, q.ID)] = true
	}
	for _, bd := range d.Bindings {
		set[fmt.Sprintf("binding %s %s %s %s", bd.VHost, bd.Source, bd.Destination, bd.Key)] = true
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(keys, "\n")
}

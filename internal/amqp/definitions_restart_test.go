package amqp_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// TestDefinitionsJSONFromThePreviousVersionLoads starts a node on a data
// directory written by the version that kept definitions.json: its
// objects are there, and the file has become a snapshot.
func TestDefinitionsJSONFromThePreviousVersionLoads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := `{
  "version": 1,
  "vhosts": ["/"],
  "exchanges": [{"vhost": "/", "name": "orders", "type": "topic"}],
  "queues": [{"vhost": "/", "name": "orders.eu", "id": "0123456789abcdef01234567"}],
  "bindings": [{"vhost": "/", "source": "orders", "destination": "orders.eu", "routing_key": "eu.*"}]
}`
	if err := os.WriteFile(filepath.Join(dir, "definitions.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s := testkit.Start(t, testkit.WithDataDir(dir))
	_, ch := s.Channel(t)
	if err := ch.ExchangeDeclarePassive("orders", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "orders", "eu.de", body("after the upgrade"))
	testkit.Eventually(t, wait, "binding loaded", func() bool { return queueLen(t, ch, "orders.eu") == 1 })
	if _, err := os.Stat(filepath.Join(dir, "definitions.json")); !os.IsNotExist(err) {
		t.Fatalf("definitions.json is still there: %v", err)
	}
	if snaps, err := filepath.Glob(filepath.Join(dir, "definitions", "snapshot-*")); err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots %v: %v", snaps, err)
	}
}

// TestLogsOfDeletedQueuesAreRemovedAtStart: a queue log that no definition
// names (its queue's deletion was durable, its files were not yet removed
// when the node stopped) is removed at the next start; live queues keep
// their messages.
func TestLogsOfDeletedQueuesAreRemovedAtStart(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("kept", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "", "kept", amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("stays")})
	testkit.Eventually(t, wait, "message queued", func() bool { return queueLen(t, ch, "kept") == 1 })
	orphan := filepath.Join(s.Config.DataDir, "queues", "feedfacefeedfacefeedface")
	if err := os.MkdirAll(orphan, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(orphan, "00000000000000000000.seg"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	s = s.Restart(t)
	_, ch = s.Channel(t)
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatalf("the orphan log is still there: %v", err)
	}
	if n := queueLen(t, ch, "kept"); n != 1 {
		t.Fatalf("kept holds %d messages after the restart", n)
	}
}

// TestConcurrentDefinitionChangesSurviveRestart: connections declaring,
// binding and deleting at once (their changes share fsyncs) leave exactly
// the definitions they were told about after a restart.
func TestConcurrentDefinitionChangesSurviveRestart(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	const conns, each = 6, 60
	errs := make(chan error, conns)
	for c := range conns {
		_, ch := s.Channel(t)
		go func() {
			errs <- func() error {
				for i := range each {
					name := fmt.Sprintf("c%d-%d", c, i)
					if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
						return err
					}
					if err := ch.QueueBind(name, name, "amq.direct", false, nil); err != nil {
						return err
					}
					if i%3 == 0 {
						if _, err := ch.QueueDelete(name, false, false, false); err != nil {
							return err
						}
					}
				}
				return nil
			}()
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	s = s.Restart(t)
	conn, ch := s.Channel(t)
	for c := range conns {
		for i := range each {
			name := fmt.Sprintf("c%d-%d", c, i)
			_, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
			if i%3 == 0 {
				expectCode(t, err, amqp.NotFound)
				if ch, err = conn.Channel(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			publish(t, ch, "amq.direct", name, body(name))
			testkit.Eventually(t, wait, name+" bound", func() bool { return queueLen(t, ch, name) == 1 })
		}
	}
}

// TestAutoDeleteOfADurableExchangeSurvivesRestart: a durable auto-delete
// exchange deleted because its last binding (to a transient queue) went
// stays deleted after a restart, and one that still has a binding stays.
func TestAutoDeleteOfADurableExchangeSurvivesRestart(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	for _, x := range []string{"ad-gone", "ad-kept"} {
		if err := ch.ExchangeDeclare(x, "fanout", true, true, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ch.QueueDeclare("ad-transient", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("ad-durable", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][2]string{{"ad-transient", "ad-gone"}, {"ad-durable", "ad-kept"}, {"ad-transient", "ad-kept"}} {
		if err := ch.QueueBind(b[0], "", b[1], false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ch.QueueDelete("ad-transient", false, false, false); err != nil {
		t.Fatal(err)
	}

	s = s.Restart(t)
	conn, ch := s.Channel(t)
	expectCode(t, ch.ExchangeDeclarePassive("ad-gone", "fanout", true, true, false, false, nil), amqp.NotFound)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclarePassive("ad-kept", "fanout", true, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "ad-kept", "", body("still bound"))
	testkit.Eventually(t, wait, "binding restored", func() bool { return queueLen(t, ch, "ad-durable") == 1 })
}

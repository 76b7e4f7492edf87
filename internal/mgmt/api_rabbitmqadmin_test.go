package mgmt_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// RabbitMQ's own rabbitmqadmin (Debian's rabbitmq-server ships it) drives
// Tern: declare, publish, get, list, close a connection, export, import,
// purge, delete. It sends booleans and counts as strings, as RabbitMQ
// accepts them.
func TestRabbitmqadmin(t *testing.T) {
	bin, err := exec.LookPath("rabbitmqadmin")
	if err != nil {
		t.Skip("rabbitmqadmin is not installed")
	}
	t.Parallel()
	s := testkit.Start(t)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(s.HTTPURL, "http://"))
	admin := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-H", host, "-P", port, "-u", "guest", "-p", "guest", "-f", "tsv", "-q"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "***") {
			t.Fatalf("rabbitmqadmin %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	admin("declare", "queue", "name=jobs", "durable=true", `arguments={"x-max-length":10}`)
	admin("declare", "exchange", "name=work", "type=topic")
	admin("declare", "binding", "source=work", "destination=jobs", "routing_key=job.#")
	admin("publish", "exchange=work", "routing_key=job.new", "payload=hello")
	if out := admin("list", "queues", "name", "messages", "durable"); !strings.Contains(out, "jobs\t1\tTrue") {
		t.Errorf("list queues:\n%s", out)
	}
	if out := admin("list", "bindings", "source", "destination", "routing_key"); !strings.Contains(out, "work\tjobs\tjob.#") {
		t.Errorf("list bindings:\n%s", out)
	}
	if out := admin("get", "queue=jobs", "ackmode=ack_requeue_false"); !strings.Contains(out, "hello") {
		t.Errorf("get:\n%s", out)
	}
	conn, err := amqp.DialConfig(s.URL, amqp.Config{Properties: amqp.Table{"connection_name": "admin-test"}})
	if err != nil {
		t.Fatal(err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	var name string
	testkit.Eventually(t, 5*time.Second, "rabbitmqadmin lists the connection", func() bool {
		for _, line := range strings.Split(admin("list", "connections", "name", "user_provided_name"), "\n") {
			if n, upn, ok := strings.Cut(line, "\t"); ok && upn == "admin-test" {
				name = n
			}
		}
		return name != ""
	})
	admin("close", "connection", "name="+name)
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.ConnectionForced {
			t.Errorf("closed with %v", e)
		}
	case <-time.After(5 * time.Second):
		t.Error("the connection stayed open")
	}
	file := filepath.Join(t.TempDir(), "defs.json")
	admin("export", file)
	admin("delete", "queue", "name=jobs")
	admin("delete", "exchange", "name=work")
	admin("import", file)
	if out := admin("list", "bindings", "source", "destination"); !strings.Contains(out, "work\tjobs") {
		t.Errorf("after export, delete, import:\n%s", out)
	}
	admin("purge", "queue", "name=jobs")
	admin("delete", "binding", "source=work", "destination_type=queue", "destination=jobs", "properties_key=job.%23")
	if out := admin("list", "bindings", "source", "destination"); strings.Contains(out, "work\tjobs") {
		t.Errorf("the binding survived its deletion:\n%s", out)
	}
	if raw, err := os.ReadFile(file); err != nil || !strings.Contains(string(raw), `"rabbit_version"`) {
		t.Errorf("export file: %v %.200s", err, raw)
	}
}

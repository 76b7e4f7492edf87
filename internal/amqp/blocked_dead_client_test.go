package amqp_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

// The victim holds an exclusive queue and an unacked message, then
// publishes while the memory alarm blocks it, and waits to be killed.
const pikaBlockedVictim = `
import sys, pika
conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
ch = conn.channel()
ch.queue_declare('victim-exclusive', exclusive=True)
ch.basic_qos(prefetch_count=1)
got = []
ch.basic_consume('victim-work', lambda c, m, p, b: got.append(m.delivery_tag))
while not got:
    conn.process_data_events(time_limit=1)
print('consuming', flush=True)
sys.stdin.readline()
ch.basic_publish(exchange='', routing_key='victim-late', body=b'buffered while blocked')
print('published', flush=True)
while True:
    conn.process_data_events(time_limit=1)
`

// A client killed while the memory alarm blocks its publish is cleaned up
// at once, not when the alarm clears: its exclusive queue is free, its
// unacked message is back, it is no longer counted, and its held publish is
// never routed.
func TestKilledClientOfABlockedConnectionIsCleanedUp(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import pika").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-pika is required in CI: %v", err)
		}
		t.Skip("python3-pika not installed (apt-get install python3-pika)")
	}
	s := testkit.Start(t, func(c *config.Config) { c.MemoryHighWatermark = 64 << 10 })
	_, ch := s.Channel(t)
	for _, q := range []string{"victim-work", "victim-late", "victim-ballast"} {
		if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, ch, "", "victim-work", body("job"))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	victim := exec.CommandContext(ctx, python, "-c", pikaBlockedVictim, s.URL)
	stdout, err := victim.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := victim.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	victim.Stderr = &stderr
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = victim.Process.Kill(); _ = victim.Wait() }()
	lines := bufio.NewReader(stdout)
	if line, err := lines.ReadString('\n'); !strings.HasPrefix(line, "consuming") {
		t.Fatalf("victim: %q %v\n%s", line, err, stderr.String())
	}
	if n := unackedIn(s, "victim-work"); n != 1 {
		t.Fatalf("victim-work has %d unacked, want the victim's job", n)
	}
	// Raise the memory alarm with one 80 KiB message over the 64 KiB
	// watermark, from a connection that publishes nothing after it.
	_, ballast := s.Channel(t)
	publish(t, ballast, "", "victim-ballast", amqp.Publishing{Body: bytes.Repeat([]byte("x"), 80<<10)})
	testkit.Eventually(t, wait, "the memory alarm", func() bool { return s.Broker.Stats().MemoryAlarm })
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := lines.ReadString('\n'); !strings.HasPrefix(line, "published") {
		t.Fatalf("victim: %q %v\n%s", line, err, stderr.String())
	}
	testkit.Eventually(t, wait, "the victim's publish to be held", func() bool { return s.AMQPStats().Blocked == 1 })

	if err := victim.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the dead client's connection to be closed", func() bool {
		return s.AMQPStats().ConnectionsOpen == 2
	})
	if n := readyIn(s, "victim-work"); n != 1 {
		t.Fatalf("victim-work has %d ready, want the job requeued", n)
	}
	if _, err := ch.QueueDeclare("victim-exclusive", false, false, true, false, nil); err != nil {
		t.Fatalf("the dead client's exclusive queue is still locked: %v", err)
	}
	// Clear the alarm: the held publish died with its connection.
	if _, err := ch.QueuePurge("victim-ballast", false); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, wait, "the alarm to clear", func() bool { return !s.Broker.Stats().MemoryAlarm })
	if n := queueLen(t, ch, "victim-late"); n != 0 {
		t.Fatalf("the dead client's held publish was routed (%d messages)", n)
	}
}

func readyIn(s *testkit.Server, q string) int {
	for _, st := range s.Broker.Stats().PerQueue {
		if st.Name == q {
			return st.Ready
		}
	}
	return -1
}

func unackedIn(s *testkit.Server, q string) int {
	for _, st := range s.Broker.Stats().PerQueue {
		if st.Name == q {
			return st.Unacked
		}
	}
	return -1
}

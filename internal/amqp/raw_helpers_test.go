package amqp_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/testkit"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// appendPublish encodes basic.publish with its content frames; persistent
// sets delivery-mode 2.
func appendPublish(buf []byte, channel uint16, exchange, key string, body []byte, persistent bool) []byte {
	props := []byte{0, 0}
	if persistent {
		props = []byte{0x10, 0x00, 2} // property flags: delivery-mode present; mode 2
	}
	buf = amqp091.AppendMethodFrame(buf, channel, &amqp091.BasicPublish{Exchange: exchange, RoutingKey: key})
	buf = amqp091.AppendHeaderFrame(buf, channel, amqp091.ClassBasic, uint64(len(body)), props)
	return amqp091.AppendBodyFrames(buf, channel, body, 131072)
}

// runPython runs script with Debian's python3 (which has pika, kombu and
// celery), passing url as argv[1]. Without the module it needs, the test
// skips, except in CI where it fails.
func runPython(t *testing.T, module, script, url string) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import "+module).Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-%s is required in CI: %v", module, err)
		}
		t.Skipf("python3-%s not installed (apt-get install python3-%s)", module, module)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", script, url).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return string(out)
}

// rawHandshake is RawConn.Handshake declaring RabbitMQ's client
// capabilities (consumer_cancel_notify, connection.blocked, …).
func rawHandshake(t *testing.T, r *testkit.RawConn, heartbeat uint16) {
	t.Helper()
	r.Write(amqp091.ProtocolHeader[:])
	if _, ok := r.Expect().(*amqp091.ConnectionStart); !ok {
		t.Fatal("no connection.start")
	}
	r.Send(0, &amqp091.ConnectionStartOk{
		ClientProperties: amqp091.Table{"capabilities": amqp091.Table{
			"authentication_failure_close": true, "consumer_cancel_notify": true, "connection.blocked": true,
			"basic.nack": true, "publisher_confirms": true,
		}},
		Mechanism: "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US",
	})
	tune, ok := r.Expect().(*amqp091.ConnectionTune)
	if !ok {
		t.Fatal("no connection.tune")
	}
	r.Send(0, &amqp091.ConnectionTuneOk{ChannelMax: tune.ChannelMax, FrameMax: tune.FrameMax, Heartbeat: heartbeat})
	r.Send(0, &amqp091.ConnectionOpen{VirtualHost: "/"})
	if _, ok := r.Expect().(*amqp091.ConnectionOpenOk); !ok {
		t.Fatal("no connection.open-ok")
	}
	r.Send(1, &amqp091.ChannelOpen{})
	if _, ok := r.Expect().(*amqp091.ChannelOpenOk); !ok {
		t.Fatal("no channel.open-ok")
	}
}

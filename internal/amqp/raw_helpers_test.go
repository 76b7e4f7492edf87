package amqp_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

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

package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// runTern runs the binary to completion (bounded by 20s) and returns its
// exit code and combined output.
func runTern(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ternBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("tern %v still running after 20s (it should have exited): %s", args, out)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// serverArgs are `tern server` flags on loopback ports and a fresh data
// directory, followed by extra.
func serverArgs(t *testing.T, extra ...string) []string {
	return append([]string{"server", "--data-dir", t.TempDir(), "--amqp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--mqtt-addr", "127.0.0.1:0", "--mqtt-ws-addr", "127.0.0.1:0"}, extra...)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tern.toml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var readmeTOML = regexp.MustCompile("(?s)```toml\n(.*?)```")

// TestReadmeConfigExampleWorks starts the binary on the TOML example in
// README.md and logs in as the users it defines.
func TestReadmeConfigExampleWorks(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := readmeTOML.FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no ```toml example")
	}
	s := startBinary(t, "--config", writeConfig(t, string(m[1])))
	for _, url := range []string{"amqp://app:s3cret@" + s.amqpAddr + "/staging", "amqp://admin:change-me@" + s.amqpAddr + "/"} {
		c, err := amqp.Dial(url)
		if err != nil {
			t.Fatalf("README's users cannot log in: %s: %v", url, err)
		}
		_ = c.Close()
	}
	if _, err := amqp.Dial(s.url()); err == nil {
		t.Fatal("guest logged in although users are configured")
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line := <-s.logs:
			if strings.Contains(line, "level=WARN") && strings.Contains(line, "guest") && strings.Contains(line, "mqtt_allow_anonymous") {
				return
			}
		case <-deadline:
			t.Fatal("no warning that guest and anonymous MQTT are gone")
		}
	}
}

func TestServerRefusesConfigsThatLockEveryoneOut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body, want string }{
		{"README's old placeholder hash", "[[users]]\nname = \"app\"\npassword_hash = \"$argon2id$...\"\n", `user "app": password_hash`},
		{"password and hash", "[[users]]\nname = \"app\"\npassword = \"x\"\npassword_hash = \"$argon2id$v=19$m=16384,t=1,p=2$2GIEjucd06AtuV41RHwx5A$4+6q+ELn50FGTmdeUM1FBcmOM/lSsvRH2twDkVGRHsg\"\n", "both password and password_hash"},
		{"user in a missing vhost", "[[users]]\nname = \"app\"\npassword = \"x\"\nvhosts = [\"staging\"]\n", `vhost "staging"`},
		{"limit in a missing vhost", "[[limits]]\nvhost = \"prod\"\npublish_rate = 5\n", `vhost "prod"`},
		{"missing mqtt_vhost", "mqtt_vhost = \"iot\"\n", `mqtt_vhost "iot"`},
		{"tiny segment_size", "segment_size = 100\n", "segment_size 100"},
	} {
		code, out := runTern(t, "", serverArgs(t, "--config", writeConfig(t, tc.body))...)
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, output %q; want exit 2 mentioning %q", tc.name, code, out, tc.want)
		}
	}
}

package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	amqp "github.com/rabbitmq/amqp091-go"
)

// `tern server` on its embedded defaults — no flags, no file, no TERN_*
// variables — exposes nothing writable without credentials: every HTTP API
// request but GET /healthz and /metrics needs a login, AMQP and MQTT refuse
// wrong credentials (guest/guest works from loopback only, as RabbitMQ), and
// the TLS listeners stay off without a certificate. It needs the default
// ports and skips when another process holds them.
func TestDefaultsExposeNothingWritableWithoutCredentials(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(ternBin, "server")
	cmd.Dir = dir // ./tern-data lands here
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TERN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	started, inUse := make(chan []string, 1), make(chan string, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "address already in use") {
				inUse <- sc.Text()
			}
			if strings.Contains(sc.Text(), `msg="tern started"`) {
				started <- lines
			}
		}
	}()
	var logs []string
	select {
	case logs = <-started:
	case line := <-inUse:
		t.Skipf("a default port is taken on this machine: %s", line)
	case <-time.After(15 * time.Second):
		t.Fatal("tern server did not start on its defaults")
	}
	joined := strings.Join(logs, "\n")
	if !strings.Contains(joined, "TLS listeners off") || strings.Contains(joined, "over TLS listening") {
		t.Errorf("TLS listeners without a certificate:\n%s", joined)
	}

	// HTTP: everything but reads of the open paths needs credentials.
	for _, tc := range []struct{ method, path string }{
		{"PUT", "/api/limits"}, {"POST", "/api/limits"}, {"DELETE", "/api/limits"}, {"PATCH", "/api/limits"},
		{"GET", "/api/limits"}, {"POST", "/healthz"}, {"PUT", "/metrics"}, {"GET", "/debug/pprof/"},
		{"POST", "/api/cluster/promote"}, {"GET", "/api/cluster"}, {"PUT", "/api/users/x"}, {"GET", "/api/anything"},
		{"GET", "/api/users"}, {"DELETE", "/api/users/guest"}, {"PUT", "/api/vhosts/x"}, {"DELETE", "/api/vhosts/%2F"},
		{"PUT", "/api/permissions/%2F/guest"}, {"PUT", "/api/topic-permissions/%2F/guest"},
		{"PUT", "/api/vhost-limits/%2F/max-connections"}, {"PUT", "/api/user-limits/guest/max-channels"},
	} {
		req, _ := http.NewRequest(tc.method, "http://127.0.0.1:15672"+tc.path, strings.NewReader("[]"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s without credentials: %d, want 401", tc.method, tc.path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get("http://127.0.0.1:15672" + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d, want 200 (open by default)", path, resp.StatusCode)
		}
	}

	// AMQP: wrong or unknown credentials are refused.
	for _, url := range []string{"amqp://guest:wrong@127.0.0.1:5672/", "amqp://admin:admin@127.0.0.1:5672/", "amqp://:@127.0.0.1:5672/"} {
		if c, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)}); err == nil {
			c.Close()
			t.Errorf("AMQP login %s accepted", url)
		}
	}
	// MQTT: a wrong password is refused (a client without a user name is
	// guest, allowed from loopback only — see docs/security.md).
	o := paho.NewClientOptions().AddBroker("tcp://127.0.0.1:1883").SetClientID("defaults-test").
		SetUsername("guest").SetPassword("wrong").SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		c.Disconnect(50)
		t.Error("MQTT login with a wrong password accepted")
	}
}

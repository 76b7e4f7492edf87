package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The client recipes of docs/clients.md, run against the real binary. Each
// recipe is a program under test/; the doc quotes the same files, and
// TestClientsDocQuotesTheTestedCode keeps the quotes true.
//
// A recipe gets the broker in AMQP_URL (and MQTT_HOST, MQTT_PORT, MQTT_URL,
// MQTT_WS_URL). It may print the line "tern:restart": the test then stops
// the broker with SIGTERM, starts it again on the same data directory and
// ports, and writes "restarted\n" to the recipe's stdin, so the recipe can
// prove that its client library recovers. A recipe that exits 0 passed.

// recipeDir is where the client programs live, relative to this package.
var recipeDir = filepath.Join("..", "..", "test")

// needClient skips the test outside CI when a client library is missing
// and fails it in CI, where .ci/run must have installed it.
func needClient(t *testing.T, what, install string, probe *exec.Cmd) {
	t.Helper()
	out, err := probe.CombinedOutput()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI (%s): %v\n%s", what, install, err, out)
	}
	t.Skipf("%s not installed (%s): %v", what, install, err)
}

// needPython needs /usr/bin/python3 able to import every module.
func needPython(t *testing.T, pkg string, modules ...string) {
	t.Helper()
	needClient(t, pkg, "apt-get install "+pkg,
		exec.Command(python, "-c", "import "+strings.Join(modules, ", ")))
}

// needNode needs node and test/node/node_modules with the module.
func needNode(t *testing.T, module string) {
	t.Helper()
	probe := exec.Command("node", "-e", fmt.Sprintf("require(%q)", module))
	probe.Dir = filepath.Join(recipeDir, "node")
	needClient(t, "node with "+module, "apt-get install nodejs npm; cd test/node && npm ci", probe)
}

// python is Debian's interpreter, the one python3-celery and friends
// install into (a python3 earlier on PATH may lack them).
const python = "/usr/bin/python3"

// restartableBroker is the real binary on fixed ports and a data directory
// that outlive a restart.
type restartableBroker struct {
	t        *testing.T
	dir      string
	s        *binaryServer
	amqpAddr string
	mqttAddr string
	wsAddr   string
	restarts int
}

var wsListenLine = regexp.MustCompile(`msg="MQTT over WebSocket listening" addr=(\S+)`)

// wsAddr waits for the binary's MQTT-over-WebSocket address in its log,
// which it writes after the MQTT one.
func (s *binaryServer) wsAddr(t *testing.T) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line := <-s.logs:
			if m := wsListenLine.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		case <-deadline:
			t.Fatal("no MQTT WebSocket address in the log")
		}
	}
}

func startRestartable(t *testing.T) *restartableBroker {
	t.Helper()
	dir := t.TempDir()
	s := startBinaryOn(t, dir)
	b := &restartableBroker{t: t, dir: dir, s: s, amqpAddr: s.amqpAddr, mqttAddr: s.mqttAddr(t)}
	b.wsAddr = s.wsAddr(t)
	return b
}

// restart stops the broker as an operator would (SIGTERM: clients get
// connection.close 320) and starts it on the same data and ports.
func (b *restartableBroker) restart() {
	b.t.Helper()
	if err := b.s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.t.Fatal(err)
	}
	select {
	case err := <-b.s.exited:
		if err != nil {
			b.t.Fatalf("tern exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		b.t.Fatal("tern did not exit after SIGTERM")
	}
	b.s = startBinaryOn(b.t, b.dir, "--amqp-addr", b.amqpAddr, "--mqtt-addr", b.mqttAddr, "--mqtt-ws-addr", b.wsAddr)
	b.restarts++
}

// env is what every recipe gets. The AMQP URL has no path: every client
// then uses the default virtual host "/".
func (b *restartableBroker) env() []string {
	host, port, _ := strings.Cut(b.mqttAddr, ":")
	return append(os.Environ(),
		"AMQP_URL=amqp://guest:guest@"+b.amqpAddr,
		"MQTT_URL=mqtt://"+b.mqttAddr,
		"MQTT_WS_URL=ws://"+b.wsAddr+"/ws",
		"MQTT_HOST="+host,
		"MQTT_PORT="+port,
		"PYTHONUNBUFFERED=1",
	)
}

// syncBuffer collects a process's stderr while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runRecipe runs argv (in dir, relative to test/) against b within
// timeout, restarting b whenever the recipe asks, and returns its stdout.
// It fails the test if the recipe fails or overruns.
func runRecipe(t *testing.T, b *restartableBroker, timeout time.Duration, dir string, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = filepath.Join(recipeDir, dir)
	cmd.Env = b.env()
	cmd.WaitDelay = 5 * time.Second
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var out strings.Builder
	for line := range lines {
		out.WriteString(line + "\n")
		if line == "tern:restart" {
			b.restart()
			if _, err := io.WriteString(stdin, "restarted\n"); err != nil {
				_ = cmd.Wait()
				t.Fatalf("telling the recipe the broker restarted: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), stderr.String())
			}
		}
	}
	err = cmd.Wait()
	t.Logf("%s stdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), out.String(), stderr.String())
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v", argv[0], timeout)
	}
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	return out.String()
}

// kombu: confirms, acks, SimpleQueue, and publishes that reconnect through
// a broker restart (test/python/kombu_recipe.py).
func TestKombuRecipe(t *testing.T) {
	needPython(t, "python3-kombu", "kombu")
	b := startRestartable(t)
	runRecipe(t, b, 2*time.Minute, "python", python, "kombu_recipe.py")
	if b.restarts != 1 {
		t.Fatalf("the recipe asked for %d restarts, want 1", b.restarts)
	}
}

// Celery: a real worker runs the tasks a caller sends, results come back
// over the rpc:// backend, the worker survives a broker restart, and it
// shuts down cleanly on SIGTERM (test/python/celery_app.py,
// test/python/celery_client.py).
func TestCeleryRecipe(t *testing.T) {
	needPython(t, "python3-celery", "celery")
	b := startRestartable(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	worker := exec.CommandContext(ctx, python, "-m", "celery", "-A", "celery_app", "worker",
		"--pool=solo", "--loglevel=INFO", "--hostname=recipe@localhost")
	worker.Dir = filepath.Join(recipeDir, "python")
	worker.Env = b.env()
	worker.WaitDelay = 5 * time.Second
	var logs syncBuffer
	worker.Stdout, worker.Stderr = &logs, &logs
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- worker.Wait() }()
	defer func() { t.Logf("celery worker:\n%s", logs.String()) }()

	runRecipe(t, b, time.Minute, "python", python, "celery_client.py", "0")
	// The worker reconnects by itself. (A caller's rpc:// result consumer
	// does not survive losing its connection, on RabbitMQ too: the caller
	// runs again.)
	b.restart()
	runRecipe(t, b, time.Minute, "python", python, "celery_client.py", "100")

	// Warm shutdown: the worker finishes its task, closes its connection
	// and exits 0.
	if err := worker.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("celery worker exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("celery worker did not shut down within 30s of SIGTERM")
	}
}

// aio-pika: a robust connection that recovers its consumer after a broker
// restart, confirms and acks (test/python/aio_pika_recipe.py).
func TestAioPikaRecipe(t *testing.T) {
	needPython(t, "python3-aio-pika", "aio_pika")
	b := startRestartable(t)
	runRecipe(t, b, 2*time.Minute, "python", python, "aio_pika_recipe.py")
	if b.restarts != 1 {
		t.Fatalf("the recipe asked for %d restarts, want 1", b.restarts)
	}
}

// aio-pika's RPC pattern, including close(), which unbinds the caller's
// reply queue after cancelling its consumer has auto-deleted it: RabbitMQ
// answers unbind-ok for a missing queue (test/python/aio_pika_recipe.py).
func TestAioPikaRPCRecipe(t *testing.T) {
	needPython(t, "python3-aio-pika", "aio_pika")
	b := startRestartable(t)
	runRecipe(t, b, time.Minute, "python", python, "aio_pika_recipe.py", "rpc")
}

// Paho (Python): a persistent session reconnects by itself after a broker
// restart and finds its subscription; AMQP sees MQTT publishes through
// amq.topic (test/python/paho_recipe.py).
func TestPahoPythonRecipe(t *testing.T) {
	needPython(t, "python3-paho-mqtt and python3-pika", "paho.mqtt.client", "pika")
	b := startRestartable(t)
	runRecipe(t, b, 2*time.Minute, "python", python, "paho_recipe.py")
	if b.restarts != 1 {
		t.Fatalf("the recipe asked for %d restarts, want 1", b.restarts)
	}
}

// pika: confirms, mandatory returns, acks, reconnecting by hand after a
// broker restart, and a quorum queue across it (test/python/pika_recipe.py).
func TestPikaRecipe(t *testing.T) {
	needPython(t, "python3-pika", "pika")
	b := startRestartable(t)
	runRecipe(t, b, time.Minute, "python", python, "pika_recipe.py")
	if b.restarts != 1 {
		t.Fatalf("the recipe asked for %d restarts, want 1", b.restarts)
	}
}

// javaClientClasspath is Debian's librabbitmq-client-java and the slf4j it
// logs through.
const javaClientClasspath = "/usr/share/java/amqp-client.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar"

// The RabbitMQ Java client: automatic recovery of the connection, channel
// and consumer across a broker restart, confirms, acks
// (test/java/JavaClientRecipe.java).
func TestJavaClientRecipe(t *testing.T) {
	for _, jar := range strings.Split(javaClientClasspath, ":") {
		needClient(t, jar, "apt-get install librabbitmq-client-java", exec.Command("test", "-r", jar))
	}
	needClient(t, "java", "apt-get install openjdk-17-jdk-headless", exec.Command("java", "-version"))
	b := startRestartable(t)
	runRecipe(t, b, 2*time.Minute, "java", "java", "-cp", javaClientClasspath, "JavaClientRecipe.java")
	if b.restarts != 1 {
		t.Fatalf("the recipe asked for %d restarts, want 1", b.restarts)
	}
}

// amqplib: opt-in recovery that redeclares its topology and consumer after
// a broker restart, a confirm channel, acks (test/node/amqplib_recipe.js).
func TestAmqplibRecipe(t *testing.T) {
	needNode(t, "amqplib")
	b := startRestartable(t)
	runRecipe(t, b, time.Minute, "node", "node", "amqplib_recipe.js")
	if b.restarts != 1 {
		t.Fatalf("the recipe asked for %d restarts, want 1", b.restarts)
	}
}

// mqtt.js: MQTT 5 over TCP with a session that outlives a broker restart
// (mqtt.js reconnects by itself), QoS 1 both ways, and MQTT over WebSocket
// (test/node/mqtt_recipe.js).
func TestMqttJsRecipe(t *testing.T) {
	needNode(t, "mqtt")
	b := startRestartable(t)
	runRecipe(t, b, time.Minute, "node", "node", "mqtt_recipe.js")
	if b.restarts != 1 {
		t.Fatalf("the recipe asked for %d restarts, want 1", b.restarts)
	}
}

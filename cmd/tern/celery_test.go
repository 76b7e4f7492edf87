package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const celeryTasks = `
import os, time
from celery import Celery

app = Celery('tasks', broker=os.environ['AMQP_URL'])
app.conf.worker_prefetch_multiplier = 1
app.conf.task_acks_late = True
app.conf.broker_connection_retry_on_startup = True

@app.task
def slow():
    time.sleep(120)
`

const celeryEnqueue = `
from tasks import app
for q in ('q1', 'q2', 'q3'):
    for i in range(4):
        app.send_task('tasks.slow', queue=q)
print('enqueued')
`

// A Celery worker consuming three queues with concurrency 2 and prefetch
// multiplier 1 reserves 2 messages, as it does on RabbitMQ. kombu asks a
// server that is not RabbitMQ >= 3.3 for basic.qos global=false and means
// the specification's per-channel limit; taken as RabbitMQ's per-consumer
// limit it reserved 2 per queue, 6 in all.
func TestCeleryWorkerReservesWhatItDoesOnRabbitMQ(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import celery").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-celery is required in CI: %v", err)
		}
		t.Skip("python3-celery not installed (apt-get install python3-celery)")
	}
	s := startBinary(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tasks.py"), []byte(celeryTasks), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "AMQP_URL="+s.url(), "PYTHONPATH="+dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	enqueue := exec.CommandContext(ctx, python, "-c", celeryEnqueue)
	enqueue.Dir, enqueue.Env = dir, env
	if out, err := enqueue.CombinedOutput(); err != nil {
		t.Fatalf("enqueue: %v\n%s", err, out)
	}

	var logs bytes.Buffer
	worker := exec.Command(python, "-m", "celery", "-A", "tasks", "worker", "-Q", "q1,q2,q3", "-c", "2",
		"--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "info")
	worker.Dir, worker.Env = dir, env
	worker.Stdout, worker.Stderr = &logs, &logs
	worker.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the pool's children go with it
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-worker.Process.Pid, syscall.SIGKILL)
		_ = worker.Wait()
		if t.Failed() {
			t.Logf("celery worker:\n%s", logs.String())
		}
	}()

	conn, err := amqp.Dial(s.url())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	const published, want = 12, 2 // concurrency 2 × prefetch multiplier 1
	unacked := func() int {
		ready := 0
		for _, q := range []string{"q1", "q2", "q3"} {
			st, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			ready += st.Messages
		}
		return published - ready
	}
	deadline := time.Now().Add(60 * time.Second)
	for unacked() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the worker reserved %d messages within 60s, want %d", unacked(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Give the worker a moment to reserve more than it should; the tasks
	// sleep for minutes, so nothing is acked meanwhile.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if n := unacked(); n > want {
			t.Fatalf("the worker reserved %d messages, want %d (RabbitMQ's count)", n, want)
		}
	}
}

#!/usr/bin/env python3
"""The kombu recipe of docs/clients.md, run against Tern by
cmd/tern/clients_test.go (TestKombuRecipe).

Publisher confirms, a durable queue, consuming with acks, SimpleQueue, and
publishing through a broker restart with kombu's retry policy. The broker
is given by AMQP_URL; printing "tern:restart" asks the test to restart it.
"""
import os
import sys

from kombu import Connection, Exchange, Queue

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672//")

# confirm_publish: every publish waits for the broker's basic.ack, so a
# message that returns from publish() is on disk (durable queue, persistent
# message). The retry policy bounds reconnecting: kombu reconnects and
# republishes when the connection drops, up to max_retries times.
RETRY = {"max_retries": 20, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}

exchange = Exchange("recipes", type="direct", durable=True)
queue = Queue("kombu-recipe", exchange, routing_key="kombu", durable=True)


def connect():
    return Connection(URL, heartbeat=10, transport_options={"confirm_publish": True})


def publish(conn, bodies):
    producer = conn.Producer(serializer="json")
    for body in bodies:
        producer.publish(body, exchange=exchange, routing_key="kombu", declare=[queue],
                         delivery_mode="persistent", retry=True, retry_policy=RETRY)


def consume(conn, n, timeout=10):
    """Consume n messages with explicit acks; return their bodies."""
    got = []

    def on_message(body, message):
        got.append(body)
        message.ack()

    with conn.Consumer(queue, callbacks=[on_message], prefetch_count=10):
        while len(got) < n:
            conn.drain_events(timeout=timeout)
    return got


def simple_queue(conn):
    """SimpleQueue: kombu's Queue.Queue-like API."""
    q = conn.SimpleQueue("kombu-simple")
    q.put({"hello": "world"})
    message = q.get(block=True, timeout=10)
    body = message.payload
    message.ack()
    q.close()
    return body


def main():
    with connect() as conn:
        conn.ensure_connection(max_retries=3)
        publish(conn, [{"n": i} for i in range(5)])
        assert simple_queue(conn) == {"hello": "world"}

        # The broker restarts under an open connection; the next publishes
        # reconnect through the retry policy.
        print("tern:restart", flush=True)
        if sys.stdin.readline().strip() != "restarted":
            sys.exit("no restart")
        publish(conn, [{"n": i} for i in range(5, 10)])

        got = consume(conn, 10)
        assert sorted(b["n"] for b in got) == list(range(10)), got
        queue(conn.default_channel).delete()
    print("kombu recipe: ok")


if __name__ == "__main__":
    main()

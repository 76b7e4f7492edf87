#!/usr/bin/env python3
"""The pika recipe of docs/clients.md, run against Tern by
cmd/tern/clients_test.go (TestPikaRecipe). The six RabbitMQ tutorials run
too: test/pika/tutorials.py.

Publisher confirms (mandatory publishes that raise on nack or return), a
consumer that acks, reconnecting after a broker restart (pika does not
recover by itself: the application reconnects and redeclares), and a
quorum queue whose confirmed message outlives the restart, as on a
one-node RabbitMQ. The broker is given by AMQP_URL;
printing "tern:restart" asks the test to restart it.
"""
import os
import sys
import time

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
QUEUE = "pika-recipe"
QUORUM = "pika-quorum"


def connect(attempts=30, delay=0.5):
    """Connect, retrying while the broker is down; declare the topology."""
    params = pika.URLParameters(URL)
    params.heartbeat = 10
    for attempt in range(attempts):
        try:
            conn = pika.BlockingConnection(params)
            break
        except pika.exceptions.AMQPConnectionError:
            if attempt == attempts - 1:
                raise
            time.sleep(delay)
    ch = conn.channel()
    ch.confirm_delivery()  # basic_publish now waits for the broker's ack
    ch.queue_declare(queue=QUEUE, durable=True)
    ch.queue_declare(queue=QUORUM, durable=True, arguments={"x-queue-type": "quorum"})
    ch.basic_qos(prefetch_count=10)
    return conn, ch


def publish(ch, body):
    # Raises pika.exceptions.NackError if the broker nacks, UnroutableError
    # if a mandatory message reached no queue.
    ch.basic_publish(exchange="", routing_key=QUEUE, body=body, mandatory=True,
                     properties=pika.BasicProperties(delivery_mode=2))  # persistent


def consume(ch, n, timeout=10):
    got = []
    for method, _props, body in ch.consume(QUEUE, inactivity_timeout=timeout):
        if method is None:
            break
        got.append(body.decode())
        ch.basic_ack(method.delivery_tag)
        if len(got) == n:
            break
    ch.cancel()
    return got


def main():
    conn, ch = connect()
    try:
        ch.basic_publish(exchange="", routing_key="no-such-queue", body=b"x", mandatory=True)
        sys.exit("an unroutable mandatory publish was confirmed silently")
    except pika.exceptions.UnroutableError:
        pass
    publish(ch, "one")
    ch.basic_publish(exchange="", routing_key=QUORUM, body=b"quorum",
                     properties=pika.BasicProperties(delivery_mode=2))

    print("tern:restart", flush=True)
    if sys.stdin.readline().strip() != "restarted":
        sys.exit("no restart")
    try:
        publish(ch, "lost")
        sys.exit("publish on a connection the broker closed succeeded")
    except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError):
        pass
    conn, ch = connect()  # reconnect and redeclare
    publish(ch, "two")
    got = consume(ch, 2)
    assert got == ["one", "two"], got  # the confirmed message survived

    # A quorum queue works on a single node too (a Raft group of one).
    method, _props, body = ch.basic_get(QUORUM)
    assert body == b"quorum", body
    ch.basic_ack(method.delivery_tag)
    ch.queue_delete(queue=QUORUM)
    ch.queue_delete(queue=QUEUE)
    conn.close()
    print("pika recipe: ok")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Failover with pika against a Tern cluster, as a user would write it.

AMQP_URLS lists the nodes (comma-separated amqp:// URLs). The script
declares a quorum queue, publishes COUNT messages with publisher confirms
and, when the node it is connected to goes away, reconnects to the next
node and publishes the message that was not confirmed again (so a message
may arrive twice: at-least-once). Then it consumes from whichever node
answers and checks that every message arrived. Run it, then kill -9 the
node it says it is connected to: it carries on.

It prints "connected to URL" at each connection, "published N" every 250
messages and, at the end, "consumed N distinct of N" (exit 0) or what is
missing (exit 1).
"""
import os
import sys
import time

import pika

URLS = os.environ.get("AMQP_URLS", "amqp://guest:guest@127.0.0.1:5672/").split(",")
COUNT = int(os.environ.get("COUNT", "2000"))
QUEUE = os.environ.get("QUEUE", "failover-demo")

node = -1


def connect():
    """Connect to the next node that answers, trying each in turn for 60 s."""
    global node
    deadline = time.time() + 60
    while True:
        node = (node + 1) % len(URLS)
        try:
            conn = pika.BlockingConnection(pika.URLParameters(URLS[node]))
            print("connected to", URLS[node], flush=True)
            return conn
        except pika.exceptions.AMQPError as e:
            if time.time() > deadline:
                raise
            print("cannot connect to", URLS[node], repr(e), flush=True)
            time.sleep(0.2)


def publish_all():
    conn = connect()
    ch = conn.channel()
    ch.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    ch.confirm_delivery()
    i = 0
    while i < COUNT:
        try:
            ch.basic_publish("", QUEUE, str(i).encode(), pika.BasicProperties(delivery_mode=2))
            i += 1  # confirmed by a quorum of the queue's replicas
            if i % 250 == 0:
                print("published", i, flush=True)
        except pika.exceptions.NackError:
            continue  # not confirmed (the leader changed under it): publish it again
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError,
                pika.exceptions.StreamLostError, ConnectionError) as e:
            print("lost the connection:", repr(e), flush=True)
            conn = connect()
            ch = conn.channel()
            ch.confirm_delivery()
    conn.close()


def consume_all():
    seen, duplicates = set(), 0
    deadline = time.time() + 60
    while len(seen) < COUNT and time.time() < deadline:
        try:
            conn = connect()
            ch = conn.channel()
            ch.basic_qos(prefetch_count=500)
            for method, _props, body in ch.consume(QUEUE, inactivity_timeout=5):
                if method is None:
                    break
                v = int(body)
                if v in seen:
                    duplicates += 1
                seen.add(v)
                ch.basic_ack(method.delivery_tag)
                if len(seen) == COUNT:
                    break
            conn.close()
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError,
                pika.exceptions.StreamLostError, ConnectionError) as e:
            print("lost the connection while consuming:", repr(e), flush=True)
    missing = sorted(set(range(COUNT)) - seen)
    print(f"consumed {len(seen)} distinct of {COUNT} ({duplicates} duplicates)", flush=True)
    if missing:
        print("missing:", missing[:20], flush=True)
        sys.exit(1)


publish_all()
consume_all()

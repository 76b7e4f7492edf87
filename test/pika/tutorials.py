#!/usr/bin/env python3
"""The six RabbitMQ tutorials, written with pika as the tutorials write them,
run against a broker given by AMQP_URL. Exits non-zero on the first failure.
"""
import os
import sys
import threading
import time
import uuid

import pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def connect():
    return pika.BlockingConnection(pika.URLParameters(URL))


def drain(channel, queue, n, timeout=5.0, ack=True):
    """Consume n messages from queue and return their bodies."""
    got = []
    deadline = time.time() + timeout
    for method, _props, body in channel.consume(queue, auto_ack=ack, inactivity_timeout=0.2):
        if method is not None:
            got.append(body.decode())
        if len(got) == n or time.time() > deadline:
            break
    channel.cancel()
    return got


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


def tutorial1_hello_world():
    conn = connect()
    ch = conn.channel()
    ch.queue_declare(queue="hello")
    ch.basic_publish(exchange="", routing_key="hello", body="Hello World!")
    got = drain(ch, "hello", 1)
    check(got == ["Hello World!"], "hello world: %r" % got)
    ch.queue_delete(queue="hello")
    conn.close()


def tutorial2_work_queues():
    conn = connect()
    ch = conn.channel()
    ch.queue_declare(queue="task_queue", durable=True)
    tasks = ["task %d%s" % (i, "." * (i % 3)) for i in range(10)]
    for t in tasks:
        ch.basic_publish(exchange="", routing_key="task_queue", body=t,
                         properties=pika.BasicProperties(delivery_mode=2))
    done = {"a": [], "b": []}

    def worker(name):
        c = connect()
        wch = c.channel()
        wch.basic_qos(prefetch_count=1)
        deadline = time.time() + 5
        for method, _p, body in wch.consume("task_queue", inactivity_timeout=0.3):
            if method is None:
                if sum(len(v) for v in done.values()) >= len(tasks) or time.time() > deadline:
                    break
                continue
            time.sleep(0.01 * body.count(b"."))
            done[name].append(body.decode())
            wch.basic_ack(delivery_tag=method.delivery_tag)
        wch.cancel()
        c.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in done]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    check(sorted(done["a"] + done["b"]) == sorted(tasks), "work queues lost tasks: %r" % done)
    check(done["a"] and done["b"], "work queues: one worker did everything: %r" % done)
    ch.queue_delete(queue="task_queue")
    conn.close()


def tutorial3_publish_subscribe():
    conn = connect()
    ch = conn.channel()
    ch.exchange_declare(exchange="logs", exchange_type="fanout")
    queues = []
    for _ in range(2):
        r = ch.queue_declare(queue="", exclusive=True)
        ch.queue_bind(exchange="logs", queue=r.method.queue)
        queues.append(r.method.queue)
    ch.basic_publish(exchange="logs", routing_key="", body="info: Hello World!")
    for q in queues:
        got = drain(ch, q, 1)
        check(got == ["info: Hello World!"], "pub/sub: %r" % got)
    ch.exchange_delete(exchange="logs")
    conn.close()


def tutorial4_routing():
    conn = connect()
    ch = conn.channel()
    ch.exchange_declare(exchange="direct_logs", exchange_type="direct")
    errors = ch.queue_declare(queue="", exclusive=True).method.queue
    everything = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.queue_bind(exchange="direct_logs", queue=errors, routing_key="error")
    for sev in ("info", "warning", "error"):
        ch.queue_bind(exchange="direct_logs", queue=everything, routing_key=sev)
    for sev in ("info", "warning", "error"):
        ch.basic_publish(exchange="direct_logs", routing_key=sev, body="%s: msg" % sev)
    check(drain(ch, errors, 1) == ["error: msg"], "routing: errors queue")
    check(drain(ch, everything, 3) == ["info: msg", "warning: msg", "error: msg"], "routing: all queue")
    ch.exchange_delete(exchange="direct_logs")
    conn.close()


def tutorial5_topics():
    conn = connect()
    ch = conn.channel()
    ch.exchange_declare(exchange="topic_logs", exchange_type="topic")
    kern = ch.queue_declare(queue="", exclusive=True).method.queue
    crit = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.queue_bind(exchange="topic_logs", queue=kern, routing_key="kern.*")
    ch.queue_bind(exchange="topic_logs", queue=crit, routing_key="*.critical")
    for key in ("kern.critical", "kern.info", "cron.critical", "cron.info.extra"):
        ch.basic_publish(exchange="topic_logs", routing_key=key, body=key)
    check(drain(ch, kern, 2) == ["kern.critical", "kern.info"], "topics: kern.*")
    check(drain(ch, crit, 2) == ["kern.critical", "cron.critical"], "topics: *.critical")
    ch.exchange_delete(exchange="topic_logs")
    conn.close()


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def tutorial6_rpc():
    stop = threading.Event()
    ready = threading.Event()

    def server():
        c = connect()
        sch = c.channel()
        sch.queue_declare(queue="rpc_queue")
        sch.basic_qos(prefetch_count=1)
        ready.set()
        for method, props, body in sch.consume("rpc_queue", inactivity_timeout=0.1):
            if stop.is_set():
                break
            if method is None:
                continue
            response = fib(int(body))
            sch.basic_publish(exchange="", routing_key=props.reply_to,
                              properties=pika.BasicProperties(correlation_id=props.correlation_id),
                              body=str(response))
            sch.basic_ack(delivery_tag=method.delivery_tag)
        sch.cancel()
        c.close()

    th = threading.Thread(target=server)
    th.start()
    ready.wait(5)

    conn = connect()
    ch = conn.channel()
    callback_queue = ch.queue_declare(queue="", exclusive=True).method.queue
    results = {}

    def on_response(_ch, _method, props, body):
        results[props.correlation_id] = int(body)

    ch.basic_consume(queue=callback_queue, on_message_callback=on_response, auto_ack=True)
    for n in (1, 10, 20):
        corr = str(uuid.uuid4())
        ch.basic_publish(exchange="", routing_key="rpc_queue",
                         properties=pika.BasicProperties(reply_to=callback_queue, correlation_id=corr),
                         body=str(n))
        deadline = time.time() + 5
        while corr not in results and time.time() < deadline:
            conn.process_data_events(time_limit=0.1)
        check(results.get(corr) == fib(n), "rpc fib(%d): %r" % (n, results.get(corr)))
    stop.set()
    th.join()
    ch.queue_delete(queue="rpc_queue")
    conn.close()


def main():
    for i, t in enumerate([tutorial1_hello_world, tutorial2_work_queues, tutorial3_publish_subscribe,
                           tutorial4_routing, tutorial5_topics, tutorial6_rpc], start=1):
        t()
        print("tutorial %d ok: %s" % (i, t.__name__))
    print("6 passed, 0 failed")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The Paho (Python) recipe of docs/clients.md, run against Tern by
cmd/tern/clients_test.go (TestPahoPythonRecipe).

A persistent session (clean_session=False) with automatic reconnect: after
a broker restart the client reconnects, the broker still has the session
and its subscription, and QoS 1 messages flow again. An AMQP queue bound
to amq.topic sees the same publishes. The broker is given by MQTT_HOST,
MQTT_PORT and AMQP_URL; printing "tern:restart" asks the test to restart it.
"""
import os
import queue
import sys

import paho.mqtt.client as mqtt
import pika

HOST = os.environ.get("MQTT_HOST", "localhost")
PORT = int(os.environ.get("MQTT_PORT", "1883"))
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")

connects = queue.Queue()   # session-present flag of each CONNACK
messages = queue.Queue()


def on_connect(client, userdata, flags, rc):
    if rc != 0:
        print("connect refused:", mqtt.connack_string(rc), file=sys.stderr)
        return
    connects.put(bool(flags["session present"]))
    # Subscribing in on_connect also covers a broker that lost the session.
    client.subscribe("sensors/+/temp", qos=1)


def on_message(client, userdata, msg):
    messages.put((msg.topic, msg.payload.decode()))


def publish(client, topic, payload):
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(timeout=10)  # returns once the broker sent PUBACK
    assert info.is_published(), "no PUBACK"


def main():
    # An AMQP service listening to the same sensors through amq.topic:
    # MQTT "/" is AMQP ".", "+" is "*".
    amqp = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    ch = amqp.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", routing_key="sensors.*.temp")

    client = mqtt.Client(client_id="paho-recipe", clean_session=False)
    client.on_connect = on_connect
    client.on_message = on_message
    client.reconnect_delay_set(min_delay=1, max_delay=2)  # loop_start() reconnects
    client.connect(HOST, PORT, keepalive=10)
    client.loop_start()
    assert connects.get(timeout=10) is False, "a new client id has no session"

    publish(client, "sensors/kitchen/temp", "21.5")
    assert messages.get(timeout=10) == ("sensors/kitchen/temp", "21.5")
    method, _, body = next(ch.consume(q, auto_ack=True, inactivity_timeout=10))
    assert method.routing_key == "sensors.kitchen.temp" and body == b"21.5", (method, body)
    ch.cancel()
    amqp.close()

    print("tern:restart", flush=True)
    if sys.stdin.readline().strip() != "restarted":
        sys.exit("no restart")
    # The session outlived the restart: the CONNACK says session present.
    assert connects.get(timeout=30) is True, "session lost over the restart"
    publish(client, "sensors/hall/temp", "19.0")
    assert messages.get(timeout=10) == ("sensors/hall/temp", "19.0")

    client.loop_stop()
    client.disconnect()
    print("paho recipe: ok")


if __name__ == "__main__":
    main()

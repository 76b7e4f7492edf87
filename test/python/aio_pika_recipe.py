#!/usr/bin/env python3
"""The aio-pika recipe of docs/clients.md, run against Tern by
cmd/tern/clients_test.go (TestAioPikaRecipe).

A robust connection that survives a broker restart (it reconnects and
restores its channels, queues and consumers), publishing with confirms,
consuming with acks; with the argument "rpc", the RPC pattern with a clean
close() (TestAioPikaRPCRecipe). The broker
is given by AMQP_URL; printing "tern:restart" asks the test to restart it.
"""
import asyncio
import os
import sys

import aio_pika
from aio_pika.patterns import RPC

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")


async def wait_for_restart():
    print("tern:restart", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() != "restarted":
        sys.exit("no restart")


async def multiply(*, x, y):
    return x * y


async def main():
    # connect_robust reconnects every reconnect_interval seconds after the
    # connection drops, then redeclares what this connection declared and
    # restarts its consumers.
    connection = await aio_pika.connect_robust(URL, reconnect_interval=0.5)
    reconnected = asyncio.Event()
    connection.reconnect_callbacks.add(lambda *_: reconnected.set())

    async with connection:
        # publisher_confirms=True (the default): publish() returns once the
        # broker has confirmed the message, and raises if it was nacked.
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=10)
        queue = await channel.declare_queue("aio-pika-recipe", durable=True)

        received = asyncio.Queue()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage):
            async with message.process():  # acks on success, rejects on error
                await received.put(message.body.decode())

        await queue.consume(on_message)

        async def publish(body):
            await channel.default_exchange.publish(
                aio_pika.Message(body.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=queue.name,
            )

        async def expect(bodies):
            got = [await asyncio.wait_for(received.get(), 10) for _ in bodies]
            assert sorted(got) == sorted(bodies), got

        await publish("before restart")
        await expect(["before restart"])

        await wait_for_restart()
        await asyncio.wait_for(reconnected.wait(), 30)
        await publish("after restart")  # the restored consumer gets it
        await expect(["after restart"])

        await queue.delete(if_unused=False, if_empty=False)
    print("aio-pika recipe: ok")


async def rpc_main():
    """RPC: the caller's reply queue is bound to a headers exchange; close()
    cancels its consumer (which auto-deletes the queue), then unbinds and
    deletes it, which RabbitMQ answers with ok."""
    connection = await aio_pika.connect_robust(URL)
    async with connection:
        channel = await connection.channel()
        rpc = await RPC.create(channel)
        await rpc.register("multiply", multiply, auto_delete=True)
        assert await rpc.proxy.multiply(x=6, y=7) == 42
        await rpc.close()
    print("aio-pika rpc recipe: ok")


if __name__ == "__main__":
    asyncio.run(rpc_main() if sys.argv[1:] == ["rpc"] else main())

"""The Celery recipe of docs/clients.md: the app a worker runs.

Run by cmd/tern/clients_test.go (TestCeleryRecipe) as
    python3 -m celery -A celery_app worker --pool=solo
with the broker in AMQP_URL, and driven by celery_client.py.
"""
import os

from celery import Celery

app = Celery(
    "recipes",
    # amqp://user:password@host:port//  ("//" is the virtual host "/")
    broker=os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672//"),
    # rpc:// sends results back as AMQP messages to the caller's reply queue.
    backend="rpc://",
)
app.conf.update(
    # Publisher confirms: apply_async() returns once the broker has the task.
    broker_transport_options={"confirm_publish": True},
    # Reconnect for ever at startup and after losing the broker.
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    broker_heartbeat=10,
    # Ack after the task ran, one task at a time: a worker that dies
    # mid-task leaves the task in the queue for another worker.
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
)


@app.task
def add(x, y):
    return x + y


@app.task
def fail():
    raise ValueError("as requested")

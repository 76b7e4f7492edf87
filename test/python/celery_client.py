#!/usr/bin/env python3
"""The Celery recipe's caller: sends tasks to a worker running celery_app
and waits for their results over the rpc:// backend. The test runs it,
restarts the broker under the running worker, and runs it again.
"""
import sys

from celery_app import add, app, fail


def run_tasks(base):
    results = [add.delay(base + i, i) for i in range(10)]
    got = [r.get(timeout=30) for r in results]
    assert got == [base + 2 * i for i in range(10)], got


def main():
    run_tasks(int(sys.argv[1]) if len(sys.argv) > 1 else 0)

    # Remote control (the worker is up now): a broadcast through the pidbox
    # fanout exchange, with the reply on the caller's reply queue.
    replies = app.control.ping(timeout=10, limit=1)
    assert any("recipe@localhost" in r for r in replies), replies

    # A task's exception comes back to the caller.
    try:
        fail.delay().get(timeout=30)
        sys.exit("fail() did not raise")
    except ValueError as e:
        assert "as requested" in str(e), e

    app.close()
    print("celery recipe: ok")


if __name__ == "__main__":
    main()

"""Work that requests hand to the workers through Redis: a pending set of participants per kind, drained
by one job at a time, and the live pages' "something changed".

A thousand registrations or submissions a second make a few batched jobs, not a thousand. In a web process
under gevent (gunicorn.conf.py turns it on) requests don't even talk to Redis themselves: each adds its
share to the process's batch, and one greenlet sends the whole batch in one round trip every
FLUSH_SECONDS. Anywhere else (the worker, the CLI, the tests' client) it goes at once. A batch Redis
refused is kept and sent again; what a process killed mid-batch still held is found by reconcile.
"""
import logging
import threading
import time
from collections import defaultdict

import redis
from flask import Flask, current_app

from .extensions import get_redis

log = logging.getLogger(__name__)

PENDING = "knockout:forms:pending:"
BATCH_SIZE = 100
FLUSH_SECONDS = 0.01  # a request's work waits at most this long (plus a send) before Redis has it
RETRY_SECONDS = 1.0
EXTENSION = "knockout_work_batch"


def request_work(kind: str, participant_ids: list[int], publish: bool = False) -> None:
    """Add participants to `kind`'s pending set and make sure a drain job is on its way (after commit).

    `publish`: also tell the live pages that something changed, in the same round trip.
    """
    batch = current_app.extensions.get(EXTENSION)
    if batch is not None:
        batch.add(kind, participant_ids, publish)
    else:
        send({kind: set(participant_ids)}, publish)


def send(work: dict[str, set[int]], publish: bool) -> None:
    """One round trip: the publish, each kind's ids, each kind's claim on a drain job; then enqueue the claimed."""
    from .jobs import enqueue
    from .live import CHANNEL
    pipe = get_redis().pipeline(transaction=False)
    if publish:
        pipe.publish(CHANNEL, b"changed")
    for kind, ids in work.items():
        pipe.sadd(PENDING + kind, *ids)
        pipe.set(PENDING + kind + ":job", 1, nx=True, ex=300)
    replies = pipe.execute()[1 if publish else 0:]
    for kind, claimed in zip(work, replies[1::2]):
        if claimed:
            enqueue("quiz.tasks.drain_forms", kind, queue="forms", description=f"forms: {kind}")


def drain(kind: str, handle) -> int:
    """Run `handle(ids)` on the pending set in batches until it is empty; returns how many were done."""
    connection = get_redis()
    connection.delete(PENDING + kind + ":job")  # from here on a new request starts a new drain job
    done = 0
    while ids := [int(i) for i in connection.srandmember(PENDING + kind, BATCH_SIZE)]:
        handle(ids)
        connection.srem(PENDING + kind, *ids)  # only once handled: a worker dying mid-batch loses nothing
        done += len(ids)
    return done


class Batch:
    """One web process's work not yet sent, and the greenlet (a thread elsewhere) that sends it."""

    def __init__(self, app: Flask):
        self.app = app
        self.work: dict[str, set[int]] = defaultdict(set)
        self.publish = False
        self.lock = threading.Lock()
        self.due = threading.Event()
        self.stopped = False
        self.batches = 0

    def add(self, kind: str, participant_ids: list[int], publish: bool) -> None:
        self.keep({kind: participant_ids}, publish)

    def keep(self, work: dict, publish: bool) -> None:
        with self.lock:
            for kind, ids in work.items():
                self.work[kind].update(ids)
            self.publish = self.publish or publish
        self.due.set()

    def flush(self) -> None:
        """Send what is waiting; if Redis refuses, keep it for the next try and raise."""
        with self.lock:
            work, publish, self.work, self.publish = self.work, self.publish, defaultdict(set), False
        if not work and not publish:
            return
        try:
            with self.app.app_context():
                send(work, publish)
            self.batches += 1
        except redis.RedisError:
            self.keep(work, publish)
            raise

    def run(self) -> None:
        while not self.stopped:
            self.due.wait()
            time.sleep(FLUSH_SECONDS)  # let the requests arriving meanwhile join this batch
            self.due.clear()
            try:
                self.flush()
            except redis.RedisError:
                log.warning("work batch: Redis unreachable, kept for the next try")
                time.sleep(RETRY_SECONDS)
            except Exception:  # a bug here must not stop every later batch
                log.exception("work batch failed")


def start_batching(app: Flask) -> Batch:
    """From now on this process's requests hand their work to one batch, sent every FLUSH_SECONDS."""
    batch = app.extensions[EXTENSION] = Batch(app)
    threading.Thread(target=batch.run, name="work-batch", daemon=True).start()
    return batch


def stop_batching(app: Flask) -> None:
    """Send what is left (a web process stopping gracefully)."""
    batch = app.extensions.pop(EXTENSION, None)
    if batch is None:
        return
    batch.stopped = True
    batch.due.set()
    try:
        batch.flush()
    except redis.RedisError:
        log.error("work batch: Redis unreachable at shutdown; reconcile will find what was left")

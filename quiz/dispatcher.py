"""Sending what commits owe (quiz/effects.py): after each commit, at once or gathered per process.

A web process (create_app(batch_effects=True)) gathers its requests' effects, and one sender sends
them every FLUSH_SECONDS in one Redis round trip: a thousand submissions a second make a few
batches, not a thousand trips. The worker and the CLI send them at once. Both go through `send`.
A batch Redis refused is kept and sent again; what a process killed mid-batch still held is found
by reconcile (quiz/reconcile.py).
"""
import logging
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import redis
from flask import Flask, current_app
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from sqlalchemy import event
from sqlalchemy.orm import Session

from .clock import utcnow
from .effects import (CHANNEL, SESSION_KEY, CancelJob, Changed, DeleteStored, Drain, Effect, Job,
                      Pending, Queue, Task, pending_key)
from .extensions import db, get_queue, get_redis, state
from .storage import StorageError, get_storage

log = logging.getLogger(__name__)

DRAIN_BATCH = 100
FLUSH_SECONDS = 0.01  # an effect waits at most this long (plus a send) before Redis has it
RETRY_SECONDS = 1.0


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    effects = session.info.pop(SESSION_KEY, None)
    if effects:
        state(current_app).dispatcher.dispatch(effects)


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, previous_transaction) -> None:
    # Any rollback, even one before the transaction touched the database, drops what it owed.
    if previous_transaction.parent is None:  # not a savepoint's
        session.info.pop(SESSION_KEY, None)


@dataclass
class Gathered:
    """Effects not yet sent, merged: one publish, one id set per pending set, jobs in order."""

    changed: bool = False
    pending: dict[tuple[Drain, int | None], set[int]] = field(
        default_factory=lambda: defaultdict(set))
    others: list[Effect] = field(default_factory=list)

    def add(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Changed):
                self.changed = True
            elif isinstance(effect, Pending):
                self.pending[effect.drain, effect.round_id].update(effect.ids)
            else:
                self.others.append(effect)

    def merge(self, other: "Gathered") -> None:
        self.changed = self.changed or other.changed
        for where, ids in other.pending.items():
            self.pending[where].update(ids)
        self.others.extend(other.others)  # `other` came after: its effects go after these

    def __bool__(self) -> bool:
        return self.changed or bool(self.pending) or bool(self.others)


class Dispatcher:
    """Sends what commits owe: at once (`batched` False), or gathered by one sender per process."""

    def __init__(self, app: Flask, batched: bool):
        self.app, self.batched = app, batched
        self.waiting = Gathered()
        self.lock = threading.Lock()  # guards `waiting`
        self.sending = threading.Lock()  # one send at a time: a flush waits for the one in flight
        self.due = threading.Event()
        self.sender_pid: int | None = None
        self.stopped = False
        self.batches = 0

    def dispatch(self, effects: list[Effect]) -> None:
        if not self.batched:
            gathered = Gathered()
            gathered.add(effects)
            try:
                send(gathered)
            except (redis.RedisError, StorageError):
                # The commit stands; reconcile finds the work again once Redis is back.
                log.exception("effects after commit could not be sent")
            return
        with self.lock:
            self.waiting.add(effects)
        self._ensure_sender()
        self.due.set()

    def flush(self) -> None:
        """Send what is waiting (after any send in flight); if Redis refuses, keep it and raise."""
        with self.sending:
            with self.lock:
                gathered, self.waiting = self.waiting, Gathered()
            if not gathered:
                return
            try:
                with self.app.app_context():
                    send(gathered)
                self.batches += 1
            except redis.RedisError:
                with self.lock:
                    gathered.merge(self.waiting)
                    self.waiting = gathered
                raise

    def stop(self) -> None:
        """Send what is left (a web process stopping gracefully)."""
        self.stopped = True
        self.due.set()
        try:
            self.flush()
        except redis.RedisError:
            log.error("effects: Redis unreachable at shutdown; reconcile will find what was left")

    def _ensure_sender(self) -> None:
        # Started on first use in each process: a server that forks after create_app gets its own.
        if self.sender_pid == os.getpid():
            return
        with self.lock:
            if self.sender_pid == os.getpid():
                return
            self.sender_pid = os.getpid()
        threading.Thread(target=self._run, name="effects-sender", daemon=True).start()

    def _run(self) -> None:
        while not self.stopped:
            self.due.wait()
            time.sleep(FLUSH_SECONDS)  # let the requests committing meanwhile join this batch
            self.due.clear()
            try:
                self.flush()
            except redis.RedisError:
                log.warning("effects: Redis unreachable, kept for the next try")
                time.sleep(RETRY_SECONDS)
            except Exception:  # a bug here must not stop every later batch
                log.exception("effects: sending a batch failed")


def send(gathered: Gathered) -> None:
    """One Redis round trip for the publish, the pending sets and their drain-job claims; then the
    jobs (those claimed, and those owed), cancellations and storage deletes."""
    pipe = get_redis().pipeline(transaction=False)
    if gathered.changed:
        pipe.publish(CHANNEL, b"changed")
    for (drain, round_id), ids in gathered.pending.items():
        key = pending_key(drain, round_id)
        pipe.sadd(key, *ids)
        pipe.set(key + ":job", 1, nx=True, ex=300)
    replies = pipe.execute()[1 if gathered.changed else 0:]
    for (drain, round_id), claimed in zip(gathered.pending, replies[1::2]):
        if claimed:
            enqueue(Job(Task.DRAIN_PENDING, (drain.value, round_id), at=drain_at(drain),
                        description=f"pending: {drain}"
                        + ("" if round_id is None else f" (round id {round_id})")),
                    queue=drain.queue)
    for effect in gathered.others:
        if isinstance(effect, Job):
            enqueue(effect)
        elif isinstance(effect, CancelJob):
            cancel(effect.job_id)
        elif isinstance(effect, DeleteStored):
            get_storage().delete_many(list(effect.keys))


def drain_at(drain: Drain) -> datetime | None:
    """When a pending set's drain job runs: at once (None), but the answered forms
    ANSWERED_FORMS_DELAY_SECONDS later. Each answered player's form is rendered again into
    answered/ (three quarters of what the submit cost the web process): done during a round's rush
    of submits it took that share of the two cores from the web processes; a moment later it is
    done in a few large batches, once the rush has been answered."""
    delay = current_app.config["ANSWERED_FORMS_DELAY_SECONDS"]
    return utcnow() + timedelta(seconds=delay) if drain is Drain.ANSWERED_FORMS and delay else None


def enqueue(job: Job, queue: Queue | None = None) -> None:
    """Hand a job to RQ, now or at its time."""
    options = dict(job_timeout=job.timeout, description=job.description or job.task.value,
                   retry=Retry(max=3, interval=[2, 10, 30]))
    if job.job_id:
        options["job_id"] = job.job_id
    rq_queue = get_queue(queue or job.queue or job.task.queue)
    if job.at is None:
        rq_queue.enqueue(job.task.path, *job.args, **options)
    else:
        rq_queue.enqueue_at(job.at.replace(tzinfo=timezone.utc), job.task.path, *job.args,
                            **options)


def cancel(job_id: str) -> None:
    try:
        RQJob.fetch(job_id, connection=get_redis()).cancel()
    except NoSuchJobError:
        pass


def drain(drain: Drain, round_id: int | None, handle) -> int:
    """From the drain job: `handle(ids)` on the pending set in batches until it is empty."""
    connection, key = get_redis(), pending_key(drain, round_id)
    connection.delete(key + ":job")  # from here on a new request starts a new drain job
    done = 0
    while ids := [int(i) for i in connection.srandmember(key, DRAIN_BATCH)]:
        handle(ids)
        db.session.commit()  # what the batch wrote (and owes), before it leaves the set
        connection.srem(key, *ids)  # only once handled: a worker dying mid-batch loses nothing
        done += len(ids)
    return done


def init_app(app: Flask, batched: bool) -> None:
    state(app).dispatcher = Dispatcher(app, batched)

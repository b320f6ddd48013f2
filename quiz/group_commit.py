"""Group commit: one writer per web process stores what many requests hand it in one transaction.

Under gevent (gunicorn's workers) a request queues its item and waits; the process's writer (a
greenlet) takes everything queued meanwhile (at most BATCH_MAX), runs `write(items)` in one
transaction, commits, then answers each waiting request with its item's outcome, or with the
batch's error (nothing of a failed batch is stored: it rolled back). So a thousand submissions make
a handful of transactions and a handful of database round trips, not a thousand of each, and
"answered means stored" still holds: no request hears back before its row's commit.

Outside gevent (the tests' Flask client, the CLI, the worker) there is no writer: `write([item])`
runs at once in the caller's own transaction, and the caller commits, as with any other write.
"""
import logging
import os
from typing import Callable

from flask import Flask

from .extensions import db, under_gevent

log = logging.getLogger(__name__)

BATCH_MAX = 500  # items per transaction at most; more wait for the next one
# How long the writer lets a batch gather after the first item arrives: the requests already in
# flight reach their queueing in this time, and a lone submit waits no longer than this.
GATHER_SECONDS = 0.002


class GroupCommit:
    """A process's writer for one kind of item: `store(item)` returns its outcome once committed."""

    def __init__(self, app: Flask, write: Callable[[list], list], name: str):
        self.app, self.write, self.name = app, write, name
        self.queue: list = []
        self.pid: int | None = None
        self.batches = 0  # committed by this process's writer (the tests read it)
        # None: decided on first use (a gunicorn gevent worker patches before it loads the app);
        # the tests set it to run the writer on greenlets of their own
        self.batched: bool | None = None

    def store(self, item):
        """`item`'s outcome, once the transaction that wrote it committed; or that transaction's
        error."""
        if self.batched is None:
            self.batched = under_gevent()
        if not self.batched:
            return self.write([item])[0]  # the caller's transaction; the caller commits
        from gevent.event import AsyncResult
        self._ensure_writer()
        waiter = AsyncResult()
        self.queue.append((item, waiter))
        self.due.set()
        return waiter.get()  # raises the batch's error

    def _ensure_writer(self) -> None:
        # Started on first use in each process (a server that forks after create_app gets its own).
        if self.pid == os.getpid():
            return
        import gevent
        from gevent.event import Event
        self.pid, self.queue, self.due = os.getpid(), [], Event()
        gevent.spawn(self._run)

    def _run(self) -> None:
        import gevent
        while True:
            self.due.wait()
            gevent.sleep(GATHER_SECONDS)
            batch, self.queue = self.queue[:BATCH_MAX], self.queue[BATCH_MAX:]
            if not self.queue:
                self.due.clear()
            if batch:
                self._write(batch)

    def _write(self, batch: list) -> None:
        """One transaction for the batch; every waiting request gets its outcome or the error."""
        try:
            with self.app.app_context():
                try:
                    outcomes = self.write([item for item, _ in batch])
                    db.session.commit()  # sends what the batch owes (quiz/effects.py) once done
                except BaseException:
                    db.session.rollback()
                    raise
                finally:
                    db.session.remove()
        except Exception as error:  # each request answers with it (a 503 "press again", a 500)
            log.warning("%s: a batch of %d failed: %s", self.name, len(batch),
                        str(error).splitlines()[0] if str(error) else type(error).__name__)
            for _, waiter in batch:
                waiter.set_exception(error)
            return
        self.batches += 1
        for (_, waiter), outcome in zip(batch, outcomes):
            waiter.set(outcome)

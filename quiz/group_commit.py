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
import time
from contextvars import ContextVar
from typing import Callable

from flask import Flask
from sqlalchemy.exc import IntegrityError, OperationalError

from .extensions import db, under_gevent
from .gathering import Gathering

log = logging.getLogger(__name__)

BATCH_MAX = 500  # items per transaction at most; more wait for the next one
# How long the writer lets a batch gather after the first item arrives: the requests already in
# flight reach their queueing in this time, and a lone submit waits no longer than this. While a
# wait brought more items, it waits once more (a rush keeps arriving), up to GATHER_MAX_SECONDS:
# a rush is answered in a few large groups, so each pass of the event loop serves many of its
# requests against the same few cheap ones (a /ping, a status poll) that are always ready.
GATHER_SECONDS = 0.002
GATHER_MAX_SECONDS = 0.02
IN_WRITER: ContextVar[bool] = ContextVar("in_group_commit_writer", default=False)


class GroupCommit(Gathering):
    """A process's writer for one kind of item: `store(item)` returns its outcome once committed."""

    most = BATCH_MAX

    def __init__(self, app: Flask, write: Callable[[list], list], name: str):
        super().__init__()
        self.app, self.write, self.name = app, write, name
        self.batches = self.failed = 0  # committed and failed by this process's writer
        # None: decided on first use (a gunicorn gevent worker patches before it loads the app);
        # the tests set it to run the writer on greenlets of their own
        self.batched: bool | None = None

    def is_batched(self) -> bool:
        """Whether `store` hands items to the writer (else it writes them in the caller's
        transaction)."""
        if self.batched is None:
            self.batched = under_gevent()
        return self.batched

    def store(self, item):
        """`item`'s outcome, once the transaction that wrote it committed; or that transaction's
        error. The caller must not have written anything yet: under gevent its transaction ends
        here."""
        if not self.is_batched():
            return self.write([item])[0]  # the caller's transaction; the caller commits
        # what the caller read so far ends here: its connection goes back to the pool while it
        # waits (the writer needs one); a request that never opened its session has none to end
        if db.session.registry.has():
            db.session.rollback()
        return self.hand(item)  # raises the batch's error

    def started(self) -> None:
        IN_WRITER.set(True)  # this greenlet's own context

    def gather(self) -> None:
        import gevent
        self._gather(gevent.sleep)

    def _gather(self, sleep) -> None:
        """Wait GATHER_SECONDS, and again while the queue grew meanwhile (a full batch, or
        GATHER_MAX_SECONDS in all, ends it)."""
        deadline, size = time.monotonic() + GATHER_MAX_SECONDS, -1
        while size != len(self.queue) < BATCH_MAX and time.monotonic() < deadline:
            size = len(self.queue)
            sleep(GATHER_SECONDS)

    def handle(self, batch: list) -> None:
        """One transaction for the batch; every waiting request gets its outcome or the error."""
        try:
            outcomes = self._write_once(batch)
        except IntegrityError:
            # Another process committed a row this batch also wrote (the same email, registered
            # on two web nodes at once): once more, its read now sees that row, and the item
            # gets its own answer ("already registered") instead of the whole batch failing.
            try:
                outcomes = self._write_once(batch)
            except BaseException as error:
                return self._fail(batch, error)
        except BaseException as error:
            return self._fail(batch, error)
        self.batches += 1
        for (_, waiter), outcome in zip(batch, outcomes):
            waiter.set(outcome)

    def _write_once(self, batch: list) -> list:
        with self.app.app_context():
            try:
                outcomes = self.write([item for item, _ in batch])
                db.session.commit()  # sends what the batch owes (quiz/effects.py) once done
                return outcomes
            except BaseException:
                db.session.rollback()
                raise
            finally:
                db.session.remove()

    def _fail(self, batch: list, error: BaseException) -> None:
        """Every request of a failed batch answers with its error (503 "press again", 500)."""
        log.warning("%s: a batch of %d failed: %s", self.name, len(batch),
                    str(error).splitlines()[0] if str(error) else type(error).__name__)
        self.failed += 1
        for _, waiter in batch:
            waiter.set_exception(error)
        if not isinstance(error, Exception):
            raise error  # the writer itself was stopped


def take_sqlite_lock(connection, statement, params: dict | None = None):
    """SQLite's write lock for the current transaction, by `statement` (a write: a no-op one, or
    the write itself); its result.

    Under gevent (a writer, or a request of a web process: the Start press) it is never waited for
    in SQLite's busy handler, which would hold the whole process (every request of it) while
    another process writes: tried without waiting, then again after a cooperative sleep, up to the
    connection's busy timeout (then "database is locked", as anywhere else).
    """
    if not (IN_WRITER.get() or under_gevent()):
        return connection.execute(statement, params or {})
    import gevent
    raw = connection.connection.driver_connection
    timeout_ms = raw.execute("PRAGMA busy_timeout").fetchone()[0]
    raw.execute("PRAGMA busy_timeout = 0")
    deadline, pause = time.monotonic() + timeout_ms / 1000, 0.0005
    try:
        while True:
            try:
                return connection.execute(statement, params or {})
            except OperationalError as error:
                if "locked" not in str(error.orig) or time.monotonic() > deadline:
                    raise
            gevent.sleep(pause)
            pause = min(pause * 2, 0.005)
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")

"""PostgreSQL connections keeping their prepared statements when a transaction that only read ends.

psycopg prepares a statement on a connection once it has run there 5 times, and PostgreSQL then
plans it once (after 5 custom plans) instead of at every execution. But psycopg forgets every
statement it prepared at each ROLLBACK (its `rollback()` queues a DEALLOCATE ALL). A web process
ends every read-only transaction with one (Flask-SQLAlchemy's session closes at the end of each
request, the pool resets each connection it gets back): every page rendered by Flask, every socket's
first frame, every render of the live ticker. In the 10,000-player event three in four of the herd's
page reads were planned again, and planning them cost PostgreSQL five times what running them did.

So a transaction that ran only SELECTs, through this connection's cursors, ends with COMMIT where a
ROLLBACK was asked for: the same outcome for a transaction that wrote nothing (its locks released,
its snapshot gone), and the prepared statements stay. Anything else — a statement that isn't a
SELECT (INSERT, UPDATE, DELETE, a CTE, SAVEPOINT, SET, COPY, executemany), a transaction begun
elsewhere than these cursors, a failed one — is rolled back as ever. The SELECTs whose effect a
rollback would undo (`SELECT … INTO`, `pg_notify`) are looked for and count as writes.

And under gevent (a web process) the connection waits for its socket through gevent's own wait:
psycopg, seeing `select` patched, waits through `select.poll` — gevent's emulation of it, which
makes a poll object, a watcher, a timer and a result a wait, every round trip of every request
(~5 % of a web process's CPU in the 10,000-player herd). Here one IO watcher a wait
(`gevent.socket`'s `wait_read`, `wait_write` or `wait_readwrite`, as psycopg asks), the same
cooperation: the greenlet yields until the socket is ready, and a socket the server closed wakes
it (libpq then raises the error). A wait with a timeout (psycopg's own, cancelling) is psycopg's.
"""
import psycopg
from gevent import monkey
from gevent.socket import wait_read, wait_readwrite, wait_write
from psycopg.pq import TransactionStatus
from psycopg.waiting import Ready, Wait
from sqlalchemy import event
from sqlalchemy.engine import Engine

IDLE, IN_TRANSACTION = TransactionStatus.IDLE, TransactionStatus.INTRANS
# What psycopg waits for → gevent's wait for it, and what the socket is then ready for (a socket
# woken for "either" is said ready for both: libpq, non-blocking, finds which)
GREEN_WAITS = {Wait.R: (wait_read, Ready.R), Wait.W: (wait_write, Ready.W),
               Wait.RW: (wait_readwrite, Ready.RW)}


def green() -> bool:
    """Waits go through gevent: `select` is patched (psycopg's own test for gevent)."""
    return monkey.is_module_patched("select")


def wait_green(gen, fileno: int):
    """Run psycopg's generator `gen` on socket `fileno`, each wait gevent's (one IO watcher)."""
    try:
        waiting = next(gen)
        while True:
            wait, ready = GREEN_WAITS[waiting]
            wait(fileno)
            waiting = gen.send(ready)
    except StopIteration as done:
        return done.value


def reads_only(query) -> bool:
    """`query` only reads: a SELECT (SQLAlchemy's text, or bytes), not SELECT … INTO, not a
    notification."""
    if isinstance(query, bytes):
        query = query.decode("utf-8", "replace")
    if not isinstance(query, str):
        return False  # a composed psycopg.sql query: not looked into
    if query.lstrip()[:6].upper() != "SELECT":
        return False
    upper = query.upper()
    return "INTO" not in upper and "PG_NOTIFY" not in upper


class Cursor(psycopg.Cursor):
    """psycopg's cursor, noting on its connection whether the transaction has only read."""

    def _note(self, query, read: bool) -> None:
        connection = self.connection
        if connection.info.transaction_status == IDLE:
            connection.reads_only = True  # this statement begins a transaction (or runs alone)
        if not (read and reads_only(query)):
            connection.reads_only = False

    def execute(self, query, params=None, **kwargs):
        self._note(query, True)
        return super().execute(query, params, **kwargs)

    def executemany(self, query, params_seq, **kwargs):
        self._note(query, False)
        return super().executemany(query, params_seq, **kwargs)

    def stream(self, query, params=None, **kwargs):
        self._note(query, True)
        return super().stream(query, params, **kwargs)

    def copy(self, statement, params=None, **kwargs):
        self._note(statement, False)
        return super().copy(statement, params, **kwargs)


class Connection(psycopg.Connection):
    """psycopg's connection whose rollback of a transaction that only read is a COMMIT."""

    reads_only = False  # nothing known of the transaction: a rollback rolls back

    def wait(self, gen, interval=0.1, timeout=None):
        """psycopg's wait for its socket; under gevent, gevent's (`wait_green`)."""
        if timeout is not None or not green():
            return super().wait(gen, interval=interval, timeout=timeout)
        return wait_green(gen, self.pgconn.socket)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.reads_only = False

    def rollback(self) -> None:
        try:
            if self.reads_only and self.info.transaction_status == IN_TRANSACTION:
                super().commit()
            else:
                super().rollback()
        finally:
            self.reads_only = False


def install(engine: Engine) -> None:
    """`engine`'s new connections (psycopg's) are this module's."""
    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):
        return Connection.connect(*cargs, **{"cursor_factory": Cursor, **cparams})

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
"""
import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import event
from sqlalchemy.engine import Engine

IDLE, IN_TRANSACTION = TransactionStatus.IDLE, TransactionStatus.INTRANS


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

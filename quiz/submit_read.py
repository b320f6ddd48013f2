"""The submit's read: through the driver (on PostgreSQL a prepared statement per connection), and
in a web process on PostgreSQL many submits' reads in one query.

Thousands of submits a burst each run the same one-row select (quiz/answers.py), and the herd's
pages theirs (quiz/links.py). Through SQLAlchemy's execute, most of its CPU is around the query:
the statement's cache key, the execution context, the result's description and processors (on
SQLite, a web process's busiest item after gunicorn's own under a submit rush: a sixth of its
samples). Here the statement is compiled once per process and run on the pooled connection's own
driver connection (psycopg's with `prepare=True`: parsed and planned once per connection; sqlite3's
as it is, which keeps its own statement cache), and its rows built with the same type processors
as SQLAlchemy's: the same values, in named tuples. Any driver error hands the read to SQLAlchemy's
execute, which meets it as it always has (a dropped connection invalidated and the pool renewed,
the error wrapped for the caller's retry). The driver's connection is the one SQLAlchemy's execute
would use, in the same transaction (pysqlite begins none for a SELECT).

Under gevent on PostgreSQL (`GroupRead`) a submit does not run its own query: a process's reader
(a greenlet) takes every code asked for meanwhile (at most READ_MAX) and reads them in one query
(`code = ANY(...)`), one round trip and one wake-up of the server's backend for a whole group of
submits instead of one each (the server's CPU on the shared cores, the pool checkouts, the
driver's calls). Each request gets its row, as unlocked and as fresh as its own read: a read that
started after the request asked. When the group's query fails, each request reads alone as
before (its own connection, SQLAlchemy's handling of the error).
"""
import weakref
from collections import namedtuple
from contextlib import contextmanager, nullcontext

from gevent.lock import BoundedSemaphore
from sqlalchemy import Select
from sqlalchemy.engine import Connection, Dialect, Engine

from .extensions import db, state as app_state
from .gathering import Gathering

READ_MAX = 500  # codes a group's query reads at most; more wait for the next one
# How long the reader lets a group gather after the first code arrives (the requests already in
# flight reach their read meanwhile); a read that arrives while a query runs waits for its end.
READ_GATHER_SECONDS = 0.001
ALONE = object()  # a group's query failed: the request reads alone


class PreparedRead:
    """`statement` (a select with named binds), run through the driver where it prepares."""

    def __init__(self, statement: Select, dialect: Dialect):
        self.statement = statement
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        # psycopg: named parameters, prepared; pysqlite: positional ones, in the compiled order,
        # each bound as given (a statement whose binds need a processor goes through SQLAlchemy)
        self.driver = dialect.driver if dialect.driver in ("psycopg", "pysqlite") else None
        if self.driver == "pysqlite":
            self.positions = tuple(compiled.positiontup)
            self.defaults = {name: value for name, value in compiled.params.items()
                             if value is not None}
            if any(bind.type.dialect_impl(dialect).bind_processor(dialect) is not None
                   for bind in compiled.binds.values()):
                self.driver = None
        columns = list(statement.selected_columns)
        self.row = namedtuple("Row", [column.key for column in columns])
        self.processors = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                           for column in columns]

    def first(self, connection: Connection, params: dict):
        """The first row (a named tuple), or None."""
        rows = self.all(connection, params)
        return rows[0] if rows else None

    def all(self, connection: Connection, params: dict) -> list:
        """Every row (named tuples)."""
        if self.driver is None:
            return list(connection.execute(self.statement, params))
        dbapi = connection.dialect.loaded_dbapi
        try:
            raw = connection.connection.driver_connection
            if self.driver == "psycopg":
                rows = raw.execute(self.sql, params, prepare=True).fetchall()
            else:
                given = {**self.defaults, **params} if self.defaults else params
                rows = raw.execute(self.sql, [given[name] for name in self.positions]).fetchall()
        except dbapi.Error:
            return list(connection.execute(self.statement, params))
        make, processors = self.row._make, self.processors
        return [make(value if process is None else process(value)
                     for process, value in zip(processors, values)) for values in rows]


@contextmanager
def reading():
    """The submit's reads: with a group commit (under gevent), on a connection of their own, given
    back before the row is stored; otherwise in the caller's transaction. On PostgreSQL that
    connection is in autocommit (one round trip a read: no BEGIN, no ROLLBACK). On SQLite it is
    not: pysqlite begins no transaction for a SELECT anyway, and switching a connection to
    autocommit and back costs more than the read itself (two PRAGMAs a checkout)."""
    if not app_state().submit_writer.is_batched():
        yield db.session.connection()
        return
    with reader().connection() as connection:
        yield connection


def reader() -> "Reader":
    """This process's Reader for the app's engine."""
    found = _READER.get(db.engine)
    if found is None:
        found = _READER[db.engine] = Reader(db.engine)
    return found


class Reader:
    """A process's way to the submit's read: its engine, and on PostgreSQL as many slots as the
    pool keeps connections (less two for the writers), so a rush waits for a pooled connection
    instead of opening one more past the pool and closing it again on return (a new backend each:
    hundreds a burst). SQLite's reads never yield: no slots needed."""

    def __init__(self, engine: Engine):
        self.groups: dict = {}  # PreparedRead of many codes -> its GroupRead
        if engine.dialect.name == "sqlite":
            self.engine, self.slots = engine, nullcontext()
            return
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.slots = BoundedSemaphore(max(engine.pool.size() - 2, 1))

    @contextmanager
    def connection(self):
        with self.slots, self.engine.connect() as connection:
            yield connection

    def group(self, many: PreparedRead, key: str) -> "GroupRead":
        """The process's GroupRead of `many` (its rows told apart by the column `key`)."""
        if many not in self.groups:
            self.groups[many] = GroupRead(self, many, key)
        return self.groups[many]


class GroupRead(Gathering):
    """Many requests' one-row reads in one query: `first(value)` is the row whose `key` column is
    `value` (None if none), or ALONE when the group's query failed."""

    most = READ_MAX

    def __init__(self, reader: Reader, many: PreparedRead, key: str):
        super().__init__()
        self.reader, self.many, self.key = reader, many, key
        self.queries = 0

    def first(self, value):
        return self.hand(value)

    def gather(self) -> None:
        import gevent
        gevent.sleep(READ_GATHER_SECONDS)

    def handle(self, group: list) -> None:
        try:
            with self.reader.connection() as connection:
                rows = self.many.all(connection, {"values": list({v for v, _ in group})})
        except BaseException as error:
            for _, waiter in group:
                waiter.set(ALONE)
            if not isinstance(error, Exception):
                raise
            return
        self.queries += 1
        by_key = {getattr(row, self.key): row for row in rows}
        for value, waiter in group:
            waiter.set(by_key.get(value))


_READER: "weakref.WeakKeyDictionary[Engine, Reader]" = weakref.WeakKeyDictionary()

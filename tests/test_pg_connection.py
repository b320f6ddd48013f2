"""PostgreSQL connections (quiz/pg_connection.py): a transaction that only read ends keeping the
connection's prepared statements (psycopg's rollback drops them all); one that wrote, failed or did
anything but read is rolled back as ever."""
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import gevent
import pytest
import sqlalchemy
from sqlalchemy import func, insert, select, text

from quiz import pg_connection
from quiz.extensions import db
from quiz.models import AuditEntry

from .helpers import POSTGRES_URL

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (bin/with-postgres)")

COUNT = select(func.count()).select_from(AuditEntry)
ROW = {"at": datetime(2026, 12, 7), "actor": "test", "action": "wrote", "detail": ""}


@pytest.fixture
def engine(app):
    """The app's database through one pooled connection, as the app makes them."""
    engine = sqlalchemy.create_engine(db.engine.url, pool_size=1, max_overflow=0)
    pg_connection.install(engine)
    yield engine
    engine.dispose()


def prepared(connection) -> list[str]:
    return connection.exec_driver_sql(
        "SELECT statement FROM pg_prepared_statements").scalars().all()


def read_until_prepared(connection) -> None:
    for _ in range(6):  # psycopg prepares a statement at its 5th run on a connection
        connection.execute(COUNT).scalar()
    assert any("audit_entry" in statement for statement in prepared(connection))


def test_the_app_makes_its_connections_this_way(app):
    with db.engine.connect() as connection:
        assert isinstance(connection.connection.driver_connection, pg_connection.Connection)


@pytest.mark.parametrize("end", ["rollback", "back to the pool"])
def test_a_transaction_that_only_read_keeps_the_prepared_statements(engine, end):
    connection = engine.connect()
    read_until_prepared(connection)
    connection.exec_driver_sql("SELECT 1 FROM audit_entry FOR UPDATE")  # a lock is a read too
    if end == "rollback":
        connection.rollback()
    else:  # what the end of a request does: the pool resets the connection it gets back
        connection.close()
        connection = engine.connect()
    try:
        assert any("audit_entry" in statement for statement in prepared(connection))
    finally:
        connection.close()


def write(connection, how: str) -> None:
    if how == "insert":
        connection.execute(insert(AuditEntry).values(**ROW))
    elif how == "a read, then an insert":
        connection.execute(COUNT).scalar()
        connection.execute(insert(AuditEntry).values(**ROW))
    elif how == "executemany":
        connection.execute(insert(AuditEntry), [ROW, ROW])
    elif how == "through psycopg":  # in the transaction SQLAlchemy began with its read
        connection.execute(COUNT).scalar()
        connection.connection.driver_connection.execute(
            "INSERT INTO audit_entry (at, actor, action, detail) VALUES (now(), 'a', 'b', '')")
    elif how == "in a savepoint":
        connection.execute(COUNT).scalar()
        with connection.begin_nested():
            connection.execute(insert(AuditEntry).values(**ROW))
    elif how == "a CTE":
        connection.execute(text("WITH made AS (INSERT INTO audit_entry (at, actor, action, detail) "
                                "VALUES (now(), 'a', 'b', '') RETURNING id) SELECT id FROM made"))
    elif how == "SELECT INTO":
        connection.execute(text("SELECT 1 AS one INTO TEMP TABLE made"))


@pytest.mark.parametrize("how", ["insert", "a read, then an insert", "executemany",
                                 "through psycopg", "in a savepoint", "a CTE", "SELECT INTO"])
@pytest.mark.parametrize("end", ["rollback", "back to the pool"])
def test_a_transaction_that_wrote_is_rolled_back(engine, how, end):
    connection = engine.connect()
    write(connection, how)
    if end == "rollback":
        connection.rollback()
    else:
        connection.close()
        connection = engine.connect()
    try:
        assert connection.execute(COUNT).scalar() == 0
        made = connection.exec_driver_sql("SELECT to_regclass('pg_temp.made')").scalar()
        assert made is None
    finally:
        connection.close()


def test_a_failed_transaction_is_rolled_back_and_the_next_one_works(engine):
    with engine.connect() as connection:
        connection.execute(insert(AuditEntry).values(**ROW))
        with pytest.raises(sqlalchemy.exc.DataError):
            connection.exec_driver_sql("SELECT 1 / 0")
        connection.rollback()
        assert connection.execute(COUNT).scalar() == 0
        connection.execute(insert(AuditEntry).values(**ROW))
        connection.commit()
        assert connection.execute(COUNT).scalar() == 1


def test_what_counts_as_only_reading():
    assert pg_connection.reads_only("  SELECT a FROM b")
    assert pg_connection.reads_only(b"select a from b for update")
    for query in ("INSERT INTO b VALUES (1)", "WITH x AS (SELECT 1) SELECT * FROM x",
                  "SELECT 1 INTO TEMP t", "SELECT pg_notify('c', 'x')", "SAVEPOINT s", "SET x = 1",
                  "UPDATE b SET a = 1", None):
        assert not pg_connection.reads_only(query), query


# Under gevent (a web process) each wait for the socket is gevent's (one IO watcher): another
# greenlet runs while a query waits for its answer. The test process isn't patched, so the green
# path is switched on for these tests; psycopg's own wait here (not patched) blocks the process.
@pytest.fixture
def green(engine, monkeypatch):
    monkeypatch.setattr(pg_connection, "green", lambda: True)
    return engine


def what_ran_first(engine) -> list[str]:
    """A query of half a second on `engine` in a greenlet, and the test's own greenlet once that
    query is sent: in the order they went on."""
    ran = []

    def query():
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_sleep(0.5)"))
        ran.append("query")

    waiting = gevent.spawn(query)
    gevent.sleep(0.1)  # the query sent, its answer waited for
    ran.append("other")
    waiting.join(timeout=10)
    return ran


def test_another_greenlet_runs_while_a_query_waits(green):
    assert what_ran_first(green) == ["other", "query"]


def test_without_gevent_the_wait_is_psycopgs(engine):
    """(The check above fails this way: psycopg's wait, not patched, holds the whole process.)"""
    assert what_ran_first(engine) == ["query", "other"]


def test_green_waits_read_write_and_end_as_psycopgs(green):
    """Every kind of round trip: a large statement sent in parts, rows back, a commit, a rollback,
    prepared statements."""
    big = "x" * 2_000_000  # more than a socket's buffer: libpq waits to write the rest
    with green.connect() as connection:
        assert connection.execute(text("SELECT length(:big)"), {"big": big}).scalar() == len(big)
        connection.execute(insert(AuditEntry), [ROW, ROW])
        connection.commit()
        connection.execute(insert(AuditEntry), ROW)
        connection.rollback()
        for _ in range(6):
            assert connection.execute(COUNT).scalar() == 2
        assert connection.execute(text("SELECT generate_series(1, 50000)")).scalars().all() \
            == list(range(1, 50001))


def test_a_connection_the_server_ends_mid_query_raises(green):
    """A backend ended while its query is waited for: the error, not a greenlet asleep for ever."""
    connection = green.connect()
    pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    waiting = gevent.spawn(connection.exec_driver_sql, "SELECT pg_sleep(30)")
    gevent.sleep(0.2)  # its query sent, the answer waited for
    other = sqlalchemy.create_engine(db.engine.url, poolclass=sqlalchemy.pool.NullPool)
    with other.connect() as killer:
        assert killer.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar()
    waiting.join(timeout=10)
    assert waiting.ready()
    assert isinstance(waiting.exception, sqlalchemy.exc.OperationalError)
    connection.close()


def test_a_gevent_patched_process_waits_through_gevent(app):
    """As in a web process (gunicorn's gevent worker patches before the app loads): nothing
    switched on by hand, a query's waits are gevent's own (counted), and let another greenlet
    run."""
    script = textwrap.dedent(f"""
        from gevent import monkey
        monkey.patch_all()
        import gevent
        from quiz import pg_connection
        ran, waits = [], []
        green_wait = pg_connection.wait_green
        pg_connection.wait_green = lambda *args: waits.append(1) or green_wait(*args)
        def query():
            with pg_connection.Connection.connect({psycopg_url()!r}) as connection:
                connection.execute("SELECT pg_sleep(0.5)")
            ran.append("query")
        waiting = gevent.spawn(query)
        gevent.sleep(0.1)
        ran.append("other")
        waiting.join(timeout=10)
        print(bool(waits), ran)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parent.parent)
    assert done.stdout.strip() == "True ['other', 'query']", done.stderr


def psycopg_url() -> str:
    """The app's database as psycopg names it."""
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

"""Extensions, created once here and bound to the app in create_app; the process's own state
beside them."""
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import redis
from flask import Flask, current_app, has_app_context
from flask.cli import ScriptInfo
from gevent import monkey
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sock import Sock
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from htmx_flask import Htmx
from rq import Queue
from sqlalchemy import MetaData

# Named constraints, so migrations can alter them on every database.
metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

db = SQLAlchemy(metadata=metadata)
sock = Sock()
csrf = CSRFProtect()
htmx = Htmx()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address)

# effects.Queue, in the order workers take them: round links first; emails last, so a rush of
# confirmations never holds up anything
QUEUE_NAMES = ("links", "forms", "notify", "default", "email")
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def init_migrations(app: Flask) -> None:
    """Bind Flask-Migrate to the app, once: for `flask db …` and code that migrates. It imports
    Alembic (~0.1 s), so a web or worker process, which never migrates, starts without it."""
    if "migrate" not in app.extensions:
        from flask_migrate import Migrate
        # Batch mode: SQLite can only change a table by rebuilding it.
        Migrate(app, db, directory=str(MIGRATIONS), render_as_batch=True)


class MigrationCommands(click.Group):
    """`flask db …`: Flask-Migrate's command group, imported when it runs; `flask --help` lists it
    without importing it."""

    def make_context(self, info_name, args, parent=None, **extra):
        # The app: Flask's CLI has pushed its context by now; a test's CLI runner has not.
        init_migrations(current_app._get_current_object() if has_app_context()
                        else parent.find_object(ScriptInfo).load_app())
        from flask_migrate.cli import db as commands
        return commands.make_context(info_name, args, parent=parent, **extra)


@dataclass
class AppState:
    """What one process of the app holds besides its config: set up in create_app, read through
    state().

    Typed loosely where the owner lives in a higher layer (this module imports none of them).
    """

    redis: redis.Redis  # one connection pool per process
    dispatcher: Any = None  # effects.Dispatcher: sends what commits owe
    submit_writer: Any = None  # group_commit.GroupCommit: this process's submissions' writer
    join_writer: Any = None  # group_commit.GroupCommit: this process's registrations' writer
    hub: Any = None  # live.Hub: this process's websocket fan-out (web processes)
    storage: Any = None  # storage.FileStorage or S3Storage, made on first use
    storage_down_until: float = 0.0  # time.monotonic(): skip storage until then after it failed


def state(app: Flask | None = None) -> AppState:
    """The app's AppState (the current app's by default)."""
    return (app or current_app).extensions["knockout"]


def get_redis() -> redis.Redis:
    """The app's Redis connection (one pool per process)."""
    return state().redis


def get_queue(name: str = "default") -> Queue:
    """One of the RQ queues: forms, notify or default."""
    return Queue(name, connection=get_redis())


def under_gevent() -> bool:
    """A gevent-patched process (gunicorn's gevent workers): blocking calls yield to other
    greenlets, and a blocking call that doesn't (CPU work) holds every request of the process."""
    return monkey.is_module_patched("socket")


STATEMENTS_ALONE = "knockout.statements_alone"


def statements_alone() -> bool:
    """On PostgreSQL, make the session's next statements each its own transaction: its connection
    in autocommit, so a query is one round trip (psycopg sends no BEGIN before it, and nothing
    ends it after: no COMMIT or ROLLBACK). For a request before Flask that reads, and writes at
    most one statement (a write of one statement is as atomic alone). Only when the session has
    begun nothing yet (a request's own, fresh: a test's shared session keeps its transaction):
    True when it did. `statements_together()` before handing the session to code that may write
    more."""
    session = db.session()
    if db.engine.dialect.name != "postgresql" or session.in_transaction():
        return False
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    session.info[STATEMENTS_ALONE] = session.get_transaction()
    return True


def statements_together() -> None:
    """End what `statements_alone` began, keeping what was read (nothing reloads it): the session's
    next statement begins a transaction as ever. Nothing is sent (an autocommit connection has no
    transaction to end); what the session owes is sent, as after any commit."""
    session = db.session()
    began = session.info.pop(STATEMENTS_ALONE, None)
    if began is None or began is not session.get_transaction():
        return  # not begun here, or ended since
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire

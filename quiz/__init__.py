"""Knockout: a live elimination quiz. `create_app` builds the Flask app."""
import time
from pathlib import Path

import redis
from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

from . import (cli, dispatcher, i18n, join_store, live, observability, rate_limits,
               submit_store, waiting, web)
from .config import Config, check_database_url, links_in_registration, persistent_secret
from .config_checks import (check_alert_settings, check_brand_settings, check_email_config,
                            check_priority_settings, check_sms_settings)
from .embedded import ensure_redis
from .extensions import (AppState, MigrationCommands, csrf, db, htmx, limiter, login_manager,
                         sock)
from .web import page_path, priority, security, start_path, status, submit_path

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: type | None = None, batch_effects: bool = False) -> Flask:
    """Build the app: config, extensions, blueprints, CLI.

    `batch_effects`: what commits owe is gathered and sent by one sender per process (web processes:
    wsgi.py); otherwise it is sent at once (the worker, the CLI, most tests). See quiz/effects.py.
    """
    app = Flask(__name__, template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"), instance_path=(config or Config).INSTANCE_PATH)
    app.config.from_object(config or Config)
    check_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    check_sms_settings(app.config)
    check_alert_settings(app.config)
    check_email_config(app.config)
    check_brand_settings(app.config)
    check_priority_settings(app.config)
    i18n.init_app(app)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    for key, filename in (("SECRET_KEY", "secret_key"), ("ADMIN_API_TOKEN", "admin_api_token")):
        if not app.config[key]:
            app.config[key] = persistent_secret(Path(app.instance_path), filename)
    app.config["LINKS_IN_REGISTRATION"] = links_in_registration(app.config)

    # Served over https: the session and remember-me cookies never travel over plain http.
    for key in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        app.config[key] = app.config.get(key) or app.config["PUBLIC_BASE_URL"].startswith("https://")

    if not app.config["REDIS_URL"]:
        app.config["REDIS_URL"] = ensure_redis(Path(app.instance_path))
    app.extensions["knockout"] = AppState(redis=redis.Redis.from_url(app.config["REDIS_URL"]))
    dispatcher.init_app(app, batched=batch_effects)
    submit_store.init_app(app)
    join_store.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", rate_limits.storage_uri(app.config["REDIS_URL"]))
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        _sqlite_busy_timeout(app)

    observability.init_app(app)
    security.init_app(app)  # first: its check must read the raw body before CSRF parses the form
    app.url_map.converters["int"] = security.BoundedInt  # before the blueprints add their routes
    db.init_app(app)
    with app.app_context():
        _ping_when_idle(db.engine, app.config["DATABASE_PING_IDLE_SECONDS"])
        if db.engine.dialect.driver == "psycopg":
            from . import pg_connection  # psycopg's connections, which only PostgreSQL needs
            pg_connection.install(db.engine)
    # Flask-Migrate (Alembic) is bound when `flask db` runs (extensions.init_migrations), not here.
    app.cli.add_command(MigrationCommands("db", help="Perform database migrations."))
    csrf.init_app(app)
    htmx.init_app(app)
    sock.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)

    waiting.init_app(app)
    live.init_app(app)  # before the blueprints: they register their live renderers with its hub
    web.register_blueprints(app)
    page_path.install(app)  # GET /f/<code>'s stored form answered before Flask: the herd's page
    status.install(app)  # GET /api/status answered before Flask: thousands of phones poll it
    start_path.install(app)  # the Start press (the link's token) answered before Flask: the herd
    submit_path.install(app)  # the stored form's submit answered before Flask: a round's rush
    priority.install(app)  # outermost: while a rush of submits is in flight, reads wait for it
    cli.register(app)
    return app


def _sqlite_busy_timeout(app: Flask) -> None:
    """sqlite3's `timeout` is SQLite's busy timeout: how long a write waits for the lock
    (SQLITE_BUSY_TIMEOUT_MS)."""
    # a copy: the class-level dict is shared
    options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
    options["connect_args"] = {**options.get("connect_args", {}),
                               "timeout": app.config["SQLITE_BUSY_TIMEOUT_MS"] / 1000}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use if it sat idle `idle_seconds` or more; a dead one is
    replaced and the pool renewed (SQLAlchemy's pool_pre_ping, minus the round trip on every request
    of a rush)."""
    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, _proxy) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return  # fresh, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(
                f"pooled connection dead after {time.monotonic() - since:.0f} s idle") from error


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL and enforced foreign keys, on SQLite only (the busy timeout is a connect argument)."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

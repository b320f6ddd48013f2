"""Faults, with real processes: Redis killed mid-round under submissions, and across a close and
reminders; submissions racing the close."""
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urljoin

import pytest
import requests
import sqlalchemy

from quiz import create_app
from quiz.clock import utcnow
from quiz.config import TestConfig
from quiz.embedded import server_args, wait_for
from quiz.extensions import db
from quiz.reminders import schedule_reminder

from .live_fixtures import LiveStack
from .players import Api, answer_over_http, load_demo_bank, ready_phone, round_links

pytestmark = pytest.mark.live


def test_redis_killed_mid_round_loses_nothing_and_work_catches_up(tmp_path):
    """kill -9 Redis: players still open links and submit; after restart the queued work
    completes."""
    directory = tmp_path / "redis"
    directory.mkdir()
    socket = directory / "redis.sock"
    url = f"unix://{socket}"
    redis_server = subprocess.Popen(server_args(directory, socket), stdout=subprocess.DEVNULL)
    wait_for(url)
    stack = LiveStack(tmp_path, url, RECONCILE_SECONDS="1", RATELIMIT_ENABLED="true")
    try:
        stack.start()
        load_demo_bank(stack)
        api = Api(stack.url)
        for n in range(1, 13):
            api.register(f"Player {n}", n)
        api.start(1)
        links = {n: api.sms_link(f"+1415555{n:04d}", 1) for n in range(1, 13)}

        os.kill(redis_server.pid, signal.SIGKILL)  # no shutdown, no last write
        redis_server.wait()
        for n in range(1, 11):  # ten players answer while Redis is gone
            answer_over_http(links[n], 1, right=n % 2 == 0)
        late = requests.post(f"{stack.url}/api/register", json={
            "name": "Late", "email": "late@example.com", "phone": "+14155550999",
            "consent": True})
        assert late.status_code == 201  # joining still works too
        api.end(1)
        api.start(2)  # its link messages can't be queued now: Redis is down

        redis_server = subprocess.Popen(server_args(directory, socket), stdout=subprocess.DEVNULL)
        wait_for(url)

        def worker_restarted_if_gone():
            # RQ's worker quits if Redis vanished in the middle of a job (here: round 1's link SMS),
            # at its next touch of Redis, which may come after Redis is back; in production
            # compose's `restart: unless-stopped` starts it again, as this does.
            if stack.processes[1].poll() is not None:
                stack.restart_worker()
        worker_restarted_if_gone()
        board = requests.get(f"{stack.url}/api/leaderboard/1").json()["entries"]
        # every 2xx submission is there
        assert sum(1 for e in board if e["score"] is not None) == 10
        survivors = {e["user_id"] for e in board if not e["eliminated"]}
        assert len(survivors) == 5
        deadline = time.monotonic() + 60
        while True:  # the worker's reconcile hands out round 2's links once Redis is back
            progress = requests.get(f"{stack.url}/api/admin/sms-progress/2",
                                    headers=api.headers).json()
            if progress["status"] == "completed" and progress["total"] == len(survivors):
                break
            assert time.monotonic() < deadline, progress
            worker_restarted_if_gone()
            time.sleep(0.5)
        messages = requests.get(f"{stack.url}/api/admin/outbox?limit=100000",
                                headers=api.headers).json()["messages"]
        round_two = [m["to"] for m in messages if m["challenge"] == 2 and m["kind"] == "round_link"]
        # each survivor once, nobody twice
        assert len(round_two) == len(set(round_two)) == len(survivors)
    finally:
        stack.stop()
        redis_server.terminate()
        redis_server.wait()


def classify(phone: requests.Session, response) -> str:
    """'counted' (303 to the page that says "Answers in"), 'refused' (409 "closed"), else what went
    wrong."""
    if isinstance(response, Exception):
        return f"error: {response!r}"
    if response.status_code == 303:
        after = phone.get(urljoin(response.url, response.headers["Location"]))
        return ("counted" if "Answers in" in after.text
                else f"303 to a page without 'Answers in': {after.text[:300]}")
    if response.status_code == 409 and "is closed: answers are no longer accepted" in response.text:
        return "refused"
    return f"{response.status_code}: {response.text[:300]}"


def test_submissions_racing_the_close_are_counted_or_refused_never_both(live_stack):
    """60 players submit at once while the organizer ends the round: each answer is in the database
    iff it was accepted."""
    load_demo_bank(live_stack)
    api = Api(live_stack.url)
    players = 60
    for n in range(1, players + 1):
        api.register(f"Racer {n}", n)
    api.start(1)
    links = round_links(api, 1, players)
    phones = {to: ready_phone(link, 1) for to, link in links.items()}
    for phone, _ in phones.values():
        # new connections: gunicorn drops keep-alives idle for 5 s, and a POST isn't retried
        phone.close()
    # The first 15 go at once, 35 are spread over the moment of the close, the last 10 go after it.
    order = list(phones)
    results: dict[str, object] = {}
    answered, closed = threading.Semaphore(0), threading.Event()

    def post(to: str, delay: float, after_close: bool):
        phone, data = phones[to]
        if after_close:
            closed.wait(60)
        time.sleep(delay)
        try:
            results[to] = phone.post(f"{links[to]}/submit", data=data, allow_redirects=False,
                                     timeout=60)
        except requests.RequestException as error:
            results[to] = error
        answered.release()

    threads = [threading.Thread(target=post, args=(to, 0 if i < 15 else (i - 15) * 0.02, i >= 50))
               for i, to in enumerate(order)]
    for thread in threads:
        thread.start()
    for _ in range(10):  # the round is ended while most answers are still on their way
        answered.acquire(timeout=60)
    ended = requests.post(f"{api.url}/api/admin/end-challenge/1", headers=api.headers, timeout=60)
    closed.set()
    for thread in threads:
        thread.join(90)
    assert ended.status_code == 200, ended.text
    outcome = {to: classify(phones[to][0], results.get(to, "no response")) for to in order}
    wrong = {to: what for to, what in outcome.items() if what not in ("counted", "refused")}
    assert not wrong  # a response that is neither counted nor refused is a lost or half-done answer

    engine = sqlalchemy.create_engine(live_stack.env["DATABASE_URL"],
                                      poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        rows = {r.phone: r for r in connection.execute(sqlalchemy.text(
            "SELECT p.phone, p.eliminated_in, p.elimination_reason, s.id AS submission, s.rank "
            "FROM participant p "
            "LEFT JOIN submission s ON s.participant_id = p.id AND s.challenge_id = "
            "(SELECT id FROM challenge WHERE number = 1)"))}
    engine.dispose()
    counted = {to for to, what in outcome.items() if what == "counted"}
    refused = set(order) - counted
    # the race happened, on both sides of it
    assert counted and refused and set(order[50:]) <= refused
    for to in counted:  # accepted ⇔ stored, ranked
        assert rows[to].submission is not None and rows[to].rank is not None, (to, rows[to])
    for to in refused:  # refused ⇔ not stored, and out as unanswered
        assert (rows[to].submission is None
                and (rows[to].eliminated_in, rows[to].elimination_reason) == (1, "unanswered"))
    summary = ended.json()
    assert (summary["submitted"], summary["eliminated_unanswered"]) == (len(counted), len(refused))


@contextmanager
def organizer(stack):
    """The app in this process on the stack's database and Redis, as the console acts (its
    dispatcher sends at once: a nudge Redis refuses is lost, and only the database remembers)."""
    config = type("Config", (TestConfig,), dict(
        INSTANCE_PATH=stack.env["KNOCKOUT_INSTANCE"], REDIS_URL=stack.env["REDIS_URL"],
        SQLALCHEMY_DATABASE_URI=stack.env["DATABASE_URL"],
        STORAGE_URL=f"file://{stack.directory / 'storage'}"))
    app = create_app(config)
    with app.app_context():
        try:
            yield
        finally:
            db.session.remove()
            db.engine.dispose()


def test_redis_killed_across_a_close_and_reminders_each_owed_sms_arrives_once(tmp_path):
    """kill -9 Redis between a reminder's scheduling and its time; close the round and schedule
    another reminder while it is down; restart it on its AOF at the same address: the result SMS
    and both reminders reach each player once (counted in the outbox), by the worker's scheduler
    or reconcile, whichever gets there."""
    directory = tmp_path / "redis"
    directory.mkdir()
    socket = directory / "redis.sock"
    url = f"unix://{socket}"
    redis_server = subprocess.Popen(server_args(directory, socket), stdout=subprocess.DEVNULL)
    wait_for(url)
    stack = LiveStack(tmp_path, url, RECONCILE_SECONDS="1", RESULTS_DELAY_SECONDS="2")
    try:
        stack.start()
        load_demo_bank(stack)
        api = Api(stack.url)
        for n in range(1, 7):
            api.register(f"Player {n}", n)
        api.start(1)
        links = round_links(api, 1, 6)
        for to in sorted(links)[:4]:  # 4 answer: 2 go through
            answer_over_http(links[to], 1)
        with organizer(stack):
            schedule_reminder("Before the outage, due during it",
                              utcnow() + timedelta(seconds=4))
            db.session.commit()  # its job waits in RQ's scheduled registry (and the AOF)
        time.sleep(1.5)  # the AOF is written every second
        os.kill(redis_server.pid, signal.SIGKILL)
        redis_server.wait()
        closed = api.end(1)  # its result SMS are owed; the job that sends them can't be queued
        assert closed["submitted"] == 4
        with organizer(stack):
            schedule_reminder("Scheduled during the outage", utcnow() + timedelta(seconds=1))
            db.session.commit()  # its job is lost: Redis refused it
        time.sleep(4)  # both reminders are due while Redis is away

        redis_server = subprocess.Popen(server_args(directory, socket), stdout=subprocess.DEVNULL)
        wait_for(url)
        if stack.processes[1].poll() is not None:
            stack.restart_worker()  # as compose or `make run`'s supervisor does
        deadline = time.monotonic() + 90
        while True:
            outbox = api.outbox()
            kinds = Counter(m["kind"] for m in outbox if m["status"] == "sent")
            if kinds["reminder"] == 2 * 2 and sum(
                    n for kind, n in kinds.items() if kind.startswith("result")) == 6:
                break
            assert time.monotonic() < deadline, kinds
            time.sleep(0.5)
        time.sleep(3)  # three more reconcile passes: nothing owed is sent again
        outbox = api.outbox()
    finally:
        stack.stop()
        redis_server.terminate()
        redis_server.wait()
    each = Counter((m["kind"], m["body"].split("http")[0], m["to"]) for m in outbox)
    assert max(each.values()) == 1  # nobody got any message twice
    results = sorted(m["to"] for m in outbox if m["kind"].startswith("result"))
    assert results == sorted(links)  # everyone who played round 1 heard how it went
    survivors = sorted(m["to"] for m in outbox if m["kind"] == "result_through")
    assert len(survivors) == 2
    for text in ("Before the outage, due during it", "Scheduled during the outage"):
        reminded = sorted(m["to"] for m in outbox if text in m["body"])
        assert reminded == survivors  # each player still in, once

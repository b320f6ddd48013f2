"""Ops alerts against a local webhook receiver: a killed worker (a real process), a stopped Redis
(a real server), SMS failures (the local Twilio server), unsent links, the database, the disk; one
alert and one recovery each, whichever and however many processes look; a dead webhook is
retried."""
import json
import os
import signal
import subprocess
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis

from quiz import alert_checks, alerts, create_app, delivery, notify
from quiz.alert_checks import BEATS_KEY, Finding
from quiz.alert_state import Shared
from quiz.config import ConfigError, TestConfig
from quiz.embedded import server_args, wait_for
from quiz.extensions import db
from quiz.models import Challenge
from quiz.stack import free_port

from .helpers import POSTGRES_URL, login, make_config
from .live_fixtures import LiveStack
from .test_twilio import twilio  # noqa: F401  (a fixture)


class Receiver:
    """A webhook on loopback: keeps every JSON body posted; `status` is what it answers."""

    def __init__(self):
        self.posts, self.status = [], 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.status == 200:
                    receiver.posts.append(body)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def texts(self) -> list[str]:
        assert all(post["text"] == post["content"] for post in self.posts)  # Slack and Discord
        return [post["text"] for post in self.posts]


@pytest.fixture
def receiver(app):
    hook = Receiver()
    app.config.update(ALERT_WEBHOOK_URL=hook.url, ALERT_CHECK_SECONDS=0.3,
                      ALERT_NO_WORKER_SECONDS=2)
    yield hook
    hook.httpd.shutdown()
    hook.httpd.server_close()


@pytest.fixture
def another(app):
    """Another process's app: this one's settings, `overrides` on top (engines closed after)."""
    made = []

    def make(**overrides):
        keys = ("SQLALCHEMY_DATABASE_URI", "STORAGE_URL", "REDIS_URL", "INSTANCE_PATH",
                "ALERT_WEBHOOK_URL", "ALERT_CHECK_SECONDS", "ALERT_FAILURE_RATE",
                "ALERT_FAILURE_MIN")
        made.append(create_app(type("Config", (TestConfig,),
                                    {key: app.config[key] for key in keys} | overrides)))
        return made[-1]
    yield make
    for other in made:
        with other.app_context():
            db.engine.dispose()


def until(condition, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def kinds(texts: list[str]) -> list[str]:
    return ["alert" if "ALERT:" in t else "resolved" if "RESOLVED" in t else t for t in texts]


def test_a_killed_worker_is_one_alert_and_its_return_one_recovery(tmp_path, redis_url):
    """The real stack: gunicorn's two web processes each watch (ALERT_CHECK_SECONDS); kill -9 the
    worker process: one alert between them; start it again: one recovery."""
    redis.Redis.from_url(redis_url).flushall()
    hook = Receiver()
    # 4 s: the worker beats every 1.33 s; a machine loaded by the suite may hold a process up for
    # a second or two, and a worker that truly didn't beat for the limit is announced (rightly)
    stack = LiveStack(tmp_path, redis_url, ALERT_WEBHOOK_URL=hook.url, ALERT_CHECK_SECONDS="0.3",
                      ALERT_NO_WORKER_SECONDS="4")
    try:
        stack.start()
        assert len(stack.web_workers) == 2
        client = redis.Redis.from_url(redis_url)
        until(lambda: client.zcard(BEATS_KEY) == 1, "the worker never said it was alive")
        ledger = Path(stack.env["KNOCKOUT_INSTANCE"]) / "alerts.json"

        def quiet():
            """Nothing open or owed, and the web judged since the worker's latest beat: a judgement
            older than that (a web process held up by the loaded machine) is ignored, not still on
            its way (a worker slower to start than the web by 4 s was told, and is over)."""
            state = json.loads(ledger.read_text()) if ledger.exists() else {}
            newest = client.zrevrange(BEATS_KEY, 0, 0, withscores=True)
            return (newest and not state.get("open") and not state.get("owed")
                    and state.get("observed", {}).get("worker", 0) > newest[0][1])
        until(quiet, "the web never looked")
        hook.posts.clear()
        os.killpg(stack.processes[1].pid, signal.SIGKILL)
        stack.processes[1].wait()
        until(lambda: hook.posts, "no alert for the dead worker")
        time.sleep(1.5)  # five more checks by each web process: still the one alert
        assert len(hook.posts) == 1, (hook.texts(), ledger.read_text(), [
            line for line in stack.logs.read_text().splitlines() if "alerts" in line][-20:])
        [alert] = hook.texts()
        assert "ALERT: no live worker for 4 s" in alert and "python worker.py" in alert
        stack.restart_worker()
        until(lambda: len(hook.posts) == 2, "no recovery")
        time.sleep(1)
        assert kinds(hook.texts()) == ["alert", "resolved"]
        assert "RESOLVED after" in hook.texts()[1] and "no live worker" in hook.texts()[1]
    finally:
        stack.stop()
        hook.httpd.shutdown()
        hook.httpd.server_close()


def test_an_older_look_recorded_after_a_newer_one_changes_nothing(app):
    """Two web processes look at nearly the same moment and take turns with the file: the one that
    looked first (the worker not yet gone 2 s) must not close what the other just opened."""
    state, shared = {}, Shared(None, "group", 60)
    newer = Finding("worker", {"worker": "no live worker for 2 s"})
    older = Finding("worker", {}, at=newer.at - 0.1)
    assert len(alerts.record([newer], state, shared, newer.at)) == 1
    assert alerts.record([older], state, shared, newer.at) == []
    assert list(state["open"]) == ["worker"]
    assert alerts.record([Finding("worker", {})], state, shared, time.time())  # over: said once


def test_a_worker_stuck_in_a_slow_check_still_beats(app):
    """The heartbeat has a thread of its own: a database check that hangs (here: a long query)
    must not stop the beats the web reads, or a live worker is announced dead."""
    app.config.update(ALERT_CHECK_SECONDS=0.05, ALERT_NO_WORKER_SECONDS=0.6)
    client = redis.Redis.from_url(app.config["REDIS_URL"])
    client.delete(BEATS_KEY)
    stuck, release, stop = threading.Event(), threading.Event(), threading.Event()

    def slow_check():
        stuck.set()
        assert release.wait(30), "the test never let the check go"
        return Finding("failures:")

    original, alerts.checks.failure_rates = alerts.checks.failure_rates, slow_check
    try:
        checks = alerts.watch(app, "worker", "slow-worker", stop)
        assert stuck.wait(30), "the check never ran"
        beats = set()

        def three_beats():
            beats.add(client.zscore(BEATS_KEY, "slow-worker"))
            return len(beats - {None}) >= 3
        until(three_beats, "no beats while a check was stuck")
    finally:
        release.set()
        stop.set()
        checks.join(30)  # its pass over (the database's connection given back) before the app goes
        alerts.checks.failure_rates = original
        client.delete(BEATS_KEY)


def test_beats_are_stamped_and_judged_on_redis_clock(app, monkeypatch):
    """A worker on a node whose clock runs 5 s behind (or held up between reading its clock and
    writing its beat) is alive all the same: its beat carries the time Redis stored it, and the
    web judges against the time Redis read it."""
    app.config.update(ALERT_NO_WORKER_SECONDS=2)
    client = redis.Redis.from_url(app.config["REDIS_URL"])
    client.delete(BEATS_KEY)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 5)
    alert_checks.beat(client, "behind")
    monkeypatch.undo()
    with app.app_context():
        assert alert_checks.worker_alive(client, real() - 60).active == {}
        client.delete(BEATS_KEY)
        assert alert_checks.worker_alive(client, real() - 60).active  # and none: dead


def test_a_web_process_booted_after_the_last_beat_does_not_resolve_the_alert(app, receiver):
    """The worker's last beat was 5 s ago (limit 4 s): a web process watching for a minute says
    so; a web process that started looking a second ago (gunicorn booted it late) has no say yet,
    so it does not call the worker alive from its own start (the alert flapped: alert, resolved,
    alert); once it has looked 4 s it agrees."""
    app.config.update(ALERT_NO_WORKER_SECONDS=4)
    client = redis.Redis.from_url(app.config["REDIS_URL"])
    client.delete(BEATS_KEY)
    client.zadd(BEATS_KEY, {"gone": float(client.time()[0]) - 5})
    try:
        check_in(app, "web", since=time.time() - 60)
        check_in(app, "web", since=time.time() - 1)
        check_in(app, "web", since=time.time() - 60)
        check_in(app, "web", since=time.time() - 4.5)
        until(lambda: len(receiver.posts) >= 1, "no alert")
        time.sleep(0.5)
        assert kinds(receiver.texts()) == ["alert"]
    finally:
        client.delete(BEATS_KEY)


def check_in(app, role, since=None):
    """One pass of a process's watcher (`since`: when it started looking; now unless told)."""
    with app.app_context():
        alerts.check(role, time.time() if since is None else since)


@pytest.fixture
def own_redis(tmp_path):
    """A Redis server of this test's own, to stop and start again (same socket, same AOF)."""
    directory = tmp_path / "redis"
    directory.mkdir()
    sock = directory / "redis.sock"
    start = lambda: subprocess.Popen(server_args(directory, sock),  # noqa: E731
                                     stdout=subprocess.DEVNULL)
    server = {"process": start(), "url": f"unix://{sock}", "start": start}
    wait_for(server["url"])
    yield server
    server["process"].terminate()
    server["process"].wait(timeout=10)


def test_a_stopped_redis_is_one_alert_and_its_return_one_recovery(receiver, own_redis, another):
    other = another(REDIS_URL=own_redis["url"])
    check_in(other, "worker")
    assert receiver.posts == []
    own_redis["process"].terminate()
    own_redis["process"].wait(timeout=10)
    for _ in range(4):  # the worker's watcher, and the web's, again and again: one alert
        check_in(other, "worker")
        check_in(other, "web")
    [alert] = receiver.texts()
    assert "ALERT: Redis unreachable" in alert
    own_redis["process"] = own_redis["start"]()
    wait_for(own_redis["url"])
    for _ in range(3):
        check_in(other, "web")
        check_in(other, "worker")
    assert kinds(receiver.texts()) == ["alert", "resolved"]
    assert "Redis unreachable" in receiver.texts()[1]


def test_sms_failures_above_the_rate_one_alert_one_recovery_once_retried(
        app, client, receiver, twilio, load_bank, make_participant, api_headers, run_jobs,
        tmp_path, another):
    app.config.update(ALERT_FAILURE_RATE=0.2, ALERT_FAILURE_MIN=3)
    load_bank()
    phones = [make_participant().phone for _ in range(12)]
    for phone in phones[:4]:  # a third refused
        twilio.fail(phone, 400, 21612, "The 'To' phone number is not currently reachable via SMS")
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    run_jobs()
    # Workers on two machines (instance folders of their own) on one Redis: the claim lets one
    # speak, and the same one tells the end.
    machine_2 = another(INSTANCE_PATH=str(tmp_path / "machine-2"))
    for _ in range(3):
        check_in(machine_2, "worker")
        alerts.check("worker")
    [alert] = receiver.texts()
    assert "ALERT: round 1: 4 of 12 sms messages failed (33%, above 20%)" in alert
    challenge = db.session.query(Challenge).filter_by(number=1).one()
    notify.hand_over(delivery.requeue_failed(challenge), "retry")  # "Retry all failed"
    db.session.commit()
    run_jobs()
    for _ in range(3):
        alerts.check("worker")
        check_in(machine_2, "worker")
    assert kinds(receiver.texts()) == ["alert", "resolved"]


TIMED_BANK = """
challenges:
  - number: 1
    title: Quick
    time_limit_seconds: 60
    questions:
      - text: 2 + 2?
        choices: ["3", "4"]
        answer: "4"
"""


def test_links_unsent_when_the_start_window_ends_one_alert_one_recovery_once_sent(
        client, receiver, load_bank, make_participant, api_headers, run_jobs):
    load_bank(TIMED_BANK)
    for _ in range(3):
        make_participant()
    client.post("/api/admin/start-challenge/1", headers=api_headers)  # no worker runs yet
    alerts.check("worker")
    assert receiver.posts == []  # its window (the time limit, 60 s) is still open
    challenge = db.session.query(Challenge).filter_by(number=1).one()
    challenge.opened_at -= timedelta(seconds=61)  # a minute later
    db.session.commit()
    alerts.check("worker")
    alerts.check("worker")
    [alert] = receiver.texts()
    assert "ALERT: round 1: 3 links still unsent 60 s after it started" in alert
    run_jobs()  # the links go out
    alerts.check("worker")
    assert kinds(receiver.texts()) == ["alert", "resolved"]


def test_a_disk_almost_full_is_one_alert_and_one_recovery(app, receiver):
    app.config["ALERT_DISK_FREE_PERCENT"] = 100  # every disk is "almost full"
    for _ in range(3):
        alerts.check("worker")
    [alert] = receiver.texts()
    assert "ALERT: disk almost full" in alert and "below 100%" in alert
    assert app.instance_path in alert  # where (the stored forms' folder is on the same disk)
    app.config["ALERT_DISK_FREE_PERCENT"] = 0
    alerts.check("worker")
    alerts.check("worker")
    assert kinds(receiver.texts()) == ["alert", "resolved"]


def test_the_database_unreachable_is_one_alert_and_one_recovery(app, receiver, tmp_path,
                                                                another):
    """A process whose database is gone (nothing listens there) and one whose isn't, sharing the
    instance folder."""
    gone = (f"postgresql+psycopg://knockout@127.0.0.1:{free_port()}/knockout" if POSTGRES_URL
            else f"sqlite:///{tmp_path / 'no-such-folder' / 'knockout.db'}")
    down = another(SQLALCHEMY_DATABASE_URI=gone)
    for _ in range(3):
        check_in(down, "web")
    [alert] = receiver.texts()
    assert "ALERT: database unreachable (OperationalError)" in alert
    check_in(app, "web")
    check_in(app, "web")
    assert kinds(receiver.texts()) == ["alert", "resolved"]


def test_a_dead_webhook_breaks_nothing_and_hears_it_all_later_once(app, receiver, caplog):
    app.config["ALERT_DISK_FREE_PERCENT"] = 100
    receiver.status = 500
    assert alerts.check("worker")  # said, logged, owed
    alerts.check("worker")
    assert receiver.posts == []
    assert "webhook failed (500 Server Error" in caplog.text
    app.config["ALERT_DISK_FREE_PERCENT"] = 0
    alerts.check("worker")  # over before anyone heard: the recovery is owed too
    receiver.status = 200
    alerts.check("worker")
    alerts.check("worker")
    assert kinds(receiver.texts()) == ["alert", "resolved"]
    state = json.loads((Path(app.instance_path) / "alerts.json").read_text())
    assert state["owed"] == [] and state["open"] == {}


def test_the_console_lists_open_incidents_and_the_latest(app, client, receiver):
    login(client)
    page = client.get("/admin/").get_data(as_text=True)
    assert 'id="alerts"' in page and "nothing needs a person" in page
    app.config["ALERT_DISK_FREE_PERCENT"] = 100
    alerts.check("worker")
    panel = client.get("/admin/alerts").get_data(as_text=True)
    assert "disk almost full" in panel and "nothing needs a person" not in panel
    app.config["ALERT_DISK_FREE_PERCENT"] = 0
    alerts.check("worker")
    panel = client.get("/admin/alerts").get_data(as_text=True)
    assert "nothing needs a person" in panel and "resolved" in panel


@pytest.mark.parametrize("settings, problem", [
    ({"ALERT_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/x"},
     "ALERT_WEBHOOK_URL must be an http"),
    ({"ALERT_FAILURE_RATE": 20.0}, "ALERT_FAILURE_RATE is a share .* not 20"),
    ({"ALERT_CHECK_SECONDS": 0.0}, "ALERT_CHECK_SECONDS must be a number of seconds above 0"),
])
def test_bad_alert_settings_are_refused_at_start(tmp_path, redis_url, settings, problem):
    with pytest.raises(ConfigError, match=problem):
        create_app(make_config(tmp_path, redis_url, **settings))

"""RQ's scheduler taken over within a minute: kill -9 the worker that holds its lock, and another
(or the same, restarted) runs the scheduled jobs — real worker processes, a real Redis."""
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from rq.job import Job as RQJob
from sqlalchemy import select

from quiz.clock import utcnow
from quiz.extensions import QUEUE_NAMES, db, get_queue, get_redis
from quiz.models import Message
from quiz.reminders import job_id, schedule_reminder
from quiz.worker import SCHEDULER_LOCK_SECONDS, AppScheduler

from .helpers import ROOT

LOCK = "rq:scheduler-lock:notify"


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("killed", ["worker and its scheduler", "the worker alone"])
def test_a_killed_scheduler_holder_is_taken_over_and_a_scheduled_job_runs_within_a_minute(
        app, load_bank, make_participant, redis_url, tmp_path, killed):
    """kill -9 the worker holding the lock (with its forked scheduler, as a dying machine takes
    both; or the worker alone, leaving its scheduler orphaned), start another: a reminder
    scheduled 5 s ahead runs from RQ's scheduler, not from reconcile, within 60 s of the kill."""
    load_bank()
    for _ in range(3):
        make_participant()
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "REDIS_URL": redis_url, "KNOCKOUT_INSTANCE": str(tmp_path / "instance"),
           "SECRET_KEY": "x", "ADMIN_API_TOKEN": "x", "LOG_LEVEL": "WARNING",
           "RECONCILE_SECONDS": "3600", "FORMS_RECONCILE_SECONDS": "3600",  # the scheduler alone
           # at the suite's priority: a worker niced below four test processes on two cores
           # could take most of the minute only to start (test_the_worker_yields… tests the nice)
           "WORKER_NICE": "0"}
    logs = tmp_path / "workers.log"

    def worker():
        with logs.open("ab") as log:
            return subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env,
                                    start_new_session=True, stdout=log, stderr=log)

    def seen() -> str:
        return f"; the workers' log:\n{logs.read_text()[-3000:]}"

    first, second = worker(), None
    try:
        deadline = time.monotonic() + 30
        while not (get_redis().exists(LOCK) and children(first.pid)):
            assert time.monotonic() < deadline, "the first worker never took the scheduler"
            time.sleep(0.1)
        [scheduler] = children(first.pid)
        holder = get_redis().get(LOCK)
        if killed == "the worker alone":
            os.kill(first.pid, signal.SIGKILL)
        else:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        second = worker()
        reminder = schedule_reminder("Round 2 starts soon", utcnow() + timedelta(seconds=5))
        db.session.commit()
        while get_redis().get(LOCK) in (None, holder):
            assert time.monotonic() < killed_at + 60, "nobody took the scheduler over" + seen()
            time.sleep(0.2)
        job = RQJob.fetch(job_id(reminder), connection=get_redis())
        while job.get_status(refresh=True) != "finished":
            assert time.monotonic() < killed_at + 60, (
                f"the reminder's job is {job.get_status()}" + seen())
            time.sleep(0.2)
        db.session.expire_all()
        assert reminder.status == "sent"
        assert len(db.session.scalars(select(Message).where(
            Message.reminder_id == reminder.id)).all()) == 3
        assert not alive(scheduler)  # an orphaned scheduler stopped itself (a killed one is gone)
    finally:
        for process in (first, second):
            if process is not None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()


def niceness(pid: int) -> set[int]:
    """The niceness of each of the process's threads (field 19 of their stat)."""
    return {int(stat.read_text().rsplit(")", 1)[1].split()[16])
            for stat in Path(f"/proc/{pid}/task").glob("*/stat")}


@pytest.mark.parametrize("setting, expected", [(None, 5), ("0", 0), ("12", 12)])
def test_the_worker_yields_shared_cores_to_the_web_processes(app, redis_url, tmp_path, setting,
                                                             expected):
    """`python worker.py` runs at WORKER_NICE (5 unless set): every thread of it and its
    scheduler, so that on a box it shares with the web processes a rush's requests come first."""
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "REDIS_URL": redis_url, "KNOCKOUT_INSTANCE": str(tmp_path / "instance"),
           "SECRET_KEY": "x", "ADMIN_API_TOKEN": "x", "LOG_LEVEL": "WARNING"}
    if setting is not None:
        env["WORKER_NICE"] = setting
    worker = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env,
                              start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not children(worker.pid):  # its scheduler: forked once the worker works
            assert worker.poll() is None and time.monotonic() < deadline, "the worker never ran"
            time.sleep(0.1)
        [scheduler] = children(worker.pid)
        assert niceness(worker.pid) == {expected}
        assert niceness(scheduler) == {expected}
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def lifetimes_set(redis_url: str, action) -> list[int]:
    """Every lifetime (seconds) Redis is told to give a key while `action` runs, read off
    MONITOR: SET … EX n, EXPIRE key n, and the lock script's TTL argument."""
    commands, done = [], "knockout-monitor-done"
    with redis.Redis.from_url(redis_url).monitor() as monitor:
        reader = threading.Thread(target=lambda: commands.extend(
            itertools.takewhile(lambda command: done not in command,
                                (entry["command"] for entry in monitor.listen()))))
        reader.start()
        action()
        redis.Redis.from_url(redis_url).echo(done)
        reader.join(10)
    lifetimes = []
    for command in commands:
        words = [word.strip('"') for word in command.split()]
        name = words[0].upper()
        if name == "SET" and "EX" in (word.upper() for word in words):
            lifetimes.append(int(words[[w.upper() for w in words].index("EX") + 1]))
        elif name == "EXPIRE" or name == "EVALSHA" and "scheduler-lock" in command:
            lifetimes.append(int(words[-1]))
    return lifetimes


def test_the_scheduler_never_sets_its_lock_for_longer_than_it_should_live(app, redis_url):
    """RQ gives its locks 61 s; a scheduler killed at any moment must leave them at most
    SCHEDULER_LOCK_SECONDS, so they are set to that from the start, never made longer and then
    shortened (the takeover above came a minute late when the kill fell in between)."""
    scheduler = AppScheduler([get_queue(name) for name in QUEUE_NAMES], connection=get_redis())
    lifetimes = lifetimes_set(redis_url, lambda: (scheduler.acquire_locks(),
                                                  scheduler.heartbeat()))
    assert scheduler.acquired_locks == set(QUEUE_NAMES)
    assert len(lifetimes) >= 2 * len(QUEUE_NAMES)  # each lock set, then refreshed
    assert max(lifetimes) <= SCHEDULER_LOCK_SECONDS
    assert scheduler.interval == 1  # its own, for the loop's sleep
    assert 0 < get_redis().ttl(LOCK) <= SCHEDULER_LOCK_SECONDS


def test_a_scheduler_whose_worker_died_before_its_loop_began_stops(app, monkeypatch):
    """The worker's pid is the one it had when it made the scheduler: a scheduler forked by a
    worker killed before the scheduler's loop began (its parent already init) stops at its first
    heartbeat instead of holding the lock as an orphan for good."""
    scheduler = AppScheduler([get_queue(name) for name in QUEUE_NAMES], connection=get_redis())
    assert scheduler.worker_pid == os.getpid()  # made in the worker
    monkeypatch.setattr(os, "getppid", lambda: 1)  # the forked child, its worker gone
    scheduler.heartbeat()
    assert scheduler._stop_requested

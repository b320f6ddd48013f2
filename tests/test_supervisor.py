"""The supervisor of the embedded event (quiz/supervisor.py): a dead part is restarted with backoff,
the others keep running, and a stop ends them all in time."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from quiz.config import ROOT
from quiz.stack import free_port
from quiz.supervisor import MAX_BACKOFF, MIN_BACKOFF, STABLE_SECONDS, Child, Supervisor

from .players import Api, ready_phone, round_links

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
STUBBORN = [sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"]


class Clock:
    """A clock the test moves by hand, so backoffs pass without waiting for them."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def kill_9(child: Child) -> None:
    os.kill(child.process.pid, signal.SIGKILL)
    child.process.wait(timeout=5)


def supervised(*argvs, clock=None, recorded=None):
    children = [Child(f"child{n}", argv, ROOT, dict(os.environ)) for n, argv in enumerate(argvs)]
    on_restart = (lambda child: recorded.append((child.name, child.restarts)) or True) \
        if recorded is not None else None
    return Supervisor(children, on_restart=on_restart, clock=clock or time.monotonic), children


def test_a_dead_child_is_started_again_after_its_backoff_and_the_others_keep_running():
    clock, recorded = Clock(), []
    supervisor, (worker, web) = supervised(SLEEPER, SLEEPER, clock=clock, recorded=recorded)
    supervisor.start()
    try:
        web_pid = web.process.pid
        kill_9(worker)
        supervisor.check()  # found dead: due again after MIN_BACKOFF
        assert not worker.running and worker.restart_at == clock.now + MIN_BACKOFF
        clock.now += MIN_BACKOFF / 2
        supervisor.check()
        assert not worker.running  # not before its backoff
        clock.now += MIN_BACKOFF
        supervisor.check()
        assert worker.running and worker.restarts == 1 and worker.last_exit == -signal.SIGKILL
        assert web.running and web.process.pid == web_pid  # untouched
        assert recorded == [("child0", 1)]
    finally:
        supervisor.stop()


def test_the_backoff_doubles_while_a_child_keeps_dying_and_resets_once_it_stayed_up():
    clock = Clock()
    supervisor, (child,) = supervised(SLEEPER, clock=clock)
    supervisor.start()
    try:
        waits = []
        for _ in range(7):
            kill_9(child)
            supervisor.check()
            waits.append(child.restart_at - clock.now)
            clock.now = child.restart_at
            supervisor.check()
        assert waits == [1, 2, 4, 8, 16, MAX_BACKOFF, MAX_BACKOFF]
        clock.now += STABLE_SECONDS  # up a minute: the next death is a new incident
        kill_9(child)
        supervisor.check()
        assert child.restart_at - clock.now == MIN_BACKOFF
    finally:
        supervisor.stop()


def test_a_restart_not_recorded_yet_is_recorded_once_it_can_be():
    clock, answers = Clock(), [False, True]
    supervisor, (child,) = supervised(SLEEPER, clock=clock)
    supervisor.on_restart = lambda child: answers.pop(0)  # Redis down at the first try
    supervisor.start()
    try:
        kill_9(child)
        supervisor.check()
        clock.now += MIN_BACKOFF
        supervisor.check()
        assert child.restarts == 1 and child.reported == 0
        supervisor.check()
        assert child.reported == 1 and answers == []
    finally:
        supervisor.stop()


def test_stop_ends_every_child_in_time_even_one_that_ignores_sigterm():
    supervisor, children = supervised(SLEEPER, STUBBORN, SLEEPER)
    supervisor.start()
    time.sleep(0.3)  # the stubborn one has set its handler
    started = time.monotonic()
    supervisor.stop(timeout=2)
    assert time.monotonic() - started < 4
    assert all(child.process.poll() is not None for child in children)
    assert children[1].process.returncode == -signal.SIGKILL  # killed at the deadline
    assert children[0].process.returncode == -signal.SIGTERM  # asked, and it went
    supervisor.check()
    assert not any(child.running for child in children)  # a stopping supervisor starts nothing


def demo_children(demo_pid: int) -> dict[str, int]:
    """The supervised parts of a running `flask demo`: name → pid."""
    found = {}
    for pid in Path(f"/proc/{demo_pid}/task/{demo_pid}/children").read_text().split():
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        # (a part that just died and is not reaped yet has no command line: it is none of them)
        for name, mark in (("redis", "redis-server"), ("worker", "worker.py"), ("web", "gunicorn")):
            if mark in command:
                found[name] = int(pid)
    return found


def wait_until(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return result


def healthz(url: str) -> dict:
    try:
        return requests.get(f"{url}/healthz", timeout=2).json()
    except (requests.RequestException, ValueError):
        return {}


def submit(phone: requests.Session, link: str, data: dict) -> bool:
    """Post a player's answers; True once the server acknowledged them (303)."""
    try:
        response = phone.post(f"{link}/submit", data=data, allow_redirects=False, timeout=10)
    except requests.RequestException:
        return False
    return response.status_code == 303


def stop_demo(demo: subprocess.Popen) -> None:
    """Whatever happened: the demo and every part it started are gone (each leads a group)."""
    if demo.poll() is not None:
        return
    parts = demo_children(demo.pid)
    demo.send_signal(signal.SIGINT)
    try:
        demo.wait(timeout=15)
    except subprocess.TimeoutExpired:
        demo.kill()
        demo.wait()
    for pid in parts.values():
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.mark.live
@pytest.mark.nodb  # the demo runs on its own SQLite file and embedded Redis
def test_the_demo_event_goes_on_when_its_worker_redis_and_web_are_killed(tmp_path):
    """kill -9 the worker, then Redis, then gunicorn's master, while players submit: each part comes
    back, every acknowledged answer is kept, each link and result SMS goes out once, and Ctrl-C
    still stops it all."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"PATH": os.environ["PATH"], "KNOCKOUT_INSTANCE": str(tmp_path / "instance"),
           "PUBLIC_BASE_URL": url, "ADMIN_API_TOKEN": "live-token", "ADMIN_PASSWORD": "pw",
           "SECRET_KEY": "demo-secret", "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING",
           "WEB_CONCURRENCY": "1", "RECONCILE_SECONDS": "2",
           "RESULTS_DELAY_SECONDS": "1"}  # results held a second after the close, not a minute
    log = open(tmp_path / "demo.log", "wb")
    demo = subprocess.Popen([sys.executable, "-m", "flask", "--app", "quiz", "demo", "--port",
                             str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: healthz(url).get("status") == "ok", 60, "the demo did not start")
        api, players = Api(url), 12
        for n in range(1, players + 1):
            api.register(f"Player {n}", n)
        api.start(1)
        links = round_links(api, 1, players)
        phones = {to: ready_phone(link, 1) for to, link in links.items()}
        acknowledged = set()
        order = list(phones)
        for part, group in zip(("worker", "redis", "web"), (order[:4], order[4:8], order[8:])):
            before = demo_children(demo.pid)
            os.kill(before[part], signal.SIGKILL)
            wait_until(lambda: demo_children(demo.pid).get(part) not in (None, before[part]), 60,
                       f"{part} was not started again")
            wait_until(lambda: healthz(url).get("status") == "ok", 60, f"not healthy after {part}")
            for to in group:  # a phone presses again until its answers are in, as people do
                wait_until(lambda: submit(phones[to][0], links[to], phones[to][1]), 30,
                           f"answers of {to} not taken after {part}")
                acknowledged.add(to)
        # Each restart is counted once Redis takes it (Redis's own, a moment after it is back).
        restarts = wait_until(lambda: healthz(url).get("restarts", {}).keys() >= {"redis", "web"}
                              and healthz(url)["restarts"], 10, "restarts not counted")
        # The worker also quits while Redis is away (RQ does), and is started again for that too.
        assert restarts["redis"] == restarts["web"] == 1 and 1 <= restarts["worker"] <= 2
        summary = api.end(1)
        assert summary["submitted"] == len(acknowledged) == players
        # a confirmation at joining, a link, a result: each once
        outbox = wait_until(lambda: api.outbox() if len(api.outbox()) >= 3 * players else None,
                            60, "results not sent")
        for kinds in ({"confirmation"}, {"round_link"}, {m["kind"] for m in outbox} - {
                "confirmation", "round_link"}):
            assert sorted(m["to"] for m in outbox if m["kind"] in kinds) == sorted(phones), kinds
        before_stop = (tmp_path / "demo.log").stat().st_size
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.wait(timeout=15) == 0
    finally:
        stop_demo(demo)
        log.close()
    stopping = (tmp_path / "demo.log").read_text()[before_stop:]
    assert "Traceback" not in stopping, stopping[-3000:]  # (the outages above logged theirs)
    assert stopping.rstrip().endswith("Knockout stopped.")

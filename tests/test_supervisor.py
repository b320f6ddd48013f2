"""The supervisor of the embedded event (quiz/supervisor.py): a dead part is restarted with backoff,
the others keep running, and a stop ends them all in time."""
import os
import signal
import sys
import time

from quiz.config import ROOT
from quiz.supervisor import MAX_BACKOFF, MIN_BACKOFF, STABLE_SECONDS, Child, Supervisor

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

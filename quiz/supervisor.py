"""Keeps the embedded event's processes up: Redis (on its AOF), the RQ worker and the web server.

`flask --app quiz demo` runs each as a child of one supervisor, in a process group of its own. A
child that dies is started again after a backoff (1 s, doubling up to 30 s; back to 1 s once it has
stayed up a minute) while the others keep running: no single dead process ends the event. Ctrl-C
(or SIGTERM) stops them all, web first and Redis last (it writes its AOF), within STOP_SECONDS.
"""
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
import urllib.request
from pathlib import Path

import redis

log = logging.getLogger(__name__)

RESTARTS_KEY = "knockout:restarts"  # child name → how often the supervisor started it again
MIN_BACKOFF = 1.0
MAX_BACKOFF = 30.0
STABLE_SECONDS = 60.0  # up this long: the next death restarts after MIN_BACKOFF again
STOP_SECONDS = 10.0
READY_SECONDS = 30.0


@dataclass
class Child:
    """One supervised process: how to start it, and how to tell it is ready to serve."""

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    ready: Callable[[], bool] | None = None
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = MIN_BACKOFF
    restart_at: float | None = None  # when a dead child is due to start again
    last_exit: int | None = None
    reported: int = 0  # restarts the on_restart callback has recorded

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Starts the children in order, restarts any that dies, stops them all in reverse order."""

    def __init__(self, children: list[Child], on_restart: Callable[[Child], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.children, self.on_restart, self.clock = children, on_restart, clock
        self.stopping = threading.Event()

    def start(self) -> None:
        """Each child in turn, ready before the next starts (Redis before the rest)."""
        for child in self.children:
            self._spawn(child)
            self._wait_ready(child)

    def check(self) -> None:
        """One look at every child: note the dead, start again those whose backoff is over."""
        now = self.clock()
        for child in self.children:
            if self.stopping.is_set() or child.running:
                continue
            if child.restart_at is None:  # just found dead
                child.last_exit = child.process.returncode if child.process else None
                kill_group(child.process)  # e.g. gunicorn's workers, orphaned by a killed master
                if now - child.started_at >= STABLE_SECONDS:
                    child.backoff = MIN_BACKOFF
                child.restart_at = now + child.backoff
                log.warning("%s exited (%s); starting it again in %.0f s", child.name,
                            child.last_exit, child.backoff)
                child.backoff = min(child.backoff * 2, MAX_BACKOFF)
            elif now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)
        for child in self.children:  # recorded once it can be (Redis may be the one restarting)
            if self.on_restart is not None and child.reported < child.restarts \
                    and self.on_restart(child):
                child.reported = child.restarts

    def run(self, every: float = 0.5) -> None:
        """Check every `every` seconds until stop() is asked for (from a signal handler)."""
        while not self.stopping.wait(every):
            self.check()

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """SIGTERM to each child, the last started first; SIGKILL to whatever is left at the end."""
        self.stopping.set()
        deadline = self.clock() + timeout
        for child in reversed(self.children):
            if not child.running:
                continue
            try:
                os.killpg(child.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                kill_group(child.process)
                child.process.wait(timeout=5)

    def _spawn(self, child: Child) -> None:
        # A session of its own: Ctrl-C reaches only the supervisor, which stops them in order.
        child.process = subprocess.Popen(child.argv, cwd=child.cwd, env=child.env,
                                         start_new_session=True)
        child.started_at, child.restart_at = self.clock(), None

    def _wait_ready(self, child: Child) -> None:
        deadline = self.clock() + READY_SECONDS
        while child.ready is not None and not child.ready():
            if not child.running or self.clock() > deadline:
                raise RuntimeError(f"{child.name} did not start (exit {child.process.poll()})")
            time.sleep(0.1)


def web_answers(url: str) -> bool:
    """The web server answers `url` (its /ping) with 200."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def record_restart(redis_url: str, child: Child) -> bool:
    """Count the child's restarts where the console reads them (RESTARTS_KEY); False if Redis is
    not there (yet)."""
    try:
        redis.Redis.from_url(redis_url, socket_timeout=1).hset(RESTARTS_KEY, child.name,
                                                               child.restarts)
    except redis.RedisError:
        return False
    return True


def kill_group(process: subprocess.Popen | None) -> None:
    """SIGKILL a child's whole process group (it leads one: start_new_session)."""
    if process is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

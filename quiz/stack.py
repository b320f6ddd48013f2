"""Knockout's processes — gunicorn with gunicorn.conf.py and worker.py — started on loopback with a
given environment, sharing one Redis and one database.

The live tests (tests/live_fixtures.py) and the HTTP benchmark (bench/load.py) start them with
their own settings on top.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from quiz.config import ROOT


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """gunicorn (gevent) and worker.py as real processes on loopback; `env` is their settings."""

    def __init__(self, directory: Path, redis_url: str, database_url: str, workers: int = 2, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "PATH": "/usr/bin:/bin", "KNOCKOUT_INSTANCE": str(directory / "instance"),
            "DATABASE_URL": database_url, "REDIS_URL": redis_url, "PUBLIC_BASE_URL": self.url,
            "BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": str(workers), **env}
        self.logs = directory / "live.log"
        self.processes: list[subprocess.Popen] = []

    def migrate(self) -> None:
        """Bring the database to the newest migration, as a deploy does before starting the
        processes."""
        run = [sys.executable, "-m", "flask", "--app", "quiz", "db", "upgrade"]
        subprocess.run(run, cwd=ROOT, env=self.env, check=True, capture_output=True)

    def start(self):
        """Migrate, start gunicorn and the worker; returns once the web answers (30 s at most)."""
        self.migrate()
        self.log = open(self.logs, "ab")
        self.processes = [self._spawn("-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"),
                          self._spawn("worker.py")]
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.url + "/register", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.stop()
                raise RuntimeError("live stack did not start:\n" + self.logs.read_text()[-3000:])
            time.sleep(0.2)

    def _spawn(self, *args: str) -> subprocess.Popen:
        """A process of the stack, in a session of its own: stop() ends gunicorn's master and
        workers together."""
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=self.env, stdout=self.log,
                                stderr=self.log, start_new_session=True)

    def restart_worker(self) -> None:
        """Start worker.py again after it quit, as a supervisor (compose's restart policy) would."""
        self.processes[1] = self._spawn("worker.py")

    @property
    def web_workers(self) -> list[int]:
        """The pids of gunicorn's worker processes (children of its master)."""
        master = self.processes[0].pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return [int(pid) for pid in children]

    def stop(self, graceful: bool = True):
        """SIGTERM, as a deploy stops them (gunicorn drains, the worker finishes its job: a second
        or two); or, not graceful, SIGKILL to every process of the stack at once (nothing left to
        see)."""
        if not self.processes:
            return
        for process in self.processes:
            if graceful:
                process.terminate()
            else:
                kill_group(process)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                kill_group(process)
                process.wait()
        self.log.close()
        self.processes = []


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a process and, if it leads a process group (start_new_session), every process in
    it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:  # gone already, or not a group leader
        process.kill()

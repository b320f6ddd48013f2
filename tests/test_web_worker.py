"""The web processes' gunicorn worker (web_worker.py): on a pass of its event loop, a web process
takes up to ACCEPT_PER_PASS of the connections waiting to be accepted, not gunicorn's one. On a
real gunicorn: what a stuck or restarted process does to the connections (nothing waits for it,
nothing is lost)."""
import http.client
import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import gevent
import pytest
from gevent.server import StreamServer
from gunicorn.workers import ggevent

import web_worker
from quiz.config import ROOT
from quiz.stack import free_port


def waiting_connections(count: int):
    """A listening socket with `count` connections waiting in its queue (not accepted yet)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    clients = [socket.create_connection(listener.getsockname()) for _ in range(count)]
    return listener, clients


def accepted_on_one_pass(server_class) -> int:
    """How many waiting connections one readiness of the listening socket takes in, the server
    set up as gunicorn sets it up with more than one worker."""
    listener, clients = waiting_connections(web_worker.ACCEPT_PER_PASS + 4)
    handled = []
    server = server_class(listener, handle=lambda sock, address: handled.append(sock))
    server.max_accept = 1  # what gunicorn's gevent worker sets with several workers
    server.start()
    try:
        server._do_read()  # what the loop runs once when the listening socket is readable
        gevent.sleep(0)  # the handlers spawned run
        return len(handled)
    finally:
        server.stop()
        for sock in handled:
            sock.close()
        for client in clients:
            client.close()


def test_a_pass_of_the_loop_accepts_a_batch_of_waiting_connections():
    assert accepted_on_one_pass(StreamServer) == 1  # gunicorn's own: one a pass
    assert accepted_on_one_pass(web_worker.Server) == web_worker.ACCEPT_PER_PASS


def test_gunicorn_runs_the_web_processes_on_this_worker(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # the file's default: a new dir
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["worker_class"] == "web_worker.Worker"
    assert issubclass(web_worker.Worker, ggevent.GeventWorker)


def test_the_worker_makes_its_servers_from_this_server_class(monkeypatch):
    """gunicorn's worker makes its servers from its module's StreamServer in `run`: the worker
    puts this server class there first."""
    monkeypatch.setattr(ggevent, "StreamServer", StreamServer)
    made = []
    monkeypatch.setattr(ggevent.GeventWorker, "run",
                        lambda worker: made.append(ggevent.StreamServer))
    web_worker.Worker.__new__(web_worker.Worker).run()
    assert made == [web_worker.Server]


class Probe:
    """gunicorn running web_worker.Worker (`workers` processes) on tests/worker_probe.py."""

    def __init__(self, tmp_path, workers: int, *options: str):
        self.port = free_port()
        settings = tmp_path / "probe.conf.py"  # not the project's gunicorn.conf.py (its hooks)
        settings.write_text("")
        self.log = open(tmp_path / "gunicorn.log", "ab")
        self.master = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(settings), "-k", "web_worker.Worker",
             "-w", str(workers), "-b", f"127.0.0.1:{self.port}", "--graceful-timeout", "5",
             *options, "tests.worker_probe:app"], cwd=ROOT, stdout=self.log, stderr=self.log,
            start_new_session=True)
        try:
            until(lambda: self.running() and len(self.workers()) == workers and self.ask())
        except BaseException:
            self.stop()
            raise

    def running(self) -> bool:
        assert self.master.poll() is None, Path(self.log.name).read_text()[-3000:]
        return True

    def workers(self) -> set[int]:
        pid = self.master.pid
        return {int(kid) for kid in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}

    def ask(self, path: str = "/") -> dict | None:
        """One request on a new connection: the answer (None: none came)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path, headers={"Connection": "close"})
            response = connection.getresponse()
            return json.loads(response.read()) if response.status == 200 else None
        except OSError:
            return None
        finally:
            connection.close()

    def stop(self):
        self.master.terminate()
        self.master.wait(timeout=20)
        self.log.close()


def until(ready, seconds: float = 30):
    """Wait for `ready()`: a bound for the processes to boot or a restart to go through, not a
    timing."""
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, "not reached"
        time.sleep(0.1)


@pytest.fixture
def probe(tmp_path, request):
    """Two processes; a test's parameter: (workers, gunicorn options...)."""
    workers, *options = getattr(request, "param", (2,))
    server = Probe(tmp_path, workers, *options)
    yield server
    server.stop()
    assert server.master.returncode == 0  # a graceful stop


def test_a_stuck_web_process_leaves_new_connections_to_the_other(probe, tmp_path):
    """One listening socket, the master's, that every process accepts from: while one process's
    loop is stuck, every new connection is answered by the other, none waits for the stuck one."""
    fifo = tmp_path / "stuck"
    os.mkfifo(fifo)
    blocked = threading.Thread(target=probe.ask, args=(f"/block?{fifo}",))
    blocked.start()
    until(fifo.with_suffix(".pid").exists)
    stuck = int(fifo.with_suffix(".pid").read_text())
    answers = [probe.ask() for _ in range(40)]
    with open(fifo, "wb"):
        pass  # the stuck process goes on
    blocked.join()
    assert None not in answers
    assert {answer["pid"] for answer in answers} == probe.workers() - {stuck}


def test_a_graceful_restart_loses_no_connection(probe):
    """SIGHUP: gunicorn starts new processes and stops the old ones gracefully; every request on a
    new connection meanwhile is answered."""
    before, answers, stop = probe.workers(), [], threading.Event()

    def keep_asking():
        while not stop.is_set():
            answers.append(probe.ask())

    asking = threading.Thread(target=keep_asking)
    asking.start()
    try:
        until(lambda: len(answers) > 20)
        probe.master.send_signal(signal.SIGHUP)
        until(lambda: not probe.workers() & before and len(probe.workers()) == 2)
        until(lambda: {a["pid"] for a in answers[-20:] if a} == probe.workers())
    finally:
        stop.set()
        asking.join()
    assert None not in answers


@pytest.mark.parametrize("probe", [(2, "--max-requests", "5")], indirect=True)
def test_processes_restarted_by_max_requests_lose_no_connection(probe):
    """A process that served max_requests stops after its answer and a new one starts, again and
    again: every request is answered, on new connections and on a keep-alive one."""
    answers = []
    until(lambda: answers.append(probe.ask()) or None in answers
          or len({answer["pid"] for answer in answers}) > 4)
    assert None not in answers
    kept = http.client.HTTPConnection("127.0.0.1", probe.port, timeout=10)
    for _ in range(10):  # the answer that ends a process's run closes its connection: a new one
        kept.request("GET", "/")
        response = kept.getresponse()
        assert response.status == 200
        response.read()
        if response.getheader("Connection", "").lower() == "close":
            kept.close()
    kept.close()

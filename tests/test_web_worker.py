"""The web processes' gunicorn worker (web_worker.py): on a pass of its event loop, a web process
takes up to ACCEPT_PER_PASS of the connections waiting to be accepted, not gunicorn's one. On a
real gunicorn: what a stuck or restarted process does to the connections (nothing waits for it,
nothing is lost)."""
import collections
import http.client
import json
import re
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
from gunicorn.http import wsgi
from gunicorn.workers import ggevent

import web_worker
from quiz.config import ROOT
from quiz.stack import free_port
from quiz.web import priority

from . import worker_probe


@pytest.fixture(autouse=True)
def no_arrivals(monkeypatch):
    """Each test's servers count their own arriving connections (a test's handlers are no
    gunicorn worker: nothing takes theirs out)."""
    monkeypatch.setattr(web_worker, "_arriving", {})


def waiting_connections(count: int):
    """A listening socket with `count` connections waiting in its queue (not accepted yet),
    non-blocking as gunicorn's are: an accept with none left waiting ends a pass (a blocking one
    would stop the test process's loop, and the test, for good)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(max(64, count))
    listener.setblocking(False)
    clients = [socket.create_connection(listener.getsockname()) for _ in range(count)]
    return listener, clients


def stop(server, sockets) -> None:
    """Stop the server and close the connections (both ends)."""
    server.stop()
    for sock in sockets:
        sock.close()


def accepted_on_one_pass(server_class) -> int:
    """How many waiting connections one readiness of the listening socket takes in, the server
    set up as gunicorn sets it up with more than one worker."""
    listener, clients = waiting_connections(web_worker.ACCEPT_PER_PASS + 4)
    handled = []
    server = server_class(listener, handle=lambda sock, address: handled.append(sock))
    server.max_accept = 1  # what gunicorn's gevent worker sets with several workers
    server.start()
    server.stop_accepting()  # only the pass below reads the socket, not the loop's own watch
    try:
        server._do_read()  # what the loop runs once when the listening socket is readable
        gevent.sleep(0)  # the handlers spawned run
        return len(handled)
    finally:
        stop(server, handled + clients)


def test_a_pass_of_the_loop_accepts_a_batch_of_waiting_connections():
    assert accepted_on_one_pass(StreamServer) == 1  # gunicorn's own: one a pass
    # as many as may be on their way (none has sent its request within the pass)
    assert accepted_on_one_pass(web_worker.Server) == web_worker.ARRIVING_HOLD


def test_a_wave_of_new_connections_is_left_in_part_to_the_other_processes(monkeypatch):
    """A process that took in ARRIVING_HOLD connections whose requests it has not read yet takes
    no more for now, however few submits it has: the rest of the wave waits for the other
    processes. Once their requests are read, it takes connections again."""
    monkeypatch.setattr(priority, "CURRENT", None)  # no submit in flight
    listener, clients = waiting_connections(web_worker.ARRIVING_HOLD + 8)
    handled = []
    server = web_worker.Server(listener, handle=lambda sock, address: handled.append(sock))
    server.start()
    try:
        gevent.sleep(20 * web_worker.HOLD_CHECK_SECONDS)
        assert len(handled) == web_worker.ARRIVING_HOLD
        for sock in handled:
            web_worker.arrived(sock)  # their first requests read
        deadline = time.monotonic() + 2
        while len(handled) < web_worker.ARRIVING_HOLD + 8:
            assert time.monotonic() < deadline, f"{len(handled)} taken after the reads"
            gevent.sleep(web_worker.HOLD_CHECK_SECONDS)
    finally:
        stop(server, handled + clients)
        for sock in handled:
            web_worker.arrived(sock)


class CountedServer(web_worker.Server):
    """The server, counting how often the loop has it look at the listening socket."""
    looks = 0

    def _do_read(self):
        self.looks += 1
        super()._do_read()


def test_a_process_in_a_big_rush_leaves_new_connections_to_the_others(monkeypatch):
    """With ACCEPT_HOLD submits in flight in its process, the server takes no connection: they
    wait in the listen queue for the other processes (under read load one process took a whole
    wave); once the count drops, it takes them again within a few checks."""
    rush = type("Rush", (), {"in_flight": web_worker.ACCEPT_HOLD})()
    monkeypatch.setattr(priority, "CURRENT", rush)
    listener, clients = waiting_connections(4)
    handled = []
    server = CountedServer(listener, handle=lambda sock, address: handled.append(sock))
    server.start()
    try:
        started = time.monotonic()
        gevent.sleep(20 * web_worker.HOLD_CHECK_SECONDS)  # the loop sees the socket readable
        checks = (time.monotonic() - started) / web_worker.HOLD_CHECK_SECONDS
        # it looks once a check, not on every pass of the loop (a readable socket it keeps
        # watching without accepting would be thousands of looks: a spin)
        assert handled == [] and server.looks <= checks + 2, (server.looks, checks)
        rush.in_flight = web_worker.ACCEPT_HOLD - 8  # below the hold, with room for the 4
        deadline = time.monotonic() + 2
        while len(handled) < 4:
            assert time.monotonic() < deadline, f"{len(handled)} of 4 taken after the rush"
            gevent.sleep(web_worker.HOLD_CHECK_SECONDS)
        listener_stays = server._watcher is not None
        assert listener_stays  # accepting again: the next connection is taken at once
    finally:
        stop(server, handled + clients)
    gevent.sleep(2 * web_worker.HOLD_CHECK_SECONDS)  # a check due after the stop does nothing
    assert server._watcher is None


def test_connections_taken_in_count_toward_the_hold_until_their_first_request(monkeypatch):
    """A wave's connections are taken in before their requests are read: each counts toward the
    hold from its accept, so a process stops at the hold however far the reads lag behind, and a
    connection that never sends stops counting after ARRIVING_SECONDS."""
    monkeypatch.setattr(priority, "CURRENT", None)  # no submit in flight
    monkeypatch.setattr(web_worker, "ACCEPT_HOLD", 3)
    monkeypatch.setattr(web_worker, "ARRIVING_SECONDS", 1.0)
    listener, clients = waiting_connections(5)
    handled = []
    server = web_worker.Server(listener, handle=lambda sock, address: handled.append(sock))
    server.start()
    try:
        gevent.sleep(20 * web_worker.HOLD_CHECK_SECONDS)
        assert len(handled) == 3 and web_worker.arriving() == 3  # held: none has sent its request
        web_worker.arrived(handled[0])  # gunicorn read its first request
        deadline = time.monotonic() + 2
        while len(handled) < 4:
            assert time.monotonic() < deadline, "no connection taken once one had its request"
            gevent.sleep(web_worker.HOLD_CHECK_SECONDS)
        gevent.sleep(20 * web_worker.HOLD_CHECK_SECONDS)
        assert len(handled) == 4  # back at the hold
        gevent.sleep(1.0)  # the silent ones stop counting: the last connection is taken
        deadline = time.monotonic() + 2
        while len(handled) < 5:
            assert time.monotonic() < deadline, "silent connections kept the process holding"
            gevent.sleep(web_worker.HOLD_CHECK_SECONDS)
        assert web_worker.arriving() == 1
    finally:
        stop(server, handled + clients)
        for sock in handled:
            web_worker.arrived(sock)
    assert web_worker.arriving() == 0


def test_gunicorn_runs_the_web_processes_on_this_worker(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # the file's default: a new dir
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["worker_class"] == "web_worker.Worker"
    assert issubclass(web_worker.Worker, ggevent.GeventWorker)


def test_a_metrics_directory_the_server_made_goes_when_it_exits(monkeypatch, tmp_path):
    """Each start made a directory for the processes' metrics: the server removes its own on exit
    (a machine restarting its server for days kept every one), never one the operator set."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # (so that the test's end restores it)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    made = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    del os.environ["PROMETHEUS_MULTIPROC_DIR"]  # the file set it for the workers it would start
    directory = Path(made["metrics_dir"])
    assert directory.is_dir() and directory.name.startswith("knockout-metrics-")
    made["on_exit"](None)
    assert not directory.exists()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    given = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    given["on_exit"](None)
    assert tmp_path.is_dir() and given["metrics_dir"] == str(tmp_path)


def test_the_worker_makes_its_servers_and_responses_from_these_classes(monkeypatch):
    """gunicorn's worker makes its servers from its module's StreamServer in `run`, and each
    HTTP/1 response from gunicorn.http.wsgi's Response: the worker puts these classes there
    first."""
    monkeypatch.setattr(ggevent, "StreamServer", StreamServer)
    monkeypatch.setattr(wsgi, "Response", wsgi.Response)
    made = []
    monkeypatch.setattr(ggevent.GeventWorker, "run",
                        lambda worker: made.append((ggevent.StreamServer, wsgi.Response)))
    web_worker.Worker.__new__(web_worker.Worker).run()
    assert made == [(web_worker.Server, web_worker.Response)]


class Probe:
    """gunicorn running web_worker.Worker (`workers` processes) on tests/worker_probe.py."""

    def __init__(self, tmp_path, workers: int, *options: str, worker: str = "web_worker.Worker"):
        self.port = free_port()
        settings = tmp_path / "probe.conf.py"  # not the project's gunicorn.conf.py (its hooks)
        settings.write_text("")
        self.log = open(tmp_path / f"gunicorn-{self.port}.log", "ab")
        self.master = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(settings), "-k", worker,
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


def test_keep_alive_connections_opened_at_once_are_shared_by_the_processes(probe):
    """64 connections opened at once, as a load balancer's keep-alive pool opens them, then a
    request on each: both processes answer a share (one process taking them all would serve
    every later request on them with one core)."""
    answered = set()  # both processes up and accepting (a process still booting takes none)
    until(lambda: answered.add(probe.ask()["pid"]) or answered == probe.workers())
    connections = [http.client.HTTPConnection("127.0.0.1", probe.port, timeout=10)
                   for _ in range(64)]
    try:
        for connection in connections:
            connection.connect()
        pids = []
        for connection in connections:
            connection.request("GET", "/")
            pids.append(json.loads(connection.getresponse().read())["pid"])
    finally:
        for connection in connections:
            connection.close()
    shares = collections.Counter(pids)
    assert set(shares) == probe.workers() and min(shares.values()) >= 16, shares


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


# Raw requests for the comparison with gunicorn's own worker: each ends with one asking to close, so
# the answer is everything up to the end of the connection.
CLOSE = "Host: probe\r\nConnection: close\r\n\r\n"
KEEP = "Host: probe\r\n\r\n"
RAW_REQUESTS = {
    **{f"{name}, keep-alive then close": f"GET /case/{name} HTTP/1.1\r\n{KEEP}"
       f"GET /case/{name} HTTP/1.1\r\n{CLOSE}" for name in worker_probe.CASES},
    **{f"{name}, HTTP/1.0": f"GET /case/{name} HTTP/1.0\r\n\r\n" for name in worker_probe.CASES},
    "HEAD, keep-alive then close": f"HEAD /case/length HTTP/1.1\r\n{KEEP}"
                                   f"HEAD /case/chunked HTTP/1.1\r\n{CLOSE}",
    "a file with its length (sendfile)": f"GET /file/length HTTP/1.1\r\n{KEEP}"
                                         f"GET /file/length HTTP/1.1\r\n{CLOSE}",
    "a file, chunked (sendfile)": f"GET /file HTTP/1.1\r\n{KEEP}GET /file HTTP/1.1\r\n{CLOSE}",
    "a file, HEAD": f"HEAD /file/length HTTP/1.1\r\n{CLOSE}",
    "pipelined": "".join(f"GET /case/{name} HTTP/1.1\r\n{KEEP}" for name in worker_probe.CASES
                         if not name.startswith("fails")) + f"GET /case/length HTTP/1.1\r\n{CLOSE}",
}


def raw_answer(port: int, request: str) -> bytes:
    """Everything the server sends for `request` until it closes the connection, Date left out
    (the one header that depends on when)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(request.encode())
        received = b"".join(iter(lambda: client.recv(65536), b""))
    return re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: -", received)


@pytest.fixture(scope="module")
def both_workers(tmp_path_factory):
    """gunicorn's own gevent worker and web_worker.Worker on the probe app, one process each."""
    ours = Probe(tmp_path_factory.mktemp("ours"), 1)
    try:
        theirs = Probe(tmp_path_factory.mktemp("theirs"), 1, worker="gevent")
    except BaseException:
        ours.stop()
        raise
    yield ours, theirs
    ours.stop()
    theirs.stop()


@pytest.mark.parametrize("request_name", RAW_REQUESTS)
def test_the_same_bytes_on_the_wire_as_gunicorns_own_worker(both_workers, request_name):
    """Every way an app answers (a body with its length or streamed in chunks, empty, a first item
    empty, HEAD, 204/304, a file by sendfile, an app raising before or after its first bytes,
    Connection: close, keep-alive, HTTP/1.0, pipelined requests): byte for byte gunicorn's."""
    ours, theirs = both_workers
    request = RAW_REQUESTS[request_name]
    answer = raw_answer(ours.port, request)
    assert answer == raw_answer(theirs.port, request)
    assert answer.startswith(b"HTTP/1.")


def sends_for(port: int, path: str) -> int:
    """How many sends the web process made to answer `path` (the probe's count, on one keep-alive
    connection)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for asked in ("/sends", path, "/sends"):  # the first /sends: the count from 0 after it
            connection.request("GET", asked)
            answer = connection.getresponse().read()
        return int(answer)
    finally:
        connection.close()


@pytest.mark.parametrize("path, gunicorns, ours", [
    ("/case/length", 2, 1), ("/case/length-items", 4, 3), ("/case/length-first-empty", 2, 1),
    ("/case/length-empty", 1, 1), ("/case/chunked", 5, 4), ("/case/chunked-first-empty", 3, 2),
    ("/case/chunked-empty", 2, 1), ("/case/streamed-first-empty", 3, 2), ("/case/write", 4, 3),
    ("/case/no-content", 1, 1), ("/case/not-modified", 1, 1), ("/file/length", 2, 2),
])
def test_a_response_sends_its_headers_with_its_first_body_bytes(both_workers, path, gunicorns,
                                                                 ours):
    """The headers wait for the body's first bytes: an answer in one piece is one send, not
    gunicorn's two (the headers, then the body); a streamed one saves that one send too. (A file:
    its headers, then the file by gevent's sendfile, as gunicorn sends it.)"""
    mine, theirs = both_workers
    assert sends_for(theirs.port, path) == gunicorns
    assert sends_for(mine.port, path) == ours

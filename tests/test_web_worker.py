"""The web processes' gunicorn worker (web_worker.py): on a pass of its event loop, a web process
takes up to ACCEPT_PER_PASS of the connections waiting to be accepted, not gunicorn's one; and the
listening socket's queue (gunicorn.conf.py's backlog) holds a room's new connections."""
import logging
import resource
import runpy
import socket
import time
from pathlib import Path

import gevent
import pytest
from gevent.server import StreamServer
from gunicorn.config import Config
from gunicorn.sock import create_sockets
from gunicorn.workers import ggevent

import web_worker
from quiz.config import ROOT


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


def accept_queue_length(port: int) -> int:
    """Connections waiting to be accepted on the listening socket at `port` (the kernel's count:
    rx_queue of a LISTEN line in /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"no listening socket on port {port}")


def test_the_listening_socket_holds_a_room_of_new_connections(monkeypatch, tmp_path):
    """gunicorn's own default queue (2048) overflowed under the 10,000-player herd: the kernel
    dropped new connections and phones retried after 1, 3, 7 s. The socket gunicorn makes from
    gunicorn.conf.py holds more than that."""
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    if somaxconn <= 2048:
        pytest.skip(f"net.core.somaxconn is {somaxconn}: the kernel caps any backlog at it")
    wanted = 2048 + 100
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted + 500), hard))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    config = Config()
    for name, value in runpy.run_path(str(ROOT / "gunicorn.conf.py")).items():
        if name in config.settings:
            config.set(name, value)
    config.set("bind", ["127.0.0.1:0"])
    [listener] = create_sockets(config, logging.getLogger("test"))
    port = listener.sock.getsockname()[1]
    clients = []
    try:
        for _ in range(wanted):  # none accepted: each waits in the queue once its handshake is done
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
            clients.append(client)
        deadline = time.monotonic() + 10
        while accept_queue_length(port) < wanted and time.monotonic() < deadline:
            time.sleep(0.05)
        # gunicorn's default queue: 2049 at most, the rest dropped
        assert accept_queue_length(port) == wanted
    finally:
        for client in clients:
            client.close()
        listener.close()

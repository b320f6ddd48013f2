"""The web processes' gunicorn worker (web_worker.py): on a pass of its event loop, a web process
takes up to ACCEPT_PER_PASS of the connections waiting to be accepted, not gunicorn's one."""
import runpy
import socket

import gevent
from gevent.server import StreamServer
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

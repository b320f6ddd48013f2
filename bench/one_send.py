"""CPU a web process spends on gunicorn's HTTP/1 path for one response (web_worker.py): parse a
keep-alive request on a real loopback TCP connection (gevent sockets, TCP_NODELAY as gunicorn sets
it), make the response, write its body, close it — with gunicorn's Response and with
web_worker.Response, alternated, medians. The client is another process (its CPU not counted); the
unit is the Flask test client's `/ping` in the same run. No app on the path: only what the worker
adds. Run: `flock /tmp/bench.lock .venv/bin/python -m bench.one_send` (N=..., ROUNDS=...)."""
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gevent import socket
from gunicorn import http
from gunicorn.config import Config
from gunicorn.http import wsgi

import web_worker
from quiz import create_app
from quiz.config import TestConfig
from quiz.embedded import server_args, wait_for

N, ROUNDS = int(os.environ.get("N", "3000")), int(os.environ.get("ROUNDS", "9"))
REQUEST = (b"GET /f/abcdefghijkl HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: phone\r\n"
           b"Accept: */*\r\n\r\n")
BODIES = {"/ping's size (2 bytes)": b"ok", "a page (9 KB)": b"x" * 9000}
HEADERS = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
CLIENT = f"""
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
buffer = b""
while True:  # ask, read the answer (its Content-Length), ask again, until the server closes
  try:
    c.sendall({REQUEST!r})
    while b"\\r\\n\\r\\n" not in buffer:
        more = c.recv(1 << 20)
        if not more:
            sys.exit(0)
        buffer += more
    head, buffer = buffer.split(b"\\r\\n\\r\\n", 1)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\\r\\n")[0])
    while len(buffer) < length:
        buffer += c.recv(1 << 20)
    buffer = buffer[length:]
  except ConnectionResetError:  # the bench closed with a request of ours unread
    sys.exit(0)
"""


def responses(server, address, parser, cfg, body) -> float:
    """µs of this thread's CPU a response, over N."""
    started = time.thread_time()
    for _ in range(N):
        response, _ = wsgi.create(next(parser), server, address, ("127.0.0.1", 8000), cfg)
        response.start_response("200 OK", [*HEADERS, ("Content-Length", str(len(body)))])
        response.write(body)
        response.close()
    return (time.thread_time() - started) / N * 1e6


def flask_ping(directory: Path):
    """µs of CPU a `/ping` through the Flask test client, over N."""
    redis_url = f"unix://{directory / 'redis.sock'}"
    config = type("OneSendConfig", (TestConfig,), {
        "INSTANCE_PATH": str(directory), "REDIS_URL": redis_url, "TESTING": False,
        "LOG_LEVEL": "WARNING", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{directory / 'db'}"})
    client = create_app(config).test_client()
    assert client.get("/ping").status_code == 200
    started = time.thread_time()
    for _ in range(N):
        client.get("/ping")
    return (time.thread_time() - started) / N * 1e6


def main():
    cfg = Config()
    gunicorns = wsgi.Response
    with tempfile.TemporaryDirectory() as tmp:
        redis = subprocess.Popen(server_args(Path(tmp), Path(tmp) / "redis.sock"),
                                 stdout=subprocess.DEVNULL)
        listener = socket.socket()
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # gunicorn's
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = subprocess.Popen([sys.executable, "-c", CLIENT, str(listener.getsockname()[1])])
        try:
            wait_for(f"unix://{Path(tmp) / 'redis.sock'}")
            server, address = listener.accept()
            parser = http.get_parser(cfg, server, address)
            figures = {}
            for _ in range(ROUNDS):
                figures.setdefault("ping", []).append(flask_ping(Path(tmp)))
                for name, body in BODIES.items():
                    for label, response_class in (("gunicorn", gunicorns),
                                                  ("web_worker", web_worker.Response)):
                        wsgi.Response = response_class
                        figures.setdefault((name, label), []).append(
                            responses(server, address, parser, cfg, body))
            server.close()
        finally:
            wsgi.Response = gunicorns
            client.wait(timeout=10)
            redis.terminate()
            redis.wait()
    unit = statistics.median(figures["ping"])
    print(f"Flask test client /ping: {unit:.0f} µs of CPU (median of {ROUNDS} × {N}); "
          f"load {os.getloadavg()[0]:.1f}")
    for name in BODIES:
        old, new = (statistics.median(figures[(name, label)])
                    for label in ("gunicorn", "web_worker"))
        saved = old - new
        print(f"{name}: gunicorn's Response {old:.1f} µs, web_worker's {new:.1f} µs a response: "
              f"{saved:.1f} µs saved = {saved / unit:.3f} /ping ({saved / old:.0%})")


if __name__ == "__main__":
    main()

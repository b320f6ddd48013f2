"""A WSGI app for tests/test_web_worker.py's own gunicorn (web_worker.Worker or gunicorn's gevent
worker, no database, no Redis).

GET /: which web process answered and how many requests that process had served, this one included.
GET /block?<fifo> holds the whole process (its event loop, not only the request's greenlet) until
the test opens that fifo for writing: a web process stuck.
/case/<name>: one of CASES, each a way an app answers (one body or several items, streamed,
empty, a file, raising midway, ...) for comparing raw responses between the two workers.
GET /sends: how many times the process's sockets sent (send) on this connection since the answer
to the last /sends on it: a test hook, counting what the answers in between cost.
"""
import collections
import itertools
import json
import os
from pathlib import Path

served = itertools.count(1)
sends = collections.Counter()  # send calls, by connection (the socket's file number)
FILE = Path(__file__)  # a file to send (gunicorn's sendfile)


def count_sends(socket_class):
    """Count each send of this class of sockets (gevent's, in the web process: its sendall sends
    through its send)."""
    if getattr(socket_class, "counted", False):
        return
    send = socket_class.send

    def counted_send(sock, data, *args, **kwargs):
        sends[sock.fileno()] += 1
        return send(sock, data, *args, **kwargs)

    socket_class.send = counted_send
    socket_class.counted = True


class Counted(list):
    """The answer to /sends: once it is sent (its close), the count starts again from 0."""

    def __init__(self, connection, items):
        super().__init__(items)
        self.connection = connection

    def close(self):
        sends.pop(self.connection, None)


def body(*items):
    def answer(start_response, length=True):
        headers = [("Content-Type", "text/plain")]
        if length:
            headers.append(("Content-Length", str(sum(map(len, items)))))
        start_response("200 OK", headers)
        return list(items)
    return answer


def streamed(*items, fail=False):
    def answer(start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Probe", "streamed")])
        yield from items
        if fail:
            raise RuntimeError("the app fails after start_response")
    return answer


def status(line):
    def answer(start_response):
        start_response(line, [("Content-Type", "text/plain"), ("Content-Length", "4"),
                              ("ETag", '"probe"')])
        return [b"body"]
    return answer


def written(start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"by write() ")
    return [b"then returned"]


def short(start_response):
    """More bytes than the Content-Length says: gunicorn sends the length's."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
    return [b"more than", b" the length says"]


def closing(start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5"),
                              ("Connection", "close")])
    return [b"close"]


CASES = {
    "length": body(b"one body with its content-length"),
    "length-items": body(b"several ", b"items, ", b"one length"),
    "length-first-empty": body(b"", b"after an empty first item"),
    "length-short": short,
    "length-empty": body(),
    "chunked": lambda start: body(b"several ", b"chunks, ", b"no length")(start, length=False),
    "chunked-first-empty": lambda start: body(b"", b"after an empty chunk")(start, length=False),
    "chunked-empty": lambda start: body()(start, length=False),
    "streamed": streamed(b"streamed ", b"", b"by a generator"),
    "streamed-first-empty": streamed(b"", b"", b"late"),
    "no-content": status("204 No Content"),
    "not-modified": status("304 Not Modified"),
    "fails-before-a-byte": streamed(fail=True),
    "fails-after-an-empty-item": streamed(b"", fail=True),
    "fails-after-a-chunk": streamed(b"a first chunk", fail=True),
    "write": written,
    "connection-close": closing,
}


def app(environ, start_response):
    count_sends(type(environ["gunicorn.socket"]))
    connection = environ["gunicorn.socket"].fileno()
    path = environ["PATH_INFO"]
    if path == "/sends":
        return Counted(connection, body(str(sends[connection]).encode())(start_response))
    if path.startswith("/case/"):
        return CASES[path.removeprefix("/case/")](start_response)
    if path.startswith("/file"):
        headers = [("Content-Type", "text/plain")]
        if path == "/file/length":
            headers.append(("Content-Length", str(FILE.stat().st_size)))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](open(FILE, "rb"))
    if path == "/block":
        fifo = Path(environ["QUERY_STRING"])
        fifo.with_suffix(".pid").write_text(str(os.getpid()))
        with open(fifo, "rb") as stuck:  # the OS's blocking open: gevent's loop waits with it
            stuck.read()
    answer = json.dumps({"pid": os.getpid(), "served": next(served)}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(answer)))])
    return [answer]
